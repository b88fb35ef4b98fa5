from .hooks import FrozenBackboneHook, TotalBatchSizeHook
from .safe_globals import register_safe_globals

__all__ = [
    'FrozenBackboneHook', 'TotalBatchSizeHook', 'register_safe_globals'
]
