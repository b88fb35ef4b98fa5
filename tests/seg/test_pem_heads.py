import pytest
import torch
import torch.nn as nn
from helpers import random_seg_batch
from mmseg.registry import MODELS

from mmnpe.seg import PEMASPPHead, PEMFCNHead, PEMUPerHead

FEATS = (torch.randn(2, 8, 16, 16), torch.randn(2, 16, 8,
                                                8), torch.randn(2, 32, 4, 4))

HEADS = {
    'PEMFCNHead':
    dict(type='PEMFCNHead', in_channels=32, in_index=2),
    'PEMASPPHead':
    dict(
        type='PEMASPPHead',
        in_channels=32,
        in_index=2,
        channels=8,
        dilations=(1, 2)),
    'PEMUPerHead':
    dict(
        type='PEMUPerHead',
        in_channels=[8, 16, 32],
        in_index=[0, 1, 2],
        channels=8,
        pool_scales=(1, 2)),
}


def build(name, **kwargs):
    return MODELS.build(dict(HEADS[name], num_classes=4, **kwargs))


@pytest.mark.parametrize('name', list(HEADS))
def test_no_norm_small_init_zero_bias_and_shapes(name):
    torch.manual_seed(0)
    head = build(name)
    head.init_weights()
    assert not any(
        isinstance(m, nn.modules.batchnorm._NormBase) for m in head.modules())
    convs = [m for m in head.modules() if isinstance(m, nn.Conv2d)]
    assert convs
    for conv in convs:
        assert conv.weight.std().item() < 0.002
        assert conv.bias is not None and (conv.bias == 0).all()
    out = head(FEATS)
    assert out.shape[:2] == (2, 4)
    assert head.sign == -1


def test_default_fcn_pem_is_a_single_linear_1x1_conv():
    head = build('PEMFCNHead')
    convs = [m for m in head.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 and convs[0].kernel_size == (1, 1)
    # Linear in the features: f(a x + b y) = a f(x) + b f(y) - (a + b - 1) f(0)
    x, y = torch.randn(1, 32, 4, 4), torch.randn(1, 32, 4, 4)
    f = lambda t: head((None, None, t))  # noqa: E731
    zero = f(torch.zeros_like(x))
    torch.testing.assert_close(
        f(2 * x + 3 * y), 2 * f(x) + 3 * f(y) - 4 * zero, rtol=1e-5, atol=1e-6)
    assert head(FEATS).shape == (2, 4, 4, 4)


def test_fcn_pem_with_hidden_convs():
    head = build('PEMFCNHead', num_convs=2, channels=8, kernel_size=3)
    assert len([m for m in head.modules() if isinstance(m, nn.Conv2d)]) == 3
    assert head(FEATS).shape == (2, 4, 4, 4)


@pytest.mark.parametrize('name', list(HEADS))
def test_loss_has_owl_only_and_gradient_reaches_parameters(name):
    head = build(name)
    batch = random_seg_batch(batch_size=2, size=16)
    losses = head.loss(FEATS, batch['data_samples'], dict())
    assert set(losses) == {'loss_npe'}  # no misleading acc_seg
    assert torch.isfinite(losses['loss_npe'])
    losses['loss_npe'].backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all()
        for p in head.parameters())


def test_pem_loss_value_matches_closed_form_at_zero_output():
    head = build('PEMFCNHead')
    for p in head.parameters():
        nn.init.zeros_(p)
    batch = random_seg_batch(batch_size=2, size=16)
    loss = head.loss(FEATS, batch['data_samples'], dict())['loss_npe']
    torch.testing.assert_close(loss, torch.log(torch.tensor(2.)))


def test_all_ignored_labels_give_zero_loss_and_zero_gradient():
    head = build('PEMFCNHead')
    batch = random_seg_batch(batch_size=2, size=16)
    for s in batch['data_samples']:
        s.gt_sem_seg.data[:] = 255
    loss = head.loss(FEATS, batch['data_samples'], dict())['loss_npe']
    assert loss.item() == 0.0
    loss.backward()
    assert all((p.grad == 0).all() for p in head.parameters())


def test_label_not_below_num_classes_names_the_value():
    head = build('PEMFCNHead')
    batch = random_seg_batch(batch_size=2, size=16)
    batch['data_samples'][1].gt_sem_seg.data[0, 0, 0] = 7
    with pytest.raises(ValueError, match='label 7'):
        head.loss(FEATS, batch['data_samples'], dict())


@pytest.mark.parametrize('kwargs,match', [
    (dict(norm_cfg=dict(type='BN')), 'norm_cfg must be None'),
    (dict(out_channels=1), 'out_channels must equal num_classes'),
    (dict(loss_decode=dict(type='CrossEntropyLoss')),
     'must contain a OneWayLogisticLoss'),
    (dict(init_std=0.), 'init_std must be > 0'),
])
def test_bad_pem_config_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build('PEMFCNHead', **kwargs)


def test_single_output_pem_is_refused():
    with pytest.raises(ValueError, match='num_classes must be an int > 1'):
        MODELS.build(dict(HEADS['PEMFCNHead'], num_classes=1))


def test_sign_comes_from_the_loss():
    head = build(
        'PEMASPPHead', loss_decode=[dict(type='OneWayLogisticLoss', sign=1)])
    assert head.sign == 1
    assert isinstance(head, PEMASPPHead)
    assert isinstance(build('PEMUPerHead'), PEMUPerHead)
    assert isinstance(build('PEMFCNHead'), PEMFCNHead)
