"""Train a model from an mmseg or mmpretrain config (mmseg's flags)."""
import argparse
import logging
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.logging import print_log

from mmnpe.engine import build_runner, error_hints, resolve_resume


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The flags of ``argv`` (default: the command line)."""
    parser = argparse.ArgumentParser(description='Train a model with mmnpe')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='folder for logs and checkpoints')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the latest checkpoint in the work dir (or from '
        'load_from when there is none yet); --resume PATH resumes from PATH')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by the total batch (processes x '
        'train_dataloader.batch_size) over the auto_scale_lr.base_batch_size '
        'that the config sets its lr for')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. model.scale_factor=0.2 '
        'train_cfg.max_iters=100 (lists as key="[a,b]", no spaces)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0).
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv: Optional[List[str]] = None) -> None:
    """Train as ``python tools/train.py ARGV...`` does (default: the
    command line)."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper == 'AmpOptimWrapper':
            print_log('AMP is already on in the config.', 'current',
                      logging.WARNING)
        elif wrapper != 'OptimWrapper':
            raise ValueError('--amp needs optim_wrapper.type = OptimWrapper, '
                             f'got {wrapper}')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        base = (cfg.get('auto_scale_lr') or {}).get('base_batch_size')
        if isinstance(base, bool) or not (isinstance(base, int) and base > 0):
            raise ValueError(
                '--auto-scale-lr needs auto_scale_lr = dict(base_batch_size='
                'N) in the config, N > 0 the total batch its lr is set for, '
                f"got auto_scale_lr={cfg.get('auto_scale_lr')!r}")
        cfg.auto_scale_lr.enable = True
    resolve_resume(cfg, args.resume)

    with error_hints(cfg.get('load_from')):
        runner = build_runner(cfg)
        runner.train()


if __name__ == '__main__':
    main()
