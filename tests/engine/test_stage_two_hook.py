"""StageTwoHook through a real Runner on DigitsLT: the classifier is
re-initialised after the stage-1 checkpoint is loaded (not on resume), the
frozen backbone and its BN buffers stay bit-identical, and a run without a
stage-1 checkpoint stops with an error naming ``load_from``."""
import itertools
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseModule
from mmengine.registry import HOOKS
from mmengine.runner import Runner
from mmpretrain.registry import HOOKS as CLS_HOOKS
from mmseg.registry import HOOKS as SEG_HOOKS

from mmnpe.engine import StageTwoHook, reinit_module
from mmnpe.engine.hooks.stage_two_hook import META_KEY

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo')


class Probe(Hook):
    """Snapshots the model when training starts, after every other
    ``before_train`` (so after loading and re-initialising)."""
    priority = 'LOWEST'

    def before_train(self, runner):
        self.start = {
            k: v.clone()
            for k, v in runner.model.state_dict().items()
        }
        self.start_epoch = runner.epoch


_RUN_IDS = itertools.count()


def _cfg(config, work_dir, **overrides):
    cfg = Config.fromfile(osp.join(DEMO, config))
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_epochs = 1
    # No validation: these tests look at weights, not accuracy.
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    # A name of its own: mmengine keys the Runner's default scope by
    # experiment name (to the second), and a reused name would keep the
    # mmseg scope tests/engine/conftest.py sets instead of mmpretrain's.
    cfg.experiment_name = f'stage_two_{next(_RUN_IDS)}'
    cfg.merge_from_dict(overrides)
    return cfg


def _runner(cfg, *hooks):
    runner = Runner.from_cfg(cfg)
    for hook in hooks:
        runner.register_hook(hook)
    return runner


@pytest.fixture(scope='module')
def stage_one(tmp_path_factory):
    """A real stage-1 (CE) checkpoint: one epoch of the demo's CE config
    on 64 of its images."""
    work_dir = tmp_path_factory.mktemp('ce')
    cfg = _cfg('ce_resnet32_digits-lt.py', work_dir,
               **{'train_dataloader.dataset.indices': 64})
    Runner.from_cfg(cfg).train()
    path = osp.join(work_dir, 'epoch_1.pth')
    return path, torch.load(path, map_location='cpu')['state_dict']


def _crt(work_dir, load_from, **overrides):
    # 2 iterations of 32 class-balanced draws.
    overrides.setdefault('train_dataloader.sampler.num_samples', 64)
    return _cfg(
        'crt_resnet32_digits-lt.py',
        work_dir,
        load_from=load_from,
        **overrides)


@pytest.fixture(scope='module')
def crt_run(tmp_path_factory, stage_one):
    """One cRT epoch (2 iterations) from the stage-1 checkpoint."""
    work_dir = tmp_path_factory.mktemp('crt')
    probe = Probe()
    runner = _runner(_crt(work_dir, stage_one[0]), probe)
    runner.train()
    return work_dir, probe.start, runner.model.state_dict()


def _same(a, b, prefix):
    keys = [k for k in b if k.startswith(prefix)]
    assert keys
    return all(torch.equal(a[k], b[k]) for k in keys)


@pytest.mark.parametrize('registry', [HOOKS, CLS_HOOKS, SEG_HOOKS])
def test_found_from_both_scopes(registry):
    assert isinstance(registry.build(dict(type='StageTwoHook')), StageTwoHook)


def test_crt_reinitialises_the_loaded_head_and_keeps_the_backbone(
        stage_one, crt_run):
    path, loaded = stage_one
    work_dir, start, end = crt_run
    # Parameters and BN buffers (running stats, num_batches_tracked) of the
    # frozen backbone are the checkpoint's, bit for bit.
    assert any('running_mean' in k for k in loaded if k.startswith('backbone'))
    assert _same(end, loaded, 'backbone.')
    # The head at the first step is a fresh one: LinearClsHead's init_cfg
    # (N(0, 0.01), bias 0), not the CE head.
    w0, b0 = start['head.fc.weight'], start['head.fc.bias']
    assert not torch.allclose(w0, loaded['head.fc.weight'], atol=1e-2)
    assert abs(w0.std().item() - 0.01) < 0.002
    assert loaded['head.fc.weight'].std() > 0.02
    assert torch.equal(b0, torch.zeros_like(b0))
    # ... and it trained (2 steps) from there.
    assert not torch.equal(end['head.fc.weight'], w0)
    assert torch.isfinite(end['head.fc.weight']).all()
    ckpt = torch.load(osp.join(work_dir, 'epoch_1.pth'), map_location='cpu')
    assert ckpt['meta'][META_KEY] == dict(
        reinit_modules=['head'], stage_one_checkpoint=path)


