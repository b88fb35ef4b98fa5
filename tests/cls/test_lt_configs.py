"""The ImageNet-LT, iNaturalist 2018 and Places-LT configs: every method of
the CIFAR-LT folder for each benchmark and backbone, with the authors'
schedules, the stock mmpretrain backbones and pipelines, and the two-stage
methods' stage 2 from the CE checkpoint. Every config trains one iteration
as tools/train.py would (build_runner with the --cfg-options a user passes
to shrink the inputs to 32 x 32 and point data_root at a tiny tree in the
benchmark's real layout); the CE, post-hoc LA and NPE-LA configs are also
tested as tools/test.py tests (mmnpe.cls.cli.run_test, the function it
calls)."""
import copy
import functools
import glob
import os.path as osp

import mmpretrain
import numpy as np
import pytest
import torch
import yaml
from lt_trees import (config_counts, smoke_options, tool_test_args,
                      write_lt_tree)
from mmengine.config import Config
from mmengine.registry import MODELS

from mmnpe.cls.cli import run_test
from mmnpe.engine import ClassCountsMixin, build_runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# folder: (data set name in file names, schedule, backbones, data/ folder,
# classes, lists per split, IWB lambda, stage-1 weight decay).
BENCHMARKS = dict(
    imagenet_lt=dict(
        ds='imagenet-lt',
        sched='180e',
        epochs=180,
        backbones=('resnet50', 'resnext50-32x4d'),
        data_root='data/ImageNet_LT',
        num_classes=1000,
        lists=dict(
            train='ImageNet_LT_train.txt',
            val='ImageNet_LT_val.txt',
            test='ImageNet_LT_test.txt'),
        weight_decay=5e-4,
        iwb=dict(lr=0.005, iwb_lambda=0.05)),
    inat2018=dict(
        ds='inat2018',
        sched='200e',
        epochs=200,
        backbones=('resnet50', ),
        data_root='data/iNaturalist2018',
        num_classes=8142,
        lists=dict(
            train='iNaturalist18_train.txt',
            val='iNaturalist18_val.txt',
            test='iNaturalist18_val.txt'),
        weight_decay=1e-4,
        iwb=dict(lr=0.0001, iwb_lambda=0.01)),
    places_lt=dict(
        ds='places-lt',
        sched='90e',
        epochs=90,
        backbones=('resnet152', ),
        data_root='data/Places_LT',
        num_classes=365,
        lists=dict(
            train='Places_LT_train.txt',
            val='Places_LT_val.txt',
            test='Places_LT_test.txt'),
        weight_decay=5e-4,
        iwb=dict(lr=0.005, iwb_lambda=0.05)),
)
METHODS = ('ce', 'la-loss', 'la-posthoc', 'balanced-softmax', 'crt', 'iwb',
           'npe-la-k1', 'npe-la-k16')
BACKBONES = {
    'resnet50': dict(type='ResNet', depth=50),
    'resnext50-32x4d':
    dict(type='ResNeXt', depth=50, groups=32, width_per_group=4),
    'resnet152': dict(type='ResNet', depth=152),
}


def _path(folder, method, backbone):
    b = BENCHMARKS[folder]
    return osp.join(REPO, 'configs', folder,
                    f'{method}_{backbone}_{b["sched"]}_{b["ds"]}.py')


CONFIGS = [(folder, method, backbone) for folder, b in BENCHMARKS.items()
           for backbone in b['backbones'] for method in METHODS]


def _id(case):
    return osp.basename(_path(*case))[:-3]


@functools.lru_cache()
def load(folder, method, backbone):
    return Config.fromfile(_path(folder, method, backbone))


def test_the_grid_exists_and_nothing_else():
    for folder, b in BENCHMARKS.items():
        found = {
            osp.basename(p)
            for p in glob.glob(osp.join(REPO, 'configs', folder, '*.py'))
        }
        want = {
            osp.basename(_path(folder, m, bb))
            for bb in b['backbones']
            for m in METHODS
        }
        assert found == want, folder
    assert len(CONFIGS) == 32


