import json

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample

CLASSES = ('bg', 'road', 'lake')


def _sample(pred, label):
    sample = SegDataSample()
    sample.pred_sem_seg = PixelData(data=torch.tensor(pred)[None])
    sample.gt_sem_seg = PixelData(data=torch.tensor(label)[None])
    return sample.to_dict()


def _metric(**kwargs):
    metric = METRICS.build(
        dict(
            type='ClassWiseIoUMetric', iou_metrics=['mIoU', 'mDice'],
            **kwargs))
    metric.dataset_meta = dict(classes=CLASSES)
    # 3 pixels of bg (2 right), 1 road (right), no lake.
    metric.process(None, [_sample([[0, 0, 1, 1]], [[0, 0, 0, 1]])])
    return metric


def test_per_class_values_returned():
    out = _metric().evaluate(1)
    assert out['IoU.bg'] == pytest.approx(200 / 3, abs=0.01)
    assert out['IoU.road'] == 50.0 and out['Acc.road'] == 100.0
    assert np.isnan(out['IoU.lake'])


def test_per_class_file_is_written_with_counts(tmp_path):
    path = tmp_path / 'run.json'
    out = _metric(
        per_class_file=str(path), class_counts=[1000, 50, 3]).evaluate(1)
    record = json.loads(path.read_text())
    assert record['task'] == 'seg' and record['count_kind'] == 'pixels'
    assert record['classes'] == list(CLASSES)
    assert record['train_class_counts'] == [1000, 50, 3]
    for key in ('IoU', 'Acc', 'Dice'):
        assert record['per_class'][key][:2] == [
            out[f'{key}.bg'], out[f'{key}.road']
        ]
        assert record['per_class'][key][2] is None  # NaN is not JSON
    assert record['summary']['mIoU'] == pytest.approx(float(out['mIoU']))


def test_counts_default_to_dataset_meta_or_none(tmp_path):
    path = tmp_path / 'run.json'
    metric = _metric(per_class_file=str(path))
    metric.evaluate(1)
    assert json.loads(path.read_text())['train_class_counts'] is None
    metric = _metric(per_class_file=str(path))
    metric.dataset_meta = dict(classes=CLASSES, train_class_counts=[7, 8, 9])
    metric.evaluate(1)
    assert json.loads(path.read_text())['train_class_counts'] == [7, 8, 9]


@pytest.mark.parametrize('counts,match', [([1, -2, 3], 'class 1'),
                                          ([1, float('nan'), 3], 'class 1'),
                                          ([1, 'x'], 'class 1')])
def test_bad_counts_refused_when_built(counts, match):
    with pytest.raises(ValueError, match=match):
        METRICS.build(dict(type='ClassWiseIoUMetric', class_counts=counts))


def test_counts_of_wrong_length_are_a_clear_error(tmp_path):
    metric = _metric(
        per_class_file=str(tmp_path / 'r.json'), class_counts=[1, 2])
    with pytest.raises(ValueError, match=r'one entry per class \(3\), got 2'):
        metric.evaluate(1)
