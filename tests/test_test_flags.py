"""Every flag of tools/test.py works on the repo's own configs: ``--show-dir``
(painted images), ``--show-dir`` with ``--out`` (mmseg: prediction PNGs) and
``--tta`` (mmseg's SegTTAModel / mmpretrain's flip TTA) on the demo configs,
through tools/test.py as a user runs it (its ``main(argv)`` in this
process), with a checkpoint saved here; and LongTailAccuracy's Many /
Medium / Few from the training set's counts (ClassCountsHook) equal those
from explicitly given counts."""
import glob
import json
import os.path as osp
import pickle

import mmcv
import numpy as np
import pytest
import torch
from launch_helpers import run_tool
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmnpe.cls import DigitsLT, LongTailAccuracy
from mmnpe.seg import generate_synthetic_lt

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(REPO, 'configs', 'demo')
SEG = osp.join(DEMO, 'fcn_unet-tiny_synthetic-lt-64x64.py')
SEG_NPE = osp.join(DEMO, 'npe_fcn_unet-tiny_synthetic-lt-64x64.py')
CLS = osp.join(DEMO, 'ce_resnet32_digits-lt.py')
CLS_NPE = osp.join(DEMO, 'npe-la-k1_resnet32_digits-lt.py')
# Three test images per digit: 30 samples, seconds per run.
SMALL_CLS = [
    'val_dataloader.dataset.num_test_per_class=3',
    'test_dataloader.dataset.num_test_per_class=3'
]


def _test_py(*args) -> str:
    """tools/test.py as a user runs it (its ``main(argv)`` in this process,
    from a fresh interpreter's state); its output."""
    return run_tool('test.py', args).wait()


def _save(model, path) -> str:
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return str(path)


def _logged_model_type(work_dir) -> str:
    """The model type of the config the run logged (its dumped config)."""
    [dumped] = glob.glob(osp.join(str(work_dir), '*', 'vis_data', 'config.py'))
    return Config.fromfile(dumped).model.type


# Segmentation ---------------------------------------------------------------


@pytest.fixture(scope='module')
def seg_run(tmp_path_factory):
    """A one-image validation set, the data-root overrides and a checkpoint
    of the demo's NPE segmentor (its PEM scaled up so that the correction
    changes predictions)."""
    from mmseg.registry import MODELS
    root = tmp_path_factory.mktemp('seg_flags')
    data = str(root / 'data')
    generate_synthetic_lt(data, num_train=2, num_val=1, size=32)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(SEG_NPE).model)
    model.init_weights()
    for p in model.pem_heads.parameters():
        torch.nn.init.normal_(p, std=0.5)
    options = [
        f'{split}_dataloader.dataset.data_root={data}'
        for split in ('train', 'val', 'test')
    ]
    return options, _save(model, root / 'npe.pth')


def _painted(folder) -> list:
    return glob.glob(osp.join(str(folder), '**', '*.png'), recursive=True)


def test_seg_show_dir_paints_every_validation_image(seg_run, tmp_path):
    options, ckpt = seg_run
    show = tmp_path / 'show'
    log = _test_py(SEG_NPE, ckpt, '--work-dir', tmp_path / 'work',
                   '--show-dir', show, '--cfg-options', *options)
    assert 'mIoU' in log
    painted = _painted(show)
    assert [osp.basename(p) for p in painted] == ['test_val_0000.png_0.png']

    # Ground truth and prediction side by side, each over the 32x32 image.
    assert mmcv.imread(painted[0]).shape == (32, 64, 3)


def test_seg_show_dir_with_out_paints_and_writes_predictions(
        seg_run, tmp_path):
    options, ckpt = seg_run
    show, out = tmp_path / 'show', tmp_path / 'preds'
    _test_py(SEG_NPE, ckpt, '--work-dir', tmp_path / 'work', '--show-dir',
             show, '--out', out, '--cfg-options', *options)
    assert len(_painted(show)) == 1
    preds = glob.glob(str(out / '*.png'))
    assert [osp.basename(p) for p in preds] == ['val_0000.png']
    pred = mmcv.imread(preds[0], 'unchanged')
    assert pred.shape == (32, 32) and pred.max() < 6


def test_seg_tta_tests_through_seg_tta_model(seg_run, tmp_path):
    """The plain demo segmentor: mmseg's multi-scale + flip TTA."""
    options, ckpt = seg_run
    work = tmp_path / 'work'
    log = _test_py(SEG, ckpt, '--work-dir', work, '--tta', '--cfg-options',
                   *options)
    assert 'mIoU' in log
    assert _logged_model_type(work) == 'SegTTAModel'


def test_seg_tta_on_the_npe_config_with_its_frozen_backbone_hook(
        seg_run, tmp_path):
    """FrozenBackboneHook freezes the segmentor inside the TTA model."""
    options, ckpt = seg_run
    work = tmp_path / 'work'
    log = _test_py(SEG_NPE, ckpt, '--work-dir', work, '--tta', '--cfg-options',
                   *options)
    assert 'mIoU' in log
    assert _logged_model_type(work) == 'SegTTAModel'


# Classification -------------------------------------------------------------


