import re
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.structures import BaseDataElement

DATA_BATCH = Optional[dict]
# Heads whose ``num_classes`` must match the data set's classes.
_HEADS = ('decode_head', 'auxiliary_head', 'pem_heads', 'head')


def _unwrap(model: nn.Module) -> nn.Module:
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def _short(items: Sequence[str], limit: int = 5) -> str:
    shown = ', '.join(items[:limit])
    more = len(items) - limit
    return shown + (f' and {more} more' if more > 0 else '')


def _describe(sample, index: int) -> str:
    meta = sample.metainfo if isinstance(sample, BaseDataElement) else {}
    for key in ('img_path', 'sample_idx'):
        if meta.get(key) is not None:
            return f'sample {index} of the batch ({key}={meta[key]!r})'
    return f'sample {index} of the batch'


def model_num_classes(model: nn.Module) -> List[Tuple[str, int]]:
    """``(name, num_classes)`` of the model's classifying heads (decode,
    auxiliary, PEM heads for mmseg; ``head`` for mmpretrain)."""
    found = []
    for name in _HEADS:
        module = getattr(model, name, None)
        modules = list(enumerate(module)) if isinstance(
            module, (nn.ModuleList, list)) else [(None, module)]
        for k, head in modules:
            num = getattr(head, 'num_classes', None)
            if isinstance(num, int) and not isinstance(num, bool):
                found.append((name if k is None else f'{name}[{k}]', num))
    return found


