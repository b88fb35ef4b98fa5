from .class_counts_hook import ClassCountsHook
from .frozen_backbone_hook import FrozenBackboneHook

__all__ = ['ClassCountsHook', 'FrozenBackboneHook']
