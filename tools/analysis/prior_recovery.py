"""Does the learned NPE estimate follow the class prior? One command.

    python tools/analysis/prior_recovery.py CONFIG CKPT [--num-samples N]
        [--out-dir DIR] [--cfg-options ...]

Runs the trained model over its training split (test pipeline, no random
augmentation), averages the estimate per class (segmentation: per labelled
pixel, the estimate upsampled to the label as the logits are) and compares
it with the log class frequency. Writes DIR/prior_recovery.json (Pearson,
Spearman, least-squares slope and intercept, per-class values) and
DIR/prior_recovery.png (scatter with the identity-slope line). The logic is
:func:`mmnpe.analysis.prior_recovery`.
"""
import argparse
import os.path as osp

import torch
from mmengine.config import DictAction
from mmengine.logging import print_log


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Compare the NPE estimate with the log class frequency')
    parser.add_argument('config', help='config file of the trained model')
    parser.add_argument('checkpoint', help='its checkpoint')
    parser.add_argument(
        '--num-samples',
        type=int,
        help='a seeded random subset of this many training samples '
        '(default: all)')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the subset')
    parser.add_argument(
        '--out-dir',
        help='output folder (default: work_dirs/analysis/<config name>)')
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='device to run on')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, as in tools/test.py')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from mmnpe.analysis import dump_json, plot_prior_recovery, prior_recovery
    out_dir = args.out_dir or osp.join(
        'work_dirs', 'analysis',
        osp.splitext(osp.basename(args.config))[0])
    result = prior_recovery(
        args.config,
        args.checkpoint,
        num_samples=args.num_samples,
        seed=args.seed,
        cfg_options=args.cfg_options,
        device=args.device,
        progress=True)
    json_file = osp.join(out_dir, 'prior_recovery.json')
    png_file = osp.join(out_dir, 'prior_recovery.png')
    dump_json(result, json_file)
    plot_prior_recovery(result, png_file)
    print_log(f'wrote {json_file} and {png_file}', logger='current')


if __name__ == '__main__':
    main()
