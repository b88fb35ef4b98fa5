from .checkpoint_check import (LoadRecord, LoadRecorder, check_load,
                               required_tensors)
from .class_counts_mixin import ClassCountsMixin
from .dataset_class_counts import (DETECTION_KINDS, build_counting_dataset,
                                   count_dataset_classes, counting_dataset_cfg,
                                   counting_pipeline, dataset_parts,
                                   map_pipelines, pipeline_dataset_cfgs,
                                   repeated_parts, write_class_counts)
from .dist import setup_cpu_distributed
from .error_hints import (UnknownComponentError, UnsafeCheckpointError,
                          close_registered_names, error_hints)
from .hooks import (ClassCountsHook, FrozenBackboneHook, InputCheckHook,
                    RandomStateHook, StageTwoHook, TotalBatchSizeHook,
                    fill_unset_class_counts, reinit_module)
from .launch import DEFAULT_HOOKS, add_default_hooks, build_runner
from .resume import check_load_from, resolve_resume
from .safe_globals import register_safe_globals
from .samplers import ClassBalancedSampler

__all__ = [
    'ClassBalancedSampler', 'ClassCountsHook', 'ClassCountsMixin',
    'FrozenBackboneHook', 'InputCheckHook', 'RandomStateHook', 'StageTwoHook',
    'TotalBatchSizeHook', 'build_counting_dataset', 'count_dataset_classes',
    'counting_dataset_cfg', 'counting_pipeline', 'dataset_parts',
    'fill_unset_class_counts', 'map_pipelines', 'pipeline_dataset_cfgs',
    'register_safe_globals', 'reinit_module', 'write_class_counts',
    'setup_cpu_distributed', 'resolve_resume', 'check_load_from',
    'error_hints', 'close_registered_names', 'UnknownComponentError',
    'UnsafeCheckpointError', 'DEFAULT_HOOKS', 'add_default_hooks',
    'build_runner', 'LoadRecord', 'LoadRecorder', 'check_load',
    'required_tensors', 'DETECTION_KINDS', 'repeated_parts'
]
