"""BalancedSigmoidLoss: one-channel binary segmentation and multi-label
classification; uniform counts are the hosts' BCE; softmax heads refused."""
import math

import pytest
import torch
from helpers import random_seg_batch, tiny_segmentor_cfg
from mmengine.registry import MODELS, init_default_scope
from mmpretrain.models.losses import CrossEntropyLoss as ClsCE
from mmpretrain.registry import MODELS as CLS_MODELS
from mmseg.models.losses import CrossEntropyLoss as SegCE
from mmseg.registry import MODELS as SEG_MODELS

from mmnpe.engine import ClassCountsHook
from mmnpe.seg import BalancedSigmoidLoss


def test_binary_closed_form():
    loss = BalancedSigmoidLoss([3, 1], reduction='none')
    pred = torch.zeros(1, 1, 1, 2)
    label = torch.tensor([[[1, 0]]])
    # Foreground offset log(n1 / n0) = log(1/3); sigmoid = 1/4.
    torch.testing.assert_close(
        loss(pred, label), torch.tensor([[[math.log(4), -math.log(0.75)]]]))


def test_multilabel_closed_form():
    loss = BalancedSigmoidLoss([2, 1, 1], num_samples=4, reduction='none')
    out = loss(torch.zeros(1, 3), torch.tensor([[1., 0., 1.]]))
    # Offsets log 2, log 2/3, log 2/3 (see the functional test).
    want = [-math.log(2 / 3), -math.log(1 - 0.4), -math.log(0.4)]
    torch.testing.assert_close(out, torch.tensor([want]))


def test_uniform_binary_equals_mmseg_sigmoid_ce_with_ignore():
    torch.manual_seed(0)
    pred = torch.randn(2, 1, 5, 6, requires_grad=True)
    label = torch.randint(0, 2, (2, 5, 6))
    label[0, 0] = 255
    ours = BalancedSigmoidLoss([7, 7])(pred, label, ignore_index=255)
    ref = SegCE(
        use_sigmoid=True, avg_non_ignore=True)(
            pred, label, ignore_index=255)
    torch.testing.assert_close(ours, ref)
    ours.backward()
    assert torch.isfinite(pred.grad).all()
    assert (pred.grad[0, 0, 0] == 0).all()


def test_uniform_multilabel_equals_mmpretrain_sigmoid_ce():
    torch.manual_seed(0)
    pred = torch.randn(6, 4)
    target = (torch.rand(6, 4) > 0.5).float()
    # Single-label-style counts with n = sum: offsets are 0.
    ours = BalancedSigmoidLoss([3] * 4)(pred, target, avg_factor=6)
    ref = ClsCE(use_sigmoid=True)(pred, target, avg_factor=6)
    torch.testing.assert_close(ours, ref)


def test_multi_channel_softmax_head_refused():
    loss = BalancedSigmoidLoss([3, 1, 1])
    with pytest.raises(ValueError, match='out_channels == 3 .*softmax'):
        loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    cfg = tiny_segmentor_cfg(type='EncoderDecoder', num_classes=3)
    for key in ('pem_head', 'scale_factor'):
        cfg.pop(key)
    cfg.decode_head.loss_decode = dict(
        type='BalancedSigmoidLoss', class_counts=[3, 1, 1])
    model = SEG_MODELS.build(cfg)
    with pytest.raises(ValueError, match='decode_head: .*softmax head'):
        ClassCountsHook().before_run(type('R', (), dict(model=model))())


def test_bad_input():
    with pytest.raises(ValueError, match='labels 0 and 1 .* got 2'):
        BalancedSigmoidLoss([3, 1])(torch.zeros(1, 1, 2, 2),
                                    torch.full((1, 2, 2), 2))
    with pytest.raises(ValueError, match='has 3 entries but a one-channel'):
        BalancedSigmoidLoss([3, 1, 1])(torch.zeros(1, 1, 2, 2),
                                       torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match='num_samples must be None or a'):
        BalancedSigmoidLoss([3, 1], num_samples=-4)
    with pytest.raises(ValueError, match=r'class_counts\[0\] = 3 is not'):
        BalancedSigmoidLoss([3, 1], num_samples=3)
    with pytest.raises(ValueError, match=r'class_counts\[1\] is 0'):
        BalancedSigmoidLoss([3, 0])


def test_trains_a_one_channel_mmseg_segmentor():
    init_default_scope('mmseg')
    cfg = tiny_segmentor_cfg(type='EncoderDecoder', num_classes=2)
    for key in ('pem_head', 'scale_factor', 'auxiliary_head'):
        cfg.pop(key)
    cfg.decode_head.update(
        out_channels=1,
        threshold=0.5,
        loss_decode=dict(type='BalancedSigmoidLoss', class_counts=[9, 1]))
    torch.manual_seed(0)
    model = SEG_MODELS.build(cfg)
    ClassCountsHook().before_run(type('R', (), dict(model=model))())
    data = model.data_preprocessor(
        random_seg_batch(num_classes=2), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert torch.isfinite(losses['decode.loss_balanced_sigmoid'])
    losses['decode.loss_balanced_sigmoid'].backward()
    assert model.decode_head.conv_seg.weight.grad.abs().sum() > 0


def test_trains_a_multilabel_mmpretrain_head():
    init_default_scope('mmpretrain')
    from mmpretrain.structures import DataSample
    head = CLS_MODELS.build(
        dict(
            type='MultiLabelLinearClsHead',
            num_classes=3,
            in_channels=8,
            loss=dict(
                type='BalancedSigmoidLoss',
                class_counts=[6, 2, 1],
                num_samples=8)))
    samples = [
        DataSample().set_gt_label([0, 2]),
        DataSample().set_gt_label([1])
    ]
    losses = head.loss((torch.randn(2, 8), ), samples)
    assert torch.isfinite(losses['loss'])
    assert MODELS.get('BalancedSigmoidLoss') is BalancedSigmoidLoss
