"""TotalBatchSizeHook: per-process batch x processes x gradient accumulation
must equal the total, checked before anything is loaded; another total on
purpose is one key and a warning."""
import logging

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS

import mmnpe.engine.hooks.total_batch_size_hook as module


def _runner(batch_size, accumulate=None, training=True, **keys):
    optim = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    if accumulate is not None:
        optim['accumulative_counts'] = accumulate
    cfg = Config(
        dict(
            train_dataloader=dict(batch_size=batch_size),
            optim_wrapper=optim,
            **keys))
    built = OptimWrapper(torch.optim.SGD([torch.zeros(1)], lr=0.1))
    return type('Runner', (),
                dict(cfg=cfg, optim_wrapper=built if training else optim))()


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


def test_testing_has_no_total_to_keep(monkeypatch):
    monkeypatch.setattr(module, 'get_world_size', lambda: 1)
    module.TotalBatchSizeHook(16).before_run(_runner(4, training=False))


@pytest.mark.parametrize('bad', [0, -16, 1.5, True, '16', None])
def test_bad_total_batch_size(bad):
    with pytest.raises(ValueError, match='total_batch_size must be an int'):
        module.TotalBatchSizeHook(bad)
