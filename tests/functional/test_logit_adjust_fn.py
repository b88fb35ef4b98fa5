"""Functional cores of the LA loss, Balanced Softmax and post-hoc LA: closed
forms on hand-computed inputs, reduction to CE, dense == vector, finite
gradients."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmnpe.functional import (balanced_softmax_loss, centered_log_prior,
                              check_tau, log_prior,
                              logit_adjusted_cross_entropy, npe_logit_adjust)

D = torch.float64


def test_la_loss_closed_form():
    z = torch.zeros(1, 2, dtype=D)
    y = torch.tensor([0])
    lp = torch.tensor([0.75, 0.25], dtype=D).log()
    # softmax(log pi) = pi: CE = -log 0.75.
    loss = logit_adjusted_cross_entropy(z, y, lp, tau=1.0)
    assert loss.item() == pytest.approx(-math.log(0.75))
    # tau = 2: softmax(2 log pi) = pi^2 / sum pi^2 = 0.9.
    loss = logit_adjusted_cross_entropy(z, y, lp, tau=2.0)
    assert loss.item() == pytest.approx(-math.log(0.9))
    # The rare class pays more: -log 0.25.
    loss = logit_adjusted_cross_entropy(z, torch.tensor([1]), lp)
    assert loss.item() == pytest.approx(-math.log(0.25))


def test_balanced_softmax_closed_form_and_equals_la_with_tau_one():
    z = torch.tensor([[0.3, -1.0, 2.0]], dtype=D)
    y = torch.tensor([2])
    counts = torch.tensor([30., 10., 5.], dtype=D)
    loss = balanced_softmax_loss(z, y, counts)
    adjusted = z + counts.log()
    want = -(adjusted[0, 2] - adjusted.logsumexp(dim=1)[0])
    assert loss.item() == pytest.approx(want.item())
    la = logit_adjusted_cross_entropy(z, y, log_prior(counts), 1.0)
    torch.testing.assert_close(loss, la)


@pytest.mark.parametrize('tau', [0.0, 1.0, 0.5])
def test_uniform_counts_or_tau_zero_reduce_to_ce(tau):
    torch.manual_seed(0)
    z = torch.randn(6, 4, dtype=D)
    y = torch.randint(0, 4, (6, ))
    uniform = log_prior(torch.full((4, ), 7., dtype=D))
    ce = F.cross_entropy(z, y, reduction='none')
    torch.testing.assert_close(
        logit_adjusted_cross_entropy(z, y, uniform, tau), ce)
    skewed = log_prior(torch.tensor([100., 10., 5., 1.], dtype=D))
    la = logit_adjusted_cross_entropy(z, y, skewed, tau)
    if tau == 0:
        torch.testing.assert_close(la, ce)
    else:
        assert not torch.allclose(la, ce)
    torch.testing.assert_close(
        balanced_softmax_loss(z, y, torch.full((4, ), 3., dtype=D)), ce)


def test_dense_equals_vector_form_with_ignore_and_finite_grads():
    torch.manual_seed(0)
    z = torch.randn(2, 3, 4, 5, dtype=D, requires_grad=True)
    y = torch.randint(0, 3, (2, 4, 5))
    y[0, 0, :3] = 255
    lp = log_prior(torch.tensor([8., 3., 1.], dtype=D))
    dense = logit_adjusted_cross_entropy(z, y, lp, 0.7, ignore_index=255)
    assert dense.shape == (2, 4, 5)
    assert (dense[0, 0, :3] == 0).all()
    flat = logit_adjusted_cross_entropy(
        z.permute(0, 2, 3, 1).reshape(-1, 3), y.reshape(-1), lp, 0.7, 255)
    torch.testing.assert_close(dense.reshape(-1), flat)
    dense.sum().backward()
    assert torch.isfinite(z.grad).all()
    assert (z.grad[0, :, 0, :3] == 0).all()  # ignored pixels: no gradient


def test_soft_targets():
    z = torch.tensor([[0.5, -0.5]], dtype=D)
    lp = torch.tensor([0.8, 0.2], dtype=D).log()
    soft = torch.tensor([[0.25, 0.75]], dtype=D)
    hard = [
        logit_adjusted_cross_entropy(z, torch.tensor([c]), lp) for c in (0, 1)
    ]
    want = 0.25 * hard[0] + 0.75 * hard[1]
    torch.testing.assert_close(logit_adjusted_cross_entropy(z, soft, lp), want)


@pytest.mark.parametrize('bad', [-1.0, math.nan, math.inf, '1', None, True])
def test_bad_tau(bad):
    with pytest.raises(ValueError, match='tau must be a finite number >= 0'):
        check_tau(bad)


def test_bad_labels_and_shapes():
    lp = log_prior(torch.tensor([1., 1.], dtype=D))
    with pytest.raises(ValueError, match='label 2, which is neither'):
        logit_adjusted_cross_entropy(torch.zeros(1, 2), torch.tensor([2]), lp)
    with pytest.raises(ValueError, match='does not match the class axis'):
        logit_adjusted_cross_entropy(torch.zeros(1, 3), torch.tensor([0]), lp)


# ------------------------------------------------------------------ post-hoc
def test_post_hoc_la_is_npe_la_with_the_centred_log_prior():
    z = torch.randn(3, 4, dtype=D)
    counts = torch.tensor([50., 20., 5., 1.], dtype=D)
    lp = log_prior(counts)
    eta = centered_log_prior(lp)
    assert eta.sum().abs() < 1e-12
    adjusted = npe_logit_adjust(z, eta.expand(3, 4), 0.5)
    # Up to the per-sample constant of the centring, z - tau * log pi.
    torch.testing.assert_close(adjusted, z - 0.5 * lp + 0.5 * lp.mean())
    torch.testing.assert_close(adjusted.softmax(1), (z - 0.5 * lp).softmax(1))
