import os.path as osp

import mmcv
import numpy as np
import pytest
from mmseg.registry import DATASETS

from mmnpe.seg import SyntheticLTDataset, generate_synthetic_lt


def test_layout_counts_and_long_tail(tmp_path):
    counts = generate_synthetic_lt(str(tmp_path), num_train=24, num_val=6)
    for split, num in (('train', 24), ('val', 6)):
        for sub in ('img_dir', 'ann_dir'):
            files = sorted((tmp_path / sub / split).glob('*.png'))
            assert len(files) == num
    img = mmcv.imread(str(tmp_path / 'img_dir/train/train_0000.png'))
    ann = mmcv.imread(
        str(tmp_path / 'ann_dir/train/train_0000.png'), flag='unchanged')
    assert img.shape == (64, 64, 3) and ann.shape == (64, 64)
    assert ann.dtype == np.uint8 and ann.max() <= 5
    train = counts['train']
    assert len(train) == 6 and (train > 0).all()
    assert train.sum() == 24 * 64 * 64
    assert train.max() / train.min() >= 50
    assert list(np.argsort(-train)) == [0, 1, 2, 3, 4, 5]


def test_deterministic(tmp_path):
    a = generate_synthetic_lt(
        str(tmp_path / 'a'), num_train=3, num_val=1, size=32)
    b = generate_synthetic_lt(
        str(tmp_path / 'b'), num_train=3, num_val=1, size=32)
    assert all((a[k] == b[k]).all() for k in a)
    for name in ('img_dir/train/train_0002.png', 'ann_dir/val/val_0000.png'):
        assert (mmcv.imread(str(tmp_path / 'a' / name)) == mmcv.imread(
            str(tmp_path / 'b' / name))).all()


def test_classes_overlap_in_appearance(tmp_path):
    """Neighbouring classes share colours: a nearest-mean pixel classifier
    cannot separate them, so the prior matters."""
    generate_synthetic_lt(str(tmp_path), num_train=16, num_val=1)
    pixels, labels = [], []
    for i in range(16):
        name = f'train_{i:04d}.png'
        pixels.append(
            mmcv.imread(str(tmp_path / 'img_dir/train' / name)).reshape(
                -1, 3).astype(float))
        labels.append(
            mmcv.imread(
                str(tmp_path / 'ann_dir/train' / name),
                flag='unchanged').ravel())
    pixels, labels = np.concatenate(pixels), np.concatenate(labels)
    means = np.stack([pixels[labels == k].mean(0) for k in range(6)])
    nearest = np.argmin(((pixels[:, None] - means[None])**2).sum(-1), axis=1)
    per_class = [(nearest[labels == k] == k).mean() for k in range(1, 6)]
    assert max(per_class) < 0.9


def test_dataset_reads_the_layout(synthetic_root):
    ds = DATASETS.build(
        dict(
            type='SyntheticLTDataset',
            data_root=synthetic_root,
            data_prefix=dict(
                img_path='img_dir/train', seg_map_path='ann_dir/train'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations'),
                dict(type='PackSegInputs')
            ]))
    assert isinstance(ds, SyntheticLTDataset) and len(ds) == 4
    assert len(ds.metainfo['classes']) == 6
    item = ds[0]
    assert item['inputs'].shape == (3, 32, 32)
    assert item['data_samples'].gt_sem_seg.data.max() <= 5
    assert osp.basename(item['data_samples'].img_path) == 'train_0000.png'


@pytest.mark.parametrize('kwargs,match', [
    (dict(size=40), 'multiple of 16'),
    (dict(area_shares=(0.6, 0.5, 0.1, 0.1, 0.1)), 'sum to < 1'),
    (dict(area_shares=(0.1, 0.1)), 'must have 5 entries'),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_synthetic_lt(str(tmp_path), **kwargs)