def _nearest_mean_checkpoint(config, path) -> str:
    """The (untrained) ResNet-32 of ``config`` made a nearest-class-mean
    classifier on its random features of the DigitsLT training set, so that
    predictions spread over the classes without a training run."""
    from mmengine.dataset import pseudo_collate
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(config)
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model_cfg = cfg.model
    model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.eval()
    train = DigitsLT(split='train', pipeline=cfg.test_pipeline)
    with torch.no_grad():
        data = model.data_preprocessor(
            pseudo_collate([train[i] for i in range(len(train))]), False)
        h = model.extract_feat(data['inputs'])[-1]
    y = torch.cat([s.gt_label for s in data['data_samples']])
    mu = torch.stack([h[y == c].mean(0) for c in range(10)])
    s = (h - mu[y]).norm(dim=1).mean()**2
    model.head.fc.weight.data.copy_(mu / s)
    model.head.fc.bias.data.copy_(-(mu * mu).sum(1) / (2 * s))
    return _save(model, path)


@pytest.fixture(scope='module')
def cls_ckpt(tmp_path_factory):
    return _nearest_mean_checkpoint(
        CLS,
        tmp_path_factory.mktemp('cls_flags') / 'ce.pth')


def test_cls_tta_tests_through_average_cls_score_tta(cls_ckpt, tmp_path):
    work = tmp_path / 'work'
    _test_py(CLS, cls_ckpt, '--work-dir', work, '--tta', '--out',
             tmp_path / 'metrics.pkl', '--out-item', 'metrics',
             '--cfg-options', *SMALL_CLS)
    with open(tmp_path / 'metrics.pkl', 'rb') as f:
        metrics = pickle.load(f)
    assert {'lt/top1', 'lt/many', 'lt/medium', 'lt/few'} <= set(metrics)
    assert _logged_model_type(work) == 'mmpretrain.AverageClsScoreTTA'


def test_cls_show_dir_paints_on_the_npe_config(cls_ckpt, tmp_path):
    """The NPE-LA demo config on the CE checkpoint's weights plus a PEM (a
    checkpoint without one is refused: the PEM would be random): one
    painted image per ``--interval``-th sample."""
    state = torch.load(cls_ckpt, weights_only=True)['state_dict']
    torch.manual_seed(0)
    state['head.pems.weight'] = 1e-3 * torch.randn(10, 64)
    state['head.pems.bias'] = torch.zeros(10)
    npe = str(tmp_path / 'npe.pth')
    torch.save(dict(state_dict=state, meta=dict()), npe)
    show = tmp_path / 'show'
    log = _test_py(CLS_NPE, npe, '--work-dir', tmp_path / 'work', '--show-dir',
                   show, '--interval', 15, '--cfg-options', *SMALL_CLS)
    assert 'lt/top1' in log
    assert sorted(osp.basename(p)
                  for p in _painted(show)) == ['0_0.png', '15_0.png']


def test_cls_groups_from_training_counts_equal_explicit_counts(
        cls_ckpt, tmp_path):
    """The test split carries no rho: ClassCountsHook counts the training
    set once and LongTailAccuracy's Many / Medium / Few equal a run given
    the DigitsLT training counts explicitly, and the metric computed from
    the dumped predictions with those counts."""
    explicit = DigitsLT(
        split='train', pipeline=[]).metainfo['train_class_counts']
    cfg = Config.fromfile(CLS)
    assert 'imbalance_ratio' not in cfg.test_dataloader.dataset
    assert cfg.test_evaluator.get('class_counts') is None

    hooked = tmp_path / 'hooked.json'
    log = _test_py(CLS, cls_ckpt, '--work-dir', tmp_path / 'w1', '--out',
                   tmp_path / 'preds.pkl', '--cfg-options', *SMALL_CLS,
                   f'test_evaluator.per_class_file={hooked}')
    assert ('ClassCountsHook: LongTailAccuracy.class_counts from the '
            f'training data set (images per class): {explicit}') in log
    given = tmp_path / 'given.json'
    _test_py(
        CLS, cls_ckpt, '--work-dir', tmp_path / 'w2', '--cfg-options',
        *SMALL_CLS, f'test_evaluator.per_class_file={given}',
        'test_evaluator.class_counts=[' + ','.join(map(str, explicit)) + ']')
    hooked, given = (json.loads(p.read_text()) for p in (hooked, given))
    assert hooked['train_class_counts'] == given['train_class_counts'] == \
        explicit
    assert hooked['summary'] == given['summary']
    assert {'many', 'medium', 'few'} <= set(hooked['summary'])

    with open(tmp_path / 'preds.pkl', 'rb') as f:
        preds = pickle.load(f)
    pred = [int(p['pred_label']) for p in preds]
    target = [int(p['gt_label']) for p in preds]
    want = LongTailAccuracy.calculate(pred, target, explicit)
    for key in ('top1', 'balanced', 'many', 'medium', 'few'):
        assert hooked['summary'][key] == pytest.approx(want[key], abs=1e-9)
    # Not vacuous: predictions spread, and the groups depend on the counts.
    assert len(set(pred)) >= 5
    other = LongTailAccuracy.calculate(pred, target, explicit[::-1])
    assert (other['many'], other['few']) != (want['many'], want['few'])
    assert np.isclose(want['top1'], 100 * np.mean(np.equal(pred, target)))
