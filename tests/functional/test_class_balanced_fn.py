"""Effective-number weights and class-balanced CE: closed forms."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmnpe.functional import (class_balanced_cross_entropy,
                              effective_number_weights)

COUNTS = [1000., 100., 10., 1.]


def test_effective_number_weights_closed_form():
    beta = 0.9999
    w = effective_number_weights(COUNTS, beta)
    # (1 - beta) / (1 - beta ** n), normalised to sum C = 4 (numpy, float64).
    raw = (1 - beta) / (1 - np.power(beta, np.asarray(COUNTS)))
    want = raw / raw.sum() * 4
    assert w.dtype == torch.float64
    np.testing.assert_allclose(w.numpy(), want, rtol=1e-10)
    assert w.sum().item() == pytest.approx(4.0, rel=1e-12)
    # A class seen once has effective number 1: raw weight exactly 1.
    assert raw[3] == pytest.approx(1.0, rel=1e-9)
    # Rarer classes weigh more.
    assert (w[1:] > w[:-1]).all()


def test_beta_zero_is_plain_ce_and_beta_to_one_is_inverse_frequency():
    assert torch.equal(
        effective_number_weights(COUNTS, 0.0),
        torch.ones(4, dtype=torch.float64))
    w = effective_number_weights(COUNTS, 1 - 1e-9)
    inv = 1 / np.asarray(COUNTS)
    np.testing.assert_allclose(w.numpy(), inv / inv.sum() * 4, rtol=1e-5)


def test_class_balanced_ce_is_weighted_ce():
    torch.manual_seed(0)
    logits = torch.randn(6, 4, requires_grad=True)
    target = torch.tensor([0, 1, 2, 3, 3, 0])
    w = effective_number_weights(COUNTS)
    loss = class_balanced_cross_entropy(logits, target, w)
    ce = F.cross_entropy(logits, target, reduction='none')
    assert torch.allclose(loss, w.float()[target] * ce)
    # Uniform counts reduce it to CE.
    uniform = effective_number_weights([5.] * 4)
    assert torch.allclose(
        class_balanced_cross_entropy(logits, target, uniform), ce)
    loss.mean().backward()
    assert torch.isfinite(logits.grad).all()


def test_dense_form_agrees_with_the_vector_form_and_ignores():
    torch.manual_seed(0)
    pred = torch.randn(2, 4, 3, 3)
    target = torch.randint(0, 4, (2, 3, 3))
    target[0, 0, 0] = 255
    w = effective_number_weights(COUNTS)
    dense = class_balanced_cross_entropy(pred, target, w, ignore_index=255)
    assert dense.shape == (2, 3, 3) and dense[0, 0, 0] == 0
    flat = class_balanced_cross_entropy(
        pred.permute(0, 2, 3, 1).reshape(-1, 4),
        target.reshape(-1),
        w,
        ignore_index=255)
    assert torch.allclose(dense.reshape(-1), flat)


@pytest.mark.parametrize('beta', [1.0, -0.1, float('nan'), True, None])
def test_bad_beta_refused(beta):
    with pytest.raises(ValueError, match=r'beta must be a number in \[0, 1\)'):
        effective_number_weights(COUNTS, beta)


def test_bad_counts_refused_naming_the_class():
    with pytest.raises(ValueError, match=r'class_counts\[2\] is 0'):
        effective_number_weights([3., 2., 0.])
    with pytest.raises(
            ValueError, match=r'class_counts\[1\] must be a finite'):
        effective_number_weights([3., math.nan])


def test_shape_errors_are_clear():
    w = effective_number_weights(COUNTS)
    with pytest.raises(ValueError, match='class_weights must have C=3'):
        class_balanced_cross_entropy(
            torch.zeros(2, 3),
            torch.zeros(2).long(), w)
    with pytest.raises(TypeError, match='integer labels'):
        class_balanced_cross_entropy(torch.zeros(2, 4), torch.zeros(2), w)
