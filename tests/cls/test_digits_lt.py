import numpy as np
import pytest
from mmpretrain.registry import DATASETS

from mmnpe.cls import DigitsLT
from mmnpe.cls.datasets import lt_class_counts


def test_long_tailed_train_balanced_disjoint_test():
    train = DigitsLT(split='train', imbalance_ratio=50)
    test = DigitsLT(split='test', imbalance_ratio=50)
    counts = np.bincount(train.get_gt_labels(), minlength=10)
    assert counts.tolist() == train.metainfo['train_class_counts']
    assert counts.tolist() == test.metainfo['train_class_counts']
    n_max = counts[0]
    assert counts.tolist() == lt_class_counts(n_max, 10, 50)
    assert counts[0] > 100 and counts[-1] < 20  # Many and Few both exist
    assert np.bincount(test.get_gt_labels()).tolist() == [50] * 10
    img = train.get_data_info(0)['img']
    assert img.shape == (8, 8, 3) and img.dtype == np.uint8
    train_imgs = {
        train.get_data_info(i)['img'].tobytes()
        for i in range(len(train))
    }
    test_imgs = {
        test.get_data_info(i)['img'].tobytes()
        for i in range(len(test))
    }
    # sklearn digits has a few exact duplicates; the splits share almost none.
    assert len(train_imgs & test_imgs) <= 2


def test_test_split_needs_no_rho_and_then_claims_no_training_counts():
    """The held-out images do not depend on rho; without one the test split
    carries no training counts, and the train split defaults to rho = 50."""
    bare = DigitsLT(split='test')
    given = DigitsLT(split='test', imbalance_ratio=10)
    assert bare.imbalance_ratio is None
    assert 'train_class_counts' not in bare.metainfo
    assert np.array_equal(bare.get_gt_labels(), given.get_gt_labels())
    assert all(
        np.array_equal(
            bare.get_data_info(i)['img'],
            given.get_data_info(i)['img']) for i in range(len(bare)))
    train = DigitsLT(split='train')
    assert train.imbalance_ratio == 50
    assert train.metainfo['train_class_counts'] == DigitsLT(
        split='test', imbalance_ratio=50).metainfo['train_class_counts']


def test_deterministic_and_registered():
    a = DATASETS.build(dict(type='DigitsLT', seed=0)).get_gt_labels()
    b = DATASETS.build(dict(type='DigitsLT', seed=0)).get_gt_labels()
    c = DATASETS.build(dict(type='DigitsLT', seed=1)).get_gt_labels()
    assert np.array_equal(a, b) and len(a) == len(c)


@pytest.mark.parametrize('kwargs,match', [
    (dict(imbalance_ratio=0.5), 'imbalance_ratio must be a finite number'),
    (dict(split='val'), "split must be 'train' or 'test'"),
    (dict(num_test_per_class=0), 'num_test_per_class'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DigitsLT(**kwargs)
