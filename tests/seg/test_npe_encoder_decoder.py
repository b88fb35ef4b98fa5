import copy
import math

import pytest
import torch
import torch.nn as nn
from helpers import NUM_CLASSES, random_seg_batch, tiny_segmentor_cfg
from mmseg.models import SegTTAModel
from mmseg.registry import MODELS

from mmnpe.seg import NPEEncoderDecoder


def build(**kwargs):
    torch.manual_seed(0)
    model = MODELS.build(tiny_segmentor_cfg(**kwargs))
    model.init_weights()
    # Non-trivial PEM weights so that the correction is visible.
    for head in model.pem_heads:
        for p in head.parameters():
            nn.init.normal_(p, std=0.5)
    return model.eval()


def stock_twin(model):
    cfg = tiny_segmentor_cfg(
        type='EncoderDecoder', test_cfg=copy.deepcopy(model.test_cfg))
    cfg.pop('pem_head')
    cfg.pop('scale_factor')
    stock = MODELS.build(cfg)
    missing, unexpected = stock.load_state_dict(
        model.state_dict(), strict=False)
    assert not missing and all(k.startswith('pem_heads.') for k in unexpected)
    return stock.eval()


def preprocessed(model, batch):
    data = model.data_preprocessor(copy.deepcopy(batch), training=False)
    metas = [s.metainfo for s in data['data_samples']]
    return data['inputs'], metas


def test_builds_k_pems_as_module_list():
    model = build(pem_head=[tiny_segmentor_cfg()['pem_head']] * 3)
    assert isinstance(model, NPEEncoderDecoder)
    assert isinstance(model.pem_heads, nn.ModuleList)
    assert len(model.pem_heads) == 3


def test_training_loss_keys_and_gradients():
    model = build(pem_head=[tiny_segmentor_cfg()['pem_head']] * 2).train()
    data = model.data_preprocessor(random_seg_batch(), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {
        'decode.loss_ce', 'decode.acc_seg', 'aux.loss_ce', 'aux.acc_seg',
        'pem_0.loss_npe', 'pem_1.loss_npe'
    } == set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    # Not frozen: the PEM gradient reaches the backbone too.
    assert all(p.grad is not None for p in model.parameters())
    single = build().train()
    data = single.data_preprocessor(random_seg_batch(), training=True)
    assert 'pem.loss_npe' in single.loss(data['inputs'], data['data_samples'])


@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_scale_zero_is_exactly_the_stock_model(mode):
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


@pytest.mark.parametrize('alpha', [1.0, 0.2])
def test_whole_inference_subtracts_scaled_estimate(alpha):
    model = build(scale_factor=alpha)
    inputs, metas = preprocessed(model, random_seg_batch())
    with torch.no_grad():
        x = model.extract_feat(inputs)
        g = model.pem_heads[0](x)
        eta = -g - (-g).mean(dim=1, keepdim=True)
        expected = model.decode_head.forward(x) - alpha * eta
        torch.testing.assert_close(model(inputs, mode='tensor'), expected)
        torch.testing.assert_close(
            model.encode_decode(inputs, metas),
            expected)  # same resolution here


def _constant_pems(model, bias):
    for head in model.pem_heads:
        for m in head.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.zeros_(m.weight)
                m.bias.data.copy_(bias)


@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_constant_correction_is_exact_in_whole_slide_and_tensor_mode(mode):
    """Slide inference averages crop logits linearly, so a constant
    correction must come out exactly; the same holds for whole and
    ``mode='tensor'``."""
    test_cfg = dict(mode=mode, crop_size=(16, 16), stride=(12, 12))
    alpha = 0.5
    model = build(scale_factor=alpha, test_cfg=test_cfg)
    bias = torch.tensor([3., -1., 0.5, 2.])
    _constant_pems(model, bias)
    stock = stock_twin(model)
    eta = (-bias - (-bias).mean()).view(1, -1, 1, 1)
    inputs, metas = preprocessed(model, random_seg_batch())
    with torch.no_grad():
        torch.testing.assert_close(
            model.inference(inputs, copy.deepcopy(metas)),
            stock.inference(inputs, copy.deepcopy(metas)) - alpha * eta)
        torch.testing.assert_close(
            model(inputs, mode='tensor'),
            stock(inputs, mode='tensor') - alpha * eta)


def test_tta_inference_gets_the_correction():
    """A constant correction equals shifting the decode head's bias, so TTA
    through the NPE model must match TTA through a stock twin whose
    ``conv_seg.bias`` was shifted by ``-alpha * eta``."""
    alpha = 1.0
    model = build(scale_factor=alpha)
    bias = torch.tensor([0., 0., 0., -6.])  # eta favours class 3 strongly
    _constant_pems(model, bias)
    eta = -bias - (-bias).mean()
    plain = stock_twin(model)
    shifted = stock_twin(model)
    shifted.decode_head.conv_seg.bias.data -= alpha * eta

    views = []
    for flip in (False, True):
        batch = random_seg_batch(batch_size=2)
        for i, s in enumerate(batch['data_samples']):
            s.set_metainfo(
                dict(
                    img_path=f'{i}.png',
                    flip=flip,
                    flip_direction='horizontal' if flip else None))
        if flip:
            batch['inputs'] = [x.flip(-1) for x in batch['inputs']]
        views.append(batch)
    tta_batch = dict(
        inputs=[v['inputs'] for v in views],
        data_samples=[v['data_samples'] for v in views])
    with torch.no_grad():
        ours = SegTTAModel(module=model).test_step(copy.deepcopy(tta_batch))
        ref = SegTTAModel(module=shifted).test_step(copy.deepcopy(tta_batch))
        stock = SegTTAModel(module=plain).test_step(copy.deepcopy(tta_batch))
    for a, b, c in zip(ours, ref, stock):
        assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)
        # Untrained logits are tiny: the correction removes every class-3
        # prediction the stock model makes.
        assert (c.pred_sem_seg.data == 3).any()
        assert not (a.pred_sem_seg.data == 3).any()


