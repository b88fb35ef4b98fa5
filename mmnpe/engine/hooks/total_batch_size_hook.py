from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS


# Registered in mmengine's root registry: mmseg and mmpretrain configs find it.
@HOOKS.register_module()
class TotalBatchSizeHook(Hook):
    """Refuse to train unless per-process batch x processes == a total.

    mmengine's ``train_dataloader.batch_size`` is per process, so the same
    config trains with a 4x smaller total batch on 1 GPU than on 4. The NPE
    paper trains every segmentation PEM with a total batch of 16 (the
    authors' ``tools/train.py`` sets it): this hook makes that a checked
    property of the config rather than a property of the launch, and says
    what to pass when they disagree.

    Args:
        total_batch_size (int): The required per-process batch x number of
            processes, an int > 0.
    """

    priority = 'VERY_HIGH'

    def __init__(self, total_batch_size: int) -> None:
        if (isinstance(total_batch_size, bool)
                or not isinstance(total_batch_size, int)
                or total_batch_size < 1):
            raise ValueError('total_batch_size must be an int > 0, got '
                             f'{total_batch_size!r}')
        self.total_batch_size = total_batch_size

    def before_train(self, runner) -> None:
        """Check the launch against ``total_batch_size``."""
        world = get_world_size()
        per_process = runner.train_dataloader.batch_size
        total = per_process * world
        if total == self.total_batch_size:
            print_log(
                f'TotalBatchSizeHook: total batch {total} = {per_process} '
                f'per process x {world} process(es)',
                logger='current')
            return
        if self.total_batch_size % world:
            fix = (f'launch a number of processes that divides '
                   f'{self.total_batch_size}')
        else:
            fix = ('pass --cfg-options train_dataloader.batch_size='
                   f'{self.total_batch_size // world}')
        raise ValueError(
            f'TotalBatchSizeHook: the total batch must be '
            f'{self.total_batch_size}, got train_dataloader.batch_size='
            f'{per_process} per process x {world} process(es) = {total}; '
            f'{fix}')
