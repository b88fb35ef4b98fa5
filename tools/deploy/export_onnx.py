"""Export an mmnpe segmentor or classifier to ONNX with torch.onnx alone.

For users without MMDeploy: the graph is the model's ``mode='tensor'``
forward, i.e. the corrected logits (NPE-LA, post-hoc LA, ``target_prior``)
of the data preprocessor's output:

- segmentors: input (N, 3, H, W) normalised as ``model.data_preprocessor``
  does it, output the logits (N, C, h, w) at the decode head's resolution
  (whole-image inference; resize to the image and take the argmax in the
  application);
- classifiers: input (N, 3, H, W) as above, output the logits (N, C).

An NPE classification head is fused first (``mmnpe.cls.fuse_npe_classifier``:
one linear layer, same predictions) unless ``--no-fuse``; the fused config
and checkpoint are written beside the ONNX file (``<out>_fused.py``,
``<out>_fused.pth``). Where onnxruntime is installed the ONNX model is run
on a random input (with ``--dynamic`` on a second batch and image size
too) and compared with PyTorch (logits for segmentors, softmax
scores for classifiers; the tool fails above 1e-4). Detectors: use MMDeploy
(docs/user_guides/deployment.md).

Usage: python tools/deploy/export_onnx.py CONFIG CHECKPOINT [--out FILE]
       [--shape H W] [--batch N] [--dynamic] [--exporter dynamo|torchscript]
       [--opset N] [--no-fuse] [--cfg-options KEY=VALUE ...]
"""
import argparse
import logging
import os
import os.path as osp

import torch
import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import CheckpointLoader

import mmnpe  # noqa: F401  (registers the components)
from mmnpe.cls import fuse_npe_classifier
from mmnpe.cls.heads import NPEHeadMixin

#: Tolerance of the ONNX Runtime check (float32 logits / scores).
ATOL = 1e-4


