"""Class counts as an LVIS annotation file states them."""
import json

from mmnpe.engine import DETECTION_KINDS


def lvis_category_counts(ann_file: str, kind: str = 'instances') -> dict:
    """The ``instance_count`` or ``image_count`` of every category of an
    LVIS v1 annotation file, in category-id order (mmdet's label order).

    These describe the file's annotations; what a model trains on can
    differ (repeat-factor sampling repeats images, ``filter_cfg`` drops
    some): ``ClassCountsHook`` and ``tools/analysis/class_counts.py`` count
    the built training set instead, and equal these on a set neither
    repeats nor filters.

    Args:
        ann_file (str): Path of ``lvis_v1_train.json`` (or a file in its
            format).
        kind (str): 'instances' or 'images'. Defaults to 'instances'.

    Returns:
        dict: ``{"kind", "classes", "counts", "num_images"}`` as
        :func:`mmnpe.engine.count_dataset_classes` gives them
        (``num_images``: the distinct images with at least one annotation,
        the ``n`` of the image frequencies ``image_count_j / n``; the
        training set that ``filter_cfg=dict(filter_empty_gt=True)`` builds,
        which :class:`ClassCountsHook` counts, holds these images; the
        file's images without annotations are left out, as that filter
        drops them, while its ``min_size`` filter is not applied).
    """
    if kind not in DETECTION_KINDS:
        raise ValueError(f'kind must be one of {DETECTION_KINDS}, got '
                         f'{kind!r}')
    key = 'instance_count' if kind == 'instances' else 'image_count'
    with open(ann_file) as f:
        data = json.load(f)
    categories = sorted(data['categories'], key=lambda c: c['id'])
    missing = [c['name'] for c in categories if key not in c]
    if missing:
        raise ValueError(f'{ann_file}: categories without {key!r} (an LVIS '
                         f'v1 file has it), e.g. {missing[0]!r}')
    return dict(
        kind=kind,
        classes=[c['name'] for c in categories],
        counts=[int(c[key]) for c in categories],
        num_images=len({a['image_id']
                        for a in data.get('annotations', [])}))
