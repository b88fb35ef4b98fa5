"""One-pass scale sweep == separate evaluations at each scale factor."""
import copy
import json
import math
import os.path as osp
import runpy
import subprocess
import sys

import pytest
import torch
from analysis_helpers import AREAS, REPO, recorded_iou_totals
from helpers import tiny_segmentor_cfg
from mmengine.runner import Runner
from mmseg.evaluation import IoUMetric
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmnpe.analysis import (SegSweepState, build_model, check_scales,
                            load_config, scale_sweep, seg_logits_and_estimate,
                            sweep_segmentor)
from mmnpe.analysis.builder import build_dataloader, eval_dataloader_cfg
from mmnpe.analysis.scale_sweep import best_scales
from mmnpe.analysis.seg_maps import _to_label_resolution
from mmnpe.cls import DigitsLT

SCALES = [0, 0.05, 0.2, 1, 5]
SLIDE = {
    'model.test_cfg': dict(mode='slide', crop_size=(24, 24), stride=(16, 16))
}
# Inference at 44x44, padded to 48 by the preprocessor: the logits are
# cropped and resized back to the 32x32 labels.
RESIZED = {
    'test_dataloader.dataset.pipeline': [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(44, 44), keep_ratio=False),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs')
    ]
}
MODES = dict(whole={}, slide=SLIDE, resized=RESIZED)


@pytest.mark.parametrize('scales',
                         [[], [-1.0], [0, float('nan')], [float('inf')],
                          [0.1, 0.1], 'abc', [True], None])
def test_bad_scale_lists_are_clear_errors(scales):
    with pytest.raises(ValueError, match='--scales'):
        check_scales(scales, name='--scales')


def test_scales_are_returned_as_floats():
    assert check_scales((0, 1, 0.5)) == [0.0, 1.0, 0.5]


def test_best_scale_is_first_maximum_and_skips_missing():
    best = best_scales([0, 0.5, 1],
                       dict(a=[1, 3, 3], b=[None, 2, 1], c=[None] * 3))
    assert best == dict(a=dict(scale=0.5, value=3), b=dict(scale=0.5, value=2))


def _loader(cfg):
    return build_dataloader(eval_dataloader_cfg(cfg, 'test'))


def _ordinary_areas(model, loader, num_classes=6):
    """IoUMetric's summed areas from the model's own test_step."""
    totals = None
    with torch.no_grad():
        for batch in loader:
            for sample in model.test_step(batch):
                pred = sample.pred_sem_seg.data.squeeze()
                res = IoUMetric.intersect_and_union(
                    pred,
                    sample.gt_sem_seg.data.squeeze().to(pred), num_classes,
                    255)
                totals = res if totals is None else [
                    a + b for a, b in zip(totals, res)
                ]
    return dict(zip(('intersect', 'union', 'pred', 'label'), totals))


@pytest.mark.parametrize('mode', list(MODES))
def test_seg_sweep_equals_separate_evaluations(seg_npe, mode):
    config, ckpt = seg_npe
    cfg = load_config(config, MODES[mode])
    model = build_model(cfg, ckpt)
    loader = _loader(cfg)
    state = sweep_segmentor(model, loader, SCALES, num_classes=6)
    for i, s in enumerate(SCALES):
        model.scale_factor = s
        expected = _ordinary_areas(model, loader)
        got = state.areas(i)
        for key in expected:
            assert torch.equal(got[key], expected[key]), (mode, s, key)
    # Not vacuous: the scale factor changes the predictions.
    inter = {
        tuple(state.areas(i)['intersect'].tolist())
        for i in range(len(SCALES))
    }
    assert len(inter) >= 3


@pytest.mark.parametrize('mode', list(MODES))
def test_seg_alpha0_equals_stock_segmentor(seg_npe, mode):
    config, ckpt = seg_npe
    cfg = load_config(config, MODES[mode])
    npe = build_model(cfg, ckpt)
    stock_cfg = copy.deepcopy(cfg.model)
    stock_cfg.type = 'EncoderDecoder'
    stock_cfg.pop('pem_head')
    stock_cfg.pop('scale_factor')
    stock = MODELS.build(stock_cfg).eval()
    stock.load_state_dict({
        k: v
        for k, v in npe.state_dict().items() if 'pem_heads' not in k
    })
    loader = _loader(cfg)
    with torch.no_grad():
        for batch in loader:
            data = npe.data_preprocessor(batch, False)
            maps = seg_logits_and_estimate(npe, data['inputs'],
                                           data['data_samples'])
            ref = stock.test_step(batch)
            for (z, _), sample in zip(maps, ref):
                assert torch.equal(z, sample.seg_logits.data)
    state = sweep_segmentor(npe, loader, [0.0, 1.0], num_classes=6)
    expected = _ordinary_areas(stock, loader)
    for key, value in state.areas(0).items():
        assert torch.equal(value, expected[key])


