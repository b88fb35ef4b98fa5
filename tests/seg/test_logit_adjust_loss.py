"""LogitAdjustLoss and BalancedSoftmaxLoss as registered modules: found from
both scopes, equal to the stock CE of each host with uniform counts, closed
forms, used as mmseg ``loss_decode=`` and mmpretrain head ``loss=``, and
refused on a one-channel head."""
import copy
import math

import pytest
import torch
from helpers import random_seg_batch, tiny_segmentor_cfg
from mmengine.registry import MODELS, init_default_scope
from mmpretrain.models.losses import CrossEntropyLoss as ClsCE
from mmpretrain.registry import MODELS as CLS_MODELS
from mmseg.models.losses import CrossEntropyLoss as SegCE
from mmseg.registry import MODELS as SEG_MODELS

from mmnpe.seg import BalancedSoftmaxLoss, LogitAdjustLoss

LOSSES = ['LogitAdjustLoss', 'BalancedSoftmaxLoss']


@pytest.mark.parametrize('name', LOSSES + ['BalancedSigmoidLoss'])
@pytest.mark.parametrize('registry', [SEG_MODELS, CLS_MODELS, MODELS])
def test_found_from_both_scopes(registry, name):
    loss = registry.build(dict(type=name, class_counts=[1, 2]))
    assert type(loss).__name__ == name
    assert loss.loss_name.startswith('loss_')


@pytest.mark.parametrize('name', LOSSES)
def test_uniform_counts_equal_mmseg_ce_dense_with_ignore(name):
    torch.manual_seed(0)
    pred = torch.randn(2, 4, 6, 5, requires_grad=True)
    label = torch.randint(0, 4, (2, 6, 5))
    label[:, :2] = 255
    ours = MODELS.build(dict(type=name, class_counts=[9] * 4))(
        pred, label, weight=None, ignore_index=255)
    ref = SegCE(avg_non_ignore=True)(pred, label, ignore_index=255)
    torch.testing.assert_close(ours, ref)
    ours.backward()
    assert torch.isfinite(pred.grad).all()


@pytest.mark.parametrize('name', LOSSES)
def test_uniform_counts_equal_mmpretrain_ce(name):
    torch.manual_seed(0)
    pred, label = torch.randn(8, 5), torch.randint(0, 5, (8, ))
    loss = MODELS.build(dict(type=name, class_counts=[2] * 5))
    torch.testing.assert_close(
        loss(pred, label, avg_factor=8),
        ClsCE()(pred, label, avg_factor=8))
    soft = torch.softmax(torch.randn(8, 5), dim=1)  # mixup-style target
    torch.testing.assert_close(
        loss(pred, soft, avg_factor=8),
        ClsCE(use_soft=True)(pred, soft, avg_factor=8))


def test_la_module_closed_form_weight_and_loss_weight():
    loss = LogitAdjustLoss([3, 1], tau=1.0, loss_weight=2.0)
    pred = torch.zeros(2, 2)
    label = torch.tensor([0, 1])
    # Per sample -log 0.75 and -log 0.25; mean, times 2.
    want = 2.0 * (-math.log(0.75) - math.log(0.25)) / 2
    assert loss(pred, label).item() == pytest.approx(want, rel=1e-6)
    weight = torch.tensor([1., 0.])
    assert loss(
        pred, label, weight=weight, avg_factor=1).item() == (
            pytest.approx(2.0 * -math.log(0.75), rel=1e-6))
    assert loss(pred, label, reduction_override='none').shape == (2, )


def test_balanced_softmax_equals_la_tau_one_with_any_counts():
    torch.manual_seed(0)
    pred, label = torch.randn(6, 3), torch.randint(0, 3, (6, ))
    counts = [120, 7, 1]
    torch.testing.assert_close(
        BalancedSoftmaxLoss(counts)(pred, label),
        LogitAdjustLoss(counts, tau=1.0)(pred, label))


def test_all_ignored_batch_gives_zero_not_nan():
    loss = LogitAdjustLoss([1,
                            2])(torch.randn(1, 2, 3, 3),
                                torch.full((1, 3, 3), 255),
                                ignore_index=255)
    assert loss.item() == 0


