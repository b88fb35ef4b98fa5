"""The demo's detection picture (tools/demo.py, det_comparison.png): every
method's column shows its top detections per image, whatever the method's
score scale, and the column title says how many."""
import importlib.util
import os.path as osp

import mmcv
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _demo():
    spec = importlib.util.spec_from_file_location(
        'demo_tool', osp.join(REPO, 'tools', 'demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sample(img_path: str, scores) -> DetDataSample:
    sample = DetDataSample(metainfo=dict(img_path=img_path))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[4., 4., 20., 20.]]), labels=torch.tensor([0]))
    n = len(scores)
    boxes = torch.tensor([[2. + i, 2., 24. + i, 30.] for i in range(n)])
    sample.pred_instances = InstanceData(
        bboxes=boxes, labels=torch.arange(n) % 3, scores=torch.tensor(scores))
    return sample


def test_top_detections_ignore_the_score_scale():
    demo = _demo()
    # NPE-LA spreads the foreground mass: every score under CE's 0.3.
    pred = _sample('x', [0.05, 0.2, 0.01, 0.12]).pred_instances
    boxes, labels, scores = demo._top_detections(pred, 3)
    assert scores.tolist() == torch.tensor([0.2, 0.12, 0.05]).tolist()
    assert torch.equal(boxes, pred.bboxes[[1, 3, 0]])
    assert torch.equal(labels, pred.labels[[1, 3, 0]])
    # Fewer detections than asked: all of them.
    assert len(demo._top_detections(pred, 10)[2]) == 4


def test_every_method_column_is_drawn_with_its_top_k(tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    demo = _demo()
    img = str(tmp_path / 'img.png')
    mmcv.imwrite(np.zeros((32, 32, 3), np.uint8), img)
    rows = {
        'CE': [_sample(img, [0.9, 0.6, 0.4, 0.1])],
        'NPE-LA alpha=1': [_sample(img, [0.08, 0.05, 0.02, 0.01])],
    }
    figures = []
    monkeypatch.setattr(plt, 'close', figures.append)
    out = str(tmp_path / 'det_comparison.png')
    demo._det_draw(rows, ['a', 'b', 'c'], out, top_k=3)
    assert osp.isfile(out)
    (fig, ) = figures
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == [
        'ground truth', 'CE\n(top 3 per image)',
        'NPE-LA alpha=1\n(top 3 per image)'
    ]
    # One rectangle per drawn detection: the low-scoring method too.
    assert [len(ax.patches) for ax in axes] == [1, 3, 3]
    texts = [t.get_text() for t in axes[2].texts]
    assert texts == ['a 0.08', 'b 0.05', 'c 0.02']
