"""Post-hoc LA segmentor: ``z - tau * (log pi - mean log pi)`` exactly, in
whole, slide, TTA and ``mode='tensor'`` inference, through NPE-LA's one
correction path; a stock checkpoint loads; bad input refused."""
import copy
import json
import math

import pytest
import torch
from helpers import random_seg_batch, tiny_segmentor_cfg
from mmseg.models import SegTTAModel
from mmseg.registry import MODELS

from mmnpe.functional import log_prior
from mmnpe.seg import (LogitAdjustEncoderDecoder, NPEEncoderDecoder,
                       PriorAdjustedEncoderDecoder)

COUNTS = [5000., 300., 20., 1.]


def la_cfg(**kwargs):
    cfg = tiny_segmentor_cfg(type='LogitAdjustEncoderDecoder')
    for key in ('pem_head', 'scale_factor'):
        cfg.pop(key)
    cfg.update(class_counts=COUNTS, tau=1.0)
    cfg.update(copy.deepcopy(kwargs))
    return cfg


def build(**kwargs):
    torch.manual_seed(0)
    model = MODELS.build(la_cfg(**kwargs))
    model.init_weights()
    return model.eval()


def stock_twin(model):
    cfg = tiny_segmentor_cfg(
        type='EncoderDecoder', test_cfg=copy.deepcopy(model.test_cfg))
    for key in ('pem_head', 'scale_factor'):
        cfg.pop(key)
    stock = MODELS.build(cfg)
    missing, unexpected = stock.load_state_dict(
        model.state_dict(), strict=False)
    assert not missing and unexpected == ['class_counts']
    return stock.eval()


def eta(like_dtype=torch.float32):
    lp = log_prior(torch.tensor(COUNTS, dtype=torch.float64))
    return (lp - lp.mean()).to(like_dtype).view(1, -1, 1, 1)


def preprocessed(model, batch):
    data = model.data_preprocessor(copy.deepcopy(batch), training=False)
    return data['inputs'], [s.metainfo for s in data['data_samples']]


def test_one_correction_path():
    assert issubclass(LogitAdjustEncoderDecoder, PriorAdjustedEncoderDecoder)
    assert issubclass(NPEEncoderDecoder, PriorAdjustedEncoderDecoder)
    for name in ('encode_decode', '_forward', '_adjusted_logits'):
        assert name not in vars(LogitAdjustEncoderDecoder)
        assert name not in vars(NPEEncoderDecoder)


@pytest.mark.parametrize('tau', [1.0, 0.3])
def test_tensor_mode_is_exactly_z_minus_tau_log_prior(tau):
    model = build(tau=tau)
    assert model.scale_factor == tau == model.tau
    stock = stock_twin(model)
    inputs, metas = preprocessed(model, random_seg_batch())
    with torch.no_grad():
        z = stock(inputs, mode='tensor')
        ours = model(inputs, mode='tensor')
        assert torch.equal(ours, z - tau * eta().expand_as(z))
        # Up to the centring constant, z - tau * log pi: same softmax.
        lp = log_prior(torch.tensor(COUNTS, dtype=torch.float64)).float()
        torch.testing.assert_close(
            ours.softmax(1), (z - tau * lp.view(1, -1, 1, 1)).softmax(1))
        est = model.estimate_prior(model.extract_feat(inputs))
        assert est.shape == (2, 4, 1, 1)
        assert est.sum(1).abs().max() < 1e-5  # centred


@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_whole_and_slide_inference_subtract_the_prior(mode):
    test_cfg = dict(mode=mode, crop_size=(16, 16), stride=(12, 12))
    tau = 0.7
    model = build(tau=tau, test_cfg=test_cfg)
    stock = stock_twin(model)
    inputs, metas = preprocessed(model, random_seg_batch())
    with torch.no_grad():
        ours = model.inference(inputs, copy.deepcopy(metas))
        ref = stock.inference(inputs, copy.deepcopy(metas))
    torch.testing.assert_close(ours, ref - tau * eta(), rtol=0, atol=1e-5)
    # The correction is strong enough to change predictions.
    assert not torch.equal(ours.argmax(1), ref.argmax(1))


