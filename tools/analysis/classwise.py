"""Class-wise results of several runs, classes sorted by training frequency.

    python tools/analysis/classwise.py RUN1.json RUN2.json ...
        [--labels CE NPE-LA] [--metric IoU] [--class-counts counts.json]
        [--out classwise.png]

The inputs are the per-class files written by the test metrics
(``tools/test.py CONFIG CKPT --cfg-options
test_evaluator.per_class_file=RUN.json``, for LongTailAccuracy and
ClassWiseIoUMetric). Writes the PNG (Many / Medium / Few bands shaded) and
the sorted table beside it (same name, .json). The logic is
:mod:`mmnpe.analysis.classwise`.
"""
import argparse
import os.path as osp

from mmengine.logging import print_log


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='Class-wise comparison of runs, sorted by frequency')
    parser.add_argument(
        'results', nargs='+', help='per-class JSON files, one per run')
    parser.add_argument(
        '--labels', nargs='+', help='one name per run (default: file names)')
    parser.add_argument(
        '--metric',
        help="per-class value: 'accuracy' (classification, default), "
        "'IoU' (segmentation default), 'Acc', 'Dice'")
    parser.add_argument(
        '--class-counts',
        help='counts JSON ({"kind", "classes", "counts"}, as '
        'tools/analysis/class_counts.py writes) for result files written '
        'without training counts')
    parser.add_argument(
        '--many-threshold',
        type=float,
        help='Many: count > this (default: 100 images for classification, '
        'thirds of the classes for segmentation)')
    parser.add_argument(
        '--few-threshold', type=float, help='Few: count < this')
    parser.add_argument('--out', default='classwise.png', help='PNG to write')
    return parser


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    from mmnpe.analysis import (classwise_table, dump_json, load_per_class,
                                plot_classwise)
    from mmnpe.functional import load_class_counts
    records = [load_per_class(path) for path in args.results]
    counts = None
    if args.class_counts:
        counts = load_class_counts(
            args.class_counts,
            classes=records[0]['classes'],
            name='--class-counts')
    table = classwise_table(records, args.labels, args.metric, counts,
                            args.many_threshold, args.few_threshold)
    plot_classwise(table, args.out)
    json_file = osp.splitext(args.out)[0] + '.json'
    dump_json(table, json_file)
    print_log(f'wrote {args.out} and {json_file}', logger='current')


if __name__ == '__main__':
    main()
