import math
from typing import Iterator, List, Optional, Sized

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.logging import print_log
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import Sampler


def _image_labels(dataset: Sized) -> List[np.ndarray]:
    """The class indices of every image, through the data set's public API.

    ``get_gt_labels()`` (MMPretrain) when it gives one integer label per
    image, else ``get_cat_ids(idx)`` per image (multi-label sets, MMDet,
    MMEngine's wrappers), so an image with several labels joins the pool of
    each of its classes.
    """
    n = len(dataset)
    if hasattr(dataset, 'get_gt_labels'):
        try:
            labels = np.asarray(dataset.get_gt_labels())
        except ValueError:  # ragged multi-label lists
            labels = None
        if (labels is not None and labels.shape == (n, )
                and np.issubdtype(labels.dtype, np.integer)):
            return [labels[i:i + 1] for i in range(n)]
    if not hasattr(dataset, 'get_cat_ids'):
        raise TypeError(
            'ClassBalancedSampler needs the labels of the data set through '
            'get_gt_labels() or get_cat_ids(idx); '
            f'{type(dataset).__name__} has neither')
    return [
        np.unique(np.asarray(dataset.get_cat_ids(i), dtype=np.int64))
        for i in range(n)
    ]


# Registered in mmengine's root registry: mmpretrain and mmseg configs (whose
# registries fall back to the root) both find it.
@DATA_SAMPLERS.register_module()
class ClassBalancedSampler(Sampler):
    """Class-balanced sampling: draw a class uniformly, then an image of it.

    The sampler of the decoupling paper's classifier re-training (cRT,
    `Kang et al. 2020 <https://arxiv.org/abs/1910.09217>`_): every class is
    seen equally often in expectation, whatever its number of images, so
    tail images repeat and head images are skipped. Draws are i.i.d. with
    replacement.

    Determinism and DDP: every epoch draws one *global* sequence of
    ``ceil(num_samples / world_size) * world_size`` indices from a generator
    seeded with ``seed + epoch`` (the seed is shared by all ranks, as in
    MMEngine's ``DefaultSampler``); rank ``r`` takes positions
    ``r, r + world_size, ...``. The ranks' shares are therefore disjoint
    slices of one draw whose union is that draw, and ``set_epoch`` (called
    by ``DistSamplerSeedHook`` and by the iteration-based loop, also after
    ``resume``) changes the draw deterministically.

    Labels are read once, at construction, through the data set's public
    API (``get_gt_labels()`` or ``get_cat_ids(idx)``). Classes without any
    image cannot be drawn; they are left out with a warning.

    Args:
        dataset (Sized): The data set (MMPretrain ``BaseDataset`` or any
            data set with ``get_cat_ids``).
        num_samples (int, optional): Draws per epoch over all ranks. None
            means ``len(dataset)``. Defaults to None.
        seed (int, optional): Random seed; None draws one and shares it
            across ranks (``sync_random_seed``). The Runner passes the
            config's ``randomness.seed``. Defaults to None.
    """

    def __init__(self,
                 dataset: Sized,
                 num_samples: Optional[int] = None,
                 seed: Optional[int] = None) -> None:
        if num_samples is not None and (isinstance(num_samples, bool)
                                        or not isinstance(num_samples, int)
                                        or num_samples < 1):
            raise ValueError('num_samples must be None (the data set length) '
                             f'or an int >= 1, got {num_samples!r}')
        rank, world_size = get_dist_info()
        self.rank = rank
        self.world_size = world_size
        self.dataset = dataset
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.epoch = 0
        if len(dataset) == 0:
            raise ValueError('ClassBalancedSampler got an empty data set')

        labels = _image_labels(dataset)
        all_ids = np.concatenate(labels) if labels else np.zeros(0, int)
        if all_ids.size == 0:
            raise ValueError(f'{type(dataset).__name__}: no image carries a '
                             'label, so there is no class to balance')
        classes = list(getattr(dataset, 'metainfo', {}).get('classes') or [])
        num_classes = max(len(classes), int(all_ids.max()) + 1)
        image_of = np.repeat(
            np.arange(len(labels)), [len(ids) for ids in labels])
        order = np.argsort(all_ids, kind='stable')
        counts = np.bincount(all_ids, minlength=num_classes)
        present = np.flatnonzero(counts)
        if present.size < num_classes:
            empty = np.flatnonzero(counts == 0).tolist()
            print_log(
                f'ClassBalancedSampler: classes {empty} have no image and '
                'are never drawn',
                logger='current',
                level=30)
        #: Images grouped by class (class-major, ascending image index).
        self.pool = torch.as_tensor(image_of[order], dtype=torch.long)
        sizes = counts[present]
        #: The drawable classes, their pool sizes and offsets into ``pool``.
        self.classes = torch.as_tensor(present, dtype=torch.long)
        self.class_sizes = torch.as_tensor(sizes, dtype=torch.long)
        self.class_offsets = torch.as_tensor(
            np.concatenate([[0], np.cumsum(sizes)[:-1]]), dtype=torch.long)

        self.num_samples_global = (
            len(dataset) if num_samples is None else num_samples)
        # Equal shares: every rank runs the same number of iterations.
        self.num_samples = math.ceil(self.num_samples_global / world_size)
        self.total_size = self.num_samples * world_size

    def global_indices(self) -> torch.Tensor:
        """The epoch's draw over all ranks, (total_size, ) image indices."""
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        which = torch.randint(
            len(self.classes), (self.total_size, ), generator=g)
        sizes = self.class_sizes[which]
        u = torch.rand(self.total_size, generator=g, dtype=torch.float64)
        # floor(u * size) is uniform over the class's images; the minimum
        # guards the u * size == size rounding edge.
        pos = torch.minimum((u * sizes).long(), sizes - 1)
        return self.pool[self.class_offsets[which] + pos]

    def __iter__(self) -> Iterator[int]:
        indices = self.global_indices()[self.rank:self.total_size:self.
                                        world_size]
        return iter(indices.tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Select the draw of ``epoch`` (the same on every rank)."""
        self.epoch = epoch
