"""tools/train.py and tools/test.py end to end, with mmseg's flags. The
first test is the subprocess smoke of both tools (a fresh interpreter, as a
user runs them) next to their ``main(argv)`` in the test process, which the
other tests and test files use (``launch_helpers.run_tool``)."""
import glob
import os.path as osp
import sys

import mmcv
import numpy as np
from helpers import tiny_runner_cfg
from launch_helpers import run_tool

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _run(script, *args, in_process=False):
    """``python tools/SCRIPT ARGS...`` (by default in a fresh interpreter);
    its output."""
    return run_tool(script, args, in_process=in_process).wait()


def test_train_then_test_with_scale_override_and_show_dir(
        tmp_path, synthetic_root):
    cfg = tiny_runner_cfg(
        str(tmp_path / 'unused'), synthetic_root, max_iters=2)
    cfg['custom_imports'] = dict(imports=['mmnpe'], allow_failed_imports=False)
    cfg['log_level'] = 'INFO'
    config = tmp_path / 'cfg.py'
    config.write_text(''.join(f'{k} = {v!r}\n' for k, v in cfg.items()))
    work = tmp_path / 'work'
    _run('train.py', config, '--work-dir', work)
    ckpt = work / 'iter_2.pth'
    assert ckpt.exists()

    preds = {}
    # alpha 0 in a fresh interpreter, 1000 in this process.
    for alpha in (0.0, 1000.0):
        out_dir = tmp_path / f'out_{alpha:g}'
        log = _run(
            'test.py',
            config,
            ckpt,
            '--work-dir',
            tmp_path / f'test_{alpha:g}',
            '--out',
            out_dir,
            '--cfg-options',
            f'model.scale_factor={alpha}',
            in_process=alpha > 0)
        assert 'mIoU' in log
        files = sorted(glob.glob(str(out_dir / '*.png')))
        assert len(files) == 2  # one prediction per validation image
        preds[alpha] = np.stack([mmcv.imread(f, 'unchanged') for f in files])
    # The override reached the model: a huge alpha lets the (barely trained)
    # PEM decide, alpha = 0 is the plain segmentor.
    assert not np.array_equal(preds[0.0], preds[1000.0])

    show = tmp_path / 'show'
    _run(
        'test.py',
        config,
        ckpt,
        '--work-dir',
        tmp_path / 'test_show',
        '--show-dir',
        show,
        in_process=True)
    painted = glob.glob(str(show / '**' / '*.png'), recursive=True)
    assert len(painted) == 2


def test_cls_test_dumps_predictions_metrics_and_paints_like_mmpretrain(
        tmp_path):
    """mmpretrain's flags on an mmpretrain config (the DigitsLT demo):
    ``--out FILE`` pickles one prediction per sample, ``--out-item
    metrics`` the metrics, ``--show-dir`` paints every ``--interval``-th
    sample."""
    import pickle

    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    config = osp.join(REPO, 'configs', 'demo',
                      'npe-la-k1_resnet32_digits-lt.py')
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    small = [
        'test_dataloader.dataset.num_test_per_class=3',
        'default_hooks.visualization.resize=64'
    ]

    show = tmp_path / 'show'
    log = run_tool('test.py', [
        config, ckpt, '--work-dir', tmp_path / 'w1', '--out',
        tmp_path / 'pred.pkl', '--show-dir', show, '--interval', 10,
        '--cfg-options', *small
    ]).wait()
    assert 'lt/top1' in log
    with open(tmp_path / 'pred.pkl', 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 30  # 10 classes x 3 test images
    assert all({'pred_label', 'pred_score', 'gt_label'} <= set(p)
               for p in preds)
    painted = sorted(osp.basename(p) for p in glob.glob(str(show / '*.png')))
    assert painted == ['0_0.png', '10_0.png', '20_0.png']
    assert mmcv.imread(str(show / '0_0.png')).shape == (64, 64, 3)

    run_tool('test.py', [
        config, ckpt, '--work-dir', tmp_path / 'w2', '--out', tmp_path /
        'metrics.pkl', '--out-item', 'metrics', '--cfg-options', small[0]
    ]).wait()
    with open(tmp_path / 'metrics.pkl', 'rb') as f:
        metrics = pickle.load(f)
    correct = [int(p['pred_label']) == int(p['gt_label']) for p in preds]
    assert abs(metrics['lt/top1'] - 100 * np.mean(correct)) < 1e-4


def _train_cfg(monkeypatch, *argv):
    """The config tools/train.py hands to build_runner for ``argv``."""
    import runpy

    import pytest

    import mmnpe.engine
    built = []

    class Built(Exception):
        pass

    def build_runner(cfg):
        built.append(cfg)
        raise Built

    monkeypatch.setattr(mmnpe.engine, 'build_runner', build_runner)
    monkeypatch.setattr(sys, 'argv', ['train.py', *map(str, argv)])
    with pytest.raises(Built):
        runpy.run_path(
            osp.join(REPO, 'tools', 'train.py'), run_name='__main__')
    return built[0]


def test_auto_scale_lr_flag_switches_on_the_configs_scaling(
        monkeypatch, tmp_path):
    """--auto-scale-lr (mmpretrain's flag) enables mmengine's linear scaling
    from the config's auto_scale_lr.base_batch_size; without it the lr is
    the config's, and a config without a base batch is refused."""
    import pytest
    config = osp.join(REPO, 'configs', 'imagenet_lt',
                      'ce_resnet50_180e_imagenet-lt.py')
    work = tmp_path / 'work'
    cfg = _train_cfg(monkeypatch, config, '--work-dir', work,
                     '--auto-scale-lr')
    assert cfg.auto_scale_lr == dict(base_batch_size=256, enable=True)
    cfg = _train_cfg(monkeypatch, config, '--work-dir', work)
    assert cfg.auto_scale_lr == dict(base_batch_size=256)
    with pytest.raises(
            ValueError,
            match=r'--auto-scale-lr needs auto_scale_lr = '
            r'dict\(base_batch_size=N\) in the config, N > 0 the total batch '
            r'its lr is set for, got auto_scale_lr=None'):
        _train_cfg(monkeypatch, config, '--work-dir', work, '--auto-scale-lr',
                   '--cfg-options', 'auto_scale_lr=None')
