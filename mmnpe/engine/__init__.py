from .dist import setup_cpu_distributed
from .error_hints import (UnknownComponentError, UnsafeCheckpointError,
                          close_registered_names, error_hints)
from .hooks import FrozenBackboneHook, InputCheckHook, RandomStateHook
from .launch import DEFAULT_HOOKS, add_default_hooks, build_runner
from .resume import check_load_from, resolve_resume
from .safe_globals import register_safe_globals

__all__ = [
    'FrozenBackboneHook', 'InputCheckHook', 'RandomStateHook',
    'register_safe_globals', 'setup_cpu_distributed', 'resolve_resume',
    'check_load_from', 'error_hints', 'close_registered_names',
    'UnknownComponentError', 'UnsafeCheckpointError', 'DEFAULT_HOOKS',
    'add_default_hooks', 'build_runner'
]
