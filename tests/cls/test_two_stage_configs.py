"""The two-stage CIFAR-LT configs (cRT, IWB): the grid exists, each loads the
CE run of its schedule and rho, has the documented stage-2 schedule, and
runs one iteration through a real Runner on fake CIFAR pickles from a CE
checkpoint -- backbone and BN buffers bit-identical, head re-initialised
(cRT and IWB alike); IWB's fine-tuning variant (the IWB paper's,
``reinit_modules=[]``) keeps the loaded head."""
import argparse
import glob
import os.path as osp
import re

import pytest
import torch
from helpers import write_fake_cifar
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CIFAR = osp.join(REPO, 'configs', 'cifar_lt')
GRID = {'crt': ('hp1', 'hp2'), 'iwb': ('hp2', )}
CONFIGS = sorted(
    p for m in GRID for p in glob.glob(osp.join(CIFAR, '*', f'{m}_*.py')))
CE_EPOCHS = dict(hp1=200, hp2=120)
# Stage 2: cRT as Kang et al. (lr 0.2 at batch 512, scaled), IWB as its
# paper's CIFAR-100-LT stage 2; the batch is the stage-1 schedule's.
STAGE2 = dict(
    crt_hp1=dict(lr=0.05, batch_size=128, weight_decay=5e-4),
    crt_hp2=dict(lr=0.025, batch_size=64, weight_decay=5e-4),
    iwb_hp2=dict(lr=0.005, batch_size=64, weight_decay=1e-3))


def _parse(path):
    name = osp.basename(path)[:-3]
    method, _, sched, rest = name.split('_')
    ds, rho = rest.split('-lt-r')
    return method, sched, ds, int(rho)


def test_the_two_stage_grid_exists():
    names = {osp.basename(c) for c in CONFIGS}
    want = {
        f'{m}_resnet32_{s}_{ds}-lt-r{rho}.py'
        for m, scheds in GRID.items()
        for s in scheds
        for ds in ('cifar10', 'cifar100')
        for rho in (200, 100, 50)
    }
    assert names == want and len(want) == 18


def check_stage_two_config(path, cfg):
    """The config loads the CE run of its schedule and rho and has the
    documented stage-2 schedule, hooks, sampler and head."""
    method, sched, ds, rho = _parse(path)
    ce_name = f'ce_resnet32_{sched}_{ds}-lt-r{rho}'
    ce_path = osp.join(CIFAR, f'{ds}_lt', f'{ce_name}.py')
    assert osp.isfile(ce_path)
    # tools/train.py's default work dir of the CE config, its last epoch.
    assert cfg.load_from == (
        f'work_dirs/{ce_name}/epoch_{CE_EPOCHS[sched]}.pth')
    # Stage 2 sees the long-tailed subset and model of stage 1 (loading the
    # CE config too would double this test's time: compare by value).
    ds_cfg = cfg.train_dataloader.dataset
    assert (ds_cfg.type, ds_cfg.imbalance_ratio, ds_cfg.seed,
            ds_cfg.download) == (f'{ds.upper()}LT', rho, 0, False)
    assert ds_cfg.data_root == f'data/{ds}'
    # rho on the training set only: the balanced test split needs none, and
    # ClassCountsHook gives LongTailAccuracy the training counts.
    test_cfg = cfg.test_dataloader.dataset
    assert (test_cfg.type, test_cfg.split) == (f'{ds.upper()}LT', 'test')
    assert 'imbalance_ratio' not in test_cfg
    assert 'imbalance_ratio' not in cfg.val_dataloader.dataset
    assert cfg.test_evaluator == dict(type='LongTailAccuracy')
    with open(path) as f:
        source = f.read()
    assert source.count('imbalance_ratio') == 1
    # The batch is the stage-2 schedule's, not a number of the leaf's.
    assert not re.search(r'batch_size\s*=\s*\d', source)
    assert cfg.auto_scale_lr.base_batch_size == \
        cfg.train_dataloader.batch_size
    assert cfg.model.backbone == dict(type='CifarResNet', depth=32)
    assert cfg.model.head.num_classes == (10 if ds == 'cifar10' else 100)
    want = STAGE2[f'{method}_{sched}']
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.momentum, opt.lr,
            opt.weight_decay) == ('SGD', 0.9, want['lr'], want['weight_decay'])
    assert cfg.train_dataloader.batch_size == want['batch_size']
    sched_cfg = cfg.param_scheduler
    assert (sched_cfg.type, sched_cfg.by_epoch, sched_cfg.T_max,
            sched_cfg.eta_min) == ('CosineAnnealingLR', True, 10, 0.)
    assert cfg.train_cfg.max_epochs == 10
    assert cfg.default_hooks.checkpoint.interval == 10
    # Frozen weights stay out of DDP (FrozenBackboneHook), so no
    # find_unused_parameters.
    assert 'find_unused_parameters' not in cfg
    hooks = {h.type: h for h in cfg.custom_hooks}
    assert hooks['FrozenBackboneHook'].modules == ['backbone', 'neck']
    sampler = cfg.train_dataloader.sampler
    # Both re-initialise the classifier (the IWB paper fine-tunes).
    assert hooks['StageTwoHook'].reinit_modules == ['head']
    # Both count the training set for LongTailAccuracy (and IWB's head).
    assert 'ClassCountsHook' in hooks
    if method == 'crt':
        assert set(hooks) == {
            'FrozenBackboneHook', 'StageTwoHook', 'ClassCountsHook'
        }
        assert sampler == dict(type='ClassBalancedSampler')
        assert cfg.model.head.type == 'LinearClsHead'
    else:
        assert set(hooks) == {
            'FrozenBackboneHook', 'StageTwoHook', 'ClassCountsHook'
        }
        assert (sampler.type, sampler.shuffle) == ('DefaultSampler', True)
        head = cfg.model.head
        assert (head.type, head.iwb_lambda, head.kl_direction,
                head.class_counts) == ('IWBClsHead', 0.15, 'forward', None)
        assert head.loss == dict(type='ClassBalancedLoss', beta=0.9999)


