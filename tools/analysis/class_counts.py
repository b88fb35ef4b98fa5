"""Count images (mmpretrain configs), pixels (mmseg configs) or instances /
images (mmdet configs, ``--kind``) per class over a config's TRAINING data
set and write the counts JSON that count-based baselines (logit adjustment,
Balanced Softmax / Sigmoid, IWB) read.

The data set is built from ``train_dataloader.dataset`` exactly as training
builds it (``reduce_zero_label``, ``label_map``, ``ignore_index``), with every
pipeline cut to its annotation loaders: pixels are counted on the original
annotation, without random crops, flips or resizes. Repeat wrappers count
each image once, except for detection, where an image repeated by
``ClassBalancedDataset`` (repeat-factor sampling) or ``RepeatDataset`` counts
as often as it is trained on.

    python tools/analysis/class_counts.py CONFIG --out counts.json

It reads annotations and runs no model, so it has no ``--device``.
"""
import argparse
import json

from mmengine.config import Config, DictAction


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Images or pixels per class of a training data set')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--out', help='JSON file to write (printed to stdout when omitted)')
    parser.add_argument(
        '--kind',
        choices=['instances', 'images'],
        help='mmdet configs only: instances (default) or images per class')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. '
        'train_dataloader.dataset.data_root=data/stare')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    import mmnpe  # noqa: F401  (registers the components)
    from mmnpe.engine import (build_counting_dataset, count_dataset_classes,
                              write_class_counts)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    result = count_dataset_classes(
        build_counting_dataset(cfg), progress=True, kind=args.kind)
    if args.out:
        write_class_counts(result, args.out)
        print(f'\nwrote {result["kind"]} per class of '
              f'{len(result["classes"])} classes to {args.out}')
    else:
        print()
        print(json.dumps(result, indent=2))


if __name__ == '__main__':
    main()