def test_stock_checkpoint_loads_with_only_pem_keys_missing(tmp_path):
    from mmengine.runner import load_checkpoint
    model = build()
    stock = stock_twin(model)
    path = tmp_path / 'stock.pth'
    torch.save(dict(state_dict=stock.state_dict(), meta=dict()), path)
    fresh = build()
    for p in fresh.backbone.parameters():
        nn.init.zeros_(p)
    missing, unexpected = fresh.load_state_dict(
        torch.load(path)['state_dict'], strict=False)
    assert not unexpected
    assert missing and all(k.startswith('pem_heads.') for k in missing)
    load_checkpoint(fresh, str(path), strict=False)
    for (k, a), b in zip(fresh.backbone.state_dict().items(),
                         stock.backbone.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize('bad', [-1.0, math.nan, math.inf, 'big', None])
def test_bad_scale_factor_is_refused_when_built(bad):
    with pytest.raises(
            ValueError, match='scale_factor must be a finite '
            'number >= 0, got'):
        MODELS.build(tiny_segmentor_cfg(scale_factor=bad))


def test_pem_num_classes_must_match_decode_head():
    pem = dict(tiny_segmentor_cfg()['pem_head'], num_classes=NUM_CLASSES + 1)
    with pytest.raises(
            ValueError,
            match=r'pem_head\[0\].num_classes must '
            r'equal the decode head\'s num_classes \(4\), got 5'):
        MODELS.build(tiny_segmentor_cfg(pem_head=pem))


def test_a_stock_head_as_pem_is_refused():
    pem = dict(
        type='FCNHead',
        in_channels=8,
        channels=8,
        num_convs=0,
        concat_input=False,
        in_index=2,
        num_classes=NUM_CLASSES)
    with pytest.raises(TypeError, match='must build a PEMDecodeHead'):
        MODELS.build(tiny_segmentor_cfg(pem_head=pem))


def test_sigmoid_decode_head_is_refused():
    cfg = tiny_segmentor_cfg(num_classes=2)
    cfg['decode_head'].update(
        out_channels=1,
        threshold=0.5,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True))
    with pytest.raises(ValueError, match='out_channels == 1'):
        MODELS.build(cfg)


def test_empty_pem_list_is_refused():
    with pytest.raises(ValueError, match='non-empty list'):
        MODELS.build(tiny_segmentor_cfg(pem_head=[]))


