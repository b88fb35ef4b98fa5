"""MMDeploy 1.3.1 on torch 2.14: the two steps of its ONNX export that
the newer torch broke, restored for mmdeploy's exports only.

- ``torch.onnx.export`` defaults to the dynamo exporter on torch 2.14;
  mmdeploy 1.3.1 calls it without ``dynamo=``, so its function rewriters
  and graph passes (written for the TorchScript-based exporter) do not run
  as intended, and a stock Faster R-CNN fails to export
  (``torch.export`` fails: "data is not allocated yet"). Inside
  mmdeploy's export the call gets ``dynamo=False`` unless the caller chose.
- mmdeploy's ONNX symbolic of mmcv's ``RoIAlign`` (every two-stage
  detector) imports ``_cast_Long`` from ``torch.onnx.symbolic_opset9``,
  which torch 2.14 no longer has. During mmdeploy's export the module gets
  one: an ONNX ``Cast`` to int64, what the removed helper emitted.

Both go through mmdeploy's own mechanism, a ``FUNCTION_REWRITER`` rewriter
of ``torch.onnx.export``: it is active only inside mmdeploy's
``RewriterContext`` (``mmdeploy.apis.torch2onnx``, ``tools/deploy.py``),
and outside it ``torch.onnx.export`` and ``symbolic_opset9`` are torch's
own. Registered when ``mmnpe.deploy`` is imported (``import mmnpe`` with
mmdeploy installed); see docs/user_guides/deployment.md#detection.
"""
import contextlib
import importlib
import inspect
from typing import Callable, Iterator, Optional

import torch
from mmdeploy.core import FUNCTION_REWRITER

__all__ = [
    'cast_long_symbolic', 'onnx_export_defaults_to_dynamo',
    'torch_onnx__export'
]

_OPSET9 = 'torch.onnx.symbolic_opset9'


def onnx_export_defaults_to_dynamo(export: Optional[Callable] = None) -> bool:
    """Whether ``export`` (torch's ``torch.onnx.export`` when None) runs the
    dynamo exporter when ``dynamo`` is not given (torch 2.14 does)."""
    export = torch.onnx.export if export is None else export
    param = inspect.signature(export).parameters.get('dynamo')
    return param is not None and param.default is True


def _cast_long(g, input, non_blocking):
    """``Cast(input, to=INT64)``: the symbolic helper mmdeploy 1.3.1's
    RoIAlign symbolic imports from ``symbolic_opset9``."""
    return g.op('Cast', input, to_i=torch.onnx.TensorProtoDataType.INT64)


@contextlib.contextmanager
def cast_long_symbolic() -> Iterator[None]:
    """Give ``torch.onnx.symbolic_opset9`` a ``_cast_Long`` while the block
    runs, where this torch lacks it; removed again afterwards."""
    opset9 = importlib.import_module(_OPSET9)
    if hasattr(opset9, '_cast_Long'):
        yield
        return
    opset9._cast_Long = _cast_long
    try:
        yield
    finally:
        if getattr(opset9, '_cast_Long', None) is _cast_long:
            del opset9._cast_Long


@FUNCTION_REWRITER.register_rewriter(func_name='torch.onnx.export')
def torch_onnx__export(*args, **kwargs):
    """``torch.onnx.export`` as mmdeploy 1.3.1 expects it: the
    TorchScript-based exporter (unless ``dynamo`` is given) with the
    opset-9 helper its symbolics import (module docstring)."""
    ctx = FUNCTION_REWRITER.get_context()
    # torch.onnx.export is this rewriter now: ask the original.
    if onnx_export_defaults_to_dynamo(ctx.origin_func):
        kwargs.setdefault('dynamo', False)
    with cast_long_symbolic():
        return ctx.origin_func(*args, **kwargs)
