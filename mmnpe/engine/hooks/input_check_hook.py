from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.structures import BaseDataElement

from ..checkpoint_check import LoadRecorder, check_load
from ..checkpoint_check import unwrap_model as _unwrap
from .utils import is_training

DATA_BATCH = Optional[dict]
# Heads whose ``num_classes`` must match the data set's classes.
# Dotted paths: mmseg's, mmpretrain's, then mmdet's classifying heads (the
# RoI heads of two-stage detectors, the dense head of one-stage ones; the
# class-agnostic RPN is left out).
_HEADS = ('decode_head', 'auxiliary_head', 'pem_heads', 'head',
          'roi_head.bbox_head', 'roi_head.mask_head', 'bbox_head')


def load_mode(runner) -> str:
    """'resume', 'train' or 'test': what the checkpoint being loaded is
    for. ``Runner.train`` builds the optimiser before it loads; ``val`` and
    ``test`` never build one."""
    if not is_training(runner):
        return 'test'
    return 'resume' if getattr(runner, '_resume', False) else 'train'


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
    auxiliary, PEM heads for mmseg; ``head`` for mmpretrain; the box, mask
    and dense heads for mmdet, each stage of a cascade)."""
    found = []
    for name in _HEADS:
        try:
            module = model.get_submodule(name)
        except AttributeError:
            continue
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
    - ``check_checkpoint`` (the load that follows ``after_load_checkpoint``,
      judged once the model's own load hooks have run): mmengine loads with
      ``strict=False`` and only logs what did not fit, so a wrong
      ``load_from`` otherwise trains or tests with random weights. Refused
      is only what would load silently wrong (see
      :mod:`mmnpe.engine.checkpoint_check`): a checkpoint of which no tensor
      loads, and tensors the run uses as they are that did not load --
      when testing, any the prediction uses; when training from
      ``load_from``, the frozen ones; when resuming, all. What mmengine
      accepts otherwise is accepted and logged: extra keys (a loss's count
      buffer, a dropped auxiliary head), a stock checkpoint without
      ``pem_heads.*`` for training the PEMs, a new classifier of another
      ``num_classes`` for fine-tuning.
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
        """Judge the load that follows, once the model's hooks have run.

        mmengine calls this hook between reading the file and copying its
        tensors; the copy is recorded (:class:`LoadRecorder`) and checked by
        :func:`check_load` when it is done, in the mode of the run:
        'resume', 'train' (``load_from`` initialises training) or 'test'.
        """
        if not self.check_checkpoint:
            return
        model = _unwrap(runner.model)
        mode = load_mode(runner)
        # The Runner's own record (its config may not hold it).
        source = getattr(runner, '_load_from',
                         None) or runner.cfg.get('load_from')
        LoadRecorder(model,
                     lambda record: check_load(record, model, mode, source))

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
