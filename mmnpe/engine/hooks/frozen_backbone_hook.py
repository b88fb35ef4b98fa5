import inspect
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from torch.nn.parallel import DistributedDataParallel

from ..checkpoint_check import unwrap_model
from .utils import is_training

DATA_BATCH = Optional[dict]

_MB = 1024**2
# Arguments read back otherwise than by their name (see ddp_settings).
_DERIVED = ('self', 'module', 'broadcast_buffers', 'forward_sync_buffers',
            'bucket_cap_mb', 'bucket_cap_mb_list')


def _init_arguments(cls: type) -> List[str]:
    """Names of the keyword arguments of ``cls`` and its bases up to
    ``nn.Module`` (``MMDistributedDataParallel`` passes the rest on)."""
    names = []
    for base in cls.__mro__:
        if base is nn.Module:
            break
        init = base.__dict__.get('__init__')
        if init is not None:
            names += [
                n for n, p in inspect.signature(init).parameters.items()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            ]
    return list(dict.fromkeys(names))


def ddp_settings(wrapper: DistributedDataParallel) -> Dict[str, Any]:
    """The constructor arguments a DDP wrapper was built with, read back
    from the wrapper itself.

    Whatever built it (``model_wrapper_cfg``, mmengine's default, a custom
    runner), the wrapper keeps most settings as attributes named like the
    arguments of its class and of ``DistributedDataParallel``
    (``find_unused_parameters``, ``gradient_as_bucket_view``,
    ``static_graph``, ``device_ids``, ``process_group`` ... and
    ``MMDistributedDataParallel``'s ``detect_anomalous_params``). Three are
    kept otherwise: ``broadcast_buffers`` (a property over
    ``forward_sync_buffers`` in recent torch, read through the property so
    the start-up buffer sync stays as it was), and the bucket sizes, kept in
    bytes (``bucket_cap_mb`` is passed only when it was not the default, so
    the smaller first bucket of the default stays; ``bucket_cap_mb_list``
    when per-bucket sizes were given). Arguments with nothing to read back
    keep their defaults.

    Raises:
        ValueError: The wrapper holds what cannot be rebuilt from it
            (``delay_all_reduce_named_params``).
    """
    names = _init_arguments(type(wrapper))
    own = vars(wrapper)
    settings = {n: own[n] for n in names if n not in _DERIVED and n in own}
    if 'device_mesh' in settings:  # DDP takes a mesh or a group, not both
        settings.pop('process_group', None)
    if 'broadcast_buffers' in names and hasattr(wrapper, 'broadcast_buffers'):
        settings['broadcast_buffers'] = wrapper.broadcast_buffers
    per_bucket = list(getattr(wrapper, 'bucket_bytes_cap_list', []) or [])
    if per_bucket and 'bucket_cap_mb_list' in names:
        settings['bucket_cap_mb_list'] = [b / _MB for b in per_bucket]
    elif not getattr(wrapper, 'bucket_bytes_cap_default', False) and hasattr(
            wrapper, 'bucket_bytes_cap'):
        settings['bucket_cap_mb'] = wrapper.bucket_bytes_cap / _MB
    if getattr(wrapper, '_delay_all_reduce_params', None):
        raise ValueError(
            'FrozenBackboneHook: the DDP wrapper was built with '
            'delay_all_reduce_named_params, which cannot be read back to '
            'wrap the model again around its trainable parameters; freeze '
            'without it')
    return settings


def rewrap_ddp(wrapper: DistributedDataParallel) -> DistributedDataParallel:
    """A new wrapper of ``wrapper``'s class and settings around the same
    module, registering only the parameters that now require a gradient;
    communication hooks registered on the old one are registered again."""
    new = type(wrapper)(module=wrapper.module, **ddp_settings(wrapper))
    for hook, state in getattr(wrapper, '_comm_hooks', []):
        new.register_comm_hook(state, hook)
    return new


# Registered in mmengine's root registry: mmseg and mmpretrain configs find it.
@HOOKS.register_module()
class FrozenBackboneHook(Hook):
    """Freeze modules of the model for the whole of training.

    The paper's segmentation setting trains only the PEMs on top of a
    trained, frozen segmentor (`NPE paper <https://arxiv.org/abs/2602.17853>`_,
    Sec. 3.2). Freezing means ``requires_grad=False`` *and* eval mode: the
    train loop calls ``model.train()`` every iteration, which would put BN
    back on batch statistics, so eval mode is re-asserted before every
    iteration and the frozen parameters and buffers stay bit-identical.

    Freezing happens in ``before_run``, the earliest hook call. Under
    distributed training mmengine has wrapped the model in DDP by then, with
    a gradient bucket for every parameter; the hook wraps the frozen model
    again, so DDP reduces only the trainable parameters and the config needs
    no ``find_unused_parameters``.

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

    def before_run(self, runner) -> None:
        """Freeze the modules; when training under DDP, re-wrap the model.

        mmengine wraps the model in ``Runner.__init__``, before any hook
        exists, and DDP keeps a gradient bucket for every parameter that
        required a gradient at that moment. ``before_run`` is the first hook
        call (before the weights are initialised or loaded), so the model is
        frozen here and wrapped again, with the class and settings of the
        wrapper the Runner built (:func:`rewrap_ddp`): the new DDP holds only
        the trainable parameters and needs no ``find_unused_parameters``.
        """
        self._freeze(runner, training=is_training(runner))

    def _freeze(self, runner, training: bool) -> None:
        wrapper = runner.model
        # tools/test.py --tta wraps the model in a TTA model (SegTTAModel,
        # AverageClsScoreTTA), training in DDP: freeze what is inside.
        model = unwrap_model(wrapper)
        self._frozen = self._resolve(model)
        if not self._frozen:
            raise ValueError(
                'FrozenBackboneHook: none of the default modules '
                f'{self.DEFAULT_MODULES} exists in {type(model).__name__}; '
                'name the modules to freeze with `modules=`')
        newly_frozen = any(p.requires_grad for _, m in self._frozen
                           for p in m.parameters())
        for _, module in self._frozen:
            module.requires_grad_(False)
            module.eval()
        if not training:
            return
        trainable = [(n, p) for n, p in model.named_parameters()
                     if p.requires_grad]
        if not trainable:
            raise ValueError(
                'FrozenBackboneHook: nothing is left to train after freezing '
                f'{[n for n, _ in self._frozen]}; add a trainable module '
                '(e.g. model.pem_head) or freeze fewer modules')
        rewrapped = newly_frozen and isinstance(wrapper,
                                                DistributedDataParallel)
        if rewrapped:
            runner.model = rewrap_ddp(wrapper)
        frozen = sum(p.numel() for _, m in self._frozen
                     for p in m.parameters())
        owners = sorted({n.split('.')[0] for n, _ in trainable})
        print_log(
            f'FrozenBackboneHook: froze {[n for n, _ in self._frozen]} '
            f'({frozen:,} parameters, held in eval mode); trainable: '
            f'{sum(p.numel() for _, p in trainable):,} parameters in '
            f'{owners}' +
            ('; DDP re-wrapped around them' if rewrapped else ''),
            logger='current')

    def before_train(self, runner) -> None:
        """Re-assert eval mode after weight initialisation and loading."""
        if not self._frozen:  # driven without before_run (custom loops)
            self._freeze(runner, training=True)
        for _, module in self._frozen:
            module.eval()

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Undo the ``model.train()`` the loop calls every iteration."""
        for _, module in self._frozen:
            module.eval()
