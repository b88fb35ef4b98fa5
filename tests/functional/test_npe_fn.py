import math

import pytest
import torch

from mmnpe.functional import check_scale_factor, npe_estimate, npe_logit_adjust


def test_estimate_is_resigned_mean_and_centred():
    g1 = torch.tensor([[1., 2., 6.]])
    g2 = torch.tensor([[3., 0., 0.]])
    eta = npe_estimate([g1, g2], signs=-1)
    raw = -(g1 + g2) / 2
    torch.testing.assert_close(eta, raw - raw.mean(dim=1, keepdim=True))
    torch.testing.assert_close(eta.sum(dim=1), torch.zeros(1))
    torch.testing.assert_close(
        npe_estimate([g1, g2], signs=-1, center=False), raw)


def test_estimate_is_sign_invariant():
    """A PEM trained with s=+1 learns -g of one trained with s=-1; after
    re-signing both give the same estimate."""
    torch.manual_seed(0)
    g = torch.randn(4, 5, 3, 3)
    torch.testing.assert_close(
        npe_estimate([g], signs=-1), npe_estimate([-g], signs=1))
    torch.testing.assert_close(
        npe_estimate([g, -g], signs=[-1, 1]), npe_estimate([g], signs=-1))


def test_estimate_scale_does_not_grow_with_k():
    g = torch.randn(2, 6)
    torch.testing.assert_close(npe_estimate([g] * 16), npe_estimate([g]))


def test_adjust_closed_form_and_argmax_invariance_to_centring():
    logits = torch.tensor([[2.0, 1.0, 0.5]])
    eta = torch.tensor([[1.5, 0.0, -1.5]])
    out = npe_logit_adjust(logits, eta, 1.0)
    torch.testing.assert_close(out, torch.tensor([[0.5, 1.0, 2.0]]))
    shifted = npe_logit_adjust(logits, eta + 3.0, 1.0)
    assert out.argmax(1) == shifted.argmax(1)
    torch.testing.assert_close(out.softmax(1), shifted.softmax(1))
    assert npe_logit_adjust(logits, eta, 0.0) is logits
    torch.testing.assert_close(
        npe_logit_adjust(logits, eta, 0.2), logits - 0.2 * eta)


@pytest.mark.parametrize('bad',
                         [-1, -0.1, math.nan, math.inf, 'x', None, True])
def test_scale_factor_must_be_finite_and_non_negative(bad):
    with pytest.raises(
            ValueError, match='scale_factor must be a finite '
            r'number >= 0, got'):
        check_scale_factor(bad)


def test_bad_estimate_inputs():
    with pytest.raises(ValueError, match='at least one PEM'):
        npe_estimate([])
    with pytest.raises(ValueError, match='same shape'):
        npe_estimate([torch.zeros(1, 3), torch.zeros(1, 4)])
    with pytest.raises(ValueError, match='one entry per PEM'):
        npe_estimate([torch.zeros(1, 3)], signs=[-1, 1])
    with pytest.raises(ValueError, match='same shape'):
        npe_logit_adjust(torch.zeros(1, 3), torch.zeros(1, 4))


@pytest.mark.parametrize('shape', [(6, 5), (2, 5, 3, 3)])
@pytest.mark.parametrize('signs', [-1, 1, [-1, 1, 1, -1]])
@pytest.mark.parametrize('center', [True, False])
def test_stacked_outputs_give_the_estimate_of_the_list(shape, signs, center):
    """K outputs stacked on dim 0 (one matmul's output) are reduced in one
    operation to the estimate of the same outputs as a list."""
    torch.manual_seed(0)
    stacked = torch.randn(4, *shape)
    torch.testing.assert_close(
        npe_estimate(stacked, signs, center),
        npe_estimate(list(stacked.unbind(0)), signs, center))


def test_bad_stacked_estimate_inputs():
    with pytest.raises(
            ValueError,
            match=r'stacked pem_outputs must be '
            r'\(K, N, C\) .* got shape \(3, 4\)'):
        npe_estimate(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r'K >= 1, got shape \(0, 2, 3\)'):
        npe_estimate(torch.zeros(0, 2, 3))
    with pytest.raises(
            ValueError, match=r'one entry per PEM output \(2\), '
            'got 3'):
        npe_estimate(torch.zeros(2, 1, 3), signs=[-1, 1, 1])
    with pytest.raises(ValueError, match='sign must be -1 or \\+1, got 0'):
        npe_estimate(torch.zeros(2, 1, 3), signs=0)