class TensorMode(nn.Module):
    """``model(inputs, mode='tensor')`` as a one-input module."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs, mode='tensor')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument(
        '--out', help='the ONNX file (default: CHECKPOINT with .onnx)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='input height and width (default: the data preprocessor\'s '
        'size, where it has one)')
    parser.add_argument('--batch', type=int, default=1, help='batch size')
    parser.add_argument(
        '--dynamic',
        action='store_true',
        help='dynamic batch (and, for segmentors, height and width)')
    parser.add_argument(
        '--exporter',
        choices=['dynamo', 'torchscript'],
        default='dynamo',
        help='torch.onnx.export(dynamo=True) or the TorchScript-based one')
    parser.add_argument('--opset', type=int, default=18)
    parser.add_argument(
        '--no-fuse',
        action='store_true',
        help='keep the PEMs of an NPE classification head (default: fuse)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings (model.scale_factor=0.5 ...)')
    return parser.parse_args(argv)


def _host(model: nn.Module) -> str:
    from mmpretrain.models.classifiers import BaseClassifier
    from mmseg.models.segmentors import BaseSegmentor
    if isinstance(model, BaseSegmentor):
        return 'seg'
    if isinstance(model, BaseClassifier):
        return 'cls'
    raise SystemExit(
        f'export_onnx.py exports segmentors and classifiers, got '
        f'{type(model).__name__}: export detectors with MMDeploy, whose '
        'rewrites give the boxes after NMS (docs/user_guides/deployment.md)')


def _build(cfg: Config, state_dict: dict) -> nn.Module:
    """The model with the checkpoint's weights; a weight it lacks is an
    error (the export would hold the random init), except counts that the
    config gives."""
    model = MODELS.build(cfg.model)
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    configured = {
        f'{name}.class_counts'.lstrip('.')
        for name, m in model.named_modules()
        if getattr(m, 'has_class_counts', False)
    }
    missing = [k for k in missing if k not in configured]
    if missing:
        raise SystemExit(
            f'the checkpoint lacks {len(missing)} weights of the model '
            f'{missing[:5]}: is it the checkpoint of this config?')
    if unexpected:
        print_log(
            f'the checkpoint has weights the model does not use: '
            f'{unexpected[:5]}',
            logger='current',
            level=logging.WARNING)
    return model.eval()


def _input_shape(cfg: Config, args: argparse.Namespace) -> tuple:
    if args.shape is not None:
        return tuple(args.shape)
    size = (cfg.model.get('data_preprocessor') or {}).get('size')
    if size is None:
        raise SystemExit('--shape H W is needed: the config\'s '
                         'model.data_preprocessor has no size')
    return tuple(size)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    ckpt = CheckpointLoader.load_checkpoint(
        args.checkpoint, map_location='cpu')
    state_dict = ckpt.get('state_dict', ckpt)
    model = _build(cfg, state_dict)
    host = _host(model)
    out = args.out or osp.splitext(args.checkpoint)[0] + '.onnx'
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)

    exported = model
    if host == 'cls' and isinstance(model.head,
                                    NPEHeadMixin) and not args.no_fuse:
        fused_cfg, fused = fuse_npe_classifier(cfg, state_dict)
        stem = osp.splitext(out)[0]
        fused_cfg.dump(stem + '_fused.py')
        meta = {
            k: v
            for k, v in ckpt.get('meta', {}).items() if k == 'dataset_meta'
        }
        torch.save(dict(state_dict=fused, meta=meta), stem + '_fused.pth')
        print(f'wrote {stem}_fused.py\nwrote {stem}_fused.pth')
        exported = _build(fused_cfg, fused)
    if host == 'seg' and (model.test_cfg or {}).get('mode') == 'slide':
        print_log(
            "test_cfg.mode is 'slide': the ONNX model is one whole-image "
            'pass over the input it is given; tile crops of '
            f'{model.test_cfg.get("crop_size")} with stride '
            f'{model.test_cfg.get("stride")} and average their logits in '
            'the application, as mmseg\'s slide inference does (the '
            'correction is exact per crop)',
            logger='current',
            level=logging.WARNING)

    h, w = _input_shape(cfg, args)
    torch.manual_seed(0)
    inputs = torch.randn(args.batch, 3, h, w)
    axes = None
    if args.dynamic:
        axes = {
            0: 'batch',
            2: 'height',
            3: 'width'
        } if host == 'seg' else {
            0: 'batch'
        }
        axes = dict(input=axes, output={0: 'batch'} if host == 'cls' else axes)
    with torch.no_grad():
        torch.onnx.export(
            TensorMode(exported), (inputs, ),
            out,
            input_names=['input'],
            output_names=['output'],
            opset_version=args.opset,
            dynamic_axes=axes,
            dynamo=args.exporter == 'dynamo')
        want = model(inputs, mode='tensor')
    print(f'wrote {out}')
    _check(out, inputs, want, host)
    if args.dynamic:
        # A traced size (an upsampling's target shape ...) fits the export
        # shape only: check another one.
        hw = (h + 16, w + 16) if host == 'seg' else (h, w)
        other = torch.randn(args.batch + 1, 3, *hw)
        with torch.no_grad():
            _check(out, other, model(other, mode='tensor'), host)


def _check(onnx_file: str, inputs: torch.Tensor, want: torch.Tensor,
           host: str) -> None:
    """ONNX Runtime against PyTorch, where onnxruntime is installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        print('onnxruntime is not installed: the ONNX model was not checked')
        return
    sess = ort.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    try:
        got = torch.from_numpy(sess.run(None, {'input': inputs.numpy()})[0])
    except Exception as e:  # onnxruntime's own exception types
        raise SystemExit(
            f'ONNX Runtime cannot run the export on an input of shape '
            f'{tuple(inputs.shape)}: {e}; a dynamic size that the exporter '
            'traced as a constant (try --exporter dynamo, or export without '
            '--dynamic)')
    if host == 'cls':  # a fused head's logits differ by a per-sample shift
        got, want = got.softmax(1), want.softmax(1)
    diff = (got - want).abs().max().item()
    what = 'softmax scores' if host == 'cls' else 'logits'
    if got.shape != want.shape or not diff <= ATOL:
        raise SystemExit(f'ONNX Runtime {what} differ from PyTorch\'s by '
                         f'{diff:.3g} (> {ATOL:g}) on an input of shape '
                         f'{tuple(inputs.shape)}: the export is wrong (at '
                         'another shape than the export\'s: a size the '
                         'exporter traced as a constant; try --exporter '
                         'dynamo)')
    print(f'ONNX Runtime = PyTorch: {what} within {diff:.2g}')


if __name__ == '__main__':
    main()
