import logging

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


def _ddp_group(tmp_path):
    import torch.distributed as dist
    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path}/pg', rank=0, world_size=1)
    return dist


def test_works_on_a_ddp_wrapped_model(tmp_path):
    from helpers import random_seg_batch, tiny_segmentor_cfg
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import OptimWrapper
    from mmseg.registry import MODELS

    dist = _ddp_group(tmp_path)
    try:
        model = MODELS.build(tiny_segmentor_cfg())
        model.init_weights()
        # What mmengine builds for a config with find_unused_parameters=True.
        ddp = MMDistributedDataParallel(
            module=model, broadcast_buffers=False, find_unused_parameters=True)
        runner = type('FakeRunner', (), dict(model=ddp))()
        hook = FrozenBackboneHook()
        hook.before_train(runner)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        wrapper = OptimWrapper(torch.optim.SGD(ddp.parameters(), lr=0.1))
        for i in range(3):
            ddp.train()
            hook.before_train_iter(runner, i)
            assert not model.backbone.training
            log = ddp.train_step(random_seg_batch(seed=i), wrapper)
            assert set(log) == {'loss', 'pem.loss_npe'}
        after = model.state_dict()
        changed = {k for k in before if not torch.equal(before[k], after[k])}
        assert changed and all(k.startswith('pem_heads.') for k in changed)
    finally:
        dist.destroy_process_group()


def test_ddp_without_find_unused_parameters_is_a_clear_error(tmp_path):
    from helpers import tiny_segmentor_cfg
    from mmengine.model import MMDistributedDataParallel
    from mmseg.registry import MODELS

    dist = _ddp_group(tmp_path)
    try:
        ddp = MMDistributedDataParallel(
            module=MODELS.build(tiny_segmentor_cfg()))
        runner = type('FakeRunner', (), dict(model=ddp))()
        with pytest.raises(ValueError, match='find_unused_parameters = True'):
            FrozenBackboneHook().before_train(runner)
    finally:
        dist.destroy_process_group()
