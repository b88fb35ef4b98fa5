"""Every classification config has the paper's protocol, head and schedule;
one config per method and data set (the others differ from it only in rho
and the schedule, which is checked) trains one iteration on CPU with a tiny
fake CIFAR folder in the real pickle format, then predicts."""
import copy
import glob
import os.path as osp
import re
import types

import pytest
import torch
from helpers import write_fake_cifar
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DATASETS, HOOKS, MODELS, init_default_scope

from mmnpe.engine import ClassCountsMixin

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'cifar_lt', '*', '*.py')))
# The two-stage methods (cRT, IWB) have tests/cls/test_two_stage_configs.py.
CONFIGS = [
    c for c in CONFIGS
    if '_base_' not in c and not osp.basename(c).startswith(('crt_', 'iwb_'))
]

FAKE_PER_CLASS = {10: 20, 100: 4}


@pytest.fixture(scope='module')
def fake_roots(tmp_path_factory):
    root = tmp_path_factory.mktemp('cifar')
    return {
        10:
        write_fake_cifar(
            str(root / 'c10'), 10, train_per_class=FAKE_PER_CLASS[10]),
        100:
        write_fake_cifar(
            str(root / 'c100'),
            100,
            train_per_class=FAKE_PER_CLASS[100],
            test_per_class=1),
    }


# Every method's configs: {method: schedules}, each for both data sets and
# rho in {200, 100, 50}. One entry per method, so that adding a method is a
# one-line change here.
GRID = {
    'ce': ('hp1', 'hp2'),
    'npe-la-k1': ('hp1', 'hp2'),
    'npe-la-k16': ('hp1', 'hp2'),
    **{
        f'pem-k{k}-train-only': ('hp1', 'hp2')
        for k in (0, 1, 4, 8, 16)
    },
    'la-loss': ('hp1', 'hp2'),
    'la-posthoc': ('hp2', ),
    'balanced-softmax': ('hp2', ),
}

# The methods whose head uses the training counts (ClassCountsHook fills
# them; every config has the hook for LongTailAccuracy's groups).
COUNTED = ('la-loss', 'la-posthoc', 'balanced-softmax')


def _method(name):
    return name.split('_resnet32_')[0]


@pytest.mark.parametrize('method', sorted(GRID))
def test_the_full_grid_exists(method):
    names = {osp.basename(c) for c in CONFIGS}
    for ds in ('cifar10', 'cifar100'):
        for sched in GRID[method]:
            for rho in (200, 100, 50):
                assert (f'{method}_resnet32_{sched}_{ds}-lt-r{rho}.py'
                        in names)


def test_no_config_outside_the_grid():
    names = sorted(osp.basename(c) for c in CONFIGS)
    assert all(_method(n) in GRID
               for n in names), [n for n in names if _method(n) not in GRID]
    assert len(names) == sum(2 * 3 * len(s) for s in GRID.values())


# The NPE paper's Table 1, each schedule for both data sets (the weight
# decays from the authors' public configs; no warm-up, as their code).
PAPER_SCHEDULES = dict(
    hp1=dict(
        lr=0.1,
        batch_size=128,
        weight_decay=2e-4,
        max_epochs=200,
        milestones=[160, 180]),
    hp2=dict(
        lr=0.05,
        batch_size=64,
        weight_decay=1e-3,
        max_epochs=120,
        milestones=[100, 110]))

SCHEDULES = osp.join(REPO, 'configs', 'cifar_lt', '_base_', 'schedules')