# Registered in mmengine's root registry: mmseg and mmpretrain configs find it.
@HOOKS.register_module()
class InputCheckHook(Hook):
    """Refuse bad inputs with an error naming them, before they do harm.

    Each check is cheap next to an iteration and names the culprit:

    - ``check_classes`` (``before_train``/``before_val``/``before_test``):
      every head's ``num_classes`` (decode, auxiliary and PEM heads; a
      classifier's ``head``) equals the number of ``classes`` in the data
      set's metainfo. mmseg trains silently with more outputs than classes,
      or fails deep in the loss with fewer.
    - ``check_checkpoint`` (``after_load_checkpoint``, before the weights
      are copied): a checkpoint from another architecture is refused when
      a tensor has another shape, when it holds keys the model lacks under
      a module the model has, or when it shares no key with the model.
      mmengine loads with ``strict=False`` and only logs a warning, so a
      wrong ``load_from`` otherwise trains from random weights. Keys the
      checkpoint lacks are allowed (a stock checkpoint has no
      ``pem_heads.*``) and logged; so are keys of a whole top-level module
      the config leaves out (``auxiliary_head`` of a fine-tuning config).
    - ``check_batches`` (before every train/val/test iteration): inputs are
      finite (a NaN or inf would reach the loss and, through the optimiser,
      every weight), and each segmentation annotation has the size of its
      image (after the pipeline, or the original size when annotations are
      loaded after ``Resize``), as a misaligned label map is otherwise
      resized or stacked silently.

    Args:
        check_classes (bool): Defaults to True.
        check_checkpoint (bool): Defaults to True.
        check_batches (bool): Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 check_classes: bool = True,
                 check_checkpoint: bool = True,
                 check_batches: bool = True) -> None:
        for name, value in (('check_classes', check_classes),
                            ('check_checkpoint', check_checkpoint),
                            ('check_batches', check_batches)):
            if not isinstance(value, bool):
                raise TypeError(f'{name} must be a bool, got {value!r}')
        self.check_classes = check_classes
        self.check_checkpoint = check_checkpoint
        self.check_batches = check_batches

    # -- classes ------------------------------------------------------------
    def _check_classes(self, runner, mode: str) -> None:
        if not self.check_classes:
            return
        loader = getattr(runner, f'{mode}_dataloader')
        dataset = getattr(loader, 'dataset', None)
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        if not classes:
            return
        wrong = [(name, num)
                 for name, num in model_num_classes(_unwrap(runner.model))
                 if num != len(classes)]
        if wrong:
            heads = ', '.join(f'model.{n}.num_classes = {v}' for n, v in wrong)
            raise ValueError(
                f'InputCheckHook: the {mode} data set '
                f'({type(dataset).__name__}) has {len(classes)} classes '
                f"(metainfo['classes'] = {_short(list(map(str, classes)))}),"
                f' but {heads}; set num_classes = {len(classes)} in every '
                'head of the model config, or use the matching data set')

    def before_train(self, runner) -> None:
        self._check_classes(runner, 'train')

    def before_val(self, runner) -> None:
        self._check_classes(runner, 'val')

    def before_test(self, runner) -> None:
        self._check_classes(runner, 'test')

    # -- checkpoint ---------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Compare keys and shapes before mmengine copies the weights."""
        if not self.check_checkpoint:
            return
        state = checkpoint.get('state_dict', checkpoint)
        # What mmengine's load_checkpoint strips by default (revise_keys).
        state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
        model = _unwrap(runner.model)
        own = model.state_dict()
        source = runner.cfg.get('load_from')
        # Keys of a whole module the config leaves out (a fine-tuning config
        # that drops the auxiliary head, say) are skipped, as mmengine's
        # non-strict loading does; keys under a module the model has are not.
        children = dict(model.named_children())
        dropped = sorted(
            k for k in state
            if k not in own and k.split('.', 1)[0] not in children)
        unexpected = sorted(k for k in state
                            if k not in own and k not in dropped)
        shapes = sorted(f'{k}: checkpoint {tuple(v.shape)} vs model '
                        f'{tuple(own[k].shape)}' for k, v in state.items()
                        if k in own and isinstance(v, torch.Tensor)
                        and v.shape != own[k].shape)
        shared = [k for k in state if k in own]
        if shapes or unexpected or not shared:
            problems = []
            if shapes:
                problems.append(f'{len(shapes)} tensors have another shape '
                                f'({_short(shapes)})')
            if unexpected:
                problems.append(f'{len(unexpected)} keys are not in the '
                                f'model ({_short(unexpected)})')
            if not shared:
                problems.append('it shares no key with the model')
            raise ValueError(
                f'InputCheckHook: checkpoint {source!r} does not fit '
                f'{type(model).__name__}: ' + '; '.join(problems) +
                '. It was saved from another architecture or config; '
                'check load_from (or the checkpoint given to test.py)')
        if dropped:
            modules = sorted({k.split('.', 1)[0] for k in dropped})
            print_log(
                f'InputCheckHook: checkpoint {source!r} holds '
                f'{len(dropped)} tensors of modules the model does not have '
                f'({", ".join(modules)}); they are not loaded',
                logger='current')
        missing = sorted(k for k in own if k not in state)
        if missing:
            print_log(
                f'InputCheckHook: checkpoint {source!r} has no '
                f'{len(missing)} of the model\'s tensors, which keep their '
                f'initialisation: {_short(missing)}',
                logger='current')

    # -- batches ------------------------------------------------------------
    def _check_batch(self, runner, data_batch: DATA_BATCH, mode: str) -> None:
        if not self.check_batches or not isinstance(data_batch, dict):
            return
        inputs = data_batch.get('inputs')
        samples = data_batch.get('data_samples')
        if isinstance(inputs, torch.Tensor):
            inputs = list(inputs)
        if not isinstance(inputs, (list, tuple)):
            return
        if not isinstance(samples, (list, tuple)):
            samples = [None] * len(inputs)
        where = (f'{mode} iteration {runner.iter}'
                 if mode == 'train' else f'{mode} batch')
        for i, (x, sample) in enumerate(zip(inputs, samples)):
            if isinstance(x, torch.Tensor) and x.is_floating_point():
                finite = torch.isfinite(x)
                if not bool(finite.all()):
                    bad = int((~finite).sum())
                    first = tuple((~finite).nonzero()[0].tolist())
                    raise ValueError(
                        f'InputCheckHook: {where}, {_describe(sample, i)}: '
                        f'the input holds {bad} non-finite values (NaN/inf),'
                        f' the first at index {first} of its '
                        f'{tuple(x.shape)} tensor; stopped before they reach '
                        'the loss and the weights. Check the data set and '
                        'the pipeline')
            gt = getattr(sample, 'gt_sem_seg', None)
            if gt is None or not isinstance(x, torch.Tensor):
                continue
            seg = tuple(gt.data.shape[-2:])
            sizes = {tuple(x.shape[-2:])}
            if sample.metainfo.get('ori_shape') is not None:
                sizes.add(tuple(sample.metainfo['ori_shape'][:2]))
            if seg not in sizes:
                meta = sample.metainfo
                raise ValueError(
                    f'InputCheckHook: {where}, {_describe(sample, i)}: the '
                    f'annotation {meta.get("seg_map_path")!r} is {seg} (H, '
                    f'W) but its image is {tuple(x.shape[-2:])} after the '
                    f'pipeline (originally {meta.get("ori_shape")}); every '
                    'annotation must have the size of its image')

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        self._check_batch(runner, data_batch, 'train')

    def before_val_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch: DATA_BATCH = None) -> None:
        self._check_batch(runner, data_batch, 'val')

    def before_test_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None) -> None:
        self._check_batch(runner, data_batch, 'test')
