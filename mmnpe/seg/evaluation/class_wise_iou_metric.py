from typing import Dict

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
    Arguments are those of :class:`IoUMetric`.
    """

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Stock summary metrics plus one entry per class and metric."""
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        totals = [sum(r) for r in zip(*results)]
        per_class = self.total_area_to_metrics(*totals, self.metrics,
                                               self.nan_to_num, self.beta)
        per_class.pop('aAcc', None)
        for name, values in per_class.items():
            for cls, value in zip(self.dataset_meta['classes'], values):
                metrics[f'{name}.{cls}'] = float(
                    np.round(np.asarray(value) * 100, 2))
        return metrics