@pytest.mark.parametrize('bad', [-0.5, math.nan, math.inf, 'x'])
def test_bad_tau_refused_at_build(bad):
    with pytest.raises(ValueError, match='tau must be a finite number >= 0'):
        MODELS.build(dict(type='LogitAdjustLoss', class_counts=[1], tau=bad))


@pytest.mark.parametrize('name', LOSSES)
def test_wrong_counts_refused(name):
    with pytest.raises(ValueError, match=r'class_counts\[1\] must be >= 0'):
        MODELS.build(dict(type=name, class_counts=[1, -1]))
    with pytest.raises(ValueError, match=r'class_counts\[0\] must be a fin'):
        MODELS.build(dict(type=name, class_counts=[math.nan, 1]))
    with pytest.raises(ValueError, match='all zero'):
        MODELS.build(dict(type=name, class_counts=[0, 0]))
    loss = MODELS.build(dict(type=name, class_counts=[1, 2, 3]))
    with pytest.raises(ValueError, match='has 3 entries but the logits'):
        loss(torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(RuntimeError, match='ClassCountsHook'):
        MODELS.build(dict(type=name))(torch.zeros(2, 4), torch.tensor([0, 1]))


@pytest.mark.parametrize('name', LOSSES)
def test_one_channel_head_refused_at_call_and_at_run_start(name):
    loss = MODELS.build(dict(type=name, class_counts=[3, 1]))
    with pytest.raises(ValueError, match='out_channels == 1'):
        loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    init_default_scope('mmseg')
    cfg = tiny_segmentor_cfg(type='EncoderDecoder', num_classes=2)
    for key in ('pem_head', 'scale_factor'):
        cfg.pop(key)
    cfg.decode_head.update(
        out_channels=1,
        threshold=0.5,
        loss_decode=dict(type=name, class_counts=[3, 1]))
    model = SEG_MODELS.build(cfg)
    runner = type('R', (), dict(model=model))()
    from mmnpe.engine import ClassCountsHook
    with pytest.raises(ValueError, match='decode_head: .*out_channels == 1'):
        ClassCountsHook().before_run(runner)


def test_as_mmseg_loss_decode_trains_a_segmentor():
    init_default_scope('mmseg')
    cfg = tiny_segmentor_cfg(type='EncoderDecoder')
    for key in ('pem_head', 'scale_factor'):
        cfg.pop(key)
    cfg.decode_head.loss_decode = dict(
        type='LogitAdjustLoss', class_counts=[40, 30, 20, 10], tau=1.0)
    cfg.auxiliary_head.loss_decode = dict(
        type='BalancedSoftmaxLoss',
        class_counts=[40, 30, 20, 10],
        loss_weight=0.4)
    torch.manual_seed(0)
    model = SEG_MODELS.build(cfg)
    data = model.data_preprocessor(random_seg_batch(), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'decode.loss_la', 'aux.loss_balanced_softmax'} <= set(losses)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.decode_head.conv_seg.weight.grad.abs().sum() > 0
    # ClassCountsHook's head check passes on a softmax head.
    from mmnpe.engine import ClassCountsHook
    ClassCountsHook().before_run(type('R', (), dict(model=model))())


def test_as_mmpretrain_head_loss_trains_a_classifier():
    init_default_scope('mmpretrain')
    model = CLS_MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(type='CifarResNet', depth=20),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(
                type='LinearClsHead',
                num_classes=3,
                in_channels=64,
                loss=dict(type='LogitAdjustLoss', class_counts=[5, 3, 1]))))
    from mmpretrain.structures import DataSample
    inputs = torch.randn(4, 3, 16, 16)
    samples = [DataSample().set_gt_label(i % 3) for i in range(4)]
    losses = model.loss(inputs, copy.deepcopy(samples))
    assert torch.isfinite(losses['loss'])
    losses['loss'].backward()
    # Prediction uses the plain logits (training made them balanced).
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(inputs)
        preds = model.head.predict(feats)
        plain = model.head.fc(model.head.pre_logits(feats)).softmax(1)
    torch.testing.assert_close(
        torch.stack([p.pred_score for p in preds]), plain)
