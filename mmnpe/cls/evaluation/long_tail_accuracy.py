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

    Args:
        class_counts (Sequence[int], optional): Training images per class;
            defaults to ``dataset_meta['train_class_counts']`` (set by
            :class:`CIFAR10LT` & co.).
        many_threshold (float): Defaults to 100.
        few_threshold (float): Defaults to 20.
        collect_device (str): Defaults to 'cpu'.
        prefix (str, optional): Defaults to 'lt'.
    """
    default_prefix = 'lt'

    def __init__(self,
                 class_counts: Optional[Sequence[int]] = None,
                 many_threshold: float = 100,
                 few_threshold: float = 20,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        _check_thresholds(many_threshold, few_threshold)
        self.class_counts = class_counts
        self.many_threshold = many_threshold
        self.few_threshold = few_threshold

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
                'LongTailAccuracy needs training counts per class: pass '
                'class_counts=[...] or use a data set that sets '
                "metainfo['train_class_counts']")
        pred, target = (np.array(x) for x in zip(*results))
        return self.calculate(pred, target, counts, self.many_threshold,
                              self.few_threshold)

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
        correct = pred == target
        per_class = np.full(num_classes, np.nan)
        for c in range(num_classes):
            mask = target == c
            if mask.any():
                per_class[c] = correct[mask].mean() * 100
        seen = ~np.isnan(per_class)
        result = dict(
            top1=float(correct.mean() * 100),
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
