"""Analysis of trained models: prior recovery, one-pass scale-factor sweep,
label shift, class-wise plots (``tools/analysis/`` are their command
lines).

This layer sits above ``seg`` and ``cls`` (it reads models of both), like
``tools/``; neither imports it. Plots use matplotlib's object API (no
pyplot state), so they work headless and in notebooks.
"""
from .builder import build_model, build_train_set, load_config, train_set_cfg
from .classwise import (classwise_table, frequency_bands, load_per_class,
                        plot_classwise)
from .interface import prior_correction
from .io import dump_json
from .label_shift import (LogitCache, collect_logits, evaluate_label_shift,
                          label_shift, plot_label_shift, shifted_loader_cfg,
                          target_prior_record)
from .prior_recovery import (ClassEstimateAccumulator, collect_estimates,
                             plot_prior_recovery, prior_recovery)
from .scale_sweep import (ClsSweepState, SegSweepState, check_scales,
                          plot_scale_sweep, scale_sweep, sweep_classifier,
                          sweep_segmentor)
from .seg_maps import seg_logits_and_estimate
from .stats import prior_recovery_stats, rankdata

__all__ = [
    'build_model', 'build_train_set', 'load_config', 'train_set_cfg',
    'classwise_table', 'frequency_bands', 'load_per_class', 'plot_classwise',
    'prior_correction', 'dump_json', 'ClassEstimateAccumulator',
    'collect_estimates', 'plot_prior_recovery', 'prior_recovery',
    'ClsSweepState', 'SegSweepState', 'check_scales', 'plot_scale_sweep',
    'scale_sweep', 'sweep_classifier', 'sweep_segmentor',
    'seg_logits_and_estimate', 'prior_recovery_stats', 'rankdata',
    'LogitCache', 'collect_logits', 'evaluate_label_shift', 'label_shift',
    'plot_label_shift', 'shifted_loader_cfg', 'target_prior_record'
]
