import logging
from typing import List

from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import OptimWrapperDict
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop

from .utils import is_training

# The top-level config key that lets a run train with another total batch on
# purpose (a quick run, a small GPU):
# --cfg-options allow_other_total_batch=True
ALLOW_KEY = 'allow_other_total_batch'


def _accumulative_counts(optim_wrapper) -> int:
    """Gradient accumulation of the built optimiser wrapper(s): each update
    sums this many batches (for an ``OptimWrapperDict``, one wrapper per
    sub-model, the largest)."""
    if isinstance(optim_wrapper, OptimWrapperDict):
        return max((_accumulative_counts(w)
                    for w in optim_wrapper.optim_wrappers.values()),
                   default=1)
    return int(getattr(optim_wrapper, '_accumulative_counts', 1))


def _per_process_batch(loader) -> int:
    batch = getattr(loader, 'batch_size', None)
    if batch is None:  # a batch sampler gives the batches
        batch = getattr(
            getattr(loader, 'batch_sampler', None), 'batch_size', None)
    return int(batch)


def _scaled_schedule(cfg, factor: int) -> List[str]:
    """``--cfg-options`` that stretch an iteration-based schedule by
    ``factor``: the loop's length and validation interval, the schedulers'
    iteration milestones / begin / end, the checkpoint interval."""

    def scale(value):
        if isinstance(value, bool) or not isinstance(value, (int, list)):
            return None
        if isinstance(value, list):
            return '[' + ','.join(str(v * factor) for v in value) + ']'
        return str(value * factor)

    options = []
    train_cfg = cfg.get('train_cfg') or {}
    for key in ('max_iters', 'val_interval'):
        if scale(train_cfg.get(key)) is not None:
            options.append(f'train_cfg.{key}={scale(train_cfg[key])}')
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    for i, sched in enumerate(schedulers):
        if not isinstance(sched, dict) or sched.get('by_epoch', True):
            continue
        for key in ('milestones', 'begin', 'end', 'T_max'):
            value = scale(sched.get(key))
            if value is not None and sched.get(key) != 0:
                options.append(f'param_scheduler.{i}.{key}={value}')
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    if not checkpoint.get('by_epoch', True) and scale(
            checkpoint.get('interval')) is not None:
        options.append('default_hooks.checkpoint.interval='
                       f'{scale(checkpoint["interval"])}')
    return options


# Registered in mmengine's root registry: mmseg and mmpretrain configs find it.
@HOOKS.register_module()
class TotalBatchSizeHook(Hook):
    """Refuse to train unless per-process batch x processes x gradient
    accumulation == a total.

    mmengine's ``train_dataloader.batch_size`` is per process, so the same
    config trains with a 4x smaller total batch on 1 GPU than on 4; with
    ``optim_wrapper.accumulative_counts = k`` each update sums k batches.
    The NPE paper trains every segmentation PEM with a total batch of 16
    (Sec. 3.2; the authors' training script sets it): this hook makes that a
    checked property of the config rather than of the launch, and says what
    to pass when they disagree.

    The check runs in ``before_run``, the first hook call of
    ``Runner.train``, before any weight is initialised, loaded or
    downloaded. A run that trains with another total on purpose sets the
    top-level config key ``allow_other_total_batch = True``
    (``--cfg-options allow_other_total_batch=True``) and gets a warning that
    it no longer follows the paper's setting instead of the error.

    Args:
        total_batch_size (int): The required per-process batch x number of
            processes x accumulation, an int > 0.
    """

    priority = 'VERY_HIGH'

    def __init__(self, total_batch_size: int) -> None:
        if (isinstance(total_batch_size, bool)
                or not isinstance(total_batch_size, int)
                or total_batch_size < 1):
            raise ValueError('total_batch_size must be an int > 0, got '
                             f'{total_batch_size!r}')
        self.total_batch_size = total_batch_size

    def before_run(self, runner) -> None:
        """Check the launch against ``total_batch_size`` (training only:
        ``tools/test.py`` has no total batch to keep)."""
        if not is_training(runner):
            return
        world = get_world_size()
        # What the Runner built (its config may not hold it all).
        per_process = _per_process_batch(runner.train_dataloader)
        accumulate = _accumulative_counts(runner.optim_wrapper)
        total = per_process * world * accumulate
        how = (f'train_dataloader.batch_size={per_process} per process x '
               f'{world} process(es) x optim_wrapper.accumulative_counts='
               f'{accumulate}')
        if total == self.total_batch_size:
            print_log(
                f'TotalBatchSizeHook: total batch {total} = {how}',
                logger='current')
            if accumulate > 1 and isinstance(runner.train_loop,
                                             IterBasedTrainLoop):
                self._warn_iterations(runner, accumulate)
            return
        allow = runner.cfg.get(ALLOW_KEY, False)
        if not isinstance(allow, bool):
            raise ValueError(f'{ALLOW_KEY} must be True or False, got '
                             f'{allow!r}')
        if allow:
            print_log(
                f'TotalBatchSizeHook: training with a total batch of '
                f'{total} ({how}) instead of {self.total_batch_size}, as '
                f'{ALLOW_KEY}=True asks: this run no longer follows the '
                'setting its config reproduces (the learning rate and '
                'schedule were chosen for a total of '
                f'{self.total_batch_size})',
                logger='current',
                level=logging.WARNING)
            return
        per_update = world * accumulate
        if self.total_batch_size % per_update:
            fix = (f'choose processes x accumulation dividing '
                   f'{self.total_batch_size}')
        else:
            fix = ('pass --cfg-options train_dataloader.batch_size='
                   f'{self.total_batch_size // per_update}')
        raise ValueError(
            f'TotalBatchSizeHook: the total batch must be '
            f'{self.total_batch_size}, got {how} = {total}; {fix} (or, to '
            f'train with {total} on purpose, --cfg-options {ALLOW_KEY}=True)')

    @staticmethod
    def _warn_iterations(runner, accumulate: int) -> None:
        """mmengine's iteration-based loop counts batches, not updates:
        with accumulation k the same max_iters makes k times fewer updates
        and iteration milestones come k times sooner."""
        max_iters = runner.train_loop.max_iters
        options = _scaled_schedule(runner.cfg, accumulate)
        fix = (' --cfg-options ' + ' '.join(options)) if options else (
            ' the loop length, the schedulers\' iteration milestones and the '
            'checkpoint interval')
        print_log(
            f'TotalBatchSizeHook: with optim_wrapper.accumulative_counts='
            f'{accumulate} this iteration-based run makes max_iters / '
            f'{accumulate} = {max_iters // accumulate} updates of the total '
            f'batch, not {max_iters}, and its iteration milestones come '
            f'{accumulate} times sooner; to train the config\'s schedule, '
            f'multiply them by {accumulate}:{fix}',
            logger='current',
            level=logging.WARNING)
