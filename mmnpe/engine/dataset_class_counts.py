"""Count classes over a training data set: images (cls), pixels (seg),
instances or images (det).

The logic of ``tools/analysis/class_counts.py`` and of
:class:`ClassCountsHook`. Host-agnostic by duck typing: a data set with
``get_gt_labels()`` (MMPretrain) is counted in images per class, one whose
pipeline yields ``gt_seg_map`` (MMSegmentation) in pixels per class, one
whose data infos hold ``instances`` with a ``bbox_label`` (MMDetection) in
instances (default) or images per class.

Detection counts describe what the model is trained on: an image that a
``ClassBalancedDataset`` repeats (repeat-factor sampling, as mmdet's LVIS
configs do) or a ``RepeatDataset`` repeats counts as often as it is
repeated; instances flagged ``ignore_flag`` (crowd) are not counted.
"""
import copy
import json
import os
import os.path as osp
import sys
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config, ConfigDict
from mmengine.dataset import ConcatDataset
from mmengine.registry import DATASETS, init_default_scope
from mmengine.utils import ProgressBar


def _type_name(transform) -> str:
    t = transform.get('type', '') if isinstance(transform, dict) else ''
    return t if isinstance(t, str) else getattr(t, '__name__', '')


def counting_pipeline(pipeline: Sequence[dict]) -> List[dict]:
    """The annotation loaders of ``pipeline``, nothing else.

    Counts are taken on the original annotation: no random crop, flip or
    resize changes them, and images need not be decoded. Loaders are the
    transforms whose type ends with ``Annotations`` or ``Annotation``
    (``LoadAnnotations``, ``LoadBiomedicalAnnotation`` ...); they read
    ``reduce_zero_label`` and ``label_map`` from the data set as in training.
    """
    return [
        copy.deepcopy(t) for t in pipeline
        if _type_name(t).endswith(('Annotations', 'Annotation'))
    ]


