from .class_counts_hook import ClassCountsHook
from .frozen_backbone_hook import FrozenBackboneHook
from .stage_two_hook import StageTwoHook, reinit_module

__all__ = [
    'ClassCountsHook', 'FrozenBackboneHook', 'StageTwoHook', 'reinit_module'
]
