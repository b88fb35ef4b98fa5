"""tools/deploy/export_onnx.py as a user runs it (a subprocess): the plain
``torch.onnx.export`` of ``mode='tensor'`` keeps the correction, fuses an
NPE classification head (writing the fused config and checkpoint), checks
itself with ONNX Runtime, and refuses what it cannot export."""
import os.path as osp
import subprocess
import sys

import torch
from mmengine.config import Config
from onnx_export_helpers import (CLS_NPE, REPO, SEG_NPE, build_model, load_cfg,
                                 perturb_cls, perturb_seg, run_ort,
                                 save_checkpoint)

TOOL = osp.join(REPO, 'tools', 'deploy', 'export_onnx.py')


def _run(*args, ok=True):
    out = subprocess.run([sys.executable, TOOL, *map(str, args)],
                         capture_output=True,
                         text=True,
                         cwd=REPO)
    log = out.stdout + out.stderr
    assert (out.returncode == 0) == ok, log[-3000:]
    return log


def _seg(tmp_path):
    cfg = load_cfg(SEG_NPE, 'mmseg', scale_factor=0.5)
    model = build_model(cfg)
    perturb_seg(model)
    return model, save_checkpoint(model, str(tmp_path / 'npe.pth'))


def test_segmentor_logits_are_the_corrected_ones(tmp_path):
    model, ckpt = _seg(tmp_path)
    out = tmp_path / 'npe.onnx'
    log = _run(SEG_NPE, ckpt, '--out', out, '--dynamic', '--cfg-options',
               'model.scale_factor=0.5')
    # Checked at the export shape and at another batch and size.
    assert log.count('ONNX Runtime = PyTorch: logits within') == 2
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        want = model(x, mode='tensor')
        plain = model.decode_head(model.extract_feat(x))
    assert (want.argmax(1) != plain.argmax(1)).float().mean() > 0.2
    got = torch.from_numpy(run_ort(str(out), x))
    assert torch.allclose(got, want, atol=1e-4, rtol=0)


def test_npe_classifier_is_fused_and_written_beside(tmp_path):
    cfg = load_cfg(CLS_NPE, 'mmpretrain')
    model = build_model(cfg)
    perturb_cls(model, 8)
    ckpt = save_checkpoint(model, str(tmp_path / 'npe.pth'))
    out = tmp_path / 'cls.onnx'
    log = _run(CLS_NPE, ckpt, '--out', out, '--shape', 8, 8, '--batch', 4)
    assert 'ONNX Runtime = PyTorch: softmax scores within' in log
    fused_cfg = Config.fromfile(str(tmp_path / 'cls_fused.py'))
    assert fused_cfg.model.head.type == 'LinearClsHead'
    state = torch.load(str(tmp_path / 'cls_fused.pth'))['state_dict']
    assert not any('pems' in k for k in state)
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        want = model(x, mode='tensor').softmax(1)
    got = torch.from_numpy(run_ort(str(out), x)).softmax(1)
    assert torch.allclose(got, want, atol=1e-4, rtol=0)


def test_missing_weights_and_shape_are_refused(tmp_path):
    cfg = load_cfg(CLS_NPE, 'mmpretrain')
    model = build_model(cfg)
    state = {k: v for k, v in model.state_dict().items() if 'pems' not in k}
    ckpt = tmp_path / 'stock.pth'
    torch.save({'state_dict': state}, str(ckpt))
    log = _run(CLS_NPE, ckpt, '--shape', 8, 8, ok=False)
    assert 'the checkpoint lacks 2 weights' in log and 'head.pems' in log
    log = _run(
        CLS_NPE, save_checkpoint(model, str(tmp_path / 'a.pth')), ok=False)
    assert '--shape H W is needed' in log
