from .class_counts_mixin import ClassCountsMixin
from .dataset_class_counts import (build_counting_dataset,
                                   count_dataset_classes, counting_dataset_cfg,
                                   counting_pipeline, write_class_counts)
from .hooks import (ClassCountsHook, FrozenBackboneHook, StageTwoHook,
                    TotalBatchSizeHook, reinit_module)
from .safe_globals import register_safe_globals
from .samplers import ClassBalancedSampler

__all__ = [
    'ClassBalancedSampler', 'ClassCountsHook', 'ClassCountsMixin',
    'FrozenBackboneHook', 'StageTwoHook', 'TotalBatchSizeHook',
    'build_counting_dataset', 'count_dataset_classes', 'counting_dataset_cfg',
    'counting_pipeline', 'register_safe_globals', 'reinit_module',
    'write_class_counts'
]