def test_without_the_hook_the_loaded_head_trains_on(tmp_path, stage_one):
    """Control: the silent bug the hook prevents (the test above can
    fail)."""
    path, loaded = stage_one
    cfg = _crt(tmp_path, path, **{'train_dataloader.sampler.num_samples': 32})
    cfg.custom_hooks = [
        h for h in cfg.custom_hooks if h.type != 'StageTwoHook'
    ]
    probe = Probe()
    _runner(cfg, probe).train()
    assert torch.equal(probe.start['head.fc.weight'], loaded['head.fc.weight'])


def test_resume_and_load_from_a_stage_two_checkpoint_keep_its_head(
        tmp_path, stage_one, crt_run):
    path = stage_one[0]
    work_dir = crt_run[0]
    stage_two = osp.join(work_dir, 'epoch_1.pth')
    saved = torch.load(stage_two, map_location='cpu')['state_dict']
    # --resume (load_from=None: the latest checkpoint of the work dir).
    probe = Probe()
    cfg = _crt(work_dir, None, resume=True)
    cfg.train_cfg.max_epochs = 2
    runner = _runner(cfg, probe)
    runner.train()
    assert probe.start_epoch == 1
    # The re-trained head survives the resume (no second re-init).
    assert torch.equal(probe.start['head.fc.weight'], saved['head.fc.weight'])
    assert _same(runner.model.state_dict(), saved, 'backbone.')
    ckpt = torch.load(osp.join(work_dir, 'epoch_2.pth'), map_location='cpu')
    # Provenance survives too.
    assert ckpt['meta'][META_KEY]['stage_one_checkpoint'] == path
    # load_from a stage-2 checkpoint (e.g. to train it on): kept as well.
    probe = Probe()
    _runner(
        _crt(tmp_path, stage_two,
             **{'train_dataloader.sampler.num_samples': 32}), probe).train()
    assert torch.equal(probe.start['head.fc.weight'], saved['head.fc.weight'])


def _iwb(work_dir, load_from, reinit_modules=None):
    """One epoch of the demo's IWB config; ``reinit_modules`` overrides its
    StageTwoHook's (None: the config's own)."""
    cfg = _cfg('iwb_resnet32_digits-lt.py', work_dir, load_from=load_from)
    if reinit_modules is not None:
        [stage_two] = [h for h in cfg.custom_hooks if h.type == 'StageTwoHook']
        stage_two.reinit_modules = reinit_modules
    probe = Probe()
    runner = _runner(cfg, probe)
    runner.train()
    return runner, probe.start, runner.model.state_dict()


def _assert_training_set_counts(runner, end):
    counts = torch.bincount(
        torch.as_tensor(runner.train_dataloader.dataset.get_gt_labels()),
        minlength=10).double()
    assert torch.equal(end['head.class_counts'], counts)
    assert torch.equal(end['head.loss_module.class_counts'], counts)


def test_iwb_reinitialises_the_loaded_head_and_keeps_the_backbone(
        tmp_path, stage_one):
    """The IWB config as mmnpe ships it (re-initialised like cRT; the IWB
    paper fine-tunes): encoder frozen, classifier re-initialised after the CE
    checkpoint is loaded, counts from the training set."""
    path, loaded = stage_one
    runner, start, end = _iwb(tmp_path, path)
    # Backbone parameters and BN buffers: the checkpoint's, bit for bit.
    assert any('running_var' in k for k in loaded if k.startswith('backbone'))
    assert _same(end, loaded, 'backbone.')
    # The head at the first step is a fresh LinearClsHead (init_cfg
    # N(0, 0.01), bias 0), not the CE head.
    w0, b0 = start['head.fc.weight'], start['head.fc.bias']
    assert not torch.allclose(w0, loaded['head.fc.weight'], atol=1e-2)
    assert abs(w0.std().item() - 0.01) < 0.002
    assert loaded['head.fc.weight'].std() > 0.02
    assert torch.equal(b0, torch.zeros_like(b0))
    # ... and it trained from there.
    assert not torch.equal(end['head.fc.weight'], w0)
    assert torch.isfinite(end['head.fc.weight']).all()
    ckpt = torch.load(osp.join(tmp_path, 'epoch_1.pth'), map_location='cpu')
    assert ckpt['meta'][META_KEY] == dict(
        reinit_modules=['head'], stage_one_checkpoint=path)
    _assert_training_set_counts(runner, end)


