"""What the hooks ask of the Runner they run in."""
from mmengine.optim import OptimWrapper, OptimWrapperDict


def is_training(runner) -> bool:
    """Whether ``runner`` is in ``Runner.train``: it builds the optimiser
    wrapper before its first hook call (``before_run``); ``val`` and
    ``test`` never build one."""
    return isinstance(
        getattr(runner, 'optim_wrapper', None),
        (OptimWrapper, OptimWrapperDict))