def resnet152_zoo_url():
    """The ImageNet-1k ResNet-152 weights of mmpretrain's model zoo."""
    meta = osp.join(
        osp.dirname(mmpretrain.__file__), '.mim', 'configs', 'resnet',
        'metafile.yml')
    with open(meta) as f:
        models = yaml.safe_load(f)['Models']
    return next(m['Weights'] for m in models
                if m['Name'] == 'resnet152_8xb32_in1k')


def check_data(cfg, b):
    train_pipe = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert train_pipe == [
        'LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip', 'PackInputs'
    ]
    crop, flip = cfg.train_dataloader.dataset.pipeline[1:3]
    assert crop.scale == 224 and (flip.prob, flip.direction) == (0.5,
                                                                 'horizontal')
    for split in ('train', 'val', 'test'):
        ds = cfg[f'{split}_dataloader'].dataset
        assert (ds.type, ds.data_root, ds.ann_file,
                ds.num_classes) == ('LongTailListDataset', b['data_root'],
                                    b['lists'][split], b['num_classes'])
        assert set(ds) == {
            'type', 'data_root', 'ann_file', 'num_classes', 'pipeline'
        }
        if split != 'train':
            resize, centre = ds.pipeline[1:3]
            assert [t.type for t in ds.pipeline] == [
                'LoadImageFromFile', 'ResizeEdge', 'CenterCrop', 'PackInputs'
            ]
            assert (resize.scale, resize.edge,
                    centre.crop_size) == (256, 'short', 224)
            assert cfg[f'{split}_dataloader'].sampler.shuffle is False
            # Many / Medium / Few from the training set's counts.
            assert cfg[f'{split}_evaluator'] == dict(type='LongTailAccuracy')
    assert cfg.data_preprocessor.num_classes == b['num_classes']
    assert cfg.model.head.num_classes == b['num_classes']
    # 32 per GPU, 8 GPUs: the authors' total batch of 256, which the lr is
    # set for (tools/train.py --auto-scale-lr scales other totals).
    assert cfg.train_dataloader.batch_size == 32
    assert cfg.auto_scale_lr == dict(base_batch_size=256)
    assert cfg.custom_imports.imports == ['mmnpe']


def check_schedule(cfg, b, method):
    opt = cfg.optim_wrapper.optimizer
    sched = cfg.param_scheduler
    # One cosine schedule to 0 and nothing else: no warm-up.
    assert not isinstance(sched, list)
    assert (sched.type, sched.by_epoch, sched.eta_min) == ('CosineAnnealingLR',
                                                           True, 0.)
    if method in ('crt', 'iwb'):
        epochs = 10
        if method == 'crt':
            # Kang et al.: lr 0.2 at batch 512, scaled to 256.
            want = (0.1, 5e-4)
        else:
            want = (b['iwb']['lr'], b['weight_decay'])
    else:
        epochs = b['epochs']
        want = (0.1, b['weight_decay'])
    assert (opt.type, opt.momentum, opt.lr, opt.weight_decay) == ('SGD', 0.9,
                                                                  *want)
    assert (sched.T_max, sched.end) == (epochs, epochs)
    assert cfg.train_cfg == dict(
        by_epoch=True, max_epochs=epochs, val_interval=10)
    assert cfg.default_hooks.checkpoint.interval == 10
    # The last checkpoint (what stage 2 loads) is always kept.
    assert epochs % cfg.default_hooks.checkpoint.interval == 0
    assert cfg.randomness == dict(seed=0, deterministic=False)


