"""TotalBatchSizeHook: per-process batch x processes x gradient accumulation
must equal the total, checked before anything is loaded; another total on
purpose is one key and a warning."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS

import mmnpe.engine.hooks.total_batch_size_hook as module


def _runner(batch_size,
            accumulate=None,
            training=True,
            iterations=None,
            **keys):
    """A Runner as before_run sees it: the built data loader, optimiser
    wrapper and loop, and the config."""
    from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
    optim = OptimWrapper(
        torch.optim.SGD([torch.zeros(1)], lr=0.1),
        accumulative_counts=accumulate or 1)
    if iterations is None:
        loop = object.__new__(EpochBasedTrainLoop)
    else:
        loop = object.__new__(IterBasedTrainLoop)
        loop._max_iters = iterations
    cfg = Config(
        dict(
            train_cfg=dict(max_iters=iterations, val_interval=iterations),
            param_scheduler=[
                dict(type='MultiStepLR', by_epoch=False, milestones=[2, 4])
            ],
            default_hooks=dict(
                checkpoint=dict(by_epoch=False, interval=iterations)),
            **keys))
    return SimpleNamespace(
        cfg=cfg,
        train_dataloader=SimpleNamespace(batch_size=batch_size),
        optim_wrapper=optim if training else dict(type='OptimWrapper'),
        train_loop=loop)


@pytest.mark.parametrize('world, batch, accumulate', [(1, 16, None),
                                                      (4, 4, None), (8, 2, 1),
                                                      (1, 4, 4), (2, 2, 4)])
def test_launches_whose_total_is_16_pass(monkeypatch, world, batch,
                                         accumulate):
    monkeypatch.setattr(module, 'get_world_size', lambda: world)
    hook = HOOKS.build(dict(type='TotalBatchSizeHook', total_batch_size=16))
    hook.before_run(_runner(batch, accumulate))  # no error


def test_accumulation_counts(monkeypatch):
    monkeypatch.setattr(module, 'get_world_size', lambda: 1)
    hook = module.TotalBatchSizeHook(16)
    with pytest.raises(
            ValueError,
            match=r'total batch must be 16, got train_dataloader.batch_size='
            r'16 per process x 1 process\(es\) x optim_wrapper.'
            r'accumulative_counts=2 = 32; pass --cfg-options '
            r'train_dataloader.batch_size=8'):
        hook.before_run(_runner(16, accumulate=2))


def test_wrong_total_names_what_to_pass(monkeypatch):
    monkeypatch.setattr(module, 'get_world_size', lambda: 4)
    hook = module.TotalBatchSizeHook(16)
    with pytest.raises(
            ValueError,
            match=r'total batch must be 16, got train_dataloader.batch_size='
            r'16 per process x 4 process\(es\) x optim_wrapper.'
            r'accumulative_counts=1 = 64; pass --cfg-options '
            r'train_dataloader.batch_size=4 \(or, to train with 64 on '
            r'purpose, --cfg-options allow_other_total_batch=True\)'):
        hook.before_run(_runner(16))


def test_world_size_that_does_not_divide_the_total(monkeypatch):
    monkeypatch.setattr(module, 'get_world_size', lambda: 3)
    with pytest.raises(
            ValueError, match='choose processes x accumulation dividing 16'):
        module.TotalBatchSizeHook(16).before_run(_runner(16))


def test_another_total_on_purpose_warns(monkeypatch):
    monkeypatch.setattr(module, 'get_world_size', lambda: 1)
    logged = []
    monkeypatch.setattr(
        module,
        'print_log',
        lambda msg, logger=None, level=logging.INFO: logged.append(
            (msg, level)))
    module.TotalBatchSizeHook(16).before_run(
        _runner(4, allow_other_total_batch=True))
    (msg, level), = logged
    assert level == logging.WARNING
    assert 'training with a total batch of 4' in msg
    assert 'no longer follows the setting its config reproduces' in msg
    with pytest.raises(ValueError, match='allow_other_total_batch must be'):
        module.TotalBatchSizeHook(16).before_run(
            _runner(4, allow_other_total_batch='yes'))


def test_accumulation_in_an_iteration_based_run_names_the_scaled_schedule(
        monkeypatch):
    """mmengine's iteration-based loop counts batches: 4 x accumulation 4
    for 6 iterations is 16 per update, but only 1 update; the warning gives
    the options that keep the config's schedule."""
    monkeypatch.setattr(module, 'get_world_size', lambda: 1)
    logged = []
    monkeypatch.setattr(
        module,
        'print_log',
        lambda msg, logger=None, level=logging.INFO: logged.append(
            (msg, level)))
    module.TotalBatchSizeHook(16).before_run(
        _runner(4, accumulate=4, iterations=6))
    (info, _), (msg, level) = logged
    assert info.startswith('TotalBatchSizeHook: total batch 16 = ')
    assert level == logging.WARNING
    assert ('makes max_iters / 4 = 1 updates of the total batch, not 6' in msg)
    assert msg.endswith(
        '--cfg-options train_cfg.max_iters=24 train_cfg.val_interval=24 '
        'param_scheduler.0.milestones=[8,16] '
        'default_hooks.checkpoint.interval=24')
    # Epoch-based loops count updates per epoch: nothing to warn about.
    logged.clear()
    module.TotalBatchSizeHook(16).before_run(_runner(4, accumulate=4))
    assert len(logged) == 1 and logged[0][1] != logging.WARNING


def test_testing_has_no_total_to_keep(monkeypatch):
    monkeypatch.setattr(module, 'get_world_size', lambda: 1)
    module.TotalBatchSizeHook(16).before_run(_runner(4, training=False))


@pytest.mark.parametrize('bad', [0, -16, 1.5, True, '16', None])
def test_bad_total_batch_size(bad):
    with pytest.raises(ValueError, match='total_batch_size must be an int'):
        module.TotalBatchSizeHook(bad)
