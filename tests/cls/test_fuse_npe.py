import os.path as osp
import pickle
import subprocess
import sys

import mmpretrain
import pytest
import torch
import torch.nn as nn
from helpers import write_fake_cifar
from mmengine.config import Config
from mmpretrain.registry import MODELS

from mmnpe.cls import NPEClsHead, config_needs_mmnpe, fuse_npe_classifier

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FUSE = osp.join(REPO, 'tools', 'deploy', 'fuse_npe.py')

STOCK_BACKBONE_CFG = dict(
    custom_imports=dict(imports=['mmnpe'], allow_failed_imports=False),
    default_scope='mmpretrain',
    model=dict(
        type='ImageClassifier',
        backbone=dict(type='LeNet5', num_classes=-1),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='NPEClsHead',
            num_classes=10,
            in_channels=120,
            num_pems=4,
            scale_factor=1.0)))

# Runs in a fresh interpreter that never imports mmnpe.
STOCK_LOAD = r'''
import sys, torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS
cfg = Config.fromfile(sys.argv[1])
assert 'custom_imports' not in cfg, cfg.get('custom_imports')
init_default_scope('mmpretrain')
model = MODELS.build(cfg.model).eval()
assert type(model.head).__name__ == 'LinearClsHead'
load_checkpoint(model, sys.argv[2], strict=True)
with torch.no_grad():
    torch.save(model(torch.load(sys.argv[3]), mode='tensor'), sys.argv[4])
assert not any(m.startswith('mmnpe') for m in sys.modules), 'mmnpe imported'
'''


