import gc
import logging
import weakref

import pytest
import torch
from helpers import tiny_runner_cfg
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import Runner
from mmpretrain.registry import HOOKS as CLS_HOOKS
from mmseg.registry import HOOKS as SEG_HOOKS

from mmnpe.engine import FrozenBackboneHook

FROZEN = ('backbone', 'decode_head', 'auxiliary_head')


class ModeProbe(Hook):
    """Snapshots the weights once training starts (after init_weights) and
    records, inside every train step, whether frozen modules train."""
    priority = 'LOWEST'

    def __init__(self):
        self.modes = []
        self.before = None

    def before_train(self, runner):
        model = runner.model
        self.before = {k: v.clone() for k, v in model.state_dict().items()}

        def record(module, args):
            if model.training:
                self.modes.append(
                    {n: getattr(model, n).training
                     for n in FROZEN})

        model.backbone.register_forward_pre_hook(record)


def make_runner(tmp_path, synthetic_root, hooks, max_iters=3):
    cfg = tiny_runner_cfg(
        str(tmp_path / 'work'), synthetic_root, max_iters=max_iters)
    cfg['custom_hooks'] = [h for h in hooks if isinstance(h, dict)]
    runner = Runner.from_cfg(Config(cfg))
    for hook in hooks:
        if not isinstance(hook, dict):
            runner.register_hook(hook)
    return runner


@pytest.mark.parametrize('registry', [SEG_HOOKS, CLS_HOOKS, HOOKS])
def test_found_from_both_scopes(registry):
    assert isinstance(
        registry.build(dict(type='FrozenBackboneHook')), FrozenBackboneHook)


def test_frozen_parts_bit_identical_in_eval_mode_every_iteration(
        tmp_path, synthetic_root):
    probe = ModeProbe()
    runner = make_runner(tmp_path, synthetic_root,
                         [dict(type='FrozenBackboneHook'), probe])
    model = runner.model
    runner.train()
    before, after = probe.before, model.state_dict()
    assert len(probe.modes) == 3
    assert all(not any(m.values()) for m in probe.modes), probe.modes
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # Parameters *and* BN buffers (running stats, num_batches_tracked) of
    # the frozen modules are untouched; only the PEM moved.
    assert changed and all(k.startswith('pem_heads.') for k in changed)
    assert all(not p.requires_grad for n in FROZEN
               for p in getattr(model, n).parameters())


def test_without_hook_bn_statistics_move(tmp_path, synthetic_root):
    """Control for the test above: the same run without the hook changes the
    backbone, so that test can fail."""
    probe = ModeProbe()
    runner = make_runner(tmp_path, synthetic_root, [probe])
    runner.train()
    after = runner.model.state_dict()
    changed = {k for k in after if not torch.equal(probe.before[k], after[k])}
    assert any(
        k.startswith('backbone.') and 'running_mean' in k for k in changed)
    assert all(all(m.values()) for m in probe.modes)


def test_logs_frozen_and_trainable_counts(tmp_path, synthetic_root):
    runner = make_runner(
        tmp_path,
        synthetic_root, [dict(type='FrozenBackboneHook')],
        max_iters=1)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    runner.logger.addHandler(handler)
    runner.logger.setLevel(logging.INFO)
    runner.train()
    text = [
        r.getMessage() for r in records
        if 'FrozenBackboneHook' in r.getMessage()
    ]
    pem = sum(p.numel() for p in runner.model.pem_heads.parameters())
    assert text and f'trainable: {pem:,} parameters' in text[0]
    assert "['pem_heads']" in text[0]


def test_unknown_module_is_a_clear_error(tmp_path, synthetic_root):
    runner = make_runner(
        tmp_path, synthetic_root,
        [dict(type='FrozenBackboneHook', modules=['backbone', 'nek'])])
    with pytest.raises(ValueError, match="modules names 'nek'"):
        runner.train()


def test_nothing_left_to_train_is_a_clear_error(tmp_path, synthetic_root):
    runner = make_runner(tmp_path, synthetic_root, [
        dict(
            type='FrozenBackboneHook',
            modules=['backbone', 'decode_head', 'auxiliary_head', 'pem_heads'])
    ])
    with pytest.raises(ValueError, match='nothing is left to train'):
        runner.train()


@pytest.mark.parametrize('modules', [[], '', [''], [3], 5])
def test_bad_modules_argument_refused_when_built(modules):
    with pytest.raises(
            ValueError, match='modules must be None or a '
            'non-empty list'):
        HOOKS.build(dict(type='FrozenBackboneHook', modules=modules))