@pytest.mark.parametrize('flip', [None, 'horizontal', 'vertical'])
def test_label_resolution_matches_stock_postprocessing(seg_npe, flip):
    config, ckpt = seg_npe
    model = build_model(load_config(config), ckpt)
    maps = torch.randn(2, 12, 48, 40)
    meta = dict(
        ori_shape=(30, 33),
        padding_size=[0, 4, 0, 6],
        img_shape=(42, 36),
        flip=flip is not None,
        flip_direction=flip)
    samples = [SegDataSample(metainfo=meta) for _ in range(2)]
    got = _to_label_resolution(model, maps, samples)
    stock = model.postprocess_result(maps, copy.deepcopy(samples))
    for g, s in zip(got, stock):
        assert g.shape == (12, 30, 33)
        assert torch.equal(g, s.seg_logits.data)


@MODELS.register_module(name='_FixedPriorSegmentor', force=True)
class _FixedPriorSegmentor(EncoderDecoder):
    """A post-hoc-LA-like segmentor: the interface only, a fixed prior
    broadcast as (1, C, 1, 1), no NPE class involved."""

    def __init__(self, *args, log_prior, scale_factor=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.scale_factor = scale_factor
        self.register_buffer('log_prior',
                             torch.tensor(log_prior).view(1, -1, 1, 1))

    def estimate_prior(self, x):
        return self.log_prior - self.log_prior.mean(dim=1, keepdim=True)

    def encode_decode(self, inputs, batch_img_metas):
        x = self.extract_feat(inputs)
        z = self.decode_head.forward(x)
        if self.scale_factor:
            z = z - self.scale_factor * self.estimate_prior(x)
        return self.decode_head.predict_by_feat(z, batch_img_metas)


@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_sweep_works_for_any_model_with_the_interface(seg_npe, mode):
    config, _ = seg_npe
    cfg = load_config(config, MODES[mode])
    model_cfg = tiny_segmentor_cfg(num_classes=6).to_dict()
    model_cfg.pop('pem_head')
    model_cfg['type'] = '_FixedPriorSegmentor'
    model_cfg['test_cfg'] = cfg.model.test_cfg
    # A steep prior, so that the scale factor matters.
    model_cfg['log_prior'] = [0.0, -1.0, -2.0, -3.0, -4.0, -5.0]
    torch.manual_seed(1)
    model = MODELS.build(model_cfg).eval()
    loader = _loader(cfg)
    scales = [0, 0.01, 0.05, 0.1]
    state = sweep_segmentor(model, loader, scales, num_classes=6)
    results = []
    for i, s in enumerate(scales):
        model.scale_factor = s
        expected = _ordinary_areas(model, loader)
        for key, value in state.areas(i).items():
            assert torch.equal(value, expected[key]), (s, key)
        results.append(tuple(expected['pred'].tolist()))
    assert len(set(results)) >= 2


def test_seg_sweep_metrics_equal_tools_test_evaluation(seg_npe, tmp_path):
    config, ckpt = seg_npe
    result = scale_sweep(config, ckpt, SCALES, split='test')
    assert result['task'] == 'seg' and result['scales'] == SCALES
    cfg = load_config(config)
    cfg.work_dir = str(tmp_path)
    cfg.load_from = ckpt
    runner = Runner.from_cfg(cfg)
    classes = result['classes']
    # Three scales here (a Runner evaluation is slow); all five are
    # compared area by area above.
    for i, s in list(enumerate(SCALES))[::2]:
        runner.model.scale_factor = s
        metrics = runner.test()
        mine = result['per_scale'][i]
        for key in ('mIoU', 'mDice', 'mAcc', 'aAcc'):
            assert mine[key] == float(metrics[key]), (s, key)
            assert result['curves'][key][i] == mine[key]
        for c, name in enumerate(classes):
            for key in ('IoU', 'Acc', 'Dice'):
                stock = metrics[f'{key}.{name}']
                value = mine['per_class'][key][c]
                assert (value is None
                        and math.isnan(stock)) or (value == stock), (s, key,
                                                                     name)
    for key, best in result['best'].items():
        assert best['value'] == max(result['curves'][key])
        assert result['curves'][key][SCALES.index(best['scale'])] == \
            best['value']


def test_cls_sweep_equals_separate_evaluations(cls_npe, cls_ce, tmp_path):
    config, ckpt = cls_npe
    result = scale_sweep(config, ckpt, SCALES, split='test')
    assert result['task'] == 'cls'
    cfg = load_config(config)
    cfg.work_dir = str(tmp_path / 'npe')
    cfg.load_from = ckpt
    runner = Runner.from_cfg(cfg)
    for i, s in enumerate(SCALES):
        runner.model.head.scale_factor = s
        metrics = runner.test()
        mine = result['per_scale'][i]
        for key in ('top1', 'balanced', 'many', 'medium', 'few'):
            assert mine[key] == metrics[f'lt/{key}'], (s, key)
        assert mine['per_class']['accuracy'] == metrics['lt/per_class']
    # Not vacuous: the curve moves with the scale factor.
    assert len(set(result['curves']['top1'])) >= 3
    # The test split carries no rho: the sweep counts the training set, as
    # ClassCountsHook did for the Runner's LongTailAccuracy.
    assert 'train_class_counts' not in runner.test_dataloader.dataset.metainfo
    assert result['train_class_counts'] == runner.test_evaluator.metrics[
        0].class_counts == DigitsLT(
            split='train', pipeline=[]).metainfo['train_class_counts']

    # alpha = 0 is the stock classifier (LinearClsHead) with these weights.
    ce = load_config(cls_ce[0])
    ce.work_dir = str(tmp_path / 'ce')
    ce.load_from = ckpt
    stock = Runner.from_cfg(ce).test()
    for key in ('top1', 'balanced', 'many', 'medium', 'few'):
        assert result['per_scale'][0][key] == stock[f'lt/{key}']


def test_seg_state_counts_out_of_range_labels_as_iou_metric_does():
    # Label 7 (not ignored, not a class) still counts in the predicted area.
    state = SegSweepState([0.0, 10.0], num_classes=2, ignore_index=255)
    z = torch.tensor([[[2., 0., 0.]], [[0., 1., 3.]]])  # (C=2, 1, 3)
    eta = torch.tensor([[[0., 0., 0.]], [[1., 1., 1.]]])
    label = torch.tensor([[0, 7, 255]])
    state.update(z, eta, label)
    # scale 0: preds 0, 1, (ignored); scale 10: preds 0, 0.
    pred = torch.tensor([0, 1])
    for i, p in enumerate((pred, torch.tensor([0, 0]))):
        expected = IoUMetric.intersect_and_union(
            torch.cat([p, torch.tensor([1])]).view(1, 3), label.view(1, 3), 2,
            255)
        for got, exp in zip(state.areas(i).values(), expected):
            assert torch.equal(got, exp)


def test_cli_writes_json_and_png(seg_npe, tmp_path):
    config, ckpt = seg_npe
    out = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools/analysis/scale_sweep.py'), config, ckpt,
        '--scales', '0', '0.2', '5', '--split', 'test', '--out-dir',
        str(tmp_path), '--device', 'cpu'
    ],
                         capture_output=True,
                         text=True,
                         cwd=REPO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    with open(tmp_path / 'scale_sweep.json') as f:
        result = json.load(f)
    expected = scale_sweep(config, ckpt, [0, 0.2, 5], split='test')
    assert result['curves'] == expected['curves']
    assert set(result['best']) == {'mIoU', 'mDice', 'mAcc', 'aAcc'}
    png = (tmp_path / 'scale_sweep.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 5000


@pytest.mark.parametrize('scales,message', [
    ([], '--scales must hold at least one scale factor'),
    (['0', '-1'], '--scales must hold finite numbers >= 0, got -1.0'),
    (['nan'], '--scales must hold finite numbers >= 0, got nan'),
])
def test_cli_bad_scale_list_names_the_flag(seg_npe, monkeypatch, capsys,
                                           scales, message):
    config, ckpt = seg_npe
    tool = runpy.run_path(osp.join(REPO, 'tools/analysis/scale_sweep.py'))
    monkeypatch.setattr(sys, 'argv',
                        ['scale_sweep.py', config, ckpt, '--scales', *scales])
    with pytest.raises(SystemExit) as exc:
        tool['main']()
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def _big_image(size, class0, flip):
    """Logits (2, H, W) predicting class 0 everywhere, an estimate turning
    the first ``flip`` pixels to class 1 at scale 1 (so the prediction at
    scale 1), and a label with ``class0`` pixels of class 0, the rest class
    1, the last one ignored."""
    h, w = size
    z = torch.zeros(2, h, w)
    z[0] = 1.0
    eta = torch.zeros(2, h, w)
    eta[0].view(-1)[:flip] = 2.0
    pred = torch.zeros(h, w, dtype=torch.long)
    pred.view(-1)[:flip] = 1
    label = torch.ones(h, w, dtype=torch.long)
    label.view(-1)[:class0] = 0
    label.view(-1)[-1] = 255
    return z, eta, pred, label


def test_seg_state_sums_float32_areas_as_iou_metric_does():
    """Past 2**24 pixels of a class IoUMetric's float32 running sum rounds;
    the state's areas (and metrics) are the metric's, not the exact
    counts."""
    # Class-0 label areas 2**23 + 1, 2**23 and 1: the running float32 sum
    # is 2**24 (2**24 + 1 rounds to even), the exact count 2**24 + 2.
    big = (2896, 2897)  # 8,389,712 pixels
    images = [
        _big_image(big, 2**23 + 1, 3000000),
        _big_image(big, 2**23, 5000000),
        _big_image((1, 3), 1, 2),
    ]
    state = SegSweepState([1.0], num_classes=2, ignore_index=255)
    results = []
    exact = torch.zeros(4, 2, dtype=torch.int64)
    for z, eta, pred, label in images:
        state.update(z, eta, label)
        res = IoUMetric.intersect_and_union(pred, label, 2, 255)
        results.append(res)
        # Each image's own areas are exact integers (< 2**24).
        exact += torch.stack(res).long()
    assert state.num_images == 3
    metric = IoUMetric(iou_metrics=['mIoU', 'mDice'])
    metric.dataset_meta = dict(classes=['a', 'b'])
    with recorded_iou_totals() as totals:
        expected = metric.compute_metrics(results)
    for key, value in zip(AREAS, totals[0]):
        assert torch.equal(state.areas(0)[key], value), key
    mine = state.metrics()[0]
    for key in ('mIoU', 'mDice', 'mAcc', 'aAcc'):
        assert mine[key] == float(expected[key]), key
    # Not vacuous: the exact counts, turned into float32 once, differ.
    assert exact[AREAS.index('label'), 0] == 2**24 + 2
    assert state.areas(0)['label'][0] == 2**24
    assert not torch.equal(state.totals[0], exact.float())


def test_seg_state_adds_per_image_areas_in_float32_order():
    """The accumulation alone, on per-image areas as IoUMetric holds them:
    the totals are compute_metrics' sums over the same results."""
    per_image = [
        [2.0**24 - 1, 3.0, 5.0],
        [1.0, 2.0**23 + 1, 7.0],
        [1.0, 2.0**23, 2.0**24 - 3],
        [1.0, 1.0, 1.0],
    ]
    results = []
    state = SegSweepState([0.0], num_classes=3)
    for i, row in enumerate(per_image):
        label = torch.tensor(row)
        inter = (label / 2).floor()
        pred = inter + i
        res = (inter, pred + label - inter, pred, label)
        results.append(res)
        state.add_areas(torch.stack(res).unsqueeze(0))
    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = dict(classes=['a', 'b', 'c'])
    with recorded_iou_totals() as totals:
        metric.compute_metrics(results)
    for key, value in zip(AREAS, totals[0]):
        assert torch.equal(state.areas(0)[key], value), key
    exact = torch.tensor(per_image, dtype=torch.float64).sum(0)
    assert not torch.equal(state.areas(0)['label'].double(), exact)


@pytest.mark.parametrize('areas', [
    torch.zeros(2, 4, 3),
    torch.zeros(1, 4, 2),
    torch.zeros(1, 3, 3),
    torch.zeros(1, 4, 3, dtype=torch.float64),
])
def test_seg_state_refuses_areas_of_another_shape_or_dtype(areas):
    state = SegSweepState([0.5], num_classes=3)
    with pytest.raises(
            ValueError,
            match=r'areas must be a float32 tensor of shape '
            r'\(1, 4, 3\)'):
        state.add_areas(areas)


class _BareSegmentor(torch.nn.Module):
    """The prior-correction interface without mmnpe's decode path."""

    test_cfg = dict(mode='whole')
    align_corners = False
    scale_factor = 1.0

    def __init__(self, decode_head):
        super().__init__()
        self.decode_head = decode_head

    def extract_feat(self, inputs):
        return [inputs]

    def estimate_prior(self, x):
        return torch.zeros_like(x[0])


class _TupleHead(torch.nn.Module):

    def forward(self, x):
        return x[0], x[0]


@pytest.mark.parametrize('head, message', [
    (torch.nn.ModuleList([_TupleHead(), _TupleHead()]),
     r'has a cascade of 2 decode heads but no _decode_logits\(\)'),
    (_TupleHead(), r'_TupleHead.forward\(\) of _BareSegmentor must return '
     r'the logits \(N, C, h, w\), got a tuple'),
])
def test_decode_path_the_tools_cannot_read_is_a_clear_error(head, message):
    model = _BareSegmentor(head)
    sample = SegDataSample(metainfo=dict(ori_shape=(4, 4), img_shape=(4, 4)))
    with pytest.raises(TypeError, match=message):
        seg_logits_and_estimate(model, torch.zeros(1, 3, 4, 4), [sample])
