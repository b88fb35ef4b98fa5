"""TotalBatchSizeHook: per-process batch x processes must equal the total."""
import pytest
from mmengine.registry import HOOKS

import mmnpe.engine.hooks.total_batch_size_hook as module


def _runner(batch_size):
    loader = type('Loader', (), dict(batch_size=batch_size))()
    return type('Runner', (), dict(train_dataloader=loader))()


@pytest.mark.parametrize('world, batch', [(1, 16), (4, 4), (8, 2)])
def test_launches_whose_total_is_16_pass(monkeypatch, world, batch):
    monkeypatch.setattr(module, 'get_world_size', lambda: world)
    hook = HOOKS.build(dict(type='TotalBatchSizeHook', total_batch_size=16))
    hook.before_train(_runner(batch))  # no error


def test_wrong_total_names_what_to_pass(monkeypatch):
    monkeypatch.setattr(module, 'get_world_size', lambda: 4)
    hook = module.TotalBatchSizeHook(16)
    with pytest.raises(
            ValueError,
            match=r'total batch must be 16, got train_dataloader.batch_size='
            r'16 per process x 4 process\(es\) = 64; pass --cfg-options '
            r'train_dataloader.batch_size=4'):
        hook.before_train(_runner(16))


def test_world_size_that_does_not_divide_the_total(monkeypatch):
    monkeypatch.setattr(module, 'get_world_size', lambda: 3)
    with pytest.raises(ValueError, match='processes that divides 16'):
        module.TotalBatchSizeHook(16).before_train(_runner(16))


@pytest.mark.parametrize('bad', [0, -16, 1.5, True, '16', None])
def test_bad_total_batch_size(bad):
    with pytest.raises(ValueError, match='total_batch_size must be an int'):
        module.TotalBatchSizeHook(bad)
