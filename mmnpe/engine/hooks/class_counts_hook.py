import logging
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from mmnpe.functional import load_class_counts
from ..class_counts_mixin import ClassCountsMixin
from ..dataset_class_counts import (build_counting_dataset,
                                    count_dataset_classes)


def _count_modules(model: nn.Module) -> List[ClassCountsMixin]:
    # model.modules() reaches through DDP and TTA wrappers alike.
    return [m for m in model.modules() if isinstance(m, ClassCountsMixin)]


def _unset(modules: List[ClassCountsMixin]) -> List[ClassCountsMixin]:
    return [
        m for m in modules
        if m.class_counts_from_dataset and not m.has_class_counts
    ]


def _unset_metrics(evaluator) -> list:
    """The evaluator's :class:`LongTailAccuracy` metrics built with
    ``class_counts=None`` and not filled yet."""
    # Imported here: mmnpe.cls imports mmnpe.engine.
    from mmnpe.cls.evaluation import LongTailAccuracy
    return [
        m for m in getattr(evaluator, 'metrics', None) or []
        if isinstance(m, LongTailAccuracy) and m.class_counts is None
    ]


# Registered in mmengine's root registry: mmseg and mmpretrain configs find it.
@HOOKS.register_module()
class ClassCountsHook(Hook):
    """Give count-using modules their class counts from the training data.

    Every module of the model that mixes in :class:`ClassCountsMixin` and was
    built with ``class_counts=None`` gets the training data set's counts:

    - ``before_train``: from ``runner.train_dataloader.dataset`` (images per
      class through MMPretrain's ``get_gt_labels()``; instances per class of
      an MMDetection data set, or images for modules built with
      ``kind='images'``, repeats of ``ClassBalancedDataset`` included, see
      :func:`count_dataset_classes`). They are set even if a
      checkpoint (``load_from`` / ``resume``) brought counts along: the data
      being trained on is the source, and on resume both are the same (a
      warning says so when they differ).
    - ``before_val`` / ``before_test`` (``tools/test.py`` on a checkpoint,
      e.g. post-hoc LA on a CE model): only modules whose counts are still
      unset; the training data set is then built from
      ``cfg.train_dataloader`` with augmentation off.

    The same training counts reach the evaluators: ``before_val`` /
    ``before_test`` give every :class:`LongTailAccuracy` of the runner's
    val / test evaluator built with ``class_counts=None`` the training set's
    images per class, counted once -- from ``runner.train_dataloader.dataset``
    when the run trains, else from ``cfg.train_dataloader.dataset`` built
    with augmentation off (:func:`build_counting_dataset`). Many / Medium /
    Few are thus defined by the data the model was trained on, and the
    (balanced) test set needs no imbalance ratio. A config without a
    training set leaves the metric as it is (it then reads
    ``dataset_meta['train_class_counts']`` or raises its error).

    Pixel counts (segmentation) are not computed at run time -- a pass over
    ADE20K's 20k annotations at every start would be a surprise; write them
    once with ``tools/analysis/class_counts.py`` and pass the JSON path.

    Modules given a counts JSON are left as they are, but the JSON's class
    names are checked against the data set's ``metainfo['classes']``
    (``ValueError`` on a mismatch). Modules given a list are not touched.

    ``before_run`` also checks every decode head's count losses against its
    ``out_channels`` (the losses' ``check_decode_out_channels``), and every
    detection head's ``loss_cls`` against the head (its
    ``check_host_head``), so a loss that cannot train its head fails before
    any checkpoint is loaded.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        # Results by (where they were counted, kind of counts).
        self._cache: Dict[tuple, dict] = {}
        # The data set the running training reads (set in before_train).
        self._train_dataset = None

    def _counts(self, dataset, where: str, kind: Optional[str] = None) -> dict:
        key = (where, kind)
        if key not in self._cache:
            result = count_dataset_classes(dataset, kind=kind)
            if result['kind'] == 'pixels':
                raise ValueError(
                    'ClassCountsHook: the training data set is a '
                    'segmentation one, whose pixel counts are not computed '
                    'at run time; write them once with tools/analysis/'
                    'class_counts.py CONFIG --out counts.json and pass '
                    "class_counts='counts.json' to the module")
            self._cache[key] = result
        return self._cache[key]

    @staticmethod
    def _check_files(modules, classes, what: str) -> None:
        for m in modules:
            if m.class_counts_file is not None:
                # Raises naming the first differing class.
                load_class_counts(
                    m.class_counts_file,
                    classes=classes,
                    name=f'{type(m).__name__}.class_counts ({what})')

    def _fill(self, modules, results: Callable[[Optional[str]], dict],
              overwrite: bool) -> None:
        for m in modules:
            if not m.class_counts_from_dataset:
                continue
            if m.has_class_counts and not overwrite:
                continue
            result = results(getattr(m, 'class_counts_kind', None))
            new = torch.as_tensor(result['counts'], dtype=torch.float64)
            if m.has_class_counts and (
                    m.class_counts.numel() != new.numel()
                    or not torch.equal(m.class_counts.cpu(), new)):
                print_log(
                    f'ClassCountsHook: {type(m).__name__} loaded class '
                    'counts from a checkpoint that differ from the training '
                    'data set\'s; using the data set\'s',
                    logger='current',
                    level=logging.WARNING)
            m.set_class_counts(result['counts'], result['classes'])
            set_num_images = getattr(m, 'set_num_images', None)
            if callable(set_num_images) and 'num_images' in result:
                # Image frequencies need the number of images trained on.
                set_num_images(result['num_images'])
            print_log(
                f'ClassCountsHook: {type(m).__name__}.class_counts from the '
                f'training data set ({result["kind"]} per class): '
                f'{result["counts"]}',
                logger='current')

    def before_run(self, runner) -> None:
        """Refuse a count loss on a decode head it cannot train (Balanced
        Sigmoid on a softmax head, LA / Balanced Softmax on a one-channel
        head) before anything is loaded or trained."""
        for name, module in runner.model.named_modules():
            losses = getattr(module, 'loss_decode', None)
            out_channels = getattr(module, 'out_channels', None)
            if losses is None or out_channels is None:
                continue
            losses = losses if isinstance(losses, nn.ModuleList) else [losses]
            for loss in losses:
                check = getattr(loss, 'check_decode_out_channels', None)
                if check is not None:
                    try:
                        check(out_channels)
                    except ValueError as e:
                        raise ValueError(f'{name}: {e}') from None
        for name, module in runner.model.named_modules():
            check = getattr(
                getattr(module, 'loss_cls', None), 'check_host_head', None)
            if callable(check):
                try:
                    check(module)
                except (TypeError, ValueError) as e:
                    raise type(e)(f'{name}: {e}') from None

    def before_train(self, runner) -> None:
        """Fill dataset-sourced modules from the training data set."""
        dataset = runner.train_dataloader.dataset
        self._train_dataset = dataset
        modules = _count_modules(runner.model)
        if not modules:
            return
        self._check_files(modules, dataset.metainfo.get('classes'),
                          'training data set')
        if any(m.class_counts_from_dataset for m in modules):
            self._fill(modules,
                       lambda kind: self._counts(dataset, 'train', kind), True)

    def _before_eval(self, runner, split: str) -> None:
        modules = _count_modules(runner.model)
        if modules:
            dataset = getattr(runner, f'{split}_dataloader').dataset
            self._check_files(modules, dataset.metainfo.get('classes'),
                              f'{split} data set')
            self._fill_unset(modules, runner.cfg)
        self._fill_metrics(
            getattr(runner, f'{split}_evaluator', None), runner.cfg)

    def _train_counts(self, cfg) -> Optional[dict]:
        """Images per class of the training set, counted once: the running
        training's data set, else the config's (augmentation off); None
        when the config has no training set."""
        if self._train_dataset is not None:
            return self._counts(self._train_dataset, 'train')
        loader = cfg.get('train_dataloader')
        if not isinstance(loader, dict) or loader.get('dataset') is None:
            return None
        if ('cfg', None) not in self._cache:
            self._counts(build_counting_dataset(cfg), 'cfg')
        return self._cache[('cfg', None)]

    def _fill_metrics(self, evaluator, cfg) -> None:
        """Give unset :class:`LongTailAccuracy` metrics the training counts.
        """
        metrics = _unset_metrics(evaluator)
        if not metrics:
            return
        result = self._train_counts(cfg)
        if result is None:
            return  # the metric falls back on dataset_meta or says why not
        for metric in metrics:
            given = (metric.dataset_meta or {}).get('train_class_counts')
            if given is not None and list(given) != result['counts']:
                print_log(
                    'ClassCountsHook: the evaluation set\'s '
                    "metainfo['train_class_counts'] differ from the "
                    "training data set's; LongTailAccuracy uses the "
                    "training data set's",
                    logger='current',
                    level=logging.WARNING)
            metric.class_counts = list(result['counts'])
            print_log(
                'ClassCountsHook: LongTailAccuracy.class_counts from the '
                f'training data set (images per class): {result["counts"]}',
                logger='current')

    def _fill_unset(self, modules: List[ClassCountsMixin], cfg) -> None:
        unset = _unset(modules)
        if unset:
            datasets = []

            def results(kind: Optional[str]) -> dict:
                # The training set is built (once) only when a kind of
                # counts is not cached yet.
                if ('cfg', kind) in self._cache:
                    return self._cache[('cfg', kind)]
                if not datasets:
                    datasets.append(build_counting_dataset(cfg))
                return self._counts(datasets[0], 'cfg', kind)

            self._fill(unset, results, False)

    def before_val(self, runner) -> None:
        """Fill still-unset modules (validation outside training) and the
        val evaluator's unset :class:`LongTailAccuracy` metrics."""
        self._before_eval(runner, 'val')

    def before_test(self, runner) -> None:
        """Fill still-unset modules (``tools/test.py``) and the test
        evaluator's unset :class:`LongTailAccuracy` metrics."""
        self._before_eval(runner, 'test')


def fill_unset_class_counts(model: nn.Module, cfg) -> int:
    """What :class:`ClassCountsHook` does before testing, without a Runner.

    Every :class:`ClassCountsMixin` module of ``model`` built with
    ``class_counts=None`` and not given counts by a checkpoint gets the
    training images per class of ``cfg.train_dataloader.dataset``
    (augmentation off). The analysis tools build models outside a Runner,
    so a post-hoc LA head on a CE checkpoint needs this to have a prior.

    Args:
        model (nn.Module): The built model.
        cfg (Config): Its full config.

    Returns:
        int: How many modules were filled.

    Raises:
        ValueError: The training set is a segmentation one (pixel counts
            are never computed on the fly) or the config has none.
    """
    unset = _unset(_count_modules(model))
    if unset:
        ClassCountsHook()._fill_unset(unset, cfg)
    return len(unset)
