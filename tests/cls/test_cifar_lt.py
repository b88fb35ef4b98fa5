import math
import os

import numpy as np
import pytest
from helpers import write_fake_cifar
from mmpretrain.registry import DATASETS

from mmnpe.cls import CIFAR10LT, CIFAR100LT
from mmnpe.cls.datasets import lt_class_counts, lt_subsample


@pytest.mark.parametrize('num_classes,rho,total', [(10, 100, 12406),
                                                   (10, 200, 11203),
                                                   (10, 50, 13996),
                                                   (10, 10, 20431),
                                                   (100, 100, 10847),
                                                   (100, 200, 9502),
                                                   (100, 50, 12608),
                                                   (100, 10, 19573)])
def test_ldam_totals_of_the_literature(num_classes, rho, total):
    assert sum(lt_class_counts(50000 // num_classes, num_classes,
                               rho)) == total


def test_subsample_matches_the_ldam_reference_procedure():
    """Seed numpy once, then per class in label order: shuffle, keep n_i."""
    labels = np.repeat(np.arange(10), 500)
    np.random.RandomState(1).shuffle(labels)
    counts = lt_class_counts(500, 10, 100)
    np.random.seed(0)
    reference = []
    for c, n in zip(range(10), counts):
        idx = np.where(labels == c)[0]
        np.random.shuffle(idx)
        reference.append(idx[:n])
    assert np.array_equal(
        lt_subsample(labels, 100, seed=0), np.concatenate(reference))


def test_same_seed_same_indices_other_seed_other_indices():
    labels = np.repeat(np.arange(10), 100)
    a, b = lt_subsample(labels, 10, 0), lt_subsample(labels, 10, 0)
    c = lt_subsample(labels, 10, 1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.array_equal(np.bincount(labels[a]), np.bincount(labels[c]))


@pytest.mark.parametrize('cls,num_classes', [(CIFAR10LT, 10),
                                             (CIFAR100LT, 100)])
def test_reads_real_pickle_format_train_lt_test_balanced(
        tmp_path, cls, num_classes):
    root = write_fake_cifar(str(tmp_path), num_classes, train_per_class=30)
    train = cls(
        data_root=root, split='train', imbalance_ratio=10, verify_md5=False)
    test = cls(
        data_root=root, split='test', imbalance_ratio=10, verify_md5=False)
    expected = lt_class_counts(30, num_classes, 10)
    assert len(train) == sum(expected)
    assert np.bincount(train.get_gt_labels()).tolist() == expected
    assert train.metainfo['train_class_counts'] == expected
    assert test.metainfo['train_class_counts'] == expected
    assert len(test) == 3 * num_classes
    assert np.bincount(test.get_gt_labels()).tolist() == [3] * num_classes
    info = train.get_data_info(0)
    assert info['img'].shape == (32, 32, 3) and info['img'].dtype == np.uint8


@pytest.mark.parametrize('cls,num_classes', [(CIFAR10LT, 10),
                                             (CIFAR100LT, 100)])
def test_test_split_needs_no_rho_and_then_claims_no_training_counts(
        tmp_path, cls, num_classes):
    """The balanced test split is the same without rho; it then carries no
    training counts (which would otherwise be the default rho's, not those
    of the training set the config trains on), and the train split still
    defaults to rho = 100."""
    root = write_fake_cifar(str(tmp_path), num_classes, train_per_class=30)
    bare = cls(data_root=root, split='test', verify_md5=False)
    given = cls(
        data_root=root, split='test', imbalance_ratio=10, verify_md5=False)
    assert bare.imbalance_ratio is None
    assert 'train_class_counts' not in bare.metainfo
    assert 'imbalance_ratio' not in bare.metainfo
    assert np.array_equal(bare.get_gt_labels(), given.get_gt_labels())
    assert all(
        np.array_equal(
            bare.get_data_info(i)['img'],
            given.get_data_info(i)['img']) for i in range(len(bare)))
    # rho = 100 on 30 images per class leaves the tail empty: the default
    # reached the train split.
    with pytest.raises(ValueError, match='imbalance_ratio=100 leaves class'):
        cls(data_root=root, split='train', verify_md5=False)


def test_rho_one_is_the_full_set_and_registered(tmp_path):
    root = write_fake_cifar(str(tmp_path), 10, train_per_class=12)
    ds = DATASETS.build(
        dict(
            type='CIFAR10LT',
            data_root=root,
            imbalance_ratio=1,
            verify_md5=False))
    assert len(ds) == 120


def test_real_files_are_md5_checked_by_default(tmp_path):
    root = write_fake_cifar(str(tmp_path), 10)
    with pytest.raises(RuntimeError, match='missing or corrupt'):
        CIFAR10LT(data_root=root)


# None is not among them: it is the default (100 on the train split, none
# on the test split; see above).
@pytest.mark.parametrize('rho', [0.5, 0, -3, math.nan, math.inf, '100', True])
def test_bad_imbalance_ratio(tmp_path, rho):
    with pytest.raises(
            ValueError, match='imbalance_ratio must be a finite '
            'number >= 1'):
        CIFAR10LT(data_root=str(tmp_path), imbalance_ratio=rho)


def test_missing_folder_names_path_and_how_to_get_it(tmp_path):
    with pytest.raises(RuntimeError) as err:
        CIFAR100LT(data_root=str(tmp_path / 'nowhere'), verify_md5=False)
    msg = str(err.value)
    assert 'nowhere/cifar-100-python' in msg
    assert 'cifar-100-python.tar.gz' in msg and 'download' in msg


def test_corrupt_file_names_the_path(tmp_path):
    root = write_fake_cifar(str(tmp_path), 10)
    bad = os.path.join(root, 'cifar-10-batches-py', 'data_batch_3')
    with open(bad, 'wb') as f:
        f.write(b'not a pickle')
    with pytest.raises(RuntimeError, match='data_batch_3'):
        CIFAR10LT(data_root=root, verify_md5=False)


def test_download_true_fetches_when_missing(tmp_path, monkeypatch):
    """download=True calls the archive download (mocked: no network here)
    and then reads what it extracted; download=False never does."""
    import mmnpe.cls.datasets.cifar_lt as cifar_lt
    calls = []

    def fake_download(url, root, filename, md5):
        calls.append((url, filename))
        write_fake_cifar(root, 10)

    monkeypatch.setattr(cifar_lt, 'download_and_extract_archive',
                        fake_download)
    ds = CIFAR10LT(
        data_root=str(tmp_path / 'd'),
        download=True,
        verify_md5=False,
        imbalance_ratio=1)
    assert calls == [(CIFAR10LT.url, 'cifar-10-python.tar.gz')]
    assert len(ds) == 300
    with pytest.raises(RuntimeError, match='no data at'):
        CIFAR10LT(data_root=str(tmp_path / 'e'), verify_md5=False)
    assert len(calls) == 1
