import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop


def _capture() -> dict:
    """The process' generator states as tensors and plain Python values, so
    that they load with ``weights_only=True`` without widening the
    allowlist."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = dict(
        python=random.getstate(),
        numpy=dict(
            kind=str(kind),
            keys=torch.from_numpy(keys.astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached_gaussian=float(cached)),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def _restore(state: dict, numpy_and_python: bool) -> None:
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available() and len(
            state['cuda']) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state['cuda'])
    if numpy_and_python:
        python = state['python']
        random.setstate((python[0], tuple(python[1]), python[2]))
        npy = state['numpy']
        np.random.set_state(
            (npy['kind'], npy['keys'].numpy().astype(np.uint32), npy['pos'],
             npy['has_gauss'], npy['cached_gaussian']))


# Registered in mmengine's root registry: mmseg and mmpretrain configs find it.
@HOOKS.register_module()
class RandomStateHook(Hook):
    """Carry the random generators through checkpoints for an exact resume.

    mmengine's checkpoints hold the seed but not the generators' states, so
    a resumed run draws other random numbers than the uninterrupted one
    (augmentations, dropout). This hook writes the states of Python's
    ``random``, numpy's and torch's (CPU and CUDA) generators into
    ``meta['random_state']`` and puts them back when training resumes from
    that checkpoint:

    - epoch-based loops: all of them, at ``before_train``;
    - iteration-based loops: torch's only, because mmengine replays the
      data loader up to the resumed iteration, which redraws the pipeline's
      numpy/Python numbers exactly as the first run did.

    With ``randomness.deterministic=True`` a resumed run then ends
    bit-identical to an uninterrupted one (single process, data-loader
    workers not persistent). In multi-process runs only rank 0 saves, so
    nothing is stored or restored there (the other ranks' states are not
    known); resuming still works, as with plain mmengine.

    A checkpoint used as ``load_from`` for a new run is not affected: the
    states are only restored when the loop resumes at the checkpoint's own
    iteration/epoch.

    Validation leaves the generators as it found them (states saved in
    ``before_val``, put back in ``after_val``), so training draws the same
    numbers whether or not, and however often, it validates; a checkpoint
    saved just before a validation then resumes exactly too.
    """

    priority = 'VERY_LOW'
    META_KEY = 'random_state'

    def __init__(self) -> None:
        self._loaded: Optional[dict] = None
        self._before_val: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store this process' generator states (single process only)."""
        if runner.world_size > 1:
            return
        checkpoint.setdefault('meta', dict())[self.META_KEY] = _capture()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Remember the states until the loop knows whether it resumes."""
        meta = checkpoint.get('meta') or dict()
        state = meta.get(self.META_KEY)
        self._loaded = None if state is None else dict(
            state=state, iter=meta.get('iter'), epoch=meta.get('epoch'))

    def before_train(self, runner) -> None:
        """Restore the states when resuming from the checkpoint that holds
        them."""
        loaded, self._loaded = self._loaded, None
        if loaded is None or runner.world_size > 1:
            return
        resumed = (runner.iter, runner.epoch) == (loaded['iter'],
                                                  loaded['epoch'])
        if not resumed or (runner.iter == 0 and runner.epoch == 0):
            return
        epoch_based = isinstance(runner.train_loop, EpochBasedTrainLoop)
        _restore(loaded['state'], numpy_and_python=epoch_based)
        print_log(
            'RandomStateHook: restored the '
            f'{"Python, numpy and torch" if epoch_based else "torch"} '
            f'random states of iteration {runner.iter}',
            logger='current')

    def before_val(self, runner) -> None:
        """Keep the states training will continue from."""
        self._before_val = _capture()

    def after_val(self, runner) -> None:
        """Undo what validation drew (data loader seeds, random ops)."""
        if self._before_val is not None:
            _restore(self._before_val, numpy_and_python=True)
            self._before_val = None
