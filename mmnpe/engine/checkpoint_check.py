"""Does a checkpoint fit the model? Judged after the model's own load hooks.

mmengine loads checkpoints non-strictly and only logs what did not fit, so
a wrong file trains or tests with random weights. A check made *before*
loading, by comparing the checkpoint's keys and shapes with
``model.state_dict()``, refuses checkpoints that load correctly: a loss
whose count buffer takes the saved shape when it is loaded, a ViT / Swin
whose load hooks resize the position tables for another input size. So the
load itself is recorded (:class:`LoadRecorder`: torch's documented
``load_state_dict`` pre- and post-hooks on the root module, which see the
missing and unexpected keys and the size mismatches that remain after every
submodule's hooks ran) and judged afterwards (:func:`check_load`).

The rule: accept what mmseg's / mmpretrain's own tools accept for the same
config, and refuse only what would load silently wrong, i.e. a tensor that
the run *uses as it is* but that did not come from the checkpoint
(:func:`required_tensors`):

- testing: every parameter and normalisation statistic the prediction uses
  (not those of losses, nor of an auxiliary head, which predictions never
  read);
- training from ``load_from``: the frozen ones (``requires_grad=False``
  when the checkpoint is loaded, e.g. by :class:`FrozenBackboneHook`), but
  not those of losses, nor those of a frozen auxiliary head when backbone
  and neck are frozen too (it can then change nothing); trainable ones may
  start from their initialisation, as when a fine-tune changes
  ``num_classes``;
- resuming: every parameter and normalisation statistic;
- always: at least one tensor of the model must load.

Everything else that does not fit (extra keys, a missing buffer the model
fills itself, a new head) is logged, as mmengine does.
"""
import logging
import re
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from torch.nn.modules.batchnorm import _NormBase

MODES = ('test', 'train', 'resume')