def test_iwb_with_empty_reinit_modules_fine_tunes_the_loaded_head(
        tmp_path, stage_one):
    """The IWB paper's stage 2, one line away (StageTwoHook with
    reinit_modules=[]): the CE classifier is fine-tuned."""
    path, loaded = stage_one
    runner, start, end = _iwb(tmp_path, path, reinit_modules=[])
    assert _same(end, loaded, 'backbone.')
    # Training starts from the loaded classifier ...
    assert torch.equal(start['head.fc.weight'], loaded['head.fc.weight'])
    assert torch.equal(start['head.fc.bias'], loaded['head.fc.bias'])
    # ... and moves it.
    assert not torch.equal(end['head.fc.weight'], loaded['head.fc.weight'])
    ckpt = torch.load(osp.join(tmp_path, 'epoch_1.pth'), map_location='cpu')
    assert ckpt['meta'][META_KEY] == dict(
        reinit_modules=[], stage_one_checkpoint=path)
    _assert_training_set_counts(runner, end)


def test_iwb_without_stage_one_checkpoint_is_a_clear_error(tmp_path):
    runner = _runner(
        _cfg('iwb_resnet32_digits-lt.py', tmp_path, load_from=None))
    with pytest.raises(ValueError, match='load_from is None'):
        runner.train()


def test_resume_from_the_stage_one_checkpoint_is_refused(tmp_path, stage_one):
    path, _ = stage_one
    runner = _runner(_crt(tmp_path, path, resume=True))
    with pytest.raises(ValueError, match='resumes load_from itself'):
        runner.train()


def test_no_stage_one_checkpoint_is_a_clear_error(tmp_path):
    runner = _runner(_crt(tmp_path / 'a', None))
    with pytest.raises(ValueError, match='load_from is None'):
        runner.train()
    runner = _runner(_crt(tmp_path / 'b', str(tmp_path / 'missing.pth')))
    with pytest.raises(FileNotFoundError, match="load_from='.*missing.pth'"):
        runner.train()
    # --resume in an empty work dir loads nothing either.
    runner = _runner(_crt(tmp_path / 'c', None, resume=True))
    with pytest.raises(ValueError, match='no checkpoint was loaded'):
        runner.train()


def test_unknown_module_is_a_clear_error(tmp_path, stage_one):
    path, _ = stage_one
    cfg = _crt(tmp_path, path)
    cfg.custom_hooks[1].reinit_modules = ['haed']
    with pytest.raises(ValueError, match="reinit_modules names 'haed'"):
        _runner(cfg).train()


def test_checks_load_from_of_a_runner_like_object_from_its_config():
    import types
    hook = HOOKS.build(dict(type='StageTwoHook'))
    runner = types.SimpleNamespace(cfg=Config(dict(load_from=None)))
    with pytest.raises(ValueError, match='load_from is None'):
        hook.before_run(runner)
    runner = types.SimpleNamespace(
        cfg=Config(dict(load_from=None, resume=True)))
    hook.before_run(runner)  # resume: the work dir's latest checkpoint


@pytest.mark.parametrize('bad', ['', [''], [3], 5, None])
def test_bad_reinit_modules_refused_when_built(bad):
    with pytest.raises(ValueError, match='reinit_modules must be a list'):
        HOOKS.build(dict(type='StageTwoHook', reinit_modules=bad))


def test_reinit_module_follows_init_cfg_and_keeps_parameter_identity():

    class Head(BaseModule):

        def __init__(self):
            super().__init__(
                init_cfg=dict(type='Constant', layer='Linear', val=0.5))
            self.fc = nn.Linear(4, 3)
            self.bn = nn.BatchNorm1d(3)

    torch.manual_seed(0)
    head = Head()
    head.init_weights()
    weight = head.fc.weight
    with torch.no_grad():
        head.fc.weight.fill_(7.)
        head.bn.running_mean.fill_(3.)
    reinit_module(head)
    assert head.fc.weight is weight  # the optimizer's reference stays valid
    assert torch.equal(head.fc.weight, torch.full((3, 4), 0.5))
    assert torch.equal(head.bn.running_mean, torch.zeros(3))

    plain = nn.Linear(4, 3)  # no init_weights: PyTorch's default init
    with torch.no_grad():
        plain.weight.fill_(7.)
    reinit_module(plain)
    assert plain.weight.abs().max() <= 0.5
