import json
import math
import os
import os.path as osp
from numbers import Real
from typing import Dict, Optional, Sequence

import numpy as np
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class ClassWiseIoUMetric(IoUMetric):
    """mmseg's :class:`IoUMetric` that also returns the per-class values.

    The stock metric only logs its per-class table; comparing baseline and
    NPE-LA on rare classes needs the numbers, so they are returned as
    ``'{metric}.{class_name}'`` (e.g. ``'IoU.glacier'``, in %) beside the
    stock summary keys (``aAcc``, ``mIoU``, ``mAcc``, ``mDice`` ...).

    With ``per_class_file`` set, the per-class values are also written to
    that JSON file (the input of ``tools/analysis/classwise.py``), together
    with the training pixels per class when they are known (``class_counts``
    or ``dataset_meta['train_class_counts']``), e.g. ``tools/test.py CONFIG
    CKPT --cfg-options test_evaluator.per_class_file=run.json``.

    Args:
        class_counts (Sequence[float], optional): Training pixels per class,
            written to ``per_class_file`` (the plot sorts classes by them).
            Defaults to None.
        per_class_file (str, optional): JSON file to write the per-class
            results to. Defaults to None (nothing written).
        **kwargs: Arguments of :class:`IoUMetric`.
    """

    def __init__(self,
                 class_counts: Optional[Sequence[float]] = None,
                 per_class_file: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if per_class_file is not None and not isinstance(per_class_file, str):
            raise ValueError('per_class_file must be a file path (str) or '
                             f'None, got {per_class_file!r}')
        if class_counts is not None:
            class_counts = list(class_counts)
            for c, n in enumerate(class_counts):
                if (isinstance(n, bool) or not isinstance(n, Real)
                        or not math.isfinite(n) or n < 0):
                    raise ValueError(
                        'class_counts must hold finite numbers >= 0, got '
                        f'{n!r} for class {c}')
        self.class_counts = class_counts
        self.per_class_file = per_class_file

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Stock summary metrics plus one entry per class and metric."""
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        totals = [sum(r) for r in zip(*results)]
        per_class = self.total_area_to_metrics(*totals, self.metrics,
                                               self.nan_to_num, self.beta)
        per_class.pop('aAcc', None)
        classes = self.dataset_meta['classes']
        for name, values in per_class.items():
            for cls, value in zip(classes, values):
                metrics[f'{name}.{cls}'] = float(
                    np.round(np.asarray(value) * 100, 2))
        if self.per_class_file is not None:
            self._dump_per_class(metrics, per_class, classes)
        return metrics

    def _dump_per_class(self, metrics: dict, per_class: dict,
                        classes: Sequence[str]) -> None:
        """Write the per-class JSON read by ``tools/analysis/classwise.py``.
        """
        counts = self.class_counts
        if counts is None:
            counts = (self.dataset_meta or {}).get('train_class_counts')
        if counts is not None and len(counts) != len(classes):
            raise ValueError(f'class_counts must have one entry per class '
                             f'({len(classes)}), got {len(counts)}')

        def values(array):
            # As the returned metrics; NaN (a class absent from prediction
            # and label) is not JSON.
            return [
                None if np.isnan(v) else float(np.round(v * 100, 2))
                for v in np.asarray(array)
            ]

        record = dict(
            format='mmnpe.per_class/1',
            task='seg',
            classes=list(classes),
            train_class_counts=None
            if counts is None else np.asarray(counts).tolist(),
            count_kind='pixels',
            per_class={
                k: values(v)
                for k, v in per_class.items()
            },
            summary={
                k: float(v)
                for k, v in metrics.items() if '.' not in k
            })
        folder = osp.dirname(osp.abspath(self.per_class_file))
        os.makedirs(folder, exist_ok=True)
        with open(self.per_class_file, 'w') as f:
            json.dump(record, f, indent=2)