# torch.nn.Module._load_from_state_dict's message for a tensor it skipped.
_SIZE_MISMATCH = re.compile(
    r'size mismatch for (?P<key>\S+): copying a param with shape '
    r'(?P<ckpt>.+?) from checkpoint, the shape in current model is '
    r'(?P<model>.+?)\.$', re.S)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside DDP / TTA wrappers, as mmengine loads into it."""
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


class LoadRecord:
    """What one ``load_state_dict`` did to a model.

    Attributes:
        missing (list[str]): Model keys the checkpoint lacks (BN's
            ``num_batches_tracked`` left out, as mmengine does).
        unexpected (list[str]): Checkpoint keys the model lacks.
        mismatched (list[tuple[str, str, str]]): ``(key, checkpoint shape,
            model shape)`` of tensors skipped for their shape.
        errors (list[str]): Other messages of the load.
        model_keys (list[str]): The model's own keys (its state dict,
            without ``num_batches_tracked``).
    """

    def __init__(self) -> None:
        self.missing: List[str] = []
        self.unexpected: List[str] = []
        self.mismatched: List[Tuple[str, str, str]] = []
        self.errors: List[str] = []
        self.model_keys: List[str] = []

    @property
    def loaded(self) -> List[str]:
        """Model keys that received a tensor from the checkpoint."""
        skipped = set(self.missing) | {k for k, _, _ in self.mismatched}
        return [k for k in self.model_keys if k not in skipped]


LoadCallback = Callable[[LoadRecord], None]


class LoadRecorder:
    """Record the next ``load_state_dict`` of ``model`` (mmengine's or
    torch's) and pass the :class:`LoadRecord` to ``callback``.

    The pre-hook on the root module runs first and keeps the lists the load
    fills; the post-hook on the root runs last, after every submodule's own
    load hooks, so the record is what the load really did. The hooks remove
    themselves after one load.

    Args:
        model (nn.Module): The model (wrappers are looked through).
        callback (Callable[[LoadRecord], None]): Called with the record.
    """

    def __init__(self, model: nn.Module, callback: 'LoadCallback') -> None:
        self.model = unwrap_model(model)
        self.callback = callback
        self._record: Optional[LoadRecord] = None
        self._handles = [
            self.model.register_load_state_dict_pre_hook(self._pre),
            self.model.register_load_state_dict_post_hook(self._post)
        ]

    def remove(self) -> None:
        """Detach the hooks (idempotent)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _pre(self, module, state_dict, prefix, local_metadata, strict,
             missing_keys, unexpected_keys, error_msgs) -> None:
        if prefix:  # the model loaded as a part of a larger one
            return
        record = LoadRecord()
        # The very lists every submodule's load appends to.
        record.missing = missing_keys
        record.unexpected = unexpected_keys
        record.errors = error_msgs
        # BN's step counters are left out, as mmengine leaves them out of
        # its report: they load or not without changing any output.
        record.model_keys = [
            k for k in module.state_dict()
            if not k.endswith('num_batches_tracked')
        ]
        self._record = record

    def _post(self, module, incompatible_keys) -> None:
        record, self._record = self._record, None
        if record is None:
            return
        self.remove()
        out = LoadRecord()
        out.model_keys = record.model_keys
        out.missing = [
            k for k in incompatible_keys.missing_keys
            if not k.endswith('num_batches_tracked')
        ]
        out.unexpected = list(incompatible_keys.unexpected_keys)
        for message in record.errors:
            match = _SIZE_MISMATCH.match(message)
            if match:
                out.mismatched.append(
                    (match['key'], match['ckpt'], match['model']))
            else:
                out.errors.append(message)
        self.callback(out)


def _under(key: str, prefixes: Sequence[str]) -> bool:
    return any(key == p or key.startswith(p + '.') for p in prefixes)


def _loss_prefixes(model: nn.Module) -> List[str]:
    """Submodules that are losses (mmseg ``loss_decode``, mmpretrain
    ``loss_module`` ...): they hold no weight a prediction uses."""
    return [
        name for name, module in model.named_modules()
        if name and type(module).__name__.endswith('Loss')
    ]


def required_tensors(model: nn.Module, mode: str) -> Set[str]:
    """The model's keys that must come from the checkpoint.

    Args:
        model (nn.Module): The (unwrapped) model, after the run froze what
            it freezes.
        mode (str): 'test' (testing or analysing a trained model),
            'train' (``load_from`` initialises a training run) or 'resume'.

    Returns:
        set[str]: Parameter and normalisation-statistic keys.
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    params: Dict[str, nn.Parameter] = dict(model.named_parameters())
    stats: Dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if isinstance(module, _NormBase) and module.track_running_stats:
            for buf in ('running_mean', 'running_var'):
                stats[f'{name}.{buf}' if name else buf] = module
    if mode == 'resume':
        return set(params) | set(stats)
    if mode == 'train':
        frozen = {k for k, p in params.items() if not p.requires_grad}
        # A norm layer is frozen when its affine parameters are, or, without
        # any, when it is held in eval mode.
        for key, module in stats.items():
            own = list(module.parameters(recurse=False))
            held = (not any(p.requires_grad
                            for p in own) if own else not module.training)
            if held:
                frozen.add(key)
        # Losses hold nothing the run uses as it is (a count buffer is
        # filled or trained with). A frozen auxiliary head matters only
        # while its loss can push gradients into trainable features; with
        # backbone and neck frozen too (the PEM setting) it is not even run.
        unused = _loss_prefixes(model)
        features_train = any(p.requires_grad for k, p in params.items()
                             if _under(k, ('backbone', 'neck')))
        if not features_train:
            unused.append('auxiliary_head')
        return {k for k in frozen if not _under(k, unused)}
    unused = _loss_prefixes(model) + ['auxiliary_head']
    return {k for k in list(params) + list(stats) if not _under(k, unused)}


def _short(items: Sequence[str], limit: int = 5) -> str:
    items = list(items)
    shown = ', '.join(items[:limit])
    more = len(items) - limit
    return shown + (f' and {more} more' if more > 0 else '')


_WHY = {
    'test':
    'they would predict from their random initialisation; test the '
    'checkpoint of a model trained with this config (an NPE config needs a '
    'checkpoint with its PEMs: train them first, or test the stock config)',
    'train':
    'they are frozen, so they would stay at their random initialisation '
    'for the whole run; load_from must be the checkpoint these frozen '
    'modules come from',
    'resume':
    'a resumed run continues from them; resume from a checkpoint of this '
    'config',
}


def check_load(record: LoadRecord,
               model: nn.Module,
               mode: str,
               source: Optional[str] = None,
               logger: str = 'current') -> None:
    """Refuse a load that leaves tensors the run uses as they are without
    the checkpoint's values; log everything else that did not fit.

    Args:
        record (LoadRecord): What the load did.
        model (nn.Module): The model it was loaded into.
        mode (str): 'test', 'train' or 'resume' (see
            :func:`required_tensors`).
        source (str, optional): The checkpoint's name, for the messages.
        logger (str): mmengine logger name. Defaults to 'current'.

    Raises:
        ValueError: Naming the checkpoint, the tensors and why.
    """
    model = unwrap_model(model)
    name = f'checkpoint {source!r}' if source else 'the checkpoint'
    where = f'{name} -> {type(model).__name__}'
    if record.model_keys and not record.loaded:
        raise ValueError(
            f'{where}: not one of the model\'s {len(record.model_keys)} '
            f'tensors was loaded ({len(record.unexpected)} checkpoint keys '
            f'the model lacks, e.g. {_short(record.unexpected, 3)}; '
            f'{len(record.mismatched)} of another shape). It was saved from '
            'another architecture: check load_from (or the checkpoint given '
            'to tools/test.py)')
    required = required_tensors(model, mode)
    shapes = {k: (c, m) for k, c, m in record.mismatched}
    skipped = set(record.missing) | set(shapes)
    # In the model's order: backbone first, as a user reads the model.
    bad = [k for k in record.model_keys if k in skipped and k in required]
    if bad:
        details = [
            f'{k} (checkpoint {shapes[k][0]} vs model {shapes[k][1]})'
            if k in shapes else f'{k} (not in the checkpoint)' for k in bad
        ]
        raise ValueError(
            f'{where}: {len(bad)} tensors the run uses as they are did not '
            f'load: {_short(details)}; {_WHY[mode]}')
    notes = []
    if record.mismatched:
        notes.append(f'{len(record.mismatched)} tensors of another shape '
                     'keep their initialisation: ' + _short([
                         f'{k} (checkpoint {c} vs model {m})'
                         for k, c, m in record.mismatched
                     ]))
    if record.missing:
        notes.append(f'{len(record.missing)} model tensors are not in it '
                     f'and keep their initialisation: '
                     f'{_short(record.missing)}')
    if record.unexpected:
        modules = sorted({k.rsplit('.', 1)[0] for k in record.unexpected})
        notes.append(f'{len(record.unexpected)} of its tensors are not '
                     'loaded (the model has no such tensors in '
                     f'{_short(modules, 4)})')
    if record.errors:
        notes.append('; '.join(record.errors))
    if notes:
        print_log(
            f'{where}: ' + '; '.join(notes),
            logger=logger,
            level=logging.WARNING)