@pytest.fixture(scope='module')
def fake_data(tmp_path_factory):
    """Fake CIFAR pickles and a CE checkpoint per data set (the CE config's
    model with non-trivial BN statistics and head)."""
    root = tmp_path_factory.mktemp('two_stage')
    out = {}
    for ds, num_classes in (('cifar10', 10), ('cifar100', 100)):
        data_root = write_fake_cifar(
            str(root / ds), num_classes, train_per_class=1, test_per_class=1)
        ce = Config.fromfile(
            osp.join(CIFAR, f'{ds}_lt', f'ce_resnet32_hp2_{ds}-lt-r100.py'))
        init_default_scope('mmpretrain')
        torch.manual_seed(0)
        model = MODELS.build(ce.model)
        model.init_weights()
        state = model.state_dict()
        g = torch.Generator().manual_seed(1)
        for k, v in state.items():
            if v.is_floating_point() and ('running' in k or 'head' in k):
                v.copy_(torch.rand(v.shape, generator=g) + 0.5)
        path = str(root / f'ce_{ds}.pth')
        torch.save(dict(state_dict=state, meta=dict()), path)
        out[ds] = (data_root, path, state)
    return out


def _train_one_iteration(path, fake_data, tmp_path, cfg_options=None):
    """Checks the config, then trains it one iteration from the fake CE
    checkpoint on the fake CIFAR pickles; ``cfg_options`` (as tools/train.py's
    ``--cfg-options`` words) are merged after the check."""
    method, sched, ds, rho = _parse(path)
    data_root, ckpt, loaded = fake_data[ds]
    cfg = Config.fromfile(path)
    check_stage_two_config(path, cfg)
    if cfg_options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        cfg.merge_from_dict(
            parser.parse_args(['--cfg-options', *cfg_options]).cfg_options)
    cfg.work_dir = str(tmp_path)
    cfg.load_from = ckpt
    cfg.log_level = 'WARNING'
    num_classes = cfg.model.head.num_classes
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.dataset.update(
            data_root=data_root, verify_md5=False,
            serialize_data=False)  # its gc.collect() costs a second
        loader.num_workers = 0
        loader.persistent_workers = False
    # One training image per class (the config's rho is checked above; a
    # tiny long-tailed subset would leave classes empty, which IWB's counts
    # refuse).
    cfg.train_dataloader.dataset.imbalance_ratio = 1
    cfg.test_dataloader.batch_size = 4
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.train_cfg.max_epochs = 1
    # One iteration, small: a cRT epoch of 8 class-balanced draws, an IWB
    # epoch of one batch holding the whole (C-image) training set.
    if method == 'crt':
        cfg.train_dataloader.batch_size = 8
        cfg.train_dataloader.sampler.num_samples = 8
    else:
        cfg.train_dataloader.batch_size = num_classes
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    end = runner.model.state_dict()
    # Backbone parameters and BN buffers (running stats, made non-trivial
    # in the checkpoint): bit-identical.
    backbone = [k for k in loaded if k.startswith('backbone.')]
    assert any('running_mean' in k for k in backbone)
    assert all(torch.equal(end[k], loaded[k]) for k in backbone)
    assert torch.isfinite(end['head.fc.weight']).all()
    if method == 'iwb':
        # Counted from the training set by ClassCountsHook.
        assert torch.equal(end['head.class_counts'],
                           torch.ones(num_classes, dtype=torch.float64))
    runner.model.eval()
    with torch.no_grad():
        data = next(iter(runner.test_dataloader))
        preds = runner.model.test_step(data)
    assert preds[0].pred_score.shape == (num_classes, )
    return end['head.fc.weight'], loaded['head.fc.weight']


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_is_stage_two_and_trains_one_iteration_from_a_ce_checkpoint(
        path, fake_data, tmp_path):
    w, w_ce = _train_one_iteration(path, fake_data, tmp_path)
    # cRT and IWB alike: re-initialised (N(0, 0.01)) and stepped once, far
    # from the CE head, which is U(0.5, 1.5).
    assert w.abs().max() < 0.2 < w_ce.abs().min()


def test_iwb_fine_tuning_variant_keeps_the_loaded_head(fake_data, tmp_path):
    """The IWB paper's stage 2 is one line away: StageTwoHook with
    reinit_modules=[] (here through the documented --cfg-options) fine-tunes
    the CE head."""
    path = osp.join(CIFAR, 'cifar10_lt', 'iwb_resnet32_hp2_cifar10-lt-r100.py')
    w, w_ce = _train_one_iteration(
        path,
        fake_data,
        tmp_path,
        cfg_options=['custom_hooks.1.reinit_modules=[]'])
    # Fine-tuned from the CE head: one small step away from it.
    assert not torch.equal(w, w_ce)
    assert (w - w_ce).abs().max() < 0.1
    assert w.abs().min() > 0.4