def check_model(cfg, method, backbone, folder):
    bb = {
        k: v
        for k, v in cfg.model.backbone.items() if k in BACKBONES[backbone]
    }
    assert bb == BACKBONES[backbone]
    assert cfg.model.neck == dict(type='GlobalAveragePooling')
    init = cfg.model.backbone.get('init_cfg')
    if folder == 'places_lt' and method not in ('crt', 'iwb'):
        assert init == dict(
            type='Pretrained',
            checkpoint=resnet152_zoo_url(),
            prefix='backbone')
    else:
        # From scratch; stage 2 takes every weight from the CE checkpoint.
        assert init is None
    head = cfg.model.head
    loss = head.get('loss', {}).get('type')
    hooks = [h.type for h in cfg.custom_hooks]
    if method in ('ce', 'crt'):
        assert (head.type, loss) == ('LinearClsHead', 'CrossEntropyLoss')
    elif method == 'la-loss':
        assert (head.type, loss, head.loss.tau) == ('LinearClsHead',
                                                    'LogitAdjustLoss', 1.0)
    elif method == 'la-posthoc':
        assert (head.type, head.tau, loss) == ('LogitAdjustClsHead', 1.0,
                                               'CrossEntropyLoss')
    elif method == 'balanced-softmax':
        assert (head.type, loss) == ('LinearClsHead', 'BalancedSoftmaxLoss')
    elif method.startswith('npe-la-k'):
        assert (head.type, head.num_pems, head.sign, head.scale_factor,
                head.pem_loss_weight) == ('NPEClsHead',
                                          int(method.split('-k')[1]), -1, 1.0,
                                          1.0)
    elif method == 'iwb':
        b = BENCHMARKS[folder]
        assert (head.type, head.iwb_lambda, head.kl_direction,
                head.class_counts) == ('IWBClsHead', b['iwb']['iwb_lambda'],
                                       'forward', None)
        assert head.loss == dict(type='ClassBalancedLoss', beta=0.9999)
    if method in ('crt', 'iwb'):
        assert hooks == [
            'FrozenBackboneHook', 'StageTwoHook', 'ClassCountsHook'
        ]
        assert cfg.custom_hooks[0].modules == ['backbone', 'neck']
        # cRT re-initialises the classifier; IWB fine-tunes the CE one.
        assert cfg.custom_hooks[1].reinit_modules == (['head'] if method
                                                      == 'crt' else [])
        sampler = ('ClassBalancedSampler'
                   if method == 'crt' else 'DefaultSampler')
        assert cfg.train_dataloader.sampler.type == sampler
        ce = osp.basename(_path(folder, 'ce', backbone))[:-3]
        epochs = BENCHMARKS[folder]['epochs']
        # tools/train.py's default work dir of the CE config, last epoch.
        assert cfg.load_from == f'work_dirs/{ce}/epoch_{epochs}.pth'
    else:
        assert hooks == ['ClassCountsHook']
        assert cfg.train_dataloader.sampler.type == 'DefaultSampler'
        assert cfg.load_from is None


@pytest.mark.parametrize('case', CONFIGS, ids=_id)
def test_config_values(case):
    folder, method, backbone = case
    cfg = load(*case)
    b = BENCHMARKS[folder]
    check_data(cfg, b)
    check_schedule(cfg, b, method)
    check_model(cfg, method, backbone, folder)
    if method not in ('ce', 'crt', 'iwb'):
        # A one-method diff of the CE config: the head and nothing else.
        ce = copy.deepcopy(load(folder, 'ce', backbone)).to_dict()
        mine = copy.deepcopy(cfg).to_dict()
        ce['model'].pop('head'), mine['model'].pop('head')
        assert ce == mine


# -- running them -------------------------------------------------------------


@pytest.fixture(scope='module')
def trees(tmp_path_factory):
    """One tree per benchmark that every config of it trains on: every
    class has a training image (class 0 Many, 1 Medium, the rest Few); val
    and test hold classes 0-3 (balanced)."""
    root = tmp_path_factory.mktemp('lt_trees')
    return {
        folder: write_lt_tree(str(root), folder, config_counts(folder))
        for folder in BENCHMARKS
    }


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """Stands in for the zoo's ResNet-152 (nothing is downloaded here): a
    full-classifier checkpoint as mmpretrain saves them, whose backbone.*
    weights the Places-LT configs' Pretrained init must take."""
    torch.manual_seed(0)
    cfg = copy.deepcopy(load('places_lt', 'ce', 'resnet152').model)
    cfg.backbone.init_cfg = None
    model = MODELS.build(cfg)
    model.init_weights()
    state = {
        k: v
        for k, v in model.state_dict().items() if k.startswith('backbone.')
    }
    for k, v in state.items():
        # Trained-looking BN statistics, away from their initial values.
        if k.endswith('running_mean'):
            v.normal_(0, 0.1)
        elif k.endswith('running_var'):
            v.uniform_(0.5, 1.5)
    state['head.fc.weight'] = torch.randn(1000, 2048)
    state['head.fc.bias'] = torch.randn(1000)
    path = str(tmp_path_factory.mktemp('zoo') / 'resnet152_in1k.pth')
    torch.save(dict(state_dict=state, meta=dict()), path)
    return path, state


