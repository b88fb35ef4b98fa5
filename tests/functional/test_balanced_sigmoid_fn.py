"""Balanced Sigmoid's offset (the slides' formula) and loss: closed forms,
the binary one-channel case, reduction to BCE, finite gradients."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmnpe.functional import balanced_sigmoid_loss, balanced_sigmoid_offset

D = torch.float64


def test_balanced_sigmoid_offset_is_the_slides_formula():
    counts = torch.tensor([2., 1., 1.], dtype=D)
    n, k = 4., 3
    offset = balanced_sigmoid_offset(counts, num_samples=n)
    want = [
        -math.log((n / k) / nj * (n - nj) / (n - n / k))
        for nj in counts.tolist()
    ]
    torch.testing.assert_close(offset, torch.tensor(want, dtype=D))
    # By hand: log 2 and log(2/3).
    torch.testing.assert_close(offset,
                               torch.tensor([2., 2 / 3, 2 / 3], dtype=D).log())


def test_balanced_sigmoid_binary_case_is_log_foreground_over_background():
    # k = 2, n = n0 + n1: the foreground's offset is log(n1 / n0).
    offset = balanced_sigmoid_offset(torch.tensor([3., 1.], dtype=D))
    torch.testing.assert_close(
        offset, torch.tensor([math.log(3), math.log(1 / 3)], dtype=D))
    z = torch.zeros(1, 1, 1, 2, dtype=D)
    t = torch.tensor([[[[1., 0.]]]], dtype=D)
    loss = balanced_sigmoid_loss(z, t, offset[1:])
    # sigmoid(log 1/3) = 1/4.
    torch.testing.assert_close(
        loss.flatten(), torch.tensor([math.log(4), -math.log(0.75)], dtype=D))


def test_balanced_sigmoid_uniform_is_bce_and_grads_finite():
    torch.manual_seed(0)
    z = torch.randn(5, 3, dtype=D, requires_grad=True)
    t = (torch.rand(5, 3) > 0.5).to(D)
    offset = balanced_sigmoid_offset(torch.full((3, ), 4., dtype=D))
    torch.testing.assert_close(offset, torch.zeros(3, dtype=D))
    loss = balanced_sigmoid_loss(z, t, offset)
    torch.testing.assert_close(
        loss, F.binary_cross_entropy_with_logits(z, t, reduction='none'))
    loss.sum().backward()
    assert torch.isfinite(z.grad).all()


def test_balanced_sigmoid_refuses_a_class_in_every_sample():
    with pytest.raises(
            ValueError, match=r'class_counts\[0\] = 4 is not below'):
        balanced_sigmoid_offset(torch.tensor([4., 1.]), num_samples=4)
    with pytest.raises(ValueError, match='k >= 2'):
        balanced_sigmoid_offset(torch.tensor([4.]))
    with pytest.raises(ValueError, match="pred's shape"):
        balanced_sigmoid_loss(
            torch.zeros(2, 3), torch.zeros(2), torch.zeros(3))
