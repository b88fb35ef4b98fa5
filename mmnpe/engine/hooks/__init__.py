from .class_counts_hook import ClassCountsHook
from .frozen_backbone_hook import FrozenBackboneHook
from .stage_two_hook import StageTwoHook, reinit_module
from .total_batch_size_hook import TotalBatchSizeHook

__all__ = [
    'ClassCountsHook', 'FrozenBackboneHook', 'StageTwoHook',
    'TotalBatchSizeHook', 'reinit_module'
]
