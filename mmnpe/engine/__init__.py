from .class_counts_mixin import ClassCountsMixin
from .dataset_class_counts import (build_counting_dataset,
                                   count_dataset_classes, counting_dataset_cfg,
                                   counting_pipeline, dataset_parts,
                                   map_pipelines, pipeline_dataset_cfgs,
                                   write_class_counts)
from .hooks import (ClassCountsHook, FrozenBackboneHook, TotalBatchSizeHook,
                    fill_unset_class_counts)
from .safe_globals import register_safe_globals

__all__ = [
    'ClassCountsHook', 'ClassCountsMixin', 'FrozenBackboneHook',
    'TotalBatchSizeHook', 'build_counting_dataset', 'count_dataset_classes',
    'counting_dataset_cfg', 'counting_pipeline', 'dataset_parts',
    'fill_unset_class_counts', 'map_pipelines', 'pipeline_dataset_cfgs',
    'register_safe_globals', 'write_class_counts'
]
