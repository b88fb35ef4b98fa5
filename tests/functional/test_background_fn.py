"""Prior corrections for classifiers with a background class: the
foreground logit adjustment keeps p(background) and is the closed form
(1 - p_bg) * softmax(z_fg - c); the detection Balanced Softmax loss is its
closed form, plain CE for uniform counts and for background RoIs, and never
moves the foreground / background decision."""
import pytest
import torch
import torch.nn.functional as F

from mmnpe.functional import (foreground_balanced_softmax_loss,
                              foreground_logit_adjust)

D = torch.float64


def _logits(n=6, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c + 1, generator=g, dtype=D) * 3


def test_foreground_adjust_is_the_closed_form_and_keeps_background():
    z = _logits()
    c = torch.tensor([1.5, -0.5, 0.25, 2.0], dtype=D)
    p = F.softmax(z, 1)
    got = F.softmax(foreground_logit_adjust(z, c), 1)
    want_fg = (1 - p[:, -1:]) * F.softmax(z[:, :-1] - c, 1)
    torch.testing.assert_close(got[:, :-1], want_fg)
    torch.testing.assert_close(got[:, -1], p[:, -1])
    # The background logit itself is not touched.
    assert torch.equal(foreground_logit_adjust(z, c)[:, -1], z[:, -1])


def test_foreground_adjust_per_roi_correction_and_neutral_ones():
    z = _logits()
    per_roi = torch.randn(6, 4, dtype=D)
    got = F.softmax(foreground_logit_adjust(z, per_roi), 1)
    for i in range(6):
        one = F.softmax(foreground_logit_adjust(z[i:i + 1], per_roi[i]), 1)
        torch.testing.assert_close(got[i:i + 1], one)
    # No correction: the very same logits; a constant one: the same scores.
    assert torch.equal(foreground_logit_adjust(z, torch.zeros(4, dtype=D)), z)
    torch.testing.assert_close(
        F.softmax(
            foreground_logit_adjust(z, torch.full((4, ), 7., dtype=D)), 1),
        F.softmax(z, 1))


def test_foreground_adjust_moves_the_argmax_to_the_tail():
    # Two foreground classes equally likely; subtracting log pi (head 0.9,
    # tail 0.1) prefers the tail, the background mass stays.
    z = torch.tensor([[2., 2., 0.]], dtype=D)
    c = torch.tensor([0.9, 0.1], dtype=D).log()
    s = F.softmax(foreground_logit_adjust(z, c), 1)
    assert s[0, 1] > s[0, 0]
    torch.testing.assert_close(s[0, 0] / s[0, 1], torch.tensor(1 / 9, dtype=D))


@pytest.mark.parametrize('logits, correction, match', [
    (torch.zeros(3, 2), torch.zeros(1), r'C >= 2 foreground'),
    (torch.zeros(3, 5), torch.zeros(5), r'correction must be \(C, \)'),
    (torch.zeros(3, 5), torch.zeros(2, 4), r'got \(2, 4\)'),
])
def test_foreground_adjust_refuses_bad_shapes(logits, correction, match):
    with pytest.raises(ValueError, match=match):
        foreground_logit_adjust(logits, correction)


def test_balanced_softmax_with_background_closed_form():
    z = torch.tensor([[1., 0., -1., 0.5], [0., 2., 1., 3.]], dtype=D)
    n = torch.tensor([8., 2., 1.], dtype=D)
    labels = torch.tensor([1, 3])  # a foreground RoI of class 1, background
    loss = foreground_balanced_softmax_loss(z, labels, n.log())
    e = z.exp()
    p_bg = e[0, 3] / e[0].sum()
    fg = (n * e[0, :3]) / (n * e[0, :3]).sum()
    want0 = -torch.log((1 - p_bg) * fg[1])
    want1 = -torch.log(e[1, 3] / e[1].sum())
    torch.testing.assert_close(loss, torch.stack([want0, want1]))


def test_balanced_softmax_with_background_reduces_to_ce():
    z = _logits(8, 5)
    labels = torch.tensor([0, 1, 5, 5, 2, 4, 5, 3])
    ce = F.cross_entropy(z, labels, reduction='none')
    uniform = foreground_balanced_softmax_loss(z, labels,
                                               torch.full((5, ), 3., dtype=D))
    torch.testing.assert_close(uniform, ce)
    skewed = foreground_balanced_softmax_loss(
        z, labels,
        torch.tensor([100., 10., 5., 2., 1.], dtype=D).log())
    bg = labels == 5
    # Background RoIs: plain CE whatever the counts; foreground ones differ.
    torch.testing.assert_close(skewed[bg], ce[bg])
    assert not torch.allclose(skewed[~bg], ce[~bg])


def test_balanced_softmax_with_background_leaves_the_background_gradient():
    # The counts never move the object / background decision: the gradient
    # of the background logit is CE's for every RoI.
    z = _logits(8, 5).requires_grad_()
    labels = torch.tensor([0, 1, 5, 5, 2, 4, 5, 3])
    log_n = torch.tensor([100., 10., 5., 2., 1.], dtype=D).log()
    g_bs, = torch.autograd.grad(
        foreground_balanced_softmax_loss(z, labels, log_n).sum(), z)
    g_ce, = torch.autograd.grad(F.cross_entropy(z, labels, reduction='sum'), z)
    torch.testing.assert_close(g_bs[:, -1], g_ce[:, -1])
    assert not torch.allclose(g_bs[:, :-1], g_ce[:, :-1])


def test_balanced_softmax_with_background_refuses_bad_labels():
    z = torch.zeros(2, 4)
    with pytest.raises(ValueError, match=r'labels must be in \[0, 3\]'):
        foreground_balanced_softmax_loss(z, torch.tensor([0, 4]),
                                         torch.zeros(3))
    with pytest.raises(ValueError, match=r'log_counts must have C = 3'):
        foreground_balanced_softmax_loss(z, torch.tensor([0, 3]),
                                         torch.zeros(4))
