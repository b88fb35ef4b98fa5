"""A synthetic long-tailed detection set in the LVIS v1 on-disk format.

Coloured shapes on a noisy background: every category is one (shape,
colour) pair, so telling categories apart needs both. Training images
per category fall geometrically from ``n_max`` to ``n_max / imbalance``, so
the set has LVIS's three frequency groups (r: 1-10 training images, c:
11-100, f: > 100, the categories' ``frequency`` tags); the frequent ones
(and the most frequent one) sometimes appear twice in an image, so instance
and image counts differ.
The validation images hold every category equally often (the class-balanced
AP of LVIS weighs categories equally anyway). Annotations are polygons
(``segmentation``), with boxes and areas computed from them; each image
lists the categories it does not hold as ``neg_category_ids``
(exhaustively annotated), as LVIS's federated evaluation reads them.

Layout, as mmdet's LVIS v1 configs expect under ``data_root``::

    annotations/lvis_v1_train.json   annotations/lvis_v1_val.json
    train2017/000000000001.png ...   val2017/...
"""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Tuple

import mmcv
import numpy as np

SHAPES = ('square', 'circle', 'triangle', 'cross')
COLOURS = {
    'red': (220, 40, 40),
    'green': (40, 190, 60),
    'blue': (50, 80, 230),
}
COCO_URL = 'http://images.cocodataset.org/'


def synthetic_lvis_classes(num_classes: int = 12) -> List[str]:
    """Category names, most frequent first: ``red_square``,
    ``green_circle`` ... (shape and colour both vary from one to the next).
    """
    names = [
        f'{c}_{s}' for i in range(len(SHAPES) * len(COLOURS))
        for s, c in [(SHAPES[i % len(SHAPES)],
                      list(COLOURS)[i % len(COLOURS)])]
    ]
    if not 2 <= num_classes <= len(names):
        raise ValueError(f'num_classes must be in [2, {len(names)}], got '
                         f'{num_classes!r}')
    return names[:num_classes]


def frequency_tag(image_count: int) -> str:
    """LVIS's frequency group of a category with ``image_count`` training
    images: 'r' (1-10), 'c' (11-100) or 'f' (> 100)."""
    return 'r' if image_count <= 10 else ('c' if image_count <= 100 else 'f')


def _polygon(shape: str, cx: float, cy: float, r: float,
             angle: float) -> np.ndarray:
    if shape == 'circle':
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif shape == 'square':
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * 0.8
    elif shape == 'triangle':
        t = np.array([-np.pi / 2, np.pi / 6, 5 * np.pi / 6])
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    else:  # cross
        a, b = 1.0, 0.35
        pts = np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b],
                        [b, a], [-b, a], [-b, b], [-a, b], [-a, -b], [-b, -b]])
    rot = np.array([[np.cos(angle), -np.sin(angle)],
                    [np.sin(angle), np.cos(angle)]])
    return pts @ rot.T * r + np.array([cx, cy])


def _area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)


def _draw_image(rng: np.random.RandomState, labels: List[int],
                classes: List[str], size: int) -> Tuple[np.ndarray, list]:
    """One image with an object per label; returns the image (BGR) and
    (label, polygon) pairs."""
    import cv2
    img = rng.randint(90, 150, (size, size, 1)).repeat(3, 2).astype(np.uint8)
    img = cv2.GaussianBlur(img, (5, 5), 0)
    placed: List[Tuple[float, float, float]] = []
    objects = []
    for label in labels:
        colour_name, shape = classes[label].split('_')
        for _ in range(50):
            r = rng.uniform(0.09, 0.18) * size
            cx, cy = rng.uniform(r, size - r, 2)
            if all(
                    math.hypot(cx - x, cy - y) > 0.9 * (r + q)
                    for x, y, q in placed):
                break
        placed.append((cx, cy, r))
        poly = _polygon(shape, cx, cy, r, rng.uniform(-0.4, 0.4))
        poly = np.clip(poly, 0, size - 1)
        colour = np.clip(
            np.array(COLOURS[colour_name]) + rng.randint(-25, 26, 3), 0, 255)
        cv2.fillPoly(img, [np.round(poly).astype(np.int32)],
                     tuple(int(c) for c in colour[::-1]))
        objects.append((label, poly))
    return img, objects


