"""IWB's KL term: closed forms by hand and numpy, direction, gradients."""
import math

import numpy as np
import pytest
import torch

from mmnpe.functional import (iwb_hardness_coefficient, iwb_kl_loss,
                              iwb_number_coefficient, iwb_target)

COUNTS = [100., 10., 1.]
# Rows with norms 1, 2, 3 pointing along +x, +y, -x.
W = [[1., 0.], [0., 2.], [-3., 0.]]
# Two samples: along +x (easy for class 0) and along +y (scaled: the cosine
# ignores the feature's norm).
X = [[2., 0.], [0., 0.5]]


def _numpy_kl(weight, feats, counts, lam, direction):
    """An independent numpy implementation of the paper's Eq. 3-8."""
    weight, feats = np.asarray(weight), np.asarray(feats)
    counts = np.asarray(counts)
    nc = np.log2(counts.sum() / (counts + 1))
    cos = (feats @ weight.T) / np.outer(
        np.linalg.norm(feats, axis=1), np.linalg.norm(weight, axis=1))
    p_target = lam * nc * (1 - cos) / 2

    def softmax(v):
        e = np.exp(v - v.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    q = softmax(np.linalg.norm(weight, axis=1))[None]
    p = softmax(p_target)
    if direction == 'forward':
        return (q * np.log(q / p)).sum(1)
    return (p * np.log(p / q)).sum(1)


def test_number_coefficient_closed_form():
    nc = iwb_number_coefficient(COUNTS)
    # N = 111: log2(111 / 101), log2(111 / 11), log2(111 / 2).
    want = [math.log2(111 / 101), math.log2(111 / 11), math.log2(111 / 2)]
    assert nc.dtype == torch.float64
    assert torch.allclose(nc, torch.tensor(want, dtype=torch.float64))
    # Rarer classes get the larger coefficient (the inverse of the prior).
    assert nc[0] < nc[1] < nc[2]


def test_hardness_coefficient_by_hand():
    hc = iwb_hardness_coefficient(torch.tensor(W), torch.tensor(X))
    # x1 = +x: cos = (1, 0, -1); x2 = +y: cos = (0, 1, 0).
    assert torch.allclose(hc, torch.tensor([[0., .5, 1.], [.5, 0., .5]]))


def test_target_is_lambda_nc_hc():
    nc = iwb_number_coefficient(COUNTS)
    p = iwb_target(torch.tensor(W), torch.tensor(X), nc, 0.5)
    want = 0.5 * nc.float() * torch.tensor([[0., .5, 1.], [.5, 0., .5]])
    assert torch.allclose(p, want)


@pytest.mark.parametrize('direction', ['forward', 'reverse'])
@pytest.mark.parametrize('lam', [0.15, 1.0])
def test_kl_matches_numpy(direction, lam):
    nc = iwb_number_coefficient(COUNTS)
    kl = iwb_kl_loss(
        torch.tensor(W, dtype=torch.float64),
        torch.tensor(X, dtype=torch.float64), nc, lam, direction)
    want = _numpy_kl(W, X, COUNTS, lam, direction)
    assert kl.shape == (2, )
    np.testing.assert_allclose(kl.numpy(), want, rtol=1e-12)


def test_kl_by_hand_on_a_two_class_example():
    # Equal norms -> softmax|W| = (1/2, 1/2). x along W_0: HC = (0, 1/2);
    # counts (3, 1): NC = (log2(4/4), log2(4/2)) = (0, 1); lambda = 1:
    # P = (0, 1/2), softmax P = (1, e^.5) / (1 + e^.5).
    w = torch.tensor([[1., 0.], [0., 1.]], dtype=torch.float64)
    x = torch.tensor([[1., 0.]], dtype=torch.float64)
    nc = iwb_number_coefficient([3., 1.])
    assert torch.allclose(nc, torch.tensor([0., 1.], dtype=torch.float64))
    z = 1 + math.exp(0.5)
    p = [1 / z, math.exp(0.5) / z]
    forward = 0.5 * math.log(0.5 / p[0]) + 0.5 * math.log(0.5 / p[1])
    reverse = p[0] * math.log(p[0] / 0.5) + p[1] * math.log(p[1] / 0.5)
    assert iwb_kl_loss(w, x, nc, 1.0, 'forward').item() == pytest.approx(
        forward, rel=1e-12)
    assert iwb_kl_loss(w, x, nc, 1.0, 'reverse').item() == pytest.approx(
        reverse, rel=1e-12)
    # The two directions differ: the choice matters.
    assert abs(forward - reverse) > 1e-4


def test_kl_is_zero_when_norms_match_the_target_distribution():
    # Softmax is shift-invariant: |W| = P + const gives KL = 0. One sample,
    # x orthogonal to every row, HC = 1/2, P = lambda * NC / 2.
    nc = iwb_number_coefficient(COUNTS).double()
    lam = 0.6
    norms = lam * nc / 2 + 5.0
    w = torch.zeros(3, 3, dtype=torch.float64)
    w[:, 0] = norms
    x = torch.tensor([[0., 1., 0.]], dtype=torch.float64)
    for direction in ('forward', 'reverse'):
        assert iwb_kl_loss(w, x, nc, lam, direction).abs().item() < 1e-14


def test_gradient_reaches_w_only_through_its_norms():
    nc = iwb_number_coefficient(COUNTS)
    w = torch.tensor(W, dtype=torch.float64, requires_grad=True)
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    loss = iwb_kl_loss(w, x, nc, 0.15).mean()
    grad_w, grad_x = torch.autograd.grad(loss, [w, x], allow_unused=True)
    # P is a detached target: nothing flows to the features ...
    assert grad_x is None
    assert torch.isfinite(grad_w).all()
    # ... and W's gradient equals the one with P held constant.
    p = iwb_target(w.detach(), x.detach(), nc, 0.15)
    w2 = w.detach().clone().requires_grad_(True)
    q = torch.log_softmax(w2.norm(dim=1), 0)
    ref = (q.exp() * (q - torch.log_softmax(p, 1))).sum(1).mean()
    (grad_ref, ) = torch.autograd.grad(ref, [w2])
    assert torch.allclose(grad_w, grad_ref, rtol=1e-12)
    # The gradient of a norm is along its row: W_i's direction is kept.
    cross = grad_w[:, 0] * w[:, 1] - grad_w[:, 1] * w[:, 0]
    assert torch.allclose(cross, torch.zeros(3, dtype=torch.float64))


@pytest.mark.parametrize('direction', ['forward', 'reverse'])
def test_minimising_the_kl_inverts_the_norms(direction):
    """The point of IWB: starting from CE-like norms (head class largest),
    the KL alone drives the rarest class to the largest norm."""
    torch.manual_seed(0)
    counts = [1000., 100., 10.]
    nc = iwb_number_coefficient(counts)
    w = torch.nn.functional.normalize(torch.randn(3, 8), dim=1)
    w = w * torch.tensor([[3.], [2.], [1.]])
    w.requires_grad_(True)
    feats = torch.randn(64, 8)
    before = w.detach().norm(dim=1)
    assert before[0] > before[1] > before[2]
    opt = torch.optim.SGD([w], lr=2.0)
    for _ in range(300):
        opt.zero_grad()
        iwb_kl_loss(w, feats, nc, 1.0, direction).mean().backward()
        opt.step()
    after = w.detach().norm(dim=1)
    assert after[2] > after[1] > after[0]


def test_zero_features_give_finite_loss_and_gradients():
    nc = iwb_number_coefficient(COUNTS)
    w = torch.tensor(W, requires_grad=True)
    x = torch.zeros(2, 2)  # zero features: the cosine must not be NaN
    loss = iwb_kl_loss(w, x, nc).mean()
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(w.grad).all()


@pytest.mark.parametrize(
    'lam',
    [0, -0.1, 1.01, float('nan'),
     float('inf'), True, '0.1'])
def test_lambda_outside_unit_interval_refused(lam):
    nc = iwb_number_coefficient(COUNTS)
    with pytest.raises(
            ValueError, match=r'iwb_lambda must be a number in '
            r'\(0, 1\]'):
        iwb_kl_loss(torch.tensor(W), torch.tensor(X), nc, lam)


def test_unknown_direction_refused():
    nc = iwb_number_coefficient(COUNTS)
    with pytest.raises(ValueError, match="kl_direction must be one of"):
        iwb_kl_loss(torch.tensor(W), torch.tensor(X), nc, 0.15, 'backward')


def test_shape_errors_are_clear():
    nc = iwb_number_coefficient(COUNTS)
    with pytest.raises(ValueError, match='the same D'):
        iwb_kl_loss(torch.tensor(W), torch.zeros(2, 3), nc)
    with pytest.raises(ValueError, match='number_coef must have C=3'):
        iwb_kl_loss(torch.tensor(W), torch.tensor(X), nc[:2])
    with pytest.raises(ValueError, match=r'class_counts\[1\] must be >= 0'):
        iwb_number_coefficient([3., -1.])
