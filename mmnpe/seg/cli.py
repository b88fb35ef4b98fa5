"""``tools/test.py`` for mmseg configs: the flags of mmseg's own
``tools/test.py`` (1.2), with the same meaning."""
import argparse
import os.path as osp

from mmengine.config import Config

from mmnpe.engine import build_runner


def merge_test_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply ``tools/test.py`` flags to an mmseg config.

    As mmseg's ``tools/test.py``: ``--cfg-options`` first, work dir (flag,
    config, then config name), ``load_from``, ``--show`` / ``--show-dir``
    turning on the ``SegVisualizationHook`` (``draw``; painted images under
    the visualizer's ``save_dir``), ``--tta`` with the config's
    ``tta_model`` / ``tta_pipeline``, and ``--out DIR`` making the metric
    write its predictions as PNGs (``output_dir``, ``keep_results``).

    Args:
        cfg (Config): The loaded config (``default_scope='mmseg'``).
        args (Namespace): Parsed flags of ``tools/test.py``.

    Returns:
        Config: ``cfg``, updated.
    """
    for flag in ('out_item', 'interval', 'amp', 'no_pin_memory'):
        if getattr(args, flag, None) not in (None, False):
            raise ValueError(
                f'--{flag.replace("_", "-")} is a flag of mmpretrain\'s '
                "tools/test.py; this config is an mmseg one (default_scope="
                "'mmseg'), where --out DIR writes the predictions as PNGs")
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        hooks = cfg.get('default_hooks') or {}
        if 'visualization' not in hooks:
            raise ValueError(
                '--show / --show-dir need a SegVisualizationHook in '
                "default_hooks: visualization=dict(type='SegVisualization"
                f"Hook'), got default_hooks keys {sorted(hooks)}")
        vis = cfg.default_hooks.visualization
        vis['draw'] = True
        if args.show:
            vis['show'] = True
            vis['wait_time'] = args.wait_time
        if args.show_dir:
            cfg.visualizer['save_dir'] = args.show_dir
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ValueError('--tta needs tta_model and tta_pipeline in the '
                             'config (as mmseg\'s configs have)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    return cfg


def run_test(cfg: Config, args: argparse.Namespace) -> dict:
    """Test as mmseg's ``tools/test.py`` does.

    Args:
        cfg (Config): The loaded config.
        args (Namespace): Parsed flags of ``tools/test.py``.

    Returns:
        dict: The test metrics.
    """
    cfg = merge_test_args(cfg, args)
    # Our runner set-up: CPU process group, input checks (mmnpe.engine).
    runner = build_runner(cfg)
    return runner.test()
