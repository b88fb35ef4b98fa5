from .class_counts_hook import ClassCountsHook, fill_unset_class_counts
from .frozen_backbone_hook import FrozenBackboneHook
from .total_batch_size_hook import TotalBatchSizeHook

__all__ = [
    'ClassCountsHook', 'FrozenBackboneHook', 'TotalBatchSizeHook',
    'fill_unset_class_counts'
]
