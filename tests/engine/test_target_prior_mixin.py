"""``target_prior`` at a partial correction and in half precision: the
prediction for ``pi_t`` removes the training prior in full (``log pi_t -
(1 - alpha) * eta`` on top of NPE-LA's logits, ``log pi_t - (1 - tau) *
log pi_train`` on top of post-hoc LA's), so it does not depend on alpha;
a near-zero prior keeps a finite offset in every dtype."""
import pytest
import torch
import torch.nn as nn
from helpers import NUM_CLASSES, random_seg_batch, tiny_segmentor_cfg
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS as CLS_MODELS
from mmseg.registry import MODELS as SEG_MODELS

from mmnpe.functional import centered_log_prior
from mmnpe.functional.label_shift import PRIOR_FLOOR

PRIOR = [0.4, 0.3, 0.15, 0.1, 0.05]
COUNTS = [50, 20, 10, 5, 2]


def head(kind='NPEClsHead', **kwargs):
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    cfg = dict(type=kind, num_classes=5, in_channels=8)
    if kind == 'NPEClsHead':
        cfg.update(num_pems=2)
    cfg.update(kwargs)
    h = CLS_MODELS.build(cfg)
    for p in h.parameters():
        nn.init.normal_(p, std=0.5)
    return h.eval()


def feats():
    return (torch.randn(6, 8, generator=torch.Generator().manual_seed(1)), )


def log_pi_t():
    return centered_log_prior(torch.tensor(PRIOR).double().log()).float()


@pytest.mark.parametrize('alpha', [0.0, 0.3, 1.0])
def test_npe_la_target_prior_removes_the_whole_estimate(alpha):
    h = head(scale_factor=alpha, target_prior=PRIOR)
    x = feats()
    with torch.no_grad():
        pre = h.pre_logits(x)
        z, eta = h.final_linear(pre), h.estimate_prior(pre)
        corrected = z - alpha * eta
        want = corrected + log_pi_t() - (1 - alpha) * eta
        torch.testing.assert_close(h(x), want)
        # The same prediction at every alpha.
        torch.testing.assert_close(
            h(x),
            head(scale_factor=1.0, target_prior=PRIOR)(x))
        # Uniform keeps the configured (partial) correction.
        h.set_target_prior('uniform')
        torch.testing.assert_close(h(x), corrected)


@pytest.mark.parametrize('tau', [0.0, 0.4, 1.0])
def test_post_hoc_la_target_prior_removes_the_whole_counts_prior(tau):
    h = head(
        'LogitAdjustClsHead', class_counts=COUNTS, tau=tau, target_prior=PRIOR)
    x = feats()
    log_pi = centered_log_prior(h.log_class_prior()).float()
    with torch.no_grad():
        fc = h.fc(h.pre_logits(x))
        corrected = fc - tau * log_pi
        want = corrected + log_pi_t() - (1 - tau) * log_pi
        torch.testing.assert_close(h(x), want)
        # 'source' is the plain (CE) model at every tau.
        h.set_target_prior('source')
        torch.testing.assert_close(h(x), fc)


def test_seg_npe_la_target_prior_at_a_partial_scale_factor():
    torch.manual_seed(0)
    kwargs = dict(scale_factor=0.3)
    model = SEG_MODELS.build(tiny_segmentor_cfg(**kwargs))
    for p in model.pem_heads.parameters():
        nn.init.normal_(p, std=0.5)
    model.eval()
    batch = random_seg_batch(num_classes=NUM_CLASSES)
    data = model.data_preprocessor(batch, False)
    prior = [0.5, 0.3, 0.15, 0.05]
    assert len(prior) == NUM_CLASSES
    with torch.no_grad():
        x = model.extract_feat(data['inputs'])
        z, eta = model._decode_logits(x), model.estimate_prior(x)
        eta = eta.expand_as(z) if eta.shape[2:] != z.shape[2:] else eta
        model.set_target_prior(prior)
        offset = centered_log_prior(torch.tensor(prior).double().log())
        want = z - 0.3 * eta + offset.float().view(1, -1, 1, 1) - 0.7 * eta
        torch.testing.assert_close(model._forward(data['inputs']), want)


def test_a_plain_head_refuses_a_given_prior():
    with pytest.raises(ValueError, match='num_pems=0.*training prior'):
        head(num_pems=0, target_prior=PRIOR)
    # 'source' and 'uniform' are the plain logits and stay allowed.
    head(num_pems=0, target_prior='source')


def test_near_zero_priors_keep_a_finite_offset_in_half_precision():
    tiny = [1e-106, 1e-9, 0.3, 0.3, 0.4 - 1e-9]
    with pytest.warns(RuntimeWarning, match=r'\[0, 1\]'):
        h = head(target_prior=tiny)
    assert float(h.target_prior.min()) == pytest.approx(
        PRIOR_FLOOR / 5, rel=1e-6)
    offset = h.target_prior_offset()
    assert torch.isfinite(offset).all() and float(offset.min()) > -20
    # A half-precision model rounds the floored entries (2e-7) of its
    # buffer to subnormals or 0; the offset stays finite.
    h.half()
    assert h.target_prior.dtype == torch.float16
    h.target_prior[0] = 0
    offset = h.target_prior_offset()
    assert torch.isfinite(offset).all()
    z = torch.zeros(2, 5, dtype=torch.float16)
    assert torch.isfinite(h.add_target_prior(z)).all()
