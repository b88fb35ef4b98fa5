"""Tiny copies of ImageNet-LT, iNaturalist 2018 and Places-LT on disk.

Each tree has the benchmark's real layout: its split lists, one
``relative/path label`` a line, beside real JPEG files in the folders the
real lists name (ImageNet-2012's ``train/<wnid>/`` and ``val/``,
iNaturalist's ``train_val2018/<kingdom>/<id>/``, Places365's
``data_256/<letter>/<class>/`` and ``val_256/``); iNaturalist 2018 has a
train and a val list only. Here the val lists name images in the training
folders and the test lists images in the validation folders, all distinct;
the data set reads whatever paths a list names.
"""
import argparse
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
from helpers import parse_test_flags

#: Per benchmark: the folder under data/, the lists and the class count of
#: the configs in configs/imagenet_lt, configs/inat2018, configs/places_lt.
BENCHMARKS = dict(
    imagenet_lt=dict(
        folder='ImageNet_LT',
        num_classes=1000,
        lists=dict(
            train='ImageNet_LT_train.txt',
            val='ImageNet_LT_val.txt',
            test='ImageNet_LT_test.txt')),
    inat2018=dict(
        folder='iNaturalist2018',
        num_classes=8142,
        lists=dict(
            train='iNaturalist18_train.txt', val='iNaturalist18_val.txt')),
    places_lt=dict(
        folder='Places_LT',
        num_classes=365,
        lists=dict(
            train='Places_LT_train.txt',
            val='Places_LT_val.txt',
            test='Places_LT_test.txt')),
)

_KINGDOMS = ('Plantae', 'Insecta', 'Aves', 'Reptilia', 'Mammalia', 'Fungi')


def image_path(benchmark: str, split: str, label: int, index: int) -> str:
    """Where the real list of ``benchmark`` puts image ``index`` of class
    ``label`` in ``split``."""
    if benchmark == 'imagenet_lt':
        wnid = f'n{label:08d}'
        if split == 'test':
            return f'val/{wnid}/ILSVRC2012_val_{label:05d}{index:03d}.JPEG'
        offset = 5000 if split == 'val' else 0
        return f'train/{wnid}/{wnid}_{index + offset}.JPEG'
    if benchmark == 'inat2018':
        kingdom = _KINGDOMS[label % len(_KINGDOMS)]
        offset = 5000 if split == 'val' else 0
        return (f'train_val2018/{kingdom}/{label}/'
                f'{label:05d}{index + offset:05d}.jpg')
    if benchmark == 'places_lt':
        if split == 'test':
            return f'val_256/Places365_val_{label:04d}{index:04d}.jpg'
        name = f'class{label:03d}'
        offset = 5000 if split == 'val' else 0
        return f'data_256/{name[0]}/{name}/{index + offset:08d}.jpg'
    raise ValueError(f'unknown benchmark {benchmark!r}')


@dataclass
class LTTree:
    """A written tree: its root and, per split, the labels in list order."""
    benchmark: str
    root: str
    labels: Dict[str, List[int]] = field(default_factory=dict)

    @property
    def spec(self) -> dict:
        return BENCHMARKS[self.benchmark]

    def list_file(self, split: str) -> str:
        return osp.join(self.root, self.spec['lists'][split])

    def counts(self, split: str = 'train') -> List[int]:
        return np.bincount(
            self.labels[split], minlength=self.spec['num_classes']).tolist()


def write_jpeg(path: str, rng: np.random.RandomState, size=(12, 16)) -> None:
    from PIL import Image
    os.makedirs(osp.dirname(path), exist_ok=True)
    pixels = rng.randint(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format='JPEG')