@pytest.fixture(autouse=True)
def _one_thread():
    # 2 cores shared: oversubscribed OpenMP threads are slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def options(tree, pretrained_path=None, **kwargs):
    opts = smoke_options(tree.root, **kwargs)
    for split in ('train', 'val', 'test'):
        # mmengine's serialisation runs a full gc.collect() per data set
        # (seconds in a large test process); nothing else changes.
        opts[f'{split}_dataloader.dataset.serialize_data'] = False
    if pretrained_path is not None:
        opts['model.backbone.init_cfg.checkpoint'] = pretrained_path
    opts['log_level'] = 'WARNING'
    return opts


def configure(case, tree, work_dir, pretrained, **kwargs):
    folder, method, backbone = case
    cfg = copy.deepcopy(load(*case))
    path = None
    if cfg.model.backbone.get('init_cfg'):
        path = pretrained[0]
    cfg.merge_from_dict(options(tree, path, **kwargs))
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    cfg.experiment_name = _id(case)
    return cfg


@pytest.fixture(scope='module')
def ce_checkpoints(trees, pretrained, tmp_path_factory):
    """The CE run of each (benchmark, backbone), one iteration, trained on
    first use: the stage-1 checkpoint of cRT / IWB and the model post-hoc
    LA tests."""
    cache = {}

    def get(folder, backbone):
        if (folder, backbone) not in cache:
            case = (folder, 'ce', backbone)
            work_dir = tmp_path_factory.mktemp(_id(case))
            cfg = configure(
                case,
                trees[folder],
                work_dir,
                pretrained,
                save_checkpoint=True,
                validate=True)
            runner = build_runner(cfg)
            runner.train()
            check_trained(runner)
            cache[folder, backbone] = (str(work_dir / 'iter_1.pth'),
                                       runner.model.state_dict())
        return cache[folder, backbone]

    return get


def check_trained(runner):
    """One iteration with a finite loss."""
    assert runner.iter == 1
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert np.isfinite(loss), loss


def _cosine(a, b):
    return torch.nn.functional.cosine_similarity(
        a.flatten(), b.flatten(), dim=0).item()


def count_modules(model):
    return [m for m in model.modules() if isinstance(m, ClassCountsMixin)]


TRAINED = [c for c in CONFIGS if c[1] != 'la-posthoc']


@pytest.mark.parametrize('case', TRAINED, ids=_id)
def test_config_trains_one_iteration(case, trees, pretrained, ce_checkpoints,
                                     tmp_path):
    folder, method, backbone = case
    tree = trees[folder]
    if method == 'ce':
        # Trained (and validated on the val list) by the fixture.
        ckpt, state = ce_checkpoints(folder, backbone)
        saved = torch.load(ckpt, map_location='cpu', weights_only=True)
        assert set(saved['state_dict']) == set(state)
        return
    cfg = configure(case, tree, tmp_path, pretrained)
    loaded = None
    if method in ('crt', 'iwb'):
        cfg.load_from, loaded = ce_checkpoints(folder, backbone)
    runner = build_runner(cfg)
    model = runner.model
    runner.train()
    check_trained(runner)
    state = model.state_dict()

    # Every count-using module has the training set's images per class.
    for module in count_modules(model):
        assert module.class_counts.tolist() == tree.counts()
    if method in ('la-loss', 'balanced-softmax', 'iwb'):
        assert count_modules(model)

    if loaded is not None:
        # Stage 2: backbone and BN statistics bit-identical to stage 1.
        frozen = [k for k in loaded if k.startswith('backbone.')]
        assert frozen and all(torch.equal(state[k], loaded[k]) for k in frozen)
        fc, before = state['head.fc.weight'], loaded['head.fc.weight']
        assert not torch.equal(fc, before)
        if method == 'crt':
            # Re-initialised after loading: unrelated to the CE classifier.
            assert abs(_cosine(fc, before)) < 0.1
        else:
            # IWB fine-tunes the CE classifier: it moved, a little.
            assert _cosine(fc, before) > 0.99

    if method.startswith('npe-la'):
        k = cfg.model.head.num_pems
        c = BENCHMARKS[folder]['num_classes']
        assert state['head.pems.weight'].shape == (k * c, 2048)
        # The NPE-LA prediction on the test split (tools/test.py's loop).
        metrics = runner.test()
        assert {'lt/top1', 'lt/many', 'lt/medium', 'lt/few'} <= set(metrics)


