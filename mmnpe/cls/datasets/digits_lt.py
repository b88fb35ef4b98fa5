from typing import Optional

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from .cifar_lt import _check_ratio, lt_subsample


@DATASETS.register_module()
class DigitsLT(BaseDataset):
    """Long-tailed handwritten digits: real data that ships offline.

    scikit-learn's 8x8 digits (1 797 images, 10 classes). For every class a
    fixed number of images is held out as a balanced test split; the rest
    is made long-tailed with the CIFAR-LT (LDAM) profile and seeding, so the
    classification demo runs the paper's protocol end to end without
    downloads. Images are uint8 (8, 8, 3), grey replicated to 3 channels.
    ``metainfo['train_class_counts']`` holds the long-tailed training counts
    on the train split, and on the test split when it is given an
    ``imbalance_ratio`` (the held-out images do not depend on it; without
    one, :class:`ClassCountsHook` gives :class:`LongTailAccuracy` the counts
    of the training set the config trains on).

    Args:
        split (str): 'train' or 'test'. Defaults to 'train'.
        imbalance_ratio (float, optional): rho, finite and >= 1, of the
            long-tailed training part. Defaults to None: 50 on the train
            split; on the test split, no ``metainfo['train_class_counts']``.
        num_test_per_class (int): Held-out images per class. Defaults to 50.
        seed (int): Seed of the split and the subsampling. Defaults to 0.
        **kwargs: Arguments of :class:`BaseDataset` (``pipeline`` ...).
    """
    METAINFO = dict(classes=tuple(str(i) for i in range(10)))

    # rho of the train split when none is given.
    default_imbalance_ratio = 50

    def __init__(self,
                 split: str = 'train',
                 imbalance_ratio: Optional[float] = None,
                 num_test_per_class: int = 50,
                 seed: int = 0,
                 **kwargs) -> None:
        if split not in ('train', 'test'):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if not isinstance(num_test_per_class,
                          int) or not (0 < num_test_per_class < 150):
            raise ValueError('num_test_per_class must be an int in [1, 149], '
                             f'got {num_test_per_class!r}')
        self.split = split
        if imbalance_ratio is None and split == 'train':
            imbalance_ratio = self.default_imbalance_ratio
        self.imbalance_ratio = (None if imbalance_ratio is None else
                                _check_ratio(imbalance_ratio))
        self.num_test_per_class = num_test_per_class
        self.seed = seed
        super().__init__(ann_file='', **kwargs)

    def load_data_list(self) -> list:
        """Split the digits, subsample the training part, build the list."""
        from sklearn.datasets import load_digits
        digits = load_digits()
        images = np.clip(digits.images * 16, 0, 255).astype(np.uint8)
        labels = digits.target.astype(np.int64)
        rng = np.random.RandomState(self.seed)
        test_idx, pool_idx = [], []
        for cls in range(10):
            idx = np.where(labels == cls)[0]
            rng.shuffle(idx)
            test_idx.append(idx[:self.num_test_per_class])
            pool_idx.append(idx[self.num_test_per_class:])
        chosen = np.concatenate(test_idx)
        if self.imbalance_ratio is not None:  # always so on the train split
            train_idx = self._train_indices(labels, np.concatenate(pool_idx))
            self._metainfo['train_class_counts'] = np.bincount(
                labels[train_idx], minlength=10).tolist()
            self._metainfo['imbalance_ratio'] = self.imbalance_ratio
            if self.split == 'train':
                chosen = train_idx
        return [
            dict(
                img=np.repeat(images[i][..., None], 3, axis=2),
                gt_label=int(labels[i])) for i in chosen
        ]

    def _train_indices(self, labels: np.ndarray,
                       pool_idx: np.ndarray) -> np.ndarray:
        """The long-tailed training part of the pool (indices into
        ``labels``): the CIFAR-LT profile from the smallest pool, so that
        every class can fill its quota."""
        pool_labels = labels[pool_idx]
        n_max = np.bincount(pool_labels).min()
        balanced = np.concatenate(
            [pool_idx[pool_labels == c][:n_max] for c in range(10)])
        return balanced[lt_subsample(labels[balanced], self.imbalance_ratio,
                                     self.seed)]
