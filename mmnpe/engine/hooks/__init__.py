from .frozen_backbone_hook import FrozenBackboneHook
from .total_batch_size_hook import TotalBatchSizeHook

__all__ = ['FrozenBackboneHook', 'TotalBatchSizeHook']