def _trained_like(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    for p in model.head.parameters():
        nn.init.normal_(p, std=0.3)
    return model


def _centre(z):
    return z - z.mean(1, keepdim=True)


def test_fuse_tool_output_loads_in_stock_mmpretrain(tmp_path):
    cfg_path = tmp_path / 'npe_lenet.py'
    cfg_path.write_text(''.join(f'{k} = {v!r}\n'
                                for k, v in STOCK_BACKBONE_CFG.items()))
    cfg = Config.fromfile(str(cfg_path))
    model = _trained_like(cfg)
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(epoch=1)), ckpt)
    out_dir = tmp_path / 'fused'
    run = subprocess.run(
        [sys.executable, FUSE,
         str(cfg_path),
         str(ckpt),
         str(out_dir)],
        capture_output=True,
        text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    fused_cfg = out_dir / 'npe_lenet_fused.py'
    fused_ckpt = out_dir / 'epoch_1_fused.pth'
    assert fused_cfg.exists() and fused_ckpt.exists()

    x = torch.randn(16, 1, 32, 32)
    torch.save(x, tmp_path / 'x.pth')
    run = subprocess.run([
        sys.executable, '-c', STOCK_LOAD,
        str(fused_cfg),
        str(fused_ckpt),
        str(tmp_path / 'x.pth'),
        str(tmp_path / 'y.pth')
    ],
                         capture_output=True,
                         text=True,
                         cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    fused_logits = torch.load(tmp_path / 'y.pth')
    with torch.no_grad():
        ref = model(x, mode='tensor')
    assert (_centre(fused_logits) - _centre(ref)).abs().max() < 1e-5
    assert torch.equal(fused_logits.argmax(1), ref.argmax(1))


def test_fused_config_keeps_mmnpe_for_an_mmnpe_backbone():
    cfg = Config(
        dict(
            custom_imports=dict(imports=['mmnpe']),
            model=dict(
                type='ImageClassifier',
                backbone=dict(type='CifarResNet', depth=20),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(
                    type='NPEClsHead',
                    num_classes=10,
                    in_channels=64,
                    num_pems=16))))
    model = _trained_like(cfg)
    fused_cfg, fused = fuse_npe_classifier(cfg, model.state_dict())
    assert fused_cfg.custom_imports.imports == ['mmnpe']
    assert fused_cfg.model.head.type == 'LinearClsHead'
    assert not any(k.startswith('head.pems') for k in fused)
    stock = MODELS.build(fused_cfg.model).eval()
    stock.load_state_dict(fused, strict=True)
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        a, b = stock(x, mode='tensor'), model(x, mode='tensor')
    assert (_centre(a) - _centre(b)).abs().max() < 1e-5
    assert torch.equal(a.argmax(1), b.argmax(1))


def test_fuse_refuses_a_non_npe_head():
    cfg = Config(dict(model=dict(head=dict(type='LinearClsHead'))))
    with pytest.raises(
            ValueError,
            match="model.head.type to be an NPE head.*NPEClsHead"
            ".*got 'LinearClsHead'"):
        fuse_npe_classifier(cfg, {})


STOCK_CIFAR = 'mmpretrain::resnet/resnet18_8xb16_cifar10.py'


@pytest.mark.parametrize('where, part', [
    ('dataset', dict(train_dataloader=dict(dataset=dict(type='CIFAR10LT')))),
    ('scoped dataset',
     dict(test_dataloader=dict(dataset=dict(type='mmpretrain.DigitsLT')))),
    ('metric',
     dict(
         test_evaluator=[dict(type='Accuracy'),
                         dict(type='LongTailAccuracy')])),
    ('hook', dict(custom_hooks=[dict(type='FrozenBackboneHook')])),
    ('backbone', dict(model=dict(backbone=dict(type='CifarResNet')))),
    ('loss',
     dict(model=dict(head=dict(loss=dict(type='OneWayLogisticLoss'))))),
    ('a class, not a name', dict(model=dict(head=dict(type=NPEClsHead)))),
])
def test_config_needs_mmnpe_wherever_a_type_is_mmnpes(where, part):
    cfg = Config(dict(model=dict(type='ImageClassifier')))
    assert not config_needs_mmnpe(cfg)
    cfg.merge_from_dict(part)
    assert config_needs_mmnpe(cfg), where


def test_a_stock_mmpretrain_config_needs_no_mmnpe(tmp_path):
    path = tmp_path / 'stock.py'
    path.write_text(f'_base_ = {STOCK_CIFAR!r}\n')
    assert not config_needs_mmnpe(Config.fromfile(str(path)))


# mmpretrain's own tools/test.py: a fresh interpreter that imports mmnpe only
# if the config's custom_imports asks for it.
MMPRETRAIN_TEST = osp.join(
    osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'test.py')

NPE_ON_LT_DATA = """
_base_ = 'mmpretrain::resnet/resnet18_8xb16_cifar10.py'
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)
model = dict(
    backbone=dict(stem_channels=16, base_channels=16),
    head=dict(type='NPEClsHead', in_channels=128, num_pems=2))
test_dataloader = dict(
    batch_size=10,
    num_workers=0,
    dataset=dict(
        type='CIFAR10LT', data_root={root!r}, imbalance_ratio=4,
        verify_md5=False))
test_evaluator = dict(_delete_=True, type='LongTailAccuracy')
"""


def _python(*args, cwd):
    run = subprocess.run([sys.executable, *map(str, args)],
                         capture_output=True,
                         text=True,
                         cwd=str(cwd))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout + run.stderr


def _labels(path):
    with open(path, 'rb') as f:
        return [int(p['pred_label']) for p in pickle.load(f)]


def test_fused_config_keeps_mmnpe_for_its_data_and_metric_and_runs_test(
        tmp_path):
    """Stock backbone and neck, but an mmnpe data set and metric: the fused
    config must keep custom_imports, and then runs mmpretrain's own
    tools/test.py in a fresh interpreter with the same predictions."""
    root = write_fake_cifar(
        str(tmp_path / 'cifar'), 10, train_per_class=5, test_per_class=3)
    cfg_path = tmp_path / 'npe_resnet18_cifar10-lt.py'
    cfg_path.write_text(NPE_ON_LT_DATA.format(root=root))
    cfg = Config.fromfile(str(cfg_path))
    model = _trained_like(cfg)
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)

    _python(
        osp.join(REPO, 'tools', 'test.py'),
        cfg_path,
        ckpt,
        '--work-dir',
        tmp_path / 'w_npe',
        '--out',
        tmp_path / 'npe.pkl',
        cwd=REPO)
    out_dir = tmp_path / 'fused'
    _python(FUSE, cfg_path, ckpt, out_dir, cwd=REPO)
    fused_cfg = out_dir / 'npe_resnet18_cifar10-lt_fused.py'
    fused = Config.fromfile(str(fused_cfg))
    assert fused.custom_imports.imports == ['mmnpe']
    assert fused.model.head.type == 'LinearClsHead'

    log = _python(
        MMPRETRAIN_TEST,
        fused_cfg,
        out_dir / 'epoch_1_fused.pth',
        '--work-dir',
        tmp_path / 'w_fused',
        '--out',
        tmp_path / 'fused.pkl',
        cwd=tmp_path)
    assert 'lt/top1' in log
    labels = _labels(tmp_path / 'npe.pkl')
    assert len(labels) == 30
    assert _labels(tmp_path / 'fused.pkl') == labels
