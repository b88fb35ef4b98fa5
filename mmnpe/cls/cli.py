"""``tools/test.py`` for mmpretrain configs: the flags of mmpretrain's own
``tools/test.py`` (1.2), with the same meaning."""
import argparse
import os.path as osp
from copy import deepcopy

import mmengine
from mmengine.config import Config, ConfigDict
from mmengine.evaluator import DumpResults

from mmnpe.engine import build_runner


def merge_test_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply ``tools/test.py`` flags to an mmpretrain config.

    As mmpretrain's ``merge_args``: work dir (flag, config, then config
    name), ``load_from``, ``--amp`` (``test_cfg.fp16``), ``--show`` /
    ``--show-dir`` / ``--interval`` / ``--wait-time`` switching on the
    ``VisualizationHook`` (``enable``, ``out_dir`` ...), ``--tta`` (flip TTA
    by default), the test dataloader defaults, then ``--cfg-options``.

    Args:
        cfg (Config): The loaded config (``default_scope='mmpretrain'``).
        args (Namespace): Parsed flags of ``tools/test.py``.

    Returns:
        Config: ``cfg``, updated.
    """
    if args.out is None and args.out_item is not None:
        raise ValueError('--out-item needs --out FILE (the file to write '
                         'the predictions or metrics to)')
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.amp:
        cfg.test_cfg.fp16 = True

    if args.show or args.show_dir is not None:
        hooks = cfg.get('default_hooks') or {}
        if 'visualization' not in hooks:
            raise ValueError(
                '--show / --show-dir need a VisualizationHook in '
                "default_hooks: visualization=dict(type='VisualizationHook')"
                f', got default_hooks keys {sorted(hooks)}')
        vis = cfg.default_hooks.visualization
        vis.enable = True
        vis.show = args.show
        vis.wait_time = args.wait_time
        vis.out_dir = args.show_dir
        vis.interval = 1 if args.interval is None else args.interval

    if args.tta:
        if 'tta_model' not in cfg:
            cfg.tta_model = dict(type='mmpretrain.AverageClsScoreTTA')
        if 'tta_pipeline' not in cfg:
            test_pipeline = cfg.test_dataloader.dataset.pipeline
            cfg.tta_pipeline = deepcopy(test_pipeline)
            cfg.tta_pipeline[-1] = dict(
                type='TestTimeAug',
                transforms=[[
                    dict(type='RandomFlip', prob=1.),
                    dict(type='RandomFlip', prob=0.)
                ], [test_pipeline[-1]]])
        cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline

    if cfg.get('test_dataloader') is not None:
        loader = ConfigDict(
            pin_memory=True, collate_fn=dict(type='default_collate'))
        loader.update(cfg.test_dataloader)
        if args.no_pin_memory:
            loader.pin_memory = False
        cfg.test_dataloader = loader

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def run_test(cfg: Config, args: argparse.Namespace) -> dict:
    """Test as mmpretrain's ``tools/test.py`` does.

    ``--out FILE`` dumps the predictions (``--out-item pred``, the default,
    through mmengine's ``DumpResults``: a pickle of one dict per sample) or
    the metrics (``--out-item metrics``).

    Args:
        cfg (Config): The loaded config.
        args (Namespace): Parsed flags of ``tools/test.py``.

    Returns:
        dict: The test metrics.
    """
    cfg = merge_test_args(cfg, args)
    # Our runner set-up: CPU process group, input checks (mmnpe.engine).
    runner = build_runner(cfg)
    if args.out and args.out_item in ('pred', None):
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))
    metrics = runner.test()
    if args.out and args.out_item == 'metrics':
        mmengine.dump(metrics, args.out)
    return metrics