@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_tau_zero_is_exactly_the_stock_model(mode):
    test_cfg = dict(mode=mode, crop_size=(16, 16), stride=(12, 12))
    model = build(tau=0.0, test_cfg=test_cfg)
    stock = stock_twin(model)
    batch = random_seg_batch(size=32)
    with torch.no_grad():
        ours = model.test_step(copy.deepcopy(batch))
        ref = stock.test_step(copy.deepcopy(batch))
    for a, b in zip(ours, ref):
        assert torch.equal(a.seg_logits.data, b.seg_logits.data)
        assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)


def test_tta_inference_gets_the_correction():
    """A constant correction equals shifting the decode head's bias, so TTA
    through the LA model matches TTA through a stock twin whose
    ``conv_seg.bias`` was shifted by ``-tau * eta``."""
    tau = 1.0
    model = build(tau=tau)
    plain = stock_twin(model)
    shifted = stock_twin(model)
    shifted.decode_head.conv_seg.bias.data -= tau * eta().flatten()
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
        torch.testing.assert_close(
            a.seg_logits.data, b.seg_logits.data, rtol=0, atol=1e-5)
        # The stock model predicts the commonest class somewhere; the
        # adjusted one is pushed towards the rare ones.
        assert not torch.equal(a.pred_sem_seg.data, c.pred_sem_seg.data)


def test_stock_checkpoint_loads_with_only_the_counts_missing(tmp_path):
    from mmengine.runner import load_checkpoint
    model = build()
    stock = stock_twin(model)
    path = tmp_path / 'stock.pth'
    torch.save(dict(state_dict=stock.state_dict(), meta=dict()), path)
    fresh = build()
    missing, unexpected = fresh.load_state_dict(
        torch.load(path)['state_dict'], strict=False)
    assert missing == ['class_counts'] and not unexpected
    load_checkpoint(fresh, str(path), strict=False)
    assert fresh.class_counts.tolist() == COUNTS  # the configured counts
    # Its own checkpoint carries them.
    assert torch.equal(fresh.state_dict()['class_counts'],
                       torch.tensor(COUNTS, dtype=torch.float64))


def test_counts_json_path(tmp_path):
    path = tmp_path / 'pixels.json'
    path.write_text(
        json.dumps(dict(kind='pixels', classes=list('abcd'), counts=COUNTS)))
    model = build(class_counts=str(path))
    assert model.class_counts.tolist() == COUNTS
    assert model.class_counts_file == str(path)


@pytest.mark.parametrize('bad', [-1.0, math.nan, math.inf, 'big', None])
def test_bad_tau_refused_when_built(bad):
    with pytest.raises(ValueError, match='tau must be a finite number >= 0'):
        MODELS.build(la_cfg(tau=bad))
    model = build()
    with pytest.raises(ValueError, match='tau must be a finite'):
        model.tau = bad


def test_bad_counts_and_sigmoid_head_refused_when_built():
    with pytest.raises(ValueError, match='num_classes=4 entries, got 3'):
        MODELS.build(la_cfg(class_counts=[1, 2, 3]))
    with pytest.raises(ValueError, match=r'class_counts\[2\] is 0'):
        MODELS.build(la_cfg(class_counts=[1, 2, 0, 3]))
    cfg = la_cfg()
    cfg.decode_head.update(out_channels=1, num_classes=2, threshold=0.5)
    cfg.auxiliary_head.update(num_classes=2)
    with pytest.raises(ValueError, match='out_channels == 1'):
        MODELS.build(cfg)


def test_unset_counts_fail_at_inference_naming_the_fix():
    model = build(class_counts=None)
    inputs, _ = preprocessed(model, random_seg_batch())
    with pytest.raises(RuntimeError, match='ClassCountsHook'):
        model(inputs, mode='tensor')
