import json
import os
import os.path as osp
from numbers import Real
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS


def _check_thresholds(many_threshold, few_threshold) -> None:
    for name, value in (('many_threshold', many_threshold), ('few_threshold',
                                                             few_threshold)):
        if isinstance(value, bool) or not isinstance(value, Real):
            raise ValueError(f'{name} must be a number, got {value!r}')
    if few_threshold >= many_threshold:
        raise ValueError(
            'few_threshold must be < many_threshold (Few: < few_threshold, '
            'Medium: in between, Many: > many_threshold), got '
            f'few_threshold={few_threshold!r} and '
            f'many_threshold={many_threshold!r}')


@METRICS.register_module()
class LongTailAccuracy(BaseMetric):
    """Top-1, balanced and Many / Medium / Few accuracy for long-tailed data.

    Classes are grouped by their number of *training* images: Many
    (> ``many_threshold``), Medium (between), Few (< ``few_threshold``), the
    grouping of the long-tail literature (100 and 20). Group accuracy is the
    mean per-class accuracy over the group's classes; a group without
    classes is left out of the result rather than reported as 0 %.

    With ``per_class_file`` set, the per-class accuracies, the training
    counts and the thresholds are also written to that JSON file (the input
    of ``tools/analysis/classwise.py``), e.g. from the command line
    ``tools/test.py CONFIG CKPT --cfg-options
    test_evaluator.per_class_file=run.json``.

    Args:
        class_counts (Sequence[int], optional): Training images per class.
            Defaults to None: :class:`ClassCountsHook` (in the config's
            ``custom_hooks``) fills them from the training set before
            validation / testing; without it,
            ``dataset_meta['train_class_counts']`` (set by the training
            split of :class:`CIFAR10LT` & co., and by their test split when
            it is given an ``imbalance_ratio``).
        many_threshold (float): Defaults to 100.
        few_threshold (float): Defaults to 20.
        per_class_file (str, optional): JSON file to write the per-class
            results to. Defaults to None (nothing written).
        collect_device (str): Defaults to 'cpu'.
        prefix (str, optional): Defaults to 'lt'.
    """
    default_prefix = 'lt'

    def __init__(self,
                 class_counts: Optional[Sequence[int]] = None,
                 many_threshold: float = 100,
                 few_threshold: float = 20,
                 per_class_file: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        _check_thresholds(many_threshold, few_threshold)
        if per_class_file is not None and not isinstance(per_class_file, str):
            raise ValueError('per_class_file must be a file path (str) or '
                             f'None, got {per_class_file!r}')
        self.class_counts = class_counts
        self.many_threshold = many_threshold
        self.few_threshold = few_threshold
        self.per_class_file = per_class_file

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep the predicted and true label of every sample."""
        for sample in data_samples:
            self.results.append((int(sample['pred_label'].reshape(-1)[0]),
                                 int(sample['gt_label'].reshape(-1)[0])))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        """Accuracy summary over all processed samples."""
        counts = self.class_counts
        if counts is None:
            counts = (self.dataset_meta or {}).get('train_class_counts')
        if counts is None:
            raise ValueError(
                'LongTailAccuracy needs training counts per class, got '
                'class_counts=None and no '
                "dataset_meta['train_class_counts']: add "
                "custom_hooks=[dict(type='ClassCountsHook')] to the config "
                '(counts its train_dataloader.dataset), pass '
                'class_counts=[...], or use a data set that sets '
                "metainfo['train_class_counts']")
        pred, target = (np.array(x) for x in zip(*results))
        result = self.calculate(pred, target, counts, self.many_threshold,
                                self.few_threshold)
        if self.per_class_file is not None:
            self._dump_per_class(result, counts)
        return result

    def _dump_per_class(self, result: dict, counts: Sequence[int]) -> None:
        """Write the per-class JSON read by ``tools/analysis/classwise.py``.
        """
        classes = (self.dataset_meta or {}).get('classes')
        if classes is None:
            classes = [str(c) for c in range(len(counts))]
        summary = {k: v for k, v in result.items() if k != 'per_class'}
        record = dict(
            format='mmnpe.per_class/1',
            task='cls',
            classes=list(classes),
            train_class_counts=np.asarray(counts).tolist(),
            count_kind='images',
            many_threshold=self.many_threshold,
            few_threshold=self.few_threshold,
            # NaN (class absent from the evaluation set) is not valid JSON.
            per_class=dict(accuracy=[
                None if np.isnan(v) else v for v in result['per_class']
            ]),
            summary=summary)
        folder = osp.dirname(osp.abspath(self.per_class_file))
        os.makedirs(folder, exist_ok=True)
        with open(self.per_class_file, 'w') as f:
            json.dump(record, f, indent=2)

    @staticmethod
    def calculate(pred,
                  target,
                  class_counts: Sequence[int],
                  many_threshold: float = 100,
                  few_threshold: float = 20) -> Dict[str, object]:
        """Compute the long-tail accuracies (in %).

        Args:
            pred (array-like): Predicted labels (N,), or scores (N, C).
            target (array-like): True labels (N,).
            class_counts (Sequence[int]): Training images per class, (C,).
            many_threshold (float): Many: count > this. Defaults to 100.
            few_threshold (float): Few: count < this. Defaults to 20.

        Returns:
            dict: ``top1``, ``balanced`` (mean per-class), ``many``,
            ``medium``, ``few`` (each only if the group has classes that
            appear in ``target``) and ``per_class`` (list, NaN for a class
            absent from ``target``).
        """
        _check_thresholds(many_threshold, few_threshold)
        pred = torch.as_tensor(np.asarray(pred))
        if pred.dim() == 2:
            pred = pred.argmax(dim=1)
        pred = pred.numpy().astype(np.int64)
        target = np.asarray(target, dtype=np.int64)
        counts = np.asarray(class_counts)
        if pred.shape != target.shape or target.ndim != 1:
            raise ValueError('pred and target must be (N,) label arrays of '
                             f'one shape, got {pred.shape} and {target.shape}')
        num_classes = len(counts)
        if target.size and (target.min() < 0 or target.max() >= num_classes):
            raise ValueError(
                f'target holds labels outside [0, {num_classes - 1}]'
                f' (class_counts has {num_classes} entries)')
        total = np.bincount(target, minlength=num_classes)
        correct = np.bincount(target[pred == target], minlength=num_classes)
        return LongTailAccuracy.summarize(correct, total, counts,
                                          many_threshold, few_threshold)

    @staticmethod
    def summarize(correct,
                  total,
                  class_counts: Sequence[int],
                  many_threshold: float = 100,
                  few_threshold: float = 20) -> Dict[str, object]:
        """The long-tail accuracies (in %) from per-class counts.

        The sufficient statistics of :meth:`calculate`, so that a caller
        accumulating them (e.g. for many scale factors in one pass, see
        :mod:`mmnpe.analysis.scale_sweep`) gets exactly its result.

        Args:
            correct (array-like): Correctly classified samples per true
                class, (C,).
            total (array-like): Samples per true class, (C,).
            class_counts (Sequence[int]): Training images per class, (C,).
            many_threshold (float): Many: count > this. Defaults to 100.
            few_threshold (float): Few: count < this. Defaults to 20.

        Returns:
            dict: As :meth:`calculate`.
        """
        _check_thresholds(many_threshold, few_threshold)
        correct = np.asarray(correct, dtype=np.int64)
        total = np.asarray(total, dtype=np.int64)
        counts = np.asarray(class_counts)
        num_classes = len(counts)
        if correct.shape != (num_classes, ) or total.shape != (num_classes, ):
            raise ValueError(
                f'correct and total must have shape ({num_classes},) like '
                f'class_counts, got {correct.shape} and {total.shape}')
        if (correct < 0).any() or (correct > total).any():
            raise ValueError('correct must lie in [0, total] for every '
                             f'class, got correct={correct.tolist()} and '
                             f'total={total.tolist()}')
        seen = total > 0
        per_class = np.full(num_classes, np.nan)
        per_class[seen] = correct[seen] / total[seen] * 100
        result = dict(
            top1=float(correct.sum() / total.sum() * 100),
            balanced=float(np.nanmean(per_class)))
        groups = dict(
            many=counts > many_threshold,
            medium=(counts >= few_threshold) & (counts <= many_threshold),
            few=counts < few_threshold)
        for name, members in groups.items():
            if (members & seen).any():
                result[name] = float(per_class[members & seen].mean())
        result['per_class'] = per_class.tolist()
        return result