def check_paper_schedule(cfg, schedule):
    want = PAPER_SCHEDULES[schedule]
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.momentum) == ('SGD', 0.9)
    assert (opt.lr, opt.weight_decay) == (want['lr'], want['weight_decay'])
    # The batch is the schedule file's (auto_scale_lr.base_batch_size), one
    # process.
    own = Config.fromfile(osp.join(SCHEDULES, f'{schedule}.py'))
    assert own.auto_scale_lr.base_batch_size == want['batch_size']
    assert cfg.train_dataloader.batch_size == want['batch_size']
    assert cfg.train_cfg.max_epochs == want['max_epochs']
    # One step scheduler and nothing else: no warm-up.
    sched = cfg.param_scheduler
    sched = sched[0] if isinstance(sched, list) and len(sched) == 1 else sched
    assert not isinstance(sched, list), cfg.param_scheduler
    assert (sched.type, sched.by_epoch, sched.gamma) == ('MultiStepLR', True,
                                                         0.1)
    assert sched.milestones == want['milestones']
    # The last checkpoint is saved and evaluated.
    assert cfg.default_hooks.checkpoint.interval == want['max_epochs']


def check_head(method, head):
    """What each method's head must be."""
    loss = head.get('loss', {}).get('type', 'CrossEntropyLoss')
    if method == 'ce':
        assert (head.type, loss) == ('LinearClsHead', 'CrossEntropyLoss')
    elif method.startswith(('npe-la-k', 'pem-k')):
        k = int(method.split('-k')[1].split('-')[0])
        assert head.type == 'NPEClsHead' and head.num_pems == k
        assert head.scale_factor == (0.0 if 'train-only' in method else 1.0)
    elif method == 'la-loss':
        assert (head.type, loss, head.loss.tau) == ('LinearClsHead',
                                                    'LogitAdjustLoss', 1.0)
    elif method == 'la-posthoc':
        assert (head.type, head.tau, loss) == ('LogitAdjustClsHead', 1.0,
                                               'CrossEntropyLoss')
    elif method == 'balanced-softmax':
        assert (head.type, loss) == ('LinearClsHead', 'BalancedSoftmaxLoss')
    else:
        raise AssertionError(f'no head check for method {method!r}')


def run_custom_hooks(cfg, model, dataset):
    """``before_run`` / ``before_train`` of the config's custom hooks, with
    the built model and data set (what the Runner would call)."""
    runner = types.SimpleNamespace(
        model=model,
        cfg=cfg,
        train_dataloader=types.SimpleNamespace(dataset=dataset))
    hooks = [HOOKS.build(h) for h in cfg.get('custom_hooks', [])]
    for hook in hooks:
        hook.before_run(runner)
    for hook in hooks:
        hook.before_train(runner)
    return hooks


def _id(path):
    return osp.relpath(path, osp.join(REPO, 'configs'))


def check_rho_once_and_batch_from_schedule(path, cfg, rho):
    """rho is set on the training set only (the balanced test split needs
    none; ClassCountsHook gives LongTailAccuracy the training counts), and
    the leaf takes its batch from its schedule instead of a number of its
    own."""
    assert cfg.train_dataloader.dataset.imbalance_ratio == rho
    for split in ('val', 'test'):
        ds = cfg[f'{split}_dataloader'].dataset
        assert ds.split == 'test' and 'imbalance_ratio' not in ds
        assert ds.get('class_counts') is None
        assert cfg[f'{split}_evaluator'] == dict(type='LongTailAccuracy')
    assert 'ClassCountsHook' in [h.type for h in cfg.custom_hooks]
    assert cfg.train_dataloader.batch_size == \
        cfg.auto_scale_lr.base_batch_size
    with open(path) as f:
        source = f.read()
    assert source.count('imbalance_ratio') <= 1
    assert 'val_dataloader' not in source and 'test_dataloader' not in source
    assert not re.search(r'batch_size\s*=\s*\d', source), path


def _representative(path):
    """The config that trains for ``path``'s method and data set: HP-2,
    rho = 100 (every method has it)."""
    name = osp.basename(path)
    ds = name.rsplit('_', 1)[1].split('-lt-')[0]
    return osp.join(
        osp.dirname(path), f'{_method(name)}_resnet32_hp2_{ds}-lt-r100.py')


REPRESENTATIVES = sorted({_representative(c) for c in CONFIGS})