def write_lt_tree(root: str,
                  benchmark: str,
                  train_counts: Sequence[int],
                  val_per_class: int = 1,
                  test_per_class: int = 1,
                  eval_classes: Optional[Sequence[int]] = None,
                  seed: int = 0) -> LTTree:
    """Write a tiny ``benchmark`` tree under ``root/<its folder>``.

    Args:
        root (str): Parent folder (the tree goes into its ``data/`` name,
            e.g. ``root/ImageNet_LT``).
        benchmark (str): 'imagenet_lt', 'inat2018' or 'places_lt'.
        train_counts (Sequence[int]): Training images of class 0, 1, ...
            (the other classes get none).
        val_per_class (int): Val images per evaluated class. Defaults to 1.
        test_per_class (int): Test images per evaluated class (ImageNet-LT
            and Places-LT). Defaults to 1.
        eval_classes (Sequence[int], optional): Classes in the val / test
            lists (balanced over them). Defaults to the first four.
        seed (int): Seed of the pixels and the list order. Defaults to 0.

    Returns:
        LTTree: The data_root and the labels of every list.
    """
    spec = BENCHMARKS[benchmark]
    tree = LTTree(benchmark, osp.join(root, spec['folder']))
    rng = np.random.RandomState(seed)
    eval_classes = list(range(4) if eval_classes is None else eval_classes)
    per_split = dict(
        train=[(c, i) for c, n in enumerate(train_counts) for i in range(n)],
        val=[(c, i) for c in eval_classes for i in range(val_per_class)],
        test=[(c, i) for c in eval_classes for i in range(test_per_class)])
    for split in spec['lists']:
        items = per_split[split]
        order = rng.permutation(len(items))
        lines, labels = [], []
        for j in order:
            label, index = items[j]
            rel = image_path(benchmark, split, label, index)
            write_jpeg(osp.join(tree.root, rel), rng)
            lines.append(f'{rel} {label}\n')
            labels.append(label)
        with open(tree.list_file(split), 'w') as f:
            f.writelines(lines)
        tree.labels[split] = labels
    return tree


def config_counts(benchmark: str) -> List[int]:
    """Training counts for a tree every config of ``benchmark`` trains on:
    every class has an image (the count-based methods need a prior for
    each), class 0 is Many (> 100), class 1 Medium (20-100), the rest Few
    (< 20)."""
    num_classes = BENCHMARKS[benchmark]['num_classes']
    return [101, 20] + [1] * (num_classes - 2)


def smoke_options(data_root: str,
                  size: int = 32,
                  batch_size: int = 2,
                  save_checkpoint: bool = False,
                  validate: bool = False) -> dict:
    """The ``--cfg-options`` a user passes to try a config on a small
    machine: one training iteration at ``size`` x ``size`` (the stock
    pipelines' RandomResizedCrop / ResizeEdge / CenterCrop shrunk
    alike), ``batch_size`` images per process, no worker processes, the
    data at ``data_root``.

    Args:
        data_root (str): The tree (:attr:`LTTree.root`).
        size (int): Training crop and test crop. Defaults to 32.
        batch_size (int): Per process, every split. Defaults to 2.
        save_checkpoint (bool): Save ``iter_1.pth`` (weights only).
            Defaults to False.
        validate (bool): Run the val loop after the iteration. Defaults to
            False.

    Returns:
        dict: Dotted keys as ``--cfg-options`` takes them.
    """
    options = {
        'train_cfg._delete_': True,
        'train_cfg.type': 'IterBasedTrainLoop',
        'train_cfg.max_iters': 1,
        'train_cfg.val_interval': 1,
        # IterBasedTrainLoop validates after its last iteration unless the
        # first validation is set later.
        'train_cfg.val_begin': 1 if validate else 2,
        'train_dataloader.dataset.pipeline.1.scale': size,
    }
    for split in ('train', 'val', 'test'):
        options.update({
            f'{split}_dataloader.batch_size': batch_size,
            f'{split}_dataloader.num_workers': 0,
            f'{split}_dataloader.persistent_workers': False,
            f'{split}_dataloader.dataset.data_root': data_root,
        })
        if split != 'train':
            # ResizeEdge 256 -> CenterCrop 224, shrunk in proportion.
            options[f'{split}_dataloader.dataset.pipeline.1.scale'] = (
                size * 8 // 7)
            options[f'{split}_dataloader.dataset.pipeline.2.crop_size'] = size
    if save_checkpoint:
        options.update({
            'default_hooks.checkpoint.by_epoch': False,
            'default_hooks.checkpoint.interval': 1,
            'default_hooks.checkpoint.save_optimizer': False,
        })
    return options


def cli_words(options: dict) -> List[str]:
    """``options`` as the words after ``--cfg-options`` (lists without
    spaces, as DictAction reads them)."""
    words = []
    for key, value in options.items():
        if isinstance(value, (list, tuple)):
            value = str(list(value)).replace(' ', '')
        words.append(f'{key}={value}')
    return words


def tool_test_args(config: str,
                   checkpoint: str,
                   work_dir: str,
                   out: Optional[str] = None) -> argparse.Namespace:
    """What tools/test.py parses from ``CONFIG CHECKPOINT --work-dir W
    [--out OUT]`` (for :func:`mmnpe.cls.cli.run_test`, the function it
    calls)."""
    flags = ['--work-dir', str(work_dir), '--no-pin-memory']
    return parse_test_flags(config, checkpoint, *flags,
                            *(['--out', out] if out else []))
