"""``target_prior`` on the four prior-correcting segmentors (NPE-LA and
post-hoc LA, plain and cascade): uniform is the old prediction bit for bit,
a given pixel prior adds its centred log at every pixel, 'source' brings
the training prior back, the setting comes from the config."""
import copy

import pytest
import torch
import torch.nn as nn
from helpers import NUM_CLASSES, random_seg_batch, tiny_segmentor_cfg
from mmseg.models.utils import resize
from mmseg.registry import MODELS

from mmnpe.functional import centered_log_prior, npe_logit_adjust

PRIOR = [0.5, 0.3, 0.15, 0.05]
COUNTS = [4000., 1000., 300., 50.]
TYPES = ('NPEEncoderDecoder', 'NPECascadeEncoderDecoder',
         'LogitAdjustEncoderDecoder', 'LogitAdjustCascadeEncoderDecoder')


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def model_cfg(kind: str, **kwargs):
    cfg = tiny_segmentor_cfg(type=kind)
    if 'Cascade' in kind:
        cfg.pop('auxiliary_head')
        cfg['num_stages'] = 2
        cfg['decode_head'] = [
            copy.deepcopy(cfg['decode_head']),
            dict(
                type='OCRHead',
                in_channels=8,
                in_index=2,
                channels=8,
                ocr_channels=4,
                dropout_ratio=0.,
                num_classes=NUM_CLASSES,
                norm_cfg=dict(type='BN'))
        ]
    if kind.startswith('LogitAdjust'):
        cfg.pop('pem_head')
        cfg.pop('scale_factor')
        cfg.update(class_counts=COUNTS, tau=1.0)
    cfg.update(kwargs)
    return cfg


def build(kind: str, **kwargs):
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(kind, **kwargs))
    if hasattr(model, 'pem_heads'):
        for p in model.pem_heads.parameters():
            nn.init.normal_(p, std=0.5)
    return model.eval()


def old_adjusted(model, x):
    """``_adjusted_logits`` before the key existed."""
    z = model._decode_logits(x)
    if model.scale_factor == 0:
        return z
    eta = model.estimate_prior(x)
    if eta.shape[2:] != z.shape[2:]:
        eta = (
            eta.expand_as(z) if eta.shape[2:] == (1, 1) else resize(
                eta,
                z.shape[2:],
                mode='bilinear',
                align_corners=model.align_corners))
    return npe_logit_adjust(z, eta, model.scale_factor)


def inputs(model):
    batch = random_seg_batch(num_classes=NUM_CLASSES)
    data = model.data_preprocessor(batch, False)
    return data['inputs'], [s.metainfo for s in data['data_samples']]


@pytest.mark.parametrize('kind', TYPES)
@pytest.mark.parametrize('value', [None, 'uniform'])
def test_uniform_is_the_old_prediction_bit_for_bit(kind, value):
    model = build(kind, target_prior=value)
    x_in, metas = inputs(model)
    with torch.no_grad():
        x = model.extract_feat(x_in)
        old = old_adjusted(model, x)
        assert torch.equal(model._forward(x_in), old)
        assert torch.equal(
            model.encode_decode(x_in, metas),
            model._final_decode_head().predict_by_feat(old, metas))


@pytest.mark.parametrize('kind', TYPES)
def test_given_pixel_prior_adds_its_centred_log_everywhere(kind):
    model = build(kind, target_prior=PRIOR)
    x_in, metas = inputs(model)
    offset = centered_log_prior(
        model.target_prior.double().log()).float().view(1, -1, 1, 1)
    with torch.no_grad():
        old = old_adjusted(model, model.extract_feat(x_in))
        assert torch.equal(model._forward(x_in), old + offset)
        uniform = build(kind).encode_decode(x_in, metas)
        # The resize to the input commutes with a constant per class.
        torch.testing.assert_close(
            model.encode_decode(x_in, metas), uniform + offset)


@pytest.mark.parametrize('kind', TYPES[:2])
def test_source_on_npe_la_gives_exactly_the_stock_logits(kind):
    model = build(kind, scale_factor=0.4, target_prior='source')
    x_in, metas = inputs(model)
    with torch.no_grad():
        x = model.extract_feat(x_in)
        plain = model._decode_logits(x)
        assert torch.equal(model._forward(x_in), plain)
        model.scale_factor = 0.0
        stock = model.encode_decode(x_in, metas)
        model.scale_factor = 0.4
        assert torch.equal(model.encode_decode(x_in, metas), stock)


@pytest.mark.parametrize('kind', TYPES[2:])
@pytest.mark.parametrize('tau', [1.0, 0.0])
def test_source_on_post_hoc_la_adds_the_counts_log_prior(kind, tau):
    model = build(kind, tau=tau, target_prior='source')
    x_in, _ = inputs(model)
    eta = centered_log_prior(model.log_class_prior()).float().view(1, -1, 1, 1)
    with torch.no_grad():
        x = model.extract_feat(x_in)
        # The counts' prior removed in full, then added back: the stock
        # logits again (up to rounding) at every tau.
        full = model._decode_logits(x) - eta
        torch.testing.assert_close(model._forward(x_in), full + eta)
        torch.testing.assert_close(
            model._forward(x_in), model._decode_logits(x))


@pytest.mark.parametrize('kind', TYPES)
def test_setting_is_not_in_checkpoints(kind):
    model = build(kind, target_prior=PRIOR)
    state = model.state_dict()
    assert not any('target_prior' in k for k in state)
    plain = build(kind)
    plain.load_state_dict(state, strict=True)
    assert plain.target_prior_mode == 'uniform'
    model.load_state_dict(build(kind).state_dict(), strict=True)
    torch.testing.assert_close(model.target_prior,
                               torch.tensor(PRIOR, dtype=torch.float64))


@pytest.mark.parametrize('kind', TYPES)
def test_bad_pixel_priors_are_refused_when_built(kind):
    with pytest.raises(
            ValueError, match='target_prior must have num_classes=4 entries'):
        build(kind, target_prior=[0.5, 0.5])
    with pytest.raises(ValueError, match=r'target_prior\[3\] must be >= 0'):
        build(kind, target_prior=[0.5, 0.3, 0.3, -0.1])
