"""Test (and evaluate) a checkpoint from an MMSegmentation or MMPretrain
config, with the flags of that library's own ``tools/test.py``.

mmseg configs (``default_scope='mmseg'``): ``--out DIR`` writes the
predictions as PNGs, ``--show-dir DIR`` the painted images.
mmpretrain configs (``default_scope='mmpretrain'``): ``--out FILE`` dumps the
predictions (pickle) or, with ``--out-item metrics``, the metrics;
``--show-dir DIR`` saves one painted image per sample (``--interval``).
mmdet configs (``default_scope='mmdet'``): ``--out FILE.pkl`` dumps the
predictions, ``--show-dir DIR`` the painted detections, ``--tta`` flips.
"""
import argparse
import os
from typing import List, Optional

from mmengine.config import Config, DictAction

from mmnpe.engine import error_hints


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The flags of ``argv`` (default: the command line)."""
    parser = argparse.ArgumentParser(description='Test a model with mmnpe')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='folder for the metrics json and logs')
    parser.add_argument(
        '--out',
        help='mmseg: folder for the predicted PNGs; mmpretrain: file for '
        'the predictions (or metrics, see --out-item); mmdet: .pkl file for '
        'the predictions')
    parser.add_argument(
        '--out-item',
        choices=['metrics', 'pred'],
        help='mmpretrain only: what --out holds (default: pred)')
    parser.add_argument(
        '--show', action='store_true', help='show the predictions')
    parser.add_argument(
        '--show-dir', help='folder to save painted predictions into')
    parser.add_argument(
        '--interval',
        type=int,
        help='mmpretrain only: paint every n-th sample (default 1)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='seconds per shown image')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. model.scale_factor=0.1 '
        '(re-evaluates another alpha without retraining)')
    parser.add_argument(
        '--amp', action='store_true', help='mmpretrain only: fp16 test')
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='mmpretrain only: no pin_memory in the test dataloader')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--tta', action='store_true', help='test-time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    """Test as ``python tools/test.py ARGV...`` does (default: the
    command line)."""
    args = parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    scope = cfg.get('default_scope')
    if scope == 'mmseg':
        from mmnpe.seg.cli import run_test
    elif scope == 'mmpretrain':
        from mmnpe.cls.cli import run_test
    elif scope == 'mmdet':
        from mmnpe.det.cli import run_test
    else:
        raise ValueError("tools/test.py needs default_scope 'mmseg', "
                         f"'mmpretrain' or 'mmdet' in the config, got "
                         f'{scope!r}')
    with error_hints(args.checkpoint):
        run_test(cfg, args)


if __name__ == '__main__':
    main()
