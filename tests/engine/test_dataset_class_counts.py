"""Counting images / pixels per class over a config's training data set,
and tools/analysis/class_counts.py, on data in the real on-disk formats;
every count is compared with a direct numpy count of the files."""
import glob
import json
import os.path as osp
import subprocess
import sys

import mmcv
import numpy as np
import pytest
from helpers import write_fake_cifar
from mmengine.config import Config

from mmnpe.engine import (build_counting_dataset, count_dataset_classes,
                          counting_pipeline)
from mmnpe.seg import SyntheticLTDataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')


def _cfg(path, **options):
    cfg = Config.fromfile(osp.join(CONFIGS, path))
    cfg.merge_from_dict(options)
    return cfg


def _png_counts(pattern, num_classes, reduce_zero_label=False):
    """Direct numpy count of annotation PNGs (ignored label: 255)."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for f in sorted(glob.glob(pattern)):
        ann = mmcv.imread(f, 'unchanged').astype(np.int64).ravel()
        if reduce_zero_label:
            ann = ann[ann != 0] - 1
        ann = ann[ann != 255]
        counts += np.bincount(ann, minlength=num_classes)
    return counts.tolist()


def test_counting_pipeline_keeps_only_annotation_loaders():
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', reduce_zero_label=True),
        dict(type='RandomResize', scale=(2048, 512)),
        dict(type='RandomCrop', crop_size=(512, 512)),
        dict(type='RandomFlip', prob=0.5),
        dict(type='LoadBiomedicalAnnotation'),
        dict(type='PackSegInputs')
    ]
    assert [t['type'] for t in counting_pipeline(pipeline)
            ] == ['LoadAnnotations', 'LoadBiomedicalAnnotation']


def test_pixels_of_the_synthetic_set(synthetic_root):
    cfg = _cfg('demo/fcn_unet-tiny_synthetic-lt-64x64.py',
               **{'train_dataloader.dataset.data_root': synthetic_root})
    result = count_dataset_classes(build_counting_dataset(cfg))
    assert result['kind'] == 'pixels'
    assert result['classes'] == list(SyntheticLTDataset.METAINFO['classes'])
    want = _png_counts(
        osp.join(synthetic_root, 'ann_dir', 'train', '*.png'), 6)
    assert result['counts'] == want
    assert sum(want) == 4 * 32 * 32  # every pixel labelled, counted once


def _write_ade(root):
    """ADE20K layout; label 0 ('other') must be dropped (reduce_zero_label)
    and 1..150 shifted down; images are not the annotation's size."""
    rng = np.random.default_rng(1)
    for split in ('training', 'validation'):
        for i in range(2):
            img = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
            ann = rng.choice([0, 1, 7, 150], size=(40, 48)).astype(np.uint8)
            mmcv.imwrite(
                img, osp.join(root, 'images', split,
                              f'ADE_{split}_{i:08d}.jpg'))
            mmcv.imwrite(
                ann,
                osp.join(root, 'annotations', split,
                         f'ADE_{split}_{i:08d}.png'))


def test_pixels_of_ade20k_honour_reduce_zero_label_without_augmentation(
        tmp_path):
    _write_ade(str(tmp_path))
    # The paper config trains with RandomResize / RandomCrop / flips: they
    # must not change what is counted.
    cfg = _cfg('npe/deeplabv3_ade20k_pem_fcn.py',
               **{'train_dataloader.dataset.data_root': str(tmp_path)})
    result = count_dataset_classes(build_counting_dataset(cfg))
    assert result['kind'] == 'pixels' and len(result['classes']) == 150
    want = _png_counts(
        str(tmp_path / 'annotations' / 'training' / '*.png'),
        150,
        reduce_zero_label=True)
    assert result['counts'] == want
    assert want[0] > 0 and want[6] > 0 and want[149] > 0


def _write_stare(root):
    rng = np.random.default_rng(2)
    for split in ('training', 'validation'):
        for i in range(2):
            img = rng.integers(0, 255, (30, 20, 3), dtype=np.uint8)
            ann = (rng.random((30, 20)) > 0.8).astype(np.uint8)
            mmcv.imwrite(img, osp.join(root, 'images', split, f'im{i}.png'))
            mmcv.imwrite(ann,
                         osp.join(root, 'annotations', split, f'im{i}.ah.png'))


