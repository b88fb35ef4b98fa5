import copy

import pytest
import torch
import torch.nn as nn
from helpers import NUM_CLASSES, random_seg_batch, tiny_segmentor_cfg
from mmseg.registry import MODELS

from mmnpe.seg import NPECascadeEncoderDecoder


def cascade_cfg(**kwargs):
    """The tiny segmentor of helpers with OCRNet's two cascaded heads."""
    kwargs.setdefault('type', 'NPECascadeEncoderDecoder')
    cfg = tiny_segmentor_cfg(**kwargs)
    cfg.pop('auxiliary_head')
    cfg['num_stages'] = 2
    cfg['decode_head'] = [
        dict(
            type='FCNHead',
            in_channels=8,
            in_index=2,
            channels=8,
            num_convs=1,
            concat_input=False,
            dropout_ratio=0.,
            num_classes=NUM_CLASSES,
            norm_cfg=dict(type='BN'),
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4)),
        dict(
            type='OCRHead',
            in_channels=8,
            in_index=2,
            channels=8,
            ocr_channels=4,
            dropout_ratio=0.,
            num_classes=NUM_CLASSES,
            norm_cfg=dict(type='BN'),
            align_corners=True)
    ]
    return cfg


def build(**kwargs):
    torch.manual_seed(0)
    model = MODELS.build(cascade_cfg(**kwargs))
    for p in model.pem_heads.parameters():
        nn.init.normal_(p, std=0.5)
    return model.eval()


def stock_twin(model):
    cfg = cascade_cfg(
        type='CascadeEncoderDecoder', test_cfg=copy.deepcopy(model.test_cfg))
    cfg.pop('pem_head')
    cfg.pop('scale_factor')
    stock = MODELS.build(cfg)
    missing, unexpected = stock.load_state_dict(
        model.state_dict(), strict=False)
    assert not missing and all(k.startswith('pem_heads.') for k in unexpected)
    return stock.eval()


def test_pems_inherit_from_the_last_stage():
    model = build()
    assert isinstance(model, NPECascadeEncoderDecoder)
    assert isinstance(model.decode_head, nn.ModuleList)
    assert model.pem_heads[0].align_corners is True  # the OCR head's


@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_scale_zero_is_exactly_the_stock_cascade(mode):
    test_cfg = dict(mode=mode, crop_size=(16, 16), stride=(12, 12))
    model = build(scale_factor=0.0, test_cfg=test_cfg)
    stock = stock_twin(model)
    batch = random_seg_batch(size=32)
    with torch.no_grad():
        ours = model.test_step(copy.deepcopy(batch))
        ref = stock.test_step(copy.deepcopy(batch))
    for a, b in zip(ours, ref):
        assert torch.equal(a.seg_logits.data, b.seg_logits.data)
        assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)


@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_constant_correction_is_exact_on_the_last_stage(mode):
    alpha = 0.5
    model = build(
        scale_factor=alpha,
        test_cfg=dict(mode=mode, crop_size=(16, 16), stride=(12, 12)))
    bias = torch.tensor([3., -1., 0.5, 2.])
    for m in model.pem_heads.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.zeros_(m.weight)
            m.bias.data.copy_(bias)
    stock = stock_twin(model)
    eta = (-bias - (-bias).mean()).view(1, -1, 1, 1)
    data = model.data_preprocessor(random_seg_batch(), training=False)
    inputs = data['inputs']
    metas = [s.metainfo for s in data['data_samples']]
    with torch.no_grad():
        torch.testing.assert_close(
            model.inference(inputs, copy.deepcopy(metas)),
            stock.inference(inputs, copy.deepcopy(metas)) - alpha * eta)
        torch.testing.assert_close(
            model(inputs, mode='tensor'),
            stock(inputs, mode='tensor') - alpha * eta)


def test_training_keeps_the_stage_losses_and_adds_the_pem():
    model = build().train()
    data = model.data_preprocessor(random_seg_batch(), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'decode_0.loss_ce', 'decode_1.loss_ce',
            'pem.loss_npe'} <= set(losses)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(p.grad is not None for p in model.parameters())

    frozen = build().train()
    for name in ('backbone', 'decode_head'):
        getattr(frozen, name).requires_grad_(False)
    losses = frozen.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {'pem.loss_npe'}
