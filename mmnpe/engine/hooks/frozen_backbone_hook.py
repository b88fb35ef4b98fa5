from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch.nn.parallel import DistributedDataParallel

DATA_BATCH = Optional[dict]


# Registered in mmengine's root registry: mmseg and mmpretrain configs find it.
@HOOKS.register_module()
class FrozenBackboneHook(Hook):
    """Freeze modules of the model for the whole of training.

    The paper's segmentation setting trains only the PEMs on top of a
    trained, frozen segmentor (`NPE paper <https://arxiv.org/abs/2408.10176>`_,
    Sec. 4.2). Freezing means ``requires_grad=False`` *and* eval mode: the
    train loop calls ``model.train()`` every iteration, which would put BN
    back on batch statistics, so eval mode is re-asserted before every
    iteration and the frozen parameters and buffers stay bit-identical.

    Under distributed training the model is wrapped before the hook runs,
    so the config needs ``find_unused_parameters = True`` (mmengine passes
    it to DDP); the hook raises a clear error otherwise.

    Args:
        modules (Sequence[str], optional): Names (dotted paths allowed) of
            the modules to freeze; each must exist. None freezes those of
            ``('backbone', 'neck', 'decode_head', 'auxiliary_head')`` the
            model has. Defaults to None.
    """

    priority = 'VERY_HIGH'
    DEFAULT_MODULES = ('backbone', 'neck', 'decode_head', 'auxiliary_head')

    def __init__(self, modules: Optional[Sequence[str]] = None) -> None:
        if modules is not None:
            if isinstance(modules, str):
                modules = [modules]
            if (not isinstance(modules, (list, tuple)) or len(modules) == 0
                    or not all(isinstance(m, str) and m for m in modules)):
                raise ValueError('modules must be None or a non-empty list '
                                 f'of module names, got {modules!r}')
        self.modules = None if modules is None else tuple(modules)
        self._frozen: List[Tuple[str, nn.Module]] = []

    def _resolve(self, model: nn.Module) -> List[Tuple[str, nn.Module]]:
        if self.modules is None:
            return [(name, getattr(model, name))
                    for name in self.DEFAULT_MODULES
                    if isinstance(getattr(model, name, None), nn.Module)]
        resolved = []
        for name in self.modules:
            try:
                resolved.append((name, model.get_submodule(name)))
            except AttributeError:
                children = [n for n, _ in model.named_children()]
                raise ValueError(
                    f'FrozenBackboneHook: modules names {name!r}, which '
                    f'{type(model).__name__} does not have; its modules '
                    f'are {children}') from None
        return resolved

    def before_train(self, runner) -> None:
        """Freeze the modules and log what is frozen and what trains."""
        wrapper = runner.model
        # DDP wraps the model before any hook runs and then waits for a
        # gradient of every parameter that required one at wrap time.
        if isinstance(wrapper, DistributedDataParallel) and not getattr(
                wrapper, 'find_unused_parameters', False):
            raise ValueError(
                'FrozenBackboneHook: the model is wrapped in '
                'DistributedDataParallel with find_unused_parameters=False, '
                'so the frozen parameters would stall gradient reduction; '
                'set `find_unused_parameters = True` in the config')
        model = wrapper.module if is_model_wrapper(wrapper) else wrapper
        self._frozen = self._resolve(model)
        if not self._frozen:
            raise ValueError(
                'FrozenBackboneHook: none of the default modules '
                f'{self.DEFAULT_MODULES} exists in {type(model).__name__}; '
                'name the modules to freeze with `modules=`')
        for _, module in self._frozen:
            module.requires_grad_(False)
            module.eval()
        frozen = sum(p.numel() for _, m in self._frozen
                     for p in m.parameters())
        trainable = [(n, p) for n, p in model.named_parameters()
                     if p.requires_grad]
        if not trainable:
            raise ValueError(
                'FrozenBackboneHook: nothing is left to train after freezing '
                f'{[n for n, _ in self._frozen]}; add a trainable module '
                '(e.g. model.pem_head) or freeze fewer modules')
        owners = sorted({n.split('.')[0] for n, _ in trainable})
        print_log(
            f'FrozenBackboneHook: froze {[n for n, _ in self._frozen]} '
            f'({frozen:,} parameters, held in eval mode); trainable: '
            f'{sum(p.numel() for _, p in trainable):,} parameters in '
            f'{owners}',
            logger='current')

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Undo the ``model.train()`` the loop calls every iteration."""
        for _, module in self._frozen:
            module.eval()