def test_pixels_of_stare_count_each_image_once_through_repeat(tmp_path):
    _write_stare(str(tmp_path))
    cfg = _cfg('npe/unet_stare_pem_fcn.py',
               **{'train_dataloader.dataset.dataset.data_root': str(tmp_path)})
    assert cfg.train_dataloader.dataset.type == 'RepeatDataset'
    result = count_dataset_classes(build_counting_dataset(cfg))
    want = _png_counts(
        str(tmp_path / 'annotations' / 'training' / '*.ah.png'), 2)
    assert result['counts'] == want and sum(want) == 2 * 30 * 20


# rho the fake set can hold: a class left empty is refused.
@pytest.mark.parametrize('num_classes,rho', [(10, 10), (100, 3)])
def test_images_of_fake_cifar_lt(tmp_path, num_classes, rho):
    per_class = 20 if num_classes == 10 else 4
    root = write_fake_cifar(
        str(tmp_path),
        num_classes,
        train_per_class=per_class,
        test_per_class=1)
    ds = 'cifar10_lt' if num_classes == 10 else 'cifar100_lt'
    cfg = _cfg(
        f'cifar_lt/{ds}/ce_resnet32_hp2_{ds.replace("_", "-")}-r50.py', **{
            'train_dataloader.dataset.data_root': root,
            'train_dataloader.dataset.verify_md5': False,
            'train_dataloader.dataset.imbalance_ratio': rho
        })
    dataset = build_counting_dataset(cfg)
    result = count_dataset_classes(dataset)
    assert result['kind'] == 'images'
    assert result['classes'] == list(dataset.metainfo['classes'])
    assert len(result['classes']) == num_classes
    # The LDAM profile, closed form (every class has per_class images).
    want = [
        int(per_class * rho**(-i / (num_classes - 1)))
        for i in range(num_classes)
    ]
    assert result['counts'] == want
    assert result['counts'] == dataset.metainfo['train_class_counts']


def test_images_of_a_multi_label_set_count_each_image_once_per_class():
    from mmpretrain.datasets import MultiLabelDataset

    class Tiny(MultiLabelDataset):
        METAINFO = dict(classes=('a', 'b', 'c'))

        def load_data_list(self):
            return [
                dict(img_path='x', gt_label=labels)
                for labels in ([0, 2], [2], [1, 2], [2, 2])
            ]

    result = count_dataset_classes(Tiny(ann_file='', pipeline=[]))
    assert result == dict(
        kind='images', classes=['a', 'b', 'c'], counts=[1, 1, 4])


def test_no_train_dataloader_and_labels_out_of_range_are_errors(
        synthetic_root, tmp_path):
    with pytest.raises(ValueError, match='no train_dataloader.dataset'):
        build_counting_dataset(Config(dict(default_scope='mmseg')))
    # A label that is neither a class nor ignore_index.
    bad = tmp_path / 'bad'
    for sub in ('img_dir/train', 'ann_dir/train'):
        (bad / sub).mkdir(parents=True)
    mmcv.imwrite(
        np.zeros((4, 4, 3), np.uint8), str(bad / 'img_dir/train/a.png'))
    mmcv.imwrite(
        np.full((4, 4), 9, np.uint8), str(bad / 'ann_dir/train/a.png'))
    cfg = _cfg('demo/fcn_unet-tiny_synthetic-lt-64x64.py',
               **{'train_dataloader.dataset.data_root': str(bad)})
    with pytest.raises(ValueError, match=r'label 9 is neither a class'):
        count_dataset_classes(build_counting_dataset(cfg))


def test_the_tool_writes_the_json(tmp_path, synthetic_root):
    out = tmp_path / 'counts.json'
    proc = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'analysis', 'class_counts.py'),
        osp.join(CONFIGS, 'demo',
                 'fcn_unet-tiny_synthetic-lt-64x64.py'), '--out',
        str(out), '--cfg-options',
        f'train_dataloader.dataset.data_root={synthetic_root}'
    ],
                          capture_output=True,
                          text=True,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data['kind'] == 'pixels' and len(data['classes']) == 6
    assert data['counts'] == _png_counts(
        osp.join(synthetic_root, 'ann_dir', 'train', '*.png'), 6)
    assert '4/4' in proc.stdout + proc.stderr  # the progress bar ran
