import pytest
import torch
from helpers import tiny_runner_cfg
from launch_helpers import run_train

import mmnpe  # noqa: F401


def test_checkpoint_loads_with_weights_only_default(tmp_path):
    """A checkpoint holding what mmengine writes (message hub history
    buffers, numpy scalars and arrays) loads with ``weights_only=True``."""
    import numpy as np
    from mmengine.logging import HistoryBuffer, MessageHub

    hub = MessageHub.get_instance('test_safe_globals')
    hub.update_scalar('train/loss', np.float64(0.5))
    hub.update_info('arr', np.arange(3))
    ckpt = dict(
        meta=dict(message_hub=hub.state_dict(), seed=np.int64(0)),
        state_dict=dict(w=torch.ones(2)))
    path = tmp_path / 'ckpt.pth'
    torch.save(ckpt, path)
    loaded = torch.load(path, weights_only=True)
    assert isinstance(
        loaded['meta']['message_hub']['log_scalars']['train/loss'],
        HistoryBuffer)


def test_train_two_iterations_then_resume_to_four(tmp_path, synthetic_root):
    """tools/train.py trains 2 iterations, then --resume continues to 4 on
    torch >= 2.6 without weights_only=False."""
    config = tmp_path / 'cfg.py'
    cfg = tiny_runner_cfg(str(tmp_path / 'work'), synthetic_root, max_iters=2)
    cfg['custom_imports'] = dict(imports=['mmnpe'], allow_failed_imports=False)
    cfg['log_level'] = 'INFO'
    config.write_text(''.join(f'{k} = {v!r}\n' for k, v in cfg.items()))
    work = tmp_path / 'work'

    def run(*extra):
        return run_train(str(config), str(work), *extra).wait()

    run()
    assert (work / 'iter_2.pth').exists()
    log = run('--resume', '--cfg-options', 'train_cfg.max_iters=4')
    assert 'resumed epoch: 0, iter: 2' in log.lower()
    assert (work / 'iter_4.pth').exists()
    ckpt = torch.load(work / 'iter_4.pth', weights_only=True)
    assert ckpt['meta']['iter'] == 4


def test_only_history_buffer_methods_are_reachable_through_getattr(tmp_path):
    """The allowlisted ``getattr`` resolves HistoryBuffer statistics only; a
    checkpoint asking for anything else fails to load."""
    import pickle

    from mmengine.logging import HistoryBuffer

    class Evil:

        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))

    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump({'x': Evil()}, f, protocol=2)
    with pytest.raises((AttributeError, pickle.UnpicklingError),
                       match='HistoryBuffer.__init__'):
        torch.load(path, weights_only=True)
