from .class_counts_hook import ClassCountsHook, fill_unset_class_counts
from .frozen_backbone_hook import FrozenBackboneHook
from .input_check_hook import InputCheckHook
from .random_state_hook import RandomStateHook
from .stage_two_hook import StageTwoHook, reinit_module
from .total_batch_size_hook import TotalBatchSizeHook

__all__ = [
    'ClassCountsHook', 'FrozenBackboneHook', 'InputCheckHook',
    'RandomStateHook', 'StageTwoHook', 'TotalBatchSizeHook',
    'fill_unset_class_counts', 'reinit_module'
]
