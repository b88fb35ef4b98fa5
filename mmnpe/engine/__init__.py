from .class_counts_mixin import ClassCountsMixin
from .dataset_class_counts import (build_counting_dataset,
                                   count_dataset_classes, counting_dataset_cfg,
                                   counting_pipeline, write_class_counts)
from .hooks import ClassCountsHook, FrozenBackboneHook, TotalBatchSizeHook
from .safe_globals import register_safe_globals

__all__ = [
    'ClassCountsHook', 'ClassCountsMixin', 'FrozenBackboneHook',
    'TotalBatchSizeHook', 'build_counting_dataset', 'count_dataset_classes',
    'counting_dataset_cfg', 'counting_pipeline', 'register_safe_globals',
    'write_class_counts'
]
