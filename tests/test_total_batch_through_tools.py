"""The paper's total batch of 16 through tools/train.py on the STARE PEM
config: gradient accumulation counts, the check comes before the stock
checkpoint is loaded (or downloaded), and another total on purpose is one
key away."""
import os.path as osp

import pytest
import torch
from launch_helpers import REPO, run_train
from mmengine.config import Config
from mmengine.registry import init_default_scope
from test_configs import _write_stare

CONFIG = osp.join(REPO, 'configs', 'npe', 'unet_stare_pem_fcn.py')


@pytest.fixture(scope='module')
def stare(tmp_path_factory):
    """A STARE tree in mmseg's layout and a stock checkpoint of the config's
    UNet (what its load_from URL holds, with other weights)."""
    tmp = tmp_path_factory.mktemp('stare')
    _write_stare(str(tmp))
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(CONFIG)
    model_cfg = cfg.model
    model_cfg.type = 'EncoderDecoder'
    model_cfg.pop('pem_head')
    model_cfg.pop('scale_factor')
    torch.manual_seed(0)
    stock = MODELS.build(model_cfg)
    path = str(tmp / 'stock.pth')
    torch.save(dict(meta=dict(), state_dict=stock.state_dict()), path)
    return str(tmp), path


def _options(root, *extra):
    # No validation: the config's slide inference over the upscaled STARE
    # images would be most of each run, and these runs are about the batch.
    return [
        '--cfg-options', f'train_dataloader.dataset.dataset.data_root={root}',
        'val_dataloader=None', 'val_cfg=None', 'val_evaluator=None',
        f'test_dataloader.dataset.data_root={root}', 'train_cfg.max_iters=1',
        'train_cfg.val_interval=10', 'default_hooks.checkpoint.interval=1',
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers'
        '=False', *extra
    ]


def _refused(stare, tmp_path, *extra):
    root, _ = stare
    # load_from stays the config's URL: the run must stop before it.
    launch = run_train(CONFIG, str(tmp_path / 'work'), *_options(root, *extra))
    out = launch.wait(check=False)
    assert launch.returncode != 0
    # mmengine logs this before fetching load_from (local or URL).
    assert 'Loads checkpoint' not in out
    return out


def test_batch_4_without_accumulation_is_refused_before_loading(
        stare, tmp_path):
    out = _refused(stare, tmp_path, 'train_dataloader.batch_size=4')
    assert ('the total batch must be 16, got train_dataloader.batch_size=4 '
            'per process x 1 process(es) x optim_wrapper.accumulative_counts'
            '=1 = 4; pass --cfg-options train_dataloader.batch_size=16') in out


def test_accumulation_is_counted(stare, tmp_path):
    out = _refused(stare, tmp_path, 'train_dataloader.batch_size=16',
                   'optim_wrapper.accumulative_counts=2')
    assert 'accumulative_counts=2 = 32; pass --cfg-options ' \
        'train_dataloader.batch_size=8' in out
    root, stock = stare
    out = run_train(
        CONFIG, str(tmp_path / 'ok'),
        *_options(root, 'train_dataloader.batch_size=4',
                  'optim_wrapper.accumulative_counts=4',
                  'train_cfg.max_iters=4',
                  'default_hooks.checkpoint.interval=4',
                  f'load_from={stock}')).wait()
    assert ('total batch 16 = train_dataloader.batch_size=4 per process x 1 '
            'process(es) x optim_wrapper.accumulative_counts=4') in out
    # mmengine's iteration-based loop counts batches: the schedule must be
    # stretched to keep the config's number of updates, and the warning says
    # how (the paper's 600 iterations x 4, milestones 200 / 400 x 4).
    assert ('makes max_iters / 4 = 1 updates of the total batch, not 4' in out)
    assert ('train_cfg.max_iters=16 train_cfg.val_interval=40 '
            'param_scheduler.0.milestones=[800,1600] '
            'default_hooks.checkpoint.interval=16') in out
    assert osp.isfile(str(tmp_path / 'ok' / 'iter_4.pth'))


def test_another_total_on_purpose(stare, tmp_path):
    root, stock = stare
    out = run_train(
        CONFIG, str(tmp_path / 'quick'),
        *_options(root, 'train_dataloader.batch_size=2',
                  'allow_other_total_batch=True',
                  f'load_from={stock}')).wait()
    assert 'training with a total batch of 2' in out
    assert 'no longer follows the setting its config reproduces' in out
    assert osp.isfile(str(tmp_path / 'quick' / 'iter_1.pth'))
