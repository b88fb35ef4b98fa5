import math
import os.path as osp
import pickle
from numbers import Real
from typing import List, Optional

import mmengine.dist as dist
import numpy as np
from mmengine.fileio import exists, join_path
from mmpretrain.datasets import CIFAR10, CIFAR100
from mmpretrain.datasets.utils import download_and_extract_archive
from mmpretrain.registry import DATASETS


def lt_class_counts(num_per_class: int, num_classes: int,
                    imbalance_ratio: float) -> List[int]:
    """LDAM profile ``n_i = int(n_max * rho ** (-i / (C - 1)))``."""
    return [
        int(num_per_class * imbalance_ratio**(-i / (num_classes - 1)))
        for i in range(num_classes)
    ]


def lt_subsample(labels: np.ndarray,
                 imbalance_ratio: float,
                 seed: int = 0) -> np.ndarray:
    """Indices of the long-tailed subset, LDAM protocol.

    One generator seeded once with ``seed``; for each class in label order
    its indices are shuffled and the first ``n_i`` kept (`Cao et al. 2019
    <https://arxiv.org/abs/1906.07413>`_), so ``seed=0`` reproduces the
    subsets of the long-tail literature.

    Args:
        labels (np.ndarray): Labels of the full, balanced set, (N,).
        imbalance_ratio (float): rho = n_max / n_min, >= 1.
        seed (int): Seed. Defaults to 0.

    Returns:
        np.ndarray: Selected indices, grouped by class.

    Raises:
        ValueError: If ``imbalance_ratio`` leaves a class without images.
    """
    classes = np.unique(labels)
    num_per_class = len(labels) // len(classes)
    counts = lt_class_counts(num_per_class, len(classes), imbalance_ratio)
    empty = [int(c) for c, n in zip(classes, counts) if n < 1]
    if empty:
        # An empty class would vanish from training and from the counts
        # every prior is computed from (log 0).
        raise ValueError(
            f'imbalance_ratio={imbalance_ratio:g} leaves class {empty[0]} '
            f'without training images (n_i = int({num_per_class} * '
            f'rho^(-i/{len(classes) - 1})) = 0 for classes {empty}); with '
            f'{num_per_class} images per class keep imbalance_ratio < '
            f'{num_per_class}')
    rng = np.random.RandomState(seed)
    keep = []
    for cls, num in zip(classes, counts):
        idx = np.where(labels == cls)[0]
        rng.shuffle(idx)
        keep.append(idx[:num])
    return np.concatenate(keep)


def _check_ratio(imbalance_ratio) -> float:
    if (isinstance(imbalance_ratio, bool)
            or not isinstance(imbalance_ratio, Real)
            or not math.isfinite(imbalance_ratio) or imbalance_ratio < 1):
        raise ValueError('imbalance_ratio must be a finite number >= 1 '
                         f'(1 keeps the full set), got {imbalance_ratio!r}')
    return float(imbalance_ratio)


