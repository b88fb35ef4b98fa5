from .hooks import FrozenBackboneHook
from .safe_globals import register_safe_globals

__all__ = ['FrozenBackboneHook', 'register_safe_globals']
