"""Builders shared by the segmentation and classification export tests: the
demo models with non-trivial corrections, their checkpoints, MMDeploy's
``torch2onnx`` with either of torch's ONNX exporters, ONNX Runtime."""
import contextlib
import copy
import functools
import os
import os.path as osp
from typing import Iterator, Optional

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import mmnpe  # noqa: F401  (registers everything, mmnpe.deploy included)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo')
DEPLOY = osp.join(REPO, 'configs', 'deploy')
SEG_STOCK = osp.join(DEMO, 'fcn_unet-tiny_synthetic-lt-64x64.py')
SEG_NPE = osp.join(DEMO, 'npe_fcn_unet-tiny_synthetic-lt-64x64.py')
SEG_LA = osp.join(DEMO, 'la-posthoc_fcn_unet-tiny_synthetic-lt-64x64.py')
#: torch's ONNX exporters: TorchScript-based (``dynamo=False``) and
#: ``torch.export``-based (``dynamo=True``, the default that mmdeploy 1.3.1
#: gets on torch >= 2.9, where it passes no ``dynamo`` argument).
EXPORTERS = ('torchscript', 'dynamo')

#: An export through mmdeploy with torch's dynamo exporter takes 4-6 minutes
#: on a 2-core CPU, most of the suite's time: those cases run only with
#: MMNPE_SLOW_TESTS=1 (docs/user_guides/deployment.md, "Exporters").
SLOW = pytest.mark.skipif(
    os.environ.get('MMNPE_SLOW_TESTS') != '1',
    reason='a dynamo export through mmdeploy takes minutes; set '
    'MMNPE_SLOW_TESTS=1 to run it')


def load_cfg(path: str, scope: str, **model) -> Config:
    """A demo config without its ``load_from``, ``model`` updated."""
    cfg = Config.fromfile(path)
    cfg.load_from = None
    cfg.model.update(model)
    init_default_scope(scope)
    return cfg


def build_model(cfg: Config) -> torch.nn.Module:
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = copy.deepcopy(cfg.model)
    # As mmpretrain's runner and mmdeploy build it: a top-level
    # data_preprocessor (the mmpretrain configs') is the model's.
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model.eval()


def perturb_seg(model: torch.nn.Module) -> None:
    """Make the decode head and the PEMs non-trivial: the mmseg init (std
    0.01 on ``conv_seg``) leaves logits near zero, where any correction
    decides every pixel."""
    gen = torch.Generator().manual_seed(1)
    heads = [model.decode_head] + list(getattr(model, 'pem_heads', []))
    with torch.no_grad():
        for head in heads:
            w = head.conv_seg.weight
            w.copy_(torch.randn(w.shape, generator=gen) * 0.6)
            head.conv_seg.bias.copy_(
                torch.randn(w.shape[0], generator=gen) * 0.5)


def save_checkpoint(model: torch.nn.Module, path: str) -> str:
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def random_image(size: int = 64, seed: int = 0) -> np.ndarray:
    """An (H, W, 3) uint8 BGR image, as mmcv reads one."""
    return np.random.RandomState(seed).randint(
        0, 256, (size, size, 3), dtype=np.uint8)


@contextlib.contextmanager
def torch_onnx_exporter(exporter: str) -> Iterator[None]:
    """Run ``torch.onnx.export`` with the given exporter, whatever its
    caller (mmdeploy passes no ``dynamo`` argument)."""
    assert exporter in EXPORTERS, exporter
    original = torch.onnx.export

    # Forced, not a default: a wrapper that sets a default of its own
    # (mmnpe's shim of mmdeploy's export) must not change the choice.
    @functools.wraps(original)
    def export(*args, **kwargs):
        kwargs['dynamo'] = exporter == 'dynamo'
        return original(*args, **kwargs)

    del export.__wrapped__  # its signature is not torch's, with a default
    torch.onnx.export = export
    try:
        yield
    finally:
        torch.onnx.export = original


def mmdeploy_torch2onnx(deploy_cfg: str,
                        model_cfg: Config,
                        checkpoint: str,
                        img: np.ndarray,
                        work_dir: str,
                        exporter: str = 'dynamo') -> str:
    """MMDeploy's python API, as its ``tools/deploy.py`` calls it; returns
    the ONNX file."""
    from mmdeploy.apis import torch2onnx
    with torch_onnx_exporter(exporter):
        torch2onnx(
            img,
            work_dir,
            'end2end.onnx',
            deploy_cfg,
            model_cfg,
            checkpoint,
            device='cpu')
    return osp.join(work_dir, 'end2end.onnx')


def mmdeploy_input(deploy_cfg: str, model_cfg: Config, img: np.ndarray,
                   model: torch.nn.Module):
    """The input tensor and data samples mmdeploy exports with (its task
    processor's ``create_input``)."""
    from mmdeploy.apis import build_task_processor
    from mmdeploy.utils import get_input_shape, load_config
    deploy, model_cfg = load_config(deploy_cfg, model_cfg)
    task = build_task_processor(model_cfg, deploy, 'cpu')
    data, inputs = task.create_input(
        img,
        get_input_shape(deploy),
        data_preprocessor=model.data_preprocessor)
    return inputs, data['data_samples']


def run_ort(onnx_file: str,
            inputs: torch.Tensor,
            output: Optional[str] = None) -> np.ndarray:
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(
        onnx_file, opts, providers=['CPUExecutionProvider'])
    name = sess.get_inputs()[0].name
    return sess.run([output] if output else None, {name: inputs.numpy()})[0]


CLS_CE = osp.join(DEMO, 'ce_resnet32_digits-lt.py')
CLS_NPE = osp.join(DEMO, 'npe-la-k16_resnet32_digits-lt.py')
CLS_LA = osp.join(DEMO, 'la-posthoc_resnet32_digits-lt.py')
CLS_IWB = osp.join(DEMO, 'iwb_resnet32_digits-lt.py')


def perturb_cls(model: torch.nn.Module, size: int) -> None:
    """Give the classifier and the PEMs weights of the scale a trained
    model has: logits of std about 2 on the (untrained) features (the PEMs
    start at std 0.001, where NPE-LA changes nothing, and the mmpretrain
    init of ``fc`` with random features saturates the softmax or not
    depending on the backbone)."""
    gen = torch.Generator().manual_seed(1)
    head = model.head
    with torch.no_grad():
        probe = torch.randn(16, 3, size, size, generator=gen)
        feats = head.pre_logits(model.extract_feat(probe))
        std = 2.0 / (feats.pow(2).mean().sqrt() * feats.shape[1]**0.5)
        # eta is the mean of K PEMs: sqrt(K) keeps its scale that of one
        # PEM, 2 makes the correction move a good share of predictions.
        layers = [(head.fc, 1.0)]
        if getattr(head, 'num_pems', 0):
            layers.append((head.pems, 2 * head.num_pems**0.5))
        for layer, gain in layers:
            layer.weight.copy_(
                torch.randn(layer.weight.shape, generator=gen) * std * gain)
            layer.bias.copy_(
                torch.randn(layer.bias.shape, generator=gen) * gain)


def random_images(n: int, size: int, seed: int = 0) -> list:
    rng = np.random.RandomState(seed)
    return [
        rng.randint(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)
    ]