def pipeline_dataset_cfgs(dataset_cfg: dict) -> List[dict]:
    """The dataset configs under ``dataset_cfg`` (itself included) that hold
    a ``pipeline``, as references: wrappers (``dataset=``) and
    concatenations (``datasets=``) are walked through."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if 'pipeline' in node:
                found.append(node)
            walk(node.get('dataset'))
            for sub in node.get('datasets', []) or []:
                walk(sub)

    walk(dataset_cfg)
    return found


def map_pipelines(dataset_cfg: dict, fn: Callable[[Sequence[dict]],
                                                  List[dict]]) -> dict:
    """A copy of ``dataset_cfg`` with every (nested) pipeline ``p`` replaced
    by ``fn(p)``; wrappers are kept.

    The one walk over data-set configs: counting cuts the pipelines to their
    annotation loaders (:func:`counting_dataset_cfg`), the analysis tools
    read the training set with the test pipeline.
    """
    cfg = copy.deepcopy(dataset_cfg)
    for node in pipeline_dataset_cfgs(cfg):
        node['pipeline'] = fn(node['pipeline'])
    return cfg


def counting_dataset_cfg(dataset_cfg: dict) -> dict:
    """``dataset_cfg`` with every (nested) pipeline cut to its annotation
    loaders (see :func:`counting_pipeline`); wrappers are kept."""
    return map_pipelines(dataset_cfg, counting_pipeline)


def build_counting_dataset(cfg: Config, split: str = 'train_dataloader'):
    """Build ``cfg[split].dataset`` as training would, augmentation off.

    Args:
        cfg (Config): A full mmseg / mmpretrain config.
        split (str): The dataloader whose data set to count. Defaults to
            'train_dataloader'.

    Returns:
        The built data set (pipelines reduced to annotation loaders).
    """
    loader = cfg.get(split)
    if not isinstance(loader, dict) or 'dataset' not in loader:
        raise ValueError(f'the config has no {split}.dataset to count '
                         'classes over')
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    ds_cfg = counting_dataset_cfg(loader['dataset'])
    if isinstance(ds_cfg, ConfigDict):
        ds_cfg = ds_cfg.to_dict()
    return DATASETS.build(ds_cfg)


def dataset_parts(dataset) -> list:
    """The distinct underlying data sets of a built ``dataset``: a repeat /
    class-balanced wrapper (anything with a ``dataset`` and no ``pipeline``
    of its own) gives its inner data set, so every image appears once; a
    concatenation gives every part."""
    if isinstance(dataset, ConcatDataset):
        return [p for d in dataset.datasets for p in dataset_parts(d)]
    inner = getattr(dataset, 'dataset', None)
    if inner is not None and not hasattr(dataset, 'pipeline'):
        return dataset_parts(inner)
    return [dataset]


def _image_counts(dataset, num_classes: int, progress: bool) -> np.ndarray:
    try:
        labels = np.asarray(dataset.get_gt_labels())
    except ValueError:  # multi-label: ragged lists of label indices
        labels = None
    if labels is not None and labels.ndim == 1 and labels.dtype != object:
        labels = labels.astype(np.int64)
        bad = labels[(labels < 0) | (labels >= num_classes)]
        if bad.size:
            raise ValueError(f'{type(dataset).__name__}: label {bad[0]} is '
                             f'outside [0, {num_classes})')
        return np.bincount(labels, minlength=num_classes)
    # Multi-label: count every image once per class it carries.
    counts = np.zeros(num_classes, dtype=np.int64)
    bar = ProgressBar(len(dataset), file=sys.stderr) if progress else None
    for i in range(len(dataset)):
        ids = np.unique(np.asarray(dataset.get_cat_ids(i), dtype=np.int64))
        counts[ids] += 1
        if bar:
            bar.update()
    return counts


def _pixel_counts(dataset, num_classes: int, progress: bool) -> np.ndarray:
    ignore_index = getattr(dataset, 'ignore_index', 255)
    counts = np.zeros(num_classes, dtype=np.int64)
    bar = ProgressBar(len(dataset), file=sys.stderr) if progress else None
    for i in range(len(dataset)):
        item = dataset[i]
        seg = item.get('gt_seg_map') if isinstance(item, dict) else None
        if seg is None:
            raise ValueError(
                f'{type(dataset).__name__}: item {i} has no gt_seg_map after '
                'the annotation loaders; the training pipeline needs a '
                'LoadAnnotations step')
        seg = np.asarray(seg).ravel()
        seg = seg[seg != ignore_index].astype(np.int64)
        bad = seg[(seg < 0) | (seg >= num_classes)]
        if bad.size:
            info = dataset.get_data_info(i)
            raise ValueError(
                f'{info.get("seg_map_path", f"item {i}")}: label {bad[0]} is '
                f'neither a class index in [0, {num_classes}) nor '
                f'ignore_index={ignore_index}')
        counts += np.bincount(seg, minlength=num_classes)
        if bar:
            bar.update()
    return counts


#: What a detection data set can be counted in.
DETECTION_KINDS = ('instances', 'images')


def _is_detection(part) -> bool:
    if hasattr(part, 'get_gt_labels') or not hasattr(part, 'get_data_info'):
        return False
    if len(part) == 0:
        return False
    info = part.get_data_info(0)
    return isinstance(info, dict) and isinstance(info.get('instances'), list)


def repeated_parts(dataset) -> List[Tuple[object, np.ndarray]]:
    """The underlying data sets of ``dataset``, each with how many times the
    wrappers repeat each of its images, (len(part), ) int64.

    ``ClassBalancedDataset`` repeats image ``i`` ``repeat_indices.count(i)``
    times, ``RepeatDataset`` every image ``times`` times; concatenations give
    every part; other wrappers (anything with a ``dataset`` and no
    ``pipeline`` of its own) count each image once.
    """
    if isinstance(dataset, ConcatDataset):
        return [pw for d in dataset.datasets for pw in repeated_parts(d)]
    inner = getattr(dataset, 'dataset', None)
    if inner is None or hasattr(dataset, 'pipeline'):
        return [(dataset, np.ones(len(dataset), dtype=np.int64))]
    if not getattr(dataset, '_fully_initialized', True):
        dataset.full_init()  # lazy_init=True: repeat factors not computed
    parts = repeated_parts(inner)
    if hasattr(dataset, 'repeat_indices'):
        total = sum(len(w) for _, w in parts)
        times = np.bincount(
            np.asarray(dataset.repeat_indices, dtype=np.int64),
            minlength=total)
        out, start = [], 0
        for part, weights in parts:
            out.append((part, weights * times[start:start + len(weights)]))
            start += len(weights)
        return out
    times = getattr(dataset, 'times', None)
    if isinstance(times, int):
        return [(part, weights * times) for part, weights in parts]
    return parts


def _instance_counts(dataset, weights: np.ndarray, num_classes: int, kind: str,
                     progress: bool) -> np.ndarray:
    counts = np.zeros(num_classes, dtype=np.int64)
    bar = ProgressBar(len(dataset), file=sys.stderr) if progress else None
    for i in range(len(dataset)):
        if weights[i]:
            info = dataset.get_data_info(i)
            labels = np.asarray([
                inst['bbox_label'] for inst in info['instances']
                if not inst.get('ignore_flag', 0)
            ],
                                dtype=np.int64)
            bad = labels[(labels < 0) | (labels >= num_classes)]
            if bad.size:
                raise ValueError(
                    f'{info.get("img_path", f"image {i}")}: bbox_label '
                    f'{bad[0]} is outside [0, {num_classes})')
            if kind == 'images':
                labels = np.unique(labels)
            np.add.at(counts, labels, weights[i])
        if bar:
            bar.update()
    return counts


def count_dataset_classes(dataset,
                          progress: bool = False,
                          kind: Optional[str] = None) -> dict:
    """Images (cls), pixels (seg), or instances / images (det) per class of
    ``dataset``.

    Args:
        dataset: A built MMPretrain data set (has ``get_gt_labels``), an
            MMSegmentation one whose pipeline yields ``gt_seg_map`` (build it
            with :func:`build_counting_dataset` so augmentation is off;
            ``ignore_index`` pixels are not counted), or an MMDetection one
            (data infos with ``instances``). Classification and segmentation
            wrappers are unwrapped (see :func:`dataset_parts`); detection
            counts follow the wrappers' repeats (see
            :func:`repeated_parts`).
        progress (bool): Show mmengine's progress bar. Defaults to False.
        kind (str, optional): For a detection data set, 'instances' or
            'images' (images that hold the class); None means the data set's
            default: images (cls), pixels (seg), instances (det). Defaults to
            None.

    Returns:
        dict: ``{"kind": "images"|"pixels"|"instances", "classes": [...],
        "counts": [...]}``, counts as Python ints, one per class; a
        detection data set adds ``"num_images"``, the images trained on
        (repeats included).
    """
    classes = list(dataset.metainfo.get('classes') or [])
    if not classes:
        raise ValueError(f'{type(dataset).__name__} has no '
                         "metainfo['classes'] to count over")
    if kind is not None and kind not in DETECTION_KINDS + ('pixels', ):
        raise ValueError(f'kind must be None or one of '
                         f'{DETECTION_KINDS + ("pixels", )}, got {kind!r}')
    weighted = repeated_parts(dataset)
    if all(_is_detection(p) for p, _ in weighted):
        kind = kind or 'instances'
        if kind not in DETECTION_KINDS:
            raise ValueError(f'a detection data set is counted in '
                             f'{DETECTION_KINDS}, got kind={kind!r}')
        counts = np.zeros(len(classes), dtype=np.int64)
        for part, weights in weighted:
            counts += _instance_counts(part, weights, len(classes), kind,
                                       progress)
        # The images trained on, repeats included: the n of image
        # frequencies image_count_j / number_of_images.
        num_images = int(sum(int(w.sum()) for _, w in weighted))
        return dict(
            kind=kind,
            classes=classes,
            counts=[int(c) for c in counts],
            num_images=num_images)
    if kind in DETECTION_KINDS and kind != 'images':
        raise ValueError(f'kind={kind!r} counts a detection data set, but '
                         f'{type(dataset).__name__} is not one (its data '
                         'infos hold no instances)')
    parts = dataset_parts(dataset)
    found = 'images' if all(hasattr(p, 'get_gt_labels')
                            for p in parts) else 'pixels'
    if kind is not None and kind != found:
        raise ValueError(f'kind={kind!r} was asked, but '
                         f'{type(dataset).__name__} is counted in {found}')
    kind = found
    counts = np.zeros(len(classes), dtype=np.int64)
    for part in parts:
        if kind == 'images':
            counts += _image_counts(part, len(classes), progress)
        else:
            counts += _pixel_counts(part, len(classes), progress)
    return dict(kind=kind, classes=classes, counts=[int(c) for c in counts])


def write_class_counts(result: dict, path: str) -> None:
    """Write ``result`` of :func:`count_dataset_classes` as JSON."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(result, f, indent=2)
        f.write('\n')
