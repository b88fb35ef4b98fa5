"""Writes the synthetic long-tailed segmentation data set to disk."""
import os.path as osp
from typing import Dict, Sequence

import mmcv
import numpy as np

from .synthetic_lt_dataset import SyntheticLTDataset

# Share of image area each class covers on average (background takes the
# rest, ~0.73): the most/least frequent pixel ratio is ~90.
DEFAULT_AREA_SHARES = (0.12, 0.07, 0.045, 0.025, 0.008)


def _smooth_noise(rng: np.random.Generator, size: int, std: float,
                  cell: int) -> np.ndarray:
    """Low-frequency noise field (size, size, 3): blocky noise, upsampled."""
    coarse = rng.normal(0, std, (size // cell + 2, size // cell + 2, 3))
    return mmcv.imresize(
        coarse.astype(np.float32), (size, size), interpolation='bicubic')


def generate_synthetic_lt(data_root: str,
                          num_train: int = 64,
                          num_val: int = 16,
                          size: int = 64,
                          area_shares: Sequence[float] = DEFAULT_AREA_SHARES,
                          seed: int = 0) -> Dict[str, np.ndarray]:
    """Write a deterministic long-tailed segmentation set in mmseg layout.

    Class ``k >= 1`` appears as elliptic regions covering on average
    ``area_shares[k-1]`` of each image on a textured background (class 0).
    Region colours are drawn around class means that lie close together on
    one colour ramp, so neighbouring classes overlap in appearance and a
    classifier must fall back on the class prior for ambiguous regions.

    Args:
        data_root (str): Folder to write ``img_dir/`` and ``ann_dir/`` into.
        num_train (int): Training images. Defaults to 64.
        num_val (int): Validation images. Defaults to 16.
        size (int): Image side in pixels, a multiple of 16. Defaults to 64.
        area_shares (Sequence[float]): Mean area share of classes 1..C-1,
            summing to < 1.
        seed (int): Seed of the generator. Defaults to 0.

    Returns:
        dict: ``{'train': counts, 'val': counts}``, pixels per class.
    """
    if size % 16 or size < 32:
        raise ValueError(
            f'size must be a multiple of 16 and >= 32, got {size}')
    num_fg = len(SyntheticLTDataset.METAINFO['classes']) - 1
    if len(area_shares) != num_fg:
        raise ValueError(f'area_shares must have {num_fg} entries (classes '
                         f'1..{num_fg} of SyntheticLTDataset), got '
                         f'{len(area_shares)}')
    if sum(area_shares) >= 1 or min(area_shares) <= 0:
        raise ValueError('area_shares must be positive and sum to < 1, got '
                         f'{tuple(area_shares)}')
    num_classes = len(area_shares) + 1
    rng = np.random.default_rng(seed)
    # Class means on a ramp in BGR; spacing (~26) below the region noise (~17
    # per channel, ~30 as a vector) makes neighbouring classes overlap.
    ramp = np.linspace(0, 1, num_classes)[:, None]
    means = np.array([70., 150., 110.]) + ramp * np.array([110., -40., 60.])
    counts = {}
    yy, xx = np.mgrid[0:size, 0:size]
    for split, num in (('train', num_train), ('val', num_val)):
        hist = np.zeros(num_classes, dtype=np.int64)
        for i in range(num):
            label = np.zeros((size, size), dtype=np.uint8)
            # Rare classes are drawn last so they are not painted over.
            for k, share in enumerate(area_shares, start=1):
                target = share * size * size
                while target > 0:
                    area = min(target * rng.uniform(0.5, 1.5),
                               size * size * 0.15)
                    if rng.random() > target / max(area, 1.0):
                        break
                    ry = np.sqrt(area / np.pi) * rng.uniform(0.7, 1.4)
                    rx = area / (np.pi * ry)
                    cy, cx = rng.uniform(0, size, 2)
                    inside = ((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 <= 1
                    label[inside] = k
                    target -= area
            img = means[0] + _smooth_noise(rng, size, 18., 8)
            for k in range(1, num_classes):
                mask = label == k
                if mask.any():
                    img[mask] = (
                        means[k] + rng.normal(0, 17., 3) +
                        _smooth_noise(rng, size, 6., 4)[mask])
            img += rng.normal(0, 8., img.shape)
            img = np.clip(img, 0, 255).astype(np.uint8)
            name = f'{split}_{i:04d}.png'
            mmcv.imwrite(img, osp.join(data_root, 'img_dir', split, name))
            mmcv.imwrite(label, osp.join(data_root, 'ann_dir', split, name))
            hist += np.bincount(label.ravel(), minlength=num_classes)
        counts[split] = hist
    return counts