@pytest.mark.parametrize('path', CONFIGS, ids=_id)
def test_cls_config_values(path):
    """Every config: data protocol, head, the paper's schedule; and it
    differs from its method's representative (which trains below) only in
    rho and the schedule."""
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    num_classes = 100 if 'cifar100' in name else 10
    rho = float(name.rsplit('-r', 1)[1][:-3])
    ds_cfg = cfg.train_dataloader.dataset
    assert ds_cfg.imbalance_ratio == rho and ds_cfg.seed == 0
    assert ds_cfg.download is False
    check_rho_once_and_batch_from_schedule(path, cfg, rho)
    assert [t['type'] for t in ds_cfg.pipeline
            ] == ['RandomCrop', 'RandomFlip', 'PackInputs']
    head = cfg.model.head
    assert head.num_classes == num_classes
    check_head(_method(name), head)
    check_paper_schedule(cfg, 'hp1' if '_hp1_' in name else 'hp2')

    rep = Config.fromfile(_representative(path))
    assert cfg.model == rep.model
    assert cfg.get('custom_hooks') == rep.get('custom_hooks')
    rep_ds = copy.deepcopy(rep.train_dataloader.dataset)
    rep_ds.imbalance_ratio = rho
    assert ds_cfg == rep_ds


@pytest.mark.parametrize('path', REPRESENTATIVES, ids=_id)
def test_cls_method_trains_one_iteration_and_predicts(path, fake_roots):
    cfg = Config.fromfile(path)
    init_default_scope(cfg.default_scope)
    num_classes = 100 if 'cifar100' in osp.basename(path) else 10
    head = cfg.model.head
    # The fake set (20 / 4 images per class) is too small for rho up to 200:
    # a class would be left empty, which CIFAR10LT/CIFAR100LT refuse. The
    # config's rho is checked above; build with one the fake set can hold.
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg.update(
        data_root=fake_roots[num_classes],
        verify_md5=False,
        imbalance_ratio=10 if num_classes == 10 else 2)
    dataset = DATASETS.build(ds_cfg)
    batch = pseudo_collate([dataset[i] for i in range(4)])
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    hooks = run_custom_hooks(cfg, model, dataset)
    assert 'ClassCountsHook' in [type(h).__name__ for h in hooks]
    counted = [m for m in model.modules() if isinstance(m, ClassCountsMixin)]
    assert bool(counted) == (_method(osp.basename(path)) in COUNTED)
    for m in counted:  # images per class of the training set
        assert m.class_counts.tolist(
        ) == dataset.metainfo['train_class_counts']
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    log = model.train_step(batch, optim)
    assert torch.isfinite(log['loss'])
    if head.type == 'NPEClsHead' and head.num_pems:
        assert 'loss_npe' in log
    model.eval()
    with torch.no_grad():
        preds = model.test_step(batch)
    assert len(preds) == 4 and preds[0].pred_score.shape == (num_classes, )


DEMO = sorted(glob.glob(osp.join(REPO, 'configs', 'demo', '*digits*.py')))
# The two-stage demo configs (need a CE checkpoint) run through a real
# Runner in tests/engine/test_stage_two_hook.py.
DEMO = [d for d in DEMO if not osp.basename(d).startswith(('crt_', 'iwb_'))]


@pytest.mark.parametrize('path', DEMO, ids=osp.basename)
def test_digits_demo_config_trains_one_iteration(path):
    cfg = Config.fromfile(path)
    init_default_scope(cfg.default_scope)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([dataset[i] for i in range(8)])
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    run_custom_hooks(cfg, model, dataset)
    log = model.train_step(batch, build_optim_wrapper(model,
                                                      cfg.optim_wrapper))
    assert torch.isfinite(log['loss'])
    assert ('loss_npe' in log) == ('npe' in osp.basename(path))
    assert batch['inputs'][0].shape == (3, 8, 8)
    model.eval()
    with torch.no_grad():
        preds = model.test_step(batch)
    assert all(int(p.pred_label.reshape(-1)[0]) in range(10) for p in preds)
