"""Evaluate many scale factors (alpha / tau) in one inference pass.

    python tools/analysis/scale_sweep.py CONFIG CKPT
        --scales 0 0.05 0.1 0.2 0.5 1 [--split val|test] [--out-dir DIR]

Logits and prior estimate are computed once per validation image (whole or
slide mode, as the config's test_cfg says) and the metric state of every
scale factor is accumulated together. Writes DIR/scale_sweep.json (curves,
best scale per metric, per-class values per scale) and DIR/scale_sweep.png.
Works for every model with the prior-correction interface (NPE-LA,
post-hoc LA). The logic is :func:`mmnpe.analysis.scale_sweep`.
"""
import argparse
import os.path as osp

import torch
from mmengine.config import DictAction
from mmengine.logging import print_log

DEFAULT_SCALES = [0, 0.05, 0.1, 0.2, 0.5, 1]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='One-pass evaluation of many scale factors')
    parser.add_argument('config', help='config file of the trained model')
    parser.add_argument('checkpoint', help='its checkpoint')
    parser.add_argument(
        '--scales',
        nargs='*',
        type=float,
        default=DEFAULT_SCALES,
        help='scale factors to evaluate, distinct, finite, >= 0 (default: '
        f'{" ".join(map(str, DEFAULT_SCALES))})')
    parser.add_argument(
        '--split',
        choices=['val', 'test'],
        default='val',
        help='dataloader to evaluate on (default: val, where a scale '
        'factor should be chosen)')
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
    return parser


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    from mmnpe.analysis import (check_scales, dump_json, plot_scale_sweep,
                                scale_sweep)
    try:
        scales = check_scales(args.scales, name='--scales')
    except ValueError as e:
        parser.error(str(e))
    out_dir = args.out_dir or osp.join(
        'work_dirs', 'analysis',
        osp.splitext(osp.basename(args.config))[0])
    result = scale_sweep(
        args.config,
        args.checkpoint,
        scales,
        split=args.split,
        cfg_options=args.cfg_options,
        device=args.device,
        progress=True)
    json_file = osp.join(out_dir, 'scale_sweep.json')
    png_file = osp.join(out_dir, 'scale_sweep.png')
    dump_json(result, json_file)
    plot_scale_sweep(result, png_file)
    print_log(f'wrote {json_file} and {png_file}', logger='current')


if __name__ == '__main__':
    main()
