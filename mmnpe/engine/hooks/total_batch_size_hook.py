import logging

from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from .utils import is_training

# The top-level config key that lets a run train with another total batch on
# purpose (a quick run, a small GPU):
# --cfg-options allow_other_total_batch=True
ALLOW_KEY = 'allow_other_total_batch'


def _accumulative_counts(cfg) -> int:
    """Gradient accumulation of the config's optimiser wrapper(s): mmengine's
    ``optim_wrapper.accumulative_counts`` (1 when unset); for an
    ``OptimWrapperDict`` config (one wrapper per sub-model) the largest."""
    wrapper = cfg.get('optim_wrapper') or {}
    if 'accumulative_counts' in wrapper or 'optimizer' in wrapper:
        return int(wrapper.get('accumulative_counts', 1))
    counts = [
        int(w.get('accumulative_counts', 1)) for w in wrapper.values()
        if isinstance(w, dict)
    ]
    return max(counts, default=1)


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
        per_process = runner.cfg.train_dataloader.batch_size
        accumulate = _accumulative_counts(runner.cfg)
        total = per_process * world * accumulate
        how = (f'train_dataloader.batch_size={per_process} per process x '
               f'{world} process(es) x optim_wrapper.accumulative_counts='
               f'{accumulate}')
        if total == self.total_batch_size:
            print_log(
                f'TotalBatchSizeHook: total batch {total} = {how}',
                logger='current')
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
