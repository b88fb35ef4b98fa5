import json
import math

import numpy as np
import pytest
import torch
from mmpretrain.registry import METRICS
from mmpretrain.structures import DataSample

from mmnpe.cls import LongTailAccuracy

COUNTS = [500, 150, 60, 25, 10, 5]  # many, many, medium, medium, few, few


def test_closed_form_groups():
    target = np.array([0, 0, 1, 2, 3, 3, 4, 5, 5, 5])
    pred = np.array([0, 1, 1, 2, 3, 0, 0, 5, 5, 0])
    out = LongTailAccuracy.calculate(pred, target, COUNTS)
    per_class = [50., 100., 100., 50., 0., 200 / 3]
    np.testing.assert_allclose(out['per_class'], per_class)
    assert out['top1'] == pytest.approx(60.)
    assert out['balanced'] == pytest.approx(np.mean(per_class))
    assert out['many'] == pytest.approx(75.)
    assert out['medium'] == pytest.approx(75.)
    assert out['few'] == pytest.approx(100 / 3)


def test_thresholds_are_arguments_and_boundaries_are_medium():
    target = np.arange(3)
    pred = np.array([0, 1, 0])
    out = LongTailAccuracy.calculate(pred, target, [100, 20, 19])
    assert out['medium'] == 100. and out['few'] == 0. and 'many' not in out
    out = LongTailAccuracy.calculate(
        pred, target, [100, 20, 19], many_threshold=50, few_threshold=10)
    assert out['many'] == 100. and out['medium'] == 50. and 'few' not in out


def test_empty_group_is_absent_not_zero():
    out = LongTailAccuracy.calculate([0, 1], [0, 1], [500, 300])
    assert out['many'] == 100. and 'medium' not in out and 'few' not in out


def test_scores_are_argmaxed():
    scores = torch.tensor([[0.1, 0.9], [0.8, 0.2]])
    out = LongTailAccuracy.calculate(scores, [1, 1], [200, 10])
    assert out['top1'] == 50. and out['few'] == 50. and 'many' not in out


def test_metric_uses_dataset_train_counts():
    metric = METRICS.build(dict(type='LongTailAccuracy'))
    metric.dataset_meta = dict(classes=('a', 'b'), train_class_counts=[300, 5])
    metric.process(None, [
        DataSample().set_gt_label(0).set_pred_label(0).to_dict(),
        DataSample().set_gt_label(1).set_pred_label(0).to_dict(),
    ])
    out = metric.evaluate(2)
    assert out['lt/many'] == 100. and out['lt/few'] == 0.
    assert out['lt/balanced'] == 50. and 'lt/medium' not in out


def test_missing_counts_is_a_clear_error():
    metric = LongTailAccuracy()
    metric.dataset_meta = dict(classes=('a', 'b'))
    metric.process(None,
                   [DataSample().set_gt_label(0).set_pred_label(0).to_dict()])
    with pytest.raises(ValueError, match='needs training counts'):
        metric.evaluate(1)


@pytest.mark.parametrize('many,few', [(20, 100), (50, 50), ('100', 20),
                                      (100, None)])
def test_inverted_or_bad_thresholds_refused_when_built(many, few):
    with pytest.raises(ValueError, match='threshold'):
        METRICS.build(
            dict(
                type='LongTailAccuracy',
                many_threshold=many,
                few_threshold=few))


def test_absent_class_is_nan_not_zero():
    out = LongTailAccuracy.calculate([0], [0], [200, 10])
    assert out['per_class'][0] == 100. and math.isnan(out['per_class'][1])
    assert out['balanced'] == 100. and 'few' not in out


def test_summarize_is_calculate_from_counts():
    rng = np.random.RandomState(0)
    target = rng.randint(0, 6, 200)
    pred = np.where(rng.rand(200) < 0.6, target, rng.randint(0, 6, 200))
    full = LongTailAccuracy.calculate(pred, target, COUNTS)
    total = np.bincount(target, minlength=6)
    correct = np.bincount(target[pred == target], minlength=6)
    assert LongTailAccuracy.summarize(correct, total, COUNTS) == full


@pytest.mark.parametrize('correct,total,match', [
    ([1, 0], [1, 1, 1, 1, 1, 1], 'shape'),
    ([2, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1], r'\[0, total\]'),
    ([-1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1], r'\[0, total\]'),
])
def test_summarize_bad_counts(correct, total, match):
    with pytest.raises(ValueError, match=match):
        LongTailAccuracy.summarize(correct, total, COUNTS)


def test_per_class_file_is_written(tmp_path):
    path = tmp_path / 'sub' / 'run.json'
    metric = METRICS.build(
        dict(type='LongTailAccuracy', per_class_file=str(path)))
    metric.dataset_meta = dict(
        classes=('a', 'b', 'c'), train_class_counts=[300, 50, 5])
    metric.process(None, [
        DataSample().set_gt_label(0).set_pred_label(0).to_dict(),
        DataSample().set_gt_label(0).set_pred_label(1).to_dict(),
        DataSample().set_gt_label(1).set_pred_label(1).to_dict(),
    ])
    out = metric.evaluate(3)
    record = json.loads(path.read_text())
    assert record['format'] == 'mmnpe.per_class/1' and record['task'] == 'cls'
    assert record['classes'] == ['a', 'b', 'c']
    assert record['train_class_counts'] == [300, 50, 5]
    assert record['many_threshold'] == 100 and record['few_threshold'] == 20
    # Class c has no test sample: null, not 0.
    assert record['per_class']['accuracy'] == [50.0, 100.0, None]
    assert record['summary'] == dict(
        top1=out['lt/top1'],
        balanced=out['lt/balanced'],
        many=50.0,
        medium=100.0)


def test_per_class_file_must_be_a_path():
    with pytest.raises(ValueError, match='per_class_file must be a file'):
        METRICS.build(dict(type='LongTailAccuracy', per_class_file=3))
