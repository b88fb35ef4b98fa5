from .hooks import FrozenBackboneHook, StageTwoHook, reinit_module
from .safe_globals import register_safe_globals
from .samplers import ClassBalancedSampler

__all__ = [
    'ClassBalancedSampler', 'FrozenBackboneHook', 'StageTwoHook',
    'register_safe_globals', 'reinit_module'
]
