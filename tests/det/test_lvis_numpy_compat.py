"""The lvis 0.5.3 / numpy >= 1.24 workaround: lvis.eval, and only it, sees
a numpy with the removed ``float`` alias; numpy itself is unchanged; the
patch is idempotent and applies only where needed. LVISMetric end to end:
tests/det/test_det_tools.py."""
import types

import numpy as np
import pytest

from mmnpe.det import patch_lvis_numpy

lvis_eval = pytest.importorskip('lvis.eval')


def test_numpy_is_unchanged_and_lacks_float():
    # The premise: the pinned numpy removed np.float (1.24).
    assert not hasattr(np, 'float')


def test_lvis_eval_sees_numpy_with_float_after_import():
    import mmnpe.det  # noqa: F401  (applies the patch)
    ns = lvis_eval.np
    assert ns is not np
    assert ns.float is float
    # Everything else is numpy's own.
    assert ns.cumsum is np.cumsum and ns.ndarray is np.ndarray
    tp = ns.cumsum(np.array([[1, 0, 1]]), axis=1).astype(dtype=ns.float)
    assert tp.dtype == np.float64
    assert 'float' in dir(ns) and 'cumsum' in dir(ns)


def test_patch_is_idempotent_and_scoped():
    assert patch_lvis_numpy() is True
    first = lvis_eval.np
    assert patch_lvis_numpy() is True and lvis_eval.np is first
    other = types.ModuleType('other')
    other.np = np
    assert patch_lvis_numpy(other) is True
    assert other.np.float is float and not hasattr(np, 'float')
    # A module that does not use numpy as `np` is left alone.
    unrelated = types.ModuleType('unrelated')
    unrelated.np = object()
    assert patch_lvis_numpy(unrelated) is False


def test_accumulate_runs_with_the_patch(tmp_path):
    """LVISEval on a one-image ground truth: evaluate() and accumulate()
    (the np.float lines) and a perfect AP of 1."""
    import json

    from lvis import LVIS, LVISEval, LVISResults
    gt = dict(
        images=[
            dict(
                id=1,
                width=32,
                height=32,
                neg_category_ids=[2],
                not_exhaustive_category_ids=[])
        ],
        annotations=[
            dict(
                id=1,
                image_id=1,
                category_id=1,
                bbox=[4, 4, 10, 10],
                area=100,
                segmentation=[[4, 4, 14, 4, 14, 14, 4, 14]])
        ],
        categories=[
            dict(id=1, name='a', frequency='f', image_count=1),
            dict(id=2, name='b', frequency='r', image_count=1)
        ])
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(gt))
    lvis_gt = LVIS(str(path))
    dt = LVISResults(
        lvis_gt,
        [dict(image_id=1, category_id=1, bbox=[4, 4, 10, 10], score=0.9)])
    ev = LVISEval(lvis_gt, dt, 'bbox')
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.get_results()['APf'] == pytest.approx(1.0)
