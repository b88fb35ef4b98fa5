"""``tools/test.py`` for mmdet configs: the flags of mmdet's own
``tools/test.py`` (3.3), with the same meaning."""
import argparse
import os.path as osp
import warnings
from copy import deepcopy

from mmdet.engine.hooks.utils import trigger_visualization_hook
from mmdet.evaluation import DumpDetResults
from mmengine.config import Config, ConfigDict

from mmnpe.engine import build_runner

# Flags of tools/test.py that mmdet's own test script does not have.
_NOT_MMDET = ('out_item', 'interval', 'amp', 'no_pin_memory')


def merge_test_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply ``tools/test.py`` flags to an mmdet config.

    As mmdet's ``tools/test.py``: ``--cfg-options`` first, work dir (flag,
    config, then config name), ``load_from``, ``--show`` / ``--show-dir``
    turning on the ``DetVisualizationHook`` (mmdet's
    ``trigger_visualization_hook``: ``draw``, painted images under
    ``show_dir`` in the run's folder), ``--tta`` with the config's
    ``tta_model`` / ``tta_pipeline`` or mmdet's defaults (flip TTA,
    ``DetTTAModel``). ``--out FILE.pkl`` is handled by :func:`run_test`.

    Args:
        cfg (Config): The loaded config (``default_scope='mmdet'``).
        args (Namespace): Parsed flags of ``tools/test.py``.

    Returns:
        Config: ``cfg``, updated.
    """
    for flag in _NOT_MMDET:
        if getattr(args, flag, None) not in (None, False):
            raise ValueError(
                f'--{flag.replace("_", "-")} is not a flag of mmdet\'s '
                "tools/test.py; this config is an mmdet one (default_scope="
                "'mmdet'), where --out FILE.pkl dumps the predictions")
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError('--out must name a .pkl / .pickle file for mmdet '
                         f'configs (DumpDetResults), got {args.out!r}')
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
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        if 'tta_model' not in cfg:
            warnings.warn('no tta_model in the config: using mmdet\'s '
                          'default DetTTAModel')
            cfg.tta_model = dict(
                type='DetTTAModel',
                tta_cfg=dict(
                    nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
        if 'tta_pipeline' not in cfg:
            warnings.warn('no tta_pipeline in the config: using mmdet\'s '
                          'default flip test-time augmentation')
            test_data_cfg = cfg.test_dataloader.dataset
            while 'dataset' in test_data_cfg:
                test_data_cfg = test_data_cfg['dataset']
            cfg.tta_pipeline = deepcopy(test_data_cfg.pipeline)
            cfg.tta_pipeline[-1] = dict(
                type='TestTimeAug',
                transforms=[[
                    dict(type='RandomFlip', prob=1.),
                    dict(type='RandomFlip', prob=0.)
                ],
                            [
                                dict(
                                    type='PackDetInputs',
                                    meta_keys=('img_id', 'img_path',
                                               'ori_shape', 'img_shape',
                                               'scale_factor', 'flip',
                                               'flip_direction'))
                            ]])
        cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    return cfg


def run_test(cfg: Config, args: argparse.Namespace) -> dict:
    """Test as mmdet's ``tools/test.py`` does; ``--out FILE.pkl`` dumps the
    predictions (mmdet's ``DumpDetResults``, masks RLE-encoded).

    Args:
        cfg (Config): The loaded config.
        args (Namespace): Parsed flags of ``tools/test.py``.

    Returns:
        dict: The test metrics.
    """
    cfg = merge_test_args(cfg, args)
    # Our runner set-up: CPU process group, input checks (mmnpe.engine).
    runner = build_runner(cfg)
    if args.out is not None:
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))
    return runner.test()