def test_ddp_holds_only_trainable_parameters(tmp_path, synthetic_root,
                                             monkeypatch):
    """A real Runner under ``launcher='pytorch'`` (one gloo rank): mmengine
    wraps the whole model in DDP before any hook; the hook freezes in
    before_run and re-wraps, so DDP's reducer holds the PEM only and trains
    without find_unused_parameters (DDP raises at the second iteration
    when a registered parameter gets no gradient)."""
    import torch.distributed as dist
    from launch_helpers import free_port
    from mmengine.model import MMDistributedDataParallel

    from mmnpe.engine import build_runner
    for key, value in dict(
            RANK=0,
            WORLD_SIZE=1,
            LOCAL_RANK=0,
            MASTER_ADDR='127.0.0.1',
            MASTER_PORT=free_port()).items():
        monkeypatch.setenv(key, str(value))
    cfg = tiny_runner_cfg(str(tmp_path / 'work'), synthetic_root, max_iters=3)
    cfg['train_dataloader']['sampler'] = dict(
        type='InfiniteSampler', shuffle=True)
    cfg.update(
        launcher='pytorch',
        custom_hooks=[dict(type='FrozenBackboneHook')],
        env_cfg=dict(dist_cfg=dict(backend='nccl')))
    try:
        runner = build_runner(Config(cfg))
        first = runner.model
        assert isinstance(first, MMDistributedDataParallel)
        model = first.module
        everything = sum(1 for _ in model.parameters())
        assert first._get_ddp_logging_data(
        )['num_parameter_tensors'] == everything
        first = weakref.ref(first)
        snapshot = Hook()
        snapshot.priority = 'LOWEST'
        snapshot.before_train = lambda r: setattr(snapshot, 'state', {
            k: v.clone()
            for k, v in model.state_dict().items()
        })
        runner.register_hook(snapshot)
        runner.train()
        before = snapshot.state
        ddp = runner.model
        assert ddp.module is model
        # The first DDP (and its buckets for the whole model) is released.
        gc.collect()
        assert first() is None
        assert not ddp.find_unused_parameters
        pem = [p for p in model.pem_heads.parameters()]
        data = ddp._get_ddp_logging_data()
        assert data['num_parameter_tensors'] == len(pem) < everything
        assert data['total_parameter_size_bytes'] == 4 * sum(p.numel()
                                                             for p in pem)
        after = model.state_dict()
        changed = {k for k in before if not torch.equal(before[k], after[k])}
        assert changed and all(k.startswith('pem_heads.') for k in changed)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# What a DDP wrapper does with its constructor arguments, compared between
# the wrapper the hook builds and one built directly from the arguments.
DDP_ATTRIBUTES = ('broadcast_buffers', 'find_unused_parameters',
                  'gradient_as_bucket_view', 'bucket_bytes_cap',
                  'bucket_bytes_cap_default', 'bucket_bytes_cap_list',
                  'static_graph', 'device_ids', 'detect_anomalous_params')


@pytest.mark.parametrize(
    'wrapper_cfg',
    [
        None,  # what the tools give a CPU run (mmengine's defaults)
        dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=True,
            find_unused_parameters=True,
            gradient_as_bucket_view=True,
            bucket_cap_mb=2,
            detect_anomalous_params=True)
    ],
    ids=['default', 'custom'])
def test_rewrapped_ddp_keeps_the_settings_the_runner_used(
        tmp_path, synthetic_root, monkeypatch, wrapper_cfg):
    """The DDP the hook builds around the trainable parameters behaves as one
    built directly with the Runner's wrapper arguments, also when the
    Runner's config does not hold them (a runner given its wrapper
    otherwise), and carries over registered communication hooks."""
    import copy

    import torch.distributed as dist
    from launch_helpers import free_port
    from mmengine.model import MMDistributedDataParallel
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    from mmnpe.engine import build_runner
    for key, value in dict(
            RANK=0,
            WORLD_SIZE=1,
            LOCAL_RANK=0,
            MASTER_ADDR='127.0.0.1',
            MASTER_PORT=free_port()).items():
        monkeypatch.setenv(key, str(value))
    cfg = tiny_runner_cfg(str(tmp_path / 'work'), synthetic_root, max_iters=2)
    cfg['train_dataloader']['sampler'] = dict(
        type='InfiniteSampler', shuffle=True)
    cfg.update(
        launcher='pytorch', custom_hooks=[dict(type='FrozenBackboneHook')])
    if wrapper_cfg is not None:
        cfg['model_wrapper_cfg'] = wrapper_cfg
    try:
        runner = build_runner(Config(cfg))
        first = runner.model
        assert isinstance(first, MMDistributedDataParallel)
        first.register_comm_hook(None, default_hooks.allreduce_hook)
        # The arguments the Runner built its wrapper with.
        given = dict(runner.cfg.model_wrapper_cfg)
        given.pop('type')
        # ... are not in the Runner's config any more.
        runner.cfg.pop('model_wrapper_cfg')
        assert 'model_wrapper_cfg' not in runner.cfg
        runner.train()
        ddp = runner.model
        assert ddp is not first and type(ddp) is type(first)
        frozen = copy.deepcopy(ddp.module)
        reference = MMDistributedDataParallel(module=frozen, **given)
        for name in DDP_ATTRIBUTES:
            assert getattr(ddp, name) == getattr(reference, name), name
        assert [h
                for h, _ in ddp._comm_hooks] == [default_hooks.allreduce_hook]
        pem = list(ddp.module.pem_heads.parameters())
        assert ddp._get_ddp_logging_data()['num_parameter_tensors'] == len(pem)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
