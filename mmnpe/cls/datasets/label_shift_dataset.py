import copy
import logging
from numbers import Integral
from typing import List, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset, force_full_init
from mmengine.logging import print_log
from mmpretrain.registry import DATASETS

from mmnpe.functional import label_shift_profile


def _labels(dataset) -> np.ndarray:
    """One class index per sample, through the data set's public API."""
    if hasattr(dataset, 'get_gt_labels'):
        return np.asarray(dataset.get_gt_labels(), dtype=np.int64)
    labels = []
    for i in range(len(dataset)):
        cat = dataset.get_cat_ids(i)
        if len(cat) != 1:
            raise ValueError(
                'LabelShiftDataset needs one class label per sample '
                f'(single-label classification), got {len(cat)} labels for '
                f'sample {i}')
        labels.append(int(cat[0]))
    return np.asarray(labels, dtype=np.int64)


def label_shift_indices(labels: np.ndarray,
                        num_classes: int,
                        rho: float,
                        direction: str = 'forward',
                        seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """The samples :class:`LabelShiftDataset` keeps, from the labels alone.

    Args:
        labels (np.ndarray): Class of every sample of the (balanced) set,
            (N,).
        num_classes (int): C.
        rho (float): >= 1.
        direction (str): 'forward' or 'backward'.
        seed (int): Seed. Defaults to 0.

    Returns:
        tuple[np.ndarray, np.ndarray]: The kept indices, sorted, and the
        kept samples per class, (C,).
    """
    weights = label_shift_profile(num_classes, rho, direction).numpy()
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 1 or (labels.size and
                            (labels.min() < 0 or labels.max() >= num_classes)):
        raise ValueError(f'labels must be (N,) classes in [0, '
                         f'{num_classes - 1}], got shape {labels.shape}')
    available = np.bincount(labels, minlength=num_classes)
    if available.min() == 0:
        empty = np.nonzero(available == 0)[0].tolist()
        raise ValueError(
            'a label-shifted subset needs samples of every class, got none '
            f'of class(es) {empty[:10]}')
    if available.min() != available.max():
        print_log(
            'LabelShiftDataset: the wrapped dataset is not balanced '
            f'({available.min()} to {available.max()} samples per class); '
            f'the shift starts from {available.min()} per class',
            logger='current',
            level=logging.WARNING)
    n = int(available.min())
    counts = np.maximum(1, (n * weights).astype(np.int64))
    rng = np.random.RandomState(seed)
    keep = []
    for cls in range(num_classes):
        idx = np.nonzero(labels == cls)[0]
        keep.append(rng.permutation(idx)[:counts[cls]])
    return np.sort(np.concatenate(keep)), counts


@DATASETS.register_module()
class LabelShiftDataset:
    """A test set subsampled to a shifted class prior, for label-shift
    evaluation.

    The protocol of the long-tail literature's shifted test sets (LADE,
    SADE): per class ``n_i = max(1, int(n * w_i))`` samples of a (balanced)
    test set, ``n`` the size of its smallest class and ``w_i`` the profile
    of :func:`mmnpe.functional.label_shift_profile`: forward
    ``rho^(-i/(C-1))`` (class 0 most frequent, as the long-tailed training
    set), backward ``rho^(-(C-1-i)/(C-1))``; rho in 2, 5, 10, 25, 50.
    Every class keeps at least one sample, so the realised prior has full
    support and every class's accuracy is defined. The seed draws which
    samples of a class are kept (one generator, classes in label order, as
    the long-tailed training sets are drawn); the kept samples stay in the
    data set's order.

    A wrapper in mmengine's style (like :class:`ClassBalancedDataset`)::

        test_dataloader = dict(dataset=dict(
            type='LabelShiftDataset', rho=10, direction='forward', seed=0,
            dataset=dict(type='DigitsLT', split='test', ...)))

    ``metainfo`` is the wrapped set's plus ``target_class_counts`` (the
    realised samples per class), ``target_prior`` (their proportions) and
    ``label_shift`` (``rho``, ``direction``, ``seed``); the training counts
    (``train_class_counts``) pass through, so :class:`LongTailAccuracy`
    still groups classes by their training frequency.

    Args:
        dataset (BaseDataset | dict): The (balanced) test set.
        rho (float): Ratio of the most to the least frequent class, >= 1
            (1: the balanced set cut to its smallest class). Defaults to 10.
        direction (str): 'forward' or 'backward'. Defaults to 'forward'.
        seed (int): Seed of the subsampling. Defaults to 0.
        lazy_init (bool): Defer building the subset to :meth:`full_init`.
            Defaults to False.
    """

    def __init__(self,
                 dataset: Union[BaseDataset, dict],
                 rho: float = 10,
                 direction: str = 'forward',
                 seed: int = 0,
                 lazy_init: bool = False) -> None:
        # Checked before the wrapped set is built; C comes later.
        label_shift_profile(2, rho, direction)
        if isinstance(seed, bool) or not isinstance(seed, Integral):
            raise ValueError(f'seed must be an int, got {seed!r}')
        if isinstance(dataset, dict):
            self.dataset = DATASETS.build(dataset)
        elif isinstance(dataset, BaseDataset) or hasattr(
                dataset, 'get_gt_labels'):
            self.dataset = dataset
        else:
            raise TypeError('dataset must be a dataset config (dict) or a '
                            'built classification dataset, got '
                            f'{type(dataset).__name__}')
        self.rho = float(rho)
        self.direction = direction
        self.seed = int(seed)
        self._metainfo = self.dataset.metainfo
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """The wrapped set's metainfo with the shifted counts."""
        return copy.deepcopy(self._metainfo)

    def full_init(self) -> None:
        """Draw the subset (once)."""
        if self._fully_initialized:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        labels = _labels(self.dataset)
        classes = self._metainfo.get('classes')
        c = len(classes) if classes is not None else int(labels.max()) + 1
        indices, counts = label_shift_indices(labels, c, self.rho,
                                              self.direction, self.seed)
        self.indices: List[int] = indices.tolist()
        self._metainfo['target_class_counts'] = counts.tolist()
        self._metainfo['target_prior'] = (counts / counts.sum()).tolist()
        self._metainfo['label_shift'] = dict(
            rho=self.rho, direction=self.direction, seed=self.seed)
        self._labels = labels[self.indices]
        self._fully_initialized = True

    @force_full_init
    def get_gt_labels(self) -> np.ndarray:
        """The classes of the kept samples, (N,)."""
        return self._labels.copy()

    @force_full_init
    def get_cat_ids(self, idx: int) -> List[int]:
        """The class of the ``idx``-th kept sample, as a list."""
        return [int(self._labels[idx])]

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """The annotation of the ``idx``-th kept sample."""
        return self.dataset.get_data_info(self.indices[idx])

    def __getitem__(self, idx: int) -> dict:
        if not self._fully_initialized:
            self.full_init()
        return self.dataset[self.indices[idx]]

    @force_full_init
    def __len__(self) -> int:
        return len(self.indices)