class _LTMixin:
    """Long-tailed training split on top of mmpretrain's CIFAR datasets.

    The training split is subsampled with :func:`lt_subsample` and exposes
    its per-class counts as ``metainfo['train_class_counts']`` (what
    Many/Medium/Few groups are defined by). The test split stays balanced and
    whole and needs no ``imbalance_ratio``; given one, its metainfo also
    carries the training counts of that rho. Without one it carries none:
    :class:`ClassCountsHook` gives :class:`LongTailAccuracy` the counts of
    the training set the config actually trains on.
    """

    # rho of the train split when none is given (the LDAM default).
    default_imbalance_ratio = 100

    def __init__(self,
                 data_root: str = '',
                 split: str = 'train',
                 imbalance_ratio: Optional[float] = None,
                 seed: int = 0,
                 download: bool = False,
                 verify_md5: bool = True,
                 **kwargs) -> None:
        if imbalance_ratio is None and split == 'train':
            imbalance_ratio = self.default_imbalance_ratio
        self.imbalance_ratio = (None if imbalance_ratio is None else
                                _check_ratio(imbalance_ratio))
        self.seed = seed
        self.verify_md5 = verify_md5
        super().__init__(
            data_root=data_root, split=split, download=download, **kwargs)

    def _folder(self) -> str:
        return join_path(self.data_prefix['root'], self.base_folder)

    def _how_to_get(self) -> str:
        return (f'download {self.url}, extract it so that '
                f'{self._folder()}/{self.train_list[0][0]} exists, and pass '
                'its parent folder as data_root (or set download=True where '
                'the internet is reachable)')

    def _check_integrity(self) -> bool:
        if self.verify_md5:
            return super()._check_integrity()
        return all(
            exists(join_path(self._folder(), name))
            for name, _ in self.train_list + self.test_list)

    def _read(self, files) -> tuple:
        """Images (N, 32, 32, 3) and labels (N,) of the named batch files."""
        imgs, labels = [], []
        for name, _ in files:
            entry = self._unpickle(join_path(self._folder(), name))
            imgs.append(np.asarray(entry['data']).reshape(-1, 3, 32, 32))
            labels.extend(entry.get('labels', entry.get('fine_labels', [])))
        imgs = np.concatenate(imgs).transpose(0, 2, 3, 1)
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) != len(imgs):
            raise RuntimeError(
                f'{type(self).__name__}: {len(imgs)} images but '
                f'{len(labels)} labels in {self._folder()}; '
                f'{self._how_to_get()}')
        return imgs, labels

    def _unpickle(self, path: str) -> dict:
        try:
            with open(path, 'rb') as f:
                entry = pickle.load(f, encoding='latin1')
        except (OSError, pickle.UnpicklingError, EOFError, ValueError) as e:
            raise RuntimeError(f'{type(self).__name__}: cannot read {path} '
                               f'({e}); {self._how_to_get()}') from None
        if not isinstance(entry, dict) or 'data' not in entry:
            raise RuntimeError(f'{type(self).__name__}: {path} is not a CIFAR '
                               f'python batch; {self._how_to_get()}')
        return entry

    def load_data_list(self) -> list:
        """Load the split, each file once; subsample the train split."""
        if self.download:
            if dist.is_main_process() and not self._check_integrity():
                download_and_extract_archive(
                    self.url,
                    self.data_prefix['root'],
                    filename=self.filename,
                    md5=self.tgz_md5)
            dist.barrier()
        if not osp.isdir(self._folder()):
            raise RuntimeError(f'{type(self).__name__}: no data at '
                               f'{self._folder()}; {self._how_to_get()}')
        if not self._check_integrity():
            raise RuntimeError(
                f'{type(self).__name__}: files in {self._folder()} are '
                'missing or corrupt (md5 mismatch: pass verify_md5=False for '
                f'a re-packed copy); {self._how_to_get()}')
        if self.split == 'train':
            imgs, labels = self._read(self.train_list)
            train_labels = labels
        else:
            imgs, labels = self._read(self.test_list)
            train_labels = (None if self.imbalance_ratio is None else
                            self._read(self.train_list)[1])
        if train_labels is not None:
            keep = lt_subsample(train_labels, self.imbalance_ratio, self.seed)
            counts = np.bincount(
                train_labels[keep], minlength=len(self.metainfo['classes']))
            self._metainfo['train_class_counts'] = counts.tolist()
            self._metainfo['imbalance_ratio'] = self.imbalance_ratio
        if self.split == 'train':
            imgs, labels = imgs[keep], labels[keep]
        return [
            dict(img=img, gt_label=int(label))
            for img, label in zip(imgs, labels)
        ]


@DATASETS.register_module()
class CIFAR10LT(_LTMixin, CIFAR10):
    """CIFAR-10-LT: mmpretrain's :class:`CIFAR10` with a long-tailed train
    split (LDAM protocol; rho=100 keeps 12 406 images).

    Reads the standard ``cifar-10-batches-py`` pickle folder under
    ``data_root``; ``download=False`` by default so nothing hangs offline.

    Args:
        data_root (str): Folder holding ``cifar-10-batches-py``.
        split (str): 'train' (long-tailed) or 'test' (balanced, whole).
        imbalance_ratio (float, optional): rho, finite and >= 1, of the
            long-tailed training split. Defaults to None: 100 on the train
            split; on the test split, no ``metainfo['train_class_counts']``
            (given one, the training counts of that rho).
        seed (int): Seed of the subsampling. Defaults to 0.
        download (bool): Download when missing. Defaults to False.
        verify_md5 (bool): Check the official md5 sums. Defaults to True.
        **kwargs: Arguments of :class:`CIFAR10`.
    """


@DATASETS.register_module()
class CIFAR100LT(_LTMixin, CIFAR100):
    """CIFAR-100-LT: mmpretrain's :class:`CIFAR100` with a long-tailed train
    split (LDAM protocol; rho=100 keeps 10 847 images).

    Reads the standard ``cifar-100-python`` pickle folder under
    ``data_root``; arguments as :class:`CIFAR10LT`.
    """
