"""Predict for another class prior: estimate it from the target split and
see what it changes. One inference pass per split.

    python tools/analysis/label_shift.py CONFIG CKPT [--val val|test|none]
        [--target val|test] [--method em bbse] [--calibration bcts]
        [--shift-rho 10 --shift-direction forward --shift-seed 0]
        [--source-prior COUNTS.json] [--confusion hard|soft]
        [--max-pixels N] [--out-dir DIR] [--cfg-options ...]

The model's logits on the labelled validation split and on the target split
are cached; calibration (BCTS, temperature or none) is fitted on the
validation logits, the target prior is estimated by EM and / or BBSE, and
the predictions for the uniform, estimated and true target priors are
evaluated (classification: top-1, balanced, Many / Medium / Few, ECE;
segmentation: one pixel prior for the whole split, aAcc, mIoU, mAcc). With
--shift-rho the target split is wrapped in LabelShiftDataset (the shifted
test sets of the long-tail literature). EM's source prior is logged: after
BCTS the validation labels' prior; with --calibration none / temperature
(and --val none) the prior the model's logits hold under: the training
prior for a plain model, uniform for NPE-LA / post-hoc LA at full
correction (--source-prior gives it for a stock segmentor). Writes
DIR/label_shift.json,
DIR/label_shift.png and DIR/target_prior.json (the first method's estimate,
in the form a model's ``target_prior`` key reads). The logic is
:func:`mmnpe.analysis.label_shift`.
"""
import argparse
import os.path as osp

import torch
from mmengine.config import DictAction
from mmengine.logging import print_log


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='Estimate the target class prior and evaluate the '
        'adapted predictions')
    parser.add_argument('config', help='config file of the trained model')
    parser.add_argument('checkpoint', help='its checkpoint')
    parser.add_argument(
        '--val',
        choices=['val', 'test', 'none'],
        default='val',
        help='labelled split that calibrates and gives BBSE its confusion '
        'matrix (default: val; none: EM without calibration)')
    parser.add_argument(
        '--target',
        choices=['val', 'test'],
        default='test',
        help='split whose prior is estimated (default: test)')
    parser.add_argument(
        '--method',
        nargs='+',
        choices=['em', 'bbse'],
        default=['em', 'bbse'],
        help='estimators (default: em bbse)')
    parser.add_argument(
        '--calibration',
        choices=['bcts', 'temperature', 'none'],
        default='bcts',
        help='calibration fitted on the validation logits (default: bcts)')
    parser.add_argument(
        '--source-prior',
        help='with --calibration none / temperature: the prior the '
        "model's logits hold under, as counts or probabilities in a JSON "
        'file (tools/analysis/class_counts.py writes the training counts); '
        'default: from the model and its training set')
    parser.add_argument(
        '--confusion',
        choices=['hard', 'soft'],
        default='hard',
        help="BBSE's confusion matrix: argmax predictions or calibrated "
        'probabilities (default: hard)')
    parser.add_argument(
        '--shift-rho',
        type=float,
        help='classification: subsample the target split to a shifted '
        'prior with this ratio (LabelShiftDataset)')
    parser.add_argument(
        '--shift-direction',
        choices=['forward', 'backward'],
        default='forward',
        help='direction of --shift-rho (default: forward)')
    parser.add_argument(
        '--shift-seed', type=int, default=0, help='seed of --shift-rho')
    parser.add_argument(
        '--max-pixels',
        type=int,
        default=1_000_000,
        help='segmentation: pixels cached per split, the same fraction of '
        'every image (default: 1000000; 0: every pixel, refused above '
        '--max-cache-gb)')
    parser.add_argument(
        '--max-cache-gb',
        type=float,
        default=8.0,
        help='segmentation with --max-pixels 0: largest cache of every '
        'pixel, in GiB (default: 8; every pixel of ADE20K val is hundreds)')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the pixel sample')
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
    from mmnpe.analysis import (dump_json, label_shift, plot_label_shift,
                                target_prior_record)
    if args.val == 'none' and (args.calibration != 'none'
                               or 'bbse' in args.method):
        parser.error('--val none needs --calibration none and --method em')
    if args.source_prior and args.calibration == 'bcts':
        parser.error('--source-prior is the prior of the uncalibrated '
                     'logits (--calibration none or temperature); after bcts '
                     "the scores hold under the validation labels' prior")
    if args.max_pixels < 0:
        parser.error(f'--max-pixels must be >= 0, got {args.max_pixels}')
    if not args.max_cache_gb > 0:
        parser.error(f'--max-cache-gb must be > 0, got {args.max_cache_gb}')
    shift = None
    if args.shift_rho is not None:
        shift = dict(
            rho=args.shift_rho,
            direction=args.shift_direction,
            seed=args.shift_seed)
    out_dir = args.out_dir or osp.join(
        'work_dirs', 'analysis',
        osp.splitext(osp.basename(args.config))[0])
    result = label_shift(
        args.config,
        args.checkpoint,
        val_split=None if args.val == 'none' else args.val,
        target_split=args.target,
        methods=args.method,
        calibration=args.calibration,
        shift=shift,
        max_pixels=args.max_pixels or None,
        seed=args.seed,
        cfg_options=args.cfg_options,
        device=args.device,
        progress=True,
        source_prior=args.source_prior,
        confusion=args.confusion,
        max_cache_bytes=args.max_cache_gb * 2**30)
    json_file = osp.join(out_dir, 'label_shift.json')
    png_file = osp.join(out_dir, 'label_shift.png')
    dump_json(result, json_file)
    plot_label_shift(result, png_file)
    written = [json_file, png_file]
    method = next(
        (m for m in args.method if 'prior' in result['estimates'].get(m, {})),
        None)
    if method is not None:
        prior_file = osp.join(out_dir, 'target_prior.json')
        dump_json(target_prior_record(result, method), prior_file)
        written.append(prior_file)
    for name in result['row_order']:
        row = result['rows'][name]
        shown = ', '.join(f'{k} {row[k]:.2f}'
                          for k in ('top1', 'aAcc', 'mIoU', 'mAcc', 'ece')
                          if k in row)
        print_log(f'{name}: {shown}', logger='current')
    print_log(f'wrote {", ".join(written)}', logger='current')


if __name__ == '__main__':
    main()
