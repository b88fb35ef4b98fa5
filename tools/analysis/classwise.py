"""Class-wise results of several runs, classes sorted by training frequency.

    python tools/analysis/classwise.py RUN1.json RUN2.json ...
        [--labels CE NPE-LA] [--metric IoU] [--out classwise.png]
        [--class-counts counts.json | --config CONFIG [--cfg-options ...]]

The inputs are the per-class files written by the test metrics
(``tools/test.py CONFIG CKPT --cfg-options
test_evaluator.per_class_file=RUN.json``, for LongTailAccuracy and
ClassWiseIoUMetric). Result files written without training counts take
them from ``--class-counts`` (a counts JSON) or ``--config`` (its training
set, counted as ``tools/analysis/class_counts.py`` counts it, with
``--cfg-options`` applied). Writes the PNG (Many / Medium / Few bands
shaded) and the sorted table beside it (same name, .json). Nothing runs a
model, so there is no ``--device``. The logic is
:mod:`mmnpe.analysis.classwise`.
"""
import argparse
import os.path as osp

from mmengine.config import Config, DictAction
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
        '--config',
        help='instead of --class-counts: a config whose training set gives '
        'the counts (images, pixels or instances per class, as '
        'tools/analysis/class_counts.py counts them)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override keys of --config, e.g. '
        'train_dataloader.dataset.data_root=data/stare')
    parser.add_argument(
        '--many-threshold',
        type=float,
        help='Many: count > this (default: 100 images for classification, '
        'thirds of the classes for segmentation)')
    parser.add_argument(
        '--few-threshold', type=float, help='Few: count < this')
    parser.add_argument('--out', default='classwise.png', help='PNG to write')
    return parser


def _config_counts(config, cfg_options, classes) -> list:
    """Per-class counts of ``config``'s training set, checked against the
    result files' classes."""
    import mmnpe  # noqa: F401  (registers the components)
    from mmnpe.engine import build_counting_dataset, count_dataset_classes
    cfg = Config.fromfile(config)
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    counted = count_dataset_classes(build_counting_dataset(cfg))
    if list(counted['classes']) != list(classes):
        raise ValueError(
            f'--config: the training set of {config} has the classes '
            f'{counted["classes"]}, the result files {list(classes)}; pass '
            'the config the results were tested with')
    return counted['counts']


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config and args.class_counts:
        parser.error('--config and --class-counts both give the class '
                     'counts: pass one of them')
    if args.cfg_options and not args.config:
        parser.error('--cfg-options overrides keys of --config: pass '
                     '--config CONFIG too')
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
    elif args.config:
        counts = _config_counts(args.config, args.cfg_options,
                                records[0]['classes'])
    table = classwise_table(records, args.labels, args.metric, counts,
                            args.many_threshold, args.few_threshold)
    plot_classwise(table, args.out)
    json_file = osp.splitext(args.out)[0] + '.json'
    dump_json(table, json_file)
    print_log(f'wrote {args.out} and {json_file}', logger='current')


if __name__ == '__main__':
    main()