def test_frozen_features_skip_decode_head_and_autograd():
    model = build().train()
    for name in ('backbone', 'decode_head', 'auxiliary_head'):
        getattr(model, name).requires_grad_(False)
    calls = []
    model.decode_head.register_forward_hook(lambda *a: calls.append('dec'))
    model.auxiliary_head.register_forward_hook(lambda *a: calls.append('aux'))
    grads = []
    model.backbone.register_forward_hook(
        lambda m, i, o: grads.append(any(t.requires_grad for t in o)))
    data = model.data_preprocessor(random_seg_batch(), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {'pem.loss_npe'}
    assert calls == [] and grads == [False]
    losses['pem.loss_npe'].backward()
    assert all(p.grad is not None for p in model.pem_heads.parameters())


def test_frozen_backbone_but_trainable_decode_head_still_trains_it():
    model = build().train()
    model.backbone.requires_grad_(False)
    data = model.data_preprocessor(random_seg_batch(), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'decode.loss_ce', 'aux.loss_ce', 'pem.loss_npe'} <= set(losses)


def _with_decode(cfg, **kwargs):
    cfg['decode_head'].update(kwargs)
    cfg['auxiliary_head'].update(kwargs)
    return cfg


def test_pem_inherits_ignore_index_so_a_void_class_is_not_trained():
    """A data set whose void label 0 is below num_classes: the PEM must
    ignore it as the decode head does (mmseg's default would be 255)."""
    torch.manual_seed(0)
    model = MODELS.build(_with_decode(tiny_segmentor_cfg(), ignore_index=0))
    pem = model.pem_heads[0]
    assert pem.ignore_index == 0 and pem.align_corners is False
    for p in pem.parameters():
        nn.init.normal_(p, std=0.5)
    for name in ('backbone', 'decode_head', 'auxiliary_head'):
        getattr(model, name).requires_grad_(False)
    model.train()
    data = model.data_preprocessor(random_seg_batch(), training=True)
    labels = torch.stack([s.gt_sem_seg.data for s in data['data_samples']])
    assert (labels == 0).any()
    loss = model.loss(data['inputs'], data['data_samples'])['pem.loss_npe']
    with torch.no_grad():
        g = pem(model.extract_feat(data['inputs']))
        g = nn.functional.interpolate(
            g, size=labels.shape[2:], mode='bilinear', align_corners=False)
        # OWL with sign -1: softplus(g_y), over the non-void pixels only.
        per_pixel = nn.functional.softplus(g.gather(1, labels))
        expected = per_pixel[labels != 0].mean()
        trained_as_class = per_pixel[labels != 255].mean()
    torch.testing.assert_close(loss, expected)
    assert not torch.allclose(loss, trained_as_class)


def test_pem_inherits_align_corners_of_each_pem():
    pems = [tiny_segmentor_cfg()['pem_head']] * 2
    model = MODELS.build(
        _with_decode(tiny_segmentor_cfg(pem_head=pems), align_corners=True))
    assert [h.align_corners for h in model.pem_heads] == [True, True]
    assert all(h.ignore_index == 255 for h in model.pem_heads)


@pytest.mark.parametrize('key, decode, pem, shown', [
    ('ignore_index', 0, 255, r'\(0\), or be left out to inherit it; got 255'),
    ('align_corners', True, False,
     r'\(True\), or be left out to inherit it; got False'),
])
def test_pem_with_another_ignore_index_or_align_corners_is_refused(
        key, decode, pem, shown):
    pems = [
        tiny_segmentor_cfg()['pem_head'],
        dict(tiny_segmentor_cfg()['pem_head'], **{key: pem})
    ]
    cfg = _with_decode(tiny_segmentor_cfg(pem_head=pems), **{key: decode})
    with pytest.raises(
            ValueError,
            match=rf"pem_head\[1\]\.{key} must equal the decode head's "
            rf'{key} {shown}'):
        MODELS.build(cfg)
    # The same value, set explicitly, is fine.
    pems[1][key] = decode
    MODELS.build(
        _with_decode(tiny_segmentor_cfg(pem_head=pems), **{key: decode}))