def _dumped_predictions(path):
    import pickle
    with open(path, 'rb') as f:
        samples = pickle.load(f)
    pred = np.array([int(s['pred_label']) for s in samples])
    target = np.array([int(s['gt_label']) for s in samples])
    return pred, target


@pytest.mark.parametrize('folder, backbone',
                         [(f, b) for f in BENCHMARKS
                          for b in BENCHMARKS[f]['backbones']])
def test_ce_and_posthoc_la_test_as_tools_test_does(folder, backbone, trees,
                                                   pretrained, ce_checkpoints,
                                                   tmp_path):
    """tools/test.py CONFIG CKPT on the test split: Many / Medium / Few from
    the training list's counts (the metric equals LongTailAccuracy.calculate
    of the dumped predictions with those counts); post-hoc LA of the same
    checkpoint with the training counts as its prior."""
    ckpt, _ = ce_checkpoints(folder, backbone)
    tree = trees[folder]
    results = {}
    for method in ('ce', 'la-posthoc'):
        case = (folder, method, backbone)
        cfg = configure(case, tree, tmp_path / method, pretrained)
        out = str(tmp_path / f'{method}.pkl')
        metrics = run_test(
            cfg, tool_test_args(_path(*case), ckpt, tmp_path / method, out))
        pred, target = _dumped_predictions(out)
        assert sorted(set(target)) == [0, 1, 2, 3]
        from mmnpe.cls import LongTailAccuracy
        want = LongTailAccuracy.calculate(pred, target, tree.counts())
        for key in ('top1', 'many', 'medium', 'few'):
            assert metrics[f'lt/{key}'] == pytest.approx(want[key])
        results[method] = pred
    assert len(results['ce']) == len(results['la-posthoc']) == len(target)


def test_places_lt_starts_from_the_imagenet_backbone(pretrained):
    """The Pretrained init of the Places-LT configs takes the checkpoint's
    backbone.* weights (the zoo URL replaced by a local file here) and
    leaves the 365-way head to its own init."""
    path, state = pretrained
    cfg = copy.deepcopy(load('places_lt', 'npe-la-k16', 'resnet152'))
    cfg.model.backbone.init_cfg.checkpoint = path
    model = MODELS.build(cfg.model)
    model.init_weights()
    got = model.state_dict()
    backbone = [k for k in state if k.startswith('backbone.')]
    assert backbone and all(torch.equal(got[k], state[k]) for k in backbone)
    assert got['head.fc.weight'].shape == (365, 2048)
    assert got['head.pems.weight'].shape == (16 * 365, 2048)


def test_training_counts_are_read_once_for_heads_and_metrics(
        trees, pretrained, tmp_path, monkeypatch):
    """LA loss, its val and its test: the training list's labels are read
    once, and the loss and LongTailAccuracy (val and test) get the same
    counts."""
    from mmnpe.cls import LongTailAccuracy, LongTailListDataset
    reads = []
    original = LongTailListDataset.get_gt_labels

    def counting(self):
        reads.append(osp.basename(self.ann_file))
        return original(self)

    monkeypatch.setattr(LongTailListDataset, 'get_gt_labels', counting)
    case = ('places_lt', 'la-loss', 'resnet152')
    tree = trees['places_lt']
    cfg = configure(case, tree, tmp_path, pretrained, validate=True)
    runner = build_runner(cfg)
    runner.train()
    metrics = runner.test()
    assert reads == ['Places_LT_train.txt']
    assert count_modules(runner.model)[0].class_counts.tolist() == (
        tree.counts())
    for evaluator in (runner.val_evaluator, runner.test_evaluator):
        metric, = evaluator.metrics
        assert isinstance(metric, LongTailAccuracy)
        assert metric.class_counts == tree.counts()
    assert {'lt/many', 'lt/medium', 'lt/few'} <= set(metrics)