def _write_split(root: str, split: str, image_labels: List[List[int]],
                 classes: List[str], categories: List[dict], size: int,
                 rng: np.random.RandomState, first_image_id: int) -> None:
    folder = f'{split}2017'
    os.makedirs(osp.join(root, folder), exist_ok=True)
    images, annotations = [], []
    for i, labels in enumerate(image_labels):
        image_id = first_image_id + i
        name = f'{folder}/{image_id:012d}.png'
        img, objects = _draw_image(rng, labels, classes, size)
        mmcv.imwrite(img, osp.join(root, name))
        present = {label + 1 for label in labels}
        images.append(
            dict(
                id=image_id,
                width=size,
                height=size,
                coco_url=COCO_URL + name,
                date_captured='2026-01-01 00:00:00',
                license=0,
                neg_category_ids=sorted(c['id'] for c in categories
                                        if c['id'] not in present),
                not_exhaustive_category_ids=[]))
        for label, poly in objects:
            x1, y1 = poly.min(0)
            x2, y2 = poly.max(0)
            annotations.append(
                dict(
                    id=len(annotations) + 1 + first_image_id * 100,
                    image_id=image_id,
                    category_id=label + 1,
                    segmentation=[[round(float(v), 2) for v in poly.ravel()]],
                    area=round(_area(poly), 2),
                    bbox=[
                        round(float(x1), 2),
                        round(float(y1), 2),
                        round(float(x2 - x1), 2),
                        round(float(y2 - y1), 2)
                    ]))
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    with open(osp.join(root, 'annotations', f'lvis_v1_{split}.json'),
              'w') as f:
        json.dump(
            dict(
                info=dict(description='mmnpe synthetic LVIS-format set'),
                licenses=[dict(id=0, name='generated', url='')],
                images=images,
                annotations=annotations,
                categories=categories), f)


def generate_synthetic_lvis(root: str,
                            num_train: int = 200,
                            val_per_class: int = 6,
                            size: int = 96,
                            num_classes: int = 12,
                            n_max: int = 160,
                            imbalance: float = 50.0,
                            seed: int = 0) -> Dict[str, list]:
    """Write the set under ``root`` (see the module docstring).

    Args:
        root (str): The ``data_root``.
        num_train (int): Training images, >= ``n_max``. Defaults to 200.
        val_per_class (int): Validation images per category (2 categories
            per image). Defaults to 6.
        size (int): Square image side in pixels. Defaults to 96.
        num_classes (int): Categories, 2..12. Defaults to 12.
        n_max (int): Training images of the most frequent category.
            Defaults to 160.
        imbalance (float): ``n_max`` over the rarest category's images,
            >= 1. Defaults to 50.
        seed (int): Seed of the generator. Defaults to 0.

    Returns:
        dict: ``classes``, ``frequency`` (tags), ``image_counts`` and
        ``instance_counts`` of the training split, one per category.
    """
    if n_max > num_train:
        raise ValueError(f'n_max ({n_max}) must not exceed num_train '
                         f'({num_train}): a category is in n_max images')
    if not imbalance >= 1:
        raise ValueError(f'imbalance must be >= 1, got {imbalance!r}')
    classes = synthetic_lvis_classes(num_classes)
    rng = np.random.RandomState(seed)
    image_counts = [
        max(1, int(round(n_max * imbalance**(-i / (num_classes - 1)))))
        for i in range(num_classes)
    ]
    train: List[List[int]] = [[] for _ in range(num_train)]
    instance_counts = [0] * num_classes
    for label, n in enumerate(image_counts):
        for i in rng.choice(num_train, n, replace=False):
            # Frequent categories (f, and always the most frequent one)
            # sometimes twice in an image.
            frequent = label == 0 or frequency_tag(n) == 'f'
            times = 2 if frequent and rng.rand() < 0.15 else 1
            train[i] += [label] * times
            instance_counts[label] += times
    categories = [
        dict(
            id=label + 1,
            name=name,
            synset=f'{name}.n.01',
            synonyms=[name],
            def_=None,
            frequency=frequency_tag(image_counts[label]),
            image_count=image_counts[label],
            instance_count=instance_counts[label])
        for label, name in enumerate(classes)
    ]
    for c in categories:
        c['def'] = f'a {c["name"].replace("_", " ")}'
        del c['def_']
    val_labels = [
        label for label in range(num_classes) for _ in range(val_per_class)
    ]
    rng.shuffle(val_labels)
    val = [val_labels[i:i + 2] for i in range(0, len(val_labels), 2)]
    _write_split(root, 'train', train, classes, categories, size, rng, 1)
    _write_split(root, 'val', val, classes, categories, size, rng,
                 num_train + 1)
    return dict(
        classes=classes,
        frequency=[c['frequency'] for c in categories],
        image_counts=image_counts,
        instance_counts=instance_counts)
