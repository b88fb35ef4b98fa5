"""Prior corrections for classifiers with a background class (detection).

A two-stage detector's RoI classifier has ``C + 1`` outputs, foreground
classes ``0 .. C-1`` and background last (index ``C``); about three in four
sampled RoIs are background. Class priors describe the foreground classes
only, so a correction must leave the foreground / background decision
alone: with ``p = softmax(z)`` it keeps ``p_bg = p[C]`` and redistributes
the foreground mass (docs/user_guides/detection.md, "The background class"),

    scores_fg = (1 - p_bg) * softmax(z_fg - c)

where ``c`` is ``tau * log pi`` (post-hoc LA) or ``alpha * eta`` (NPE-LA,
`NPE paper <https://arxiv.org/abs/2602.17853>`_, Eq. 11). The same
factorisation gives Balanced Softmax (`Ren et al. 2020
<https://arxiv.org/abs/2007.10740>`_, Eq. 4) for detection: the prior is
added to the foreground-conditional part of the likelihood only.
"""
import torch
from torch import Tensor


def _check_logits(logits: Tensor, name: str = 'logits') -> int:
    if logits.dim() != 2 or logits.size(1) < 3:
        raise ValueError(
            f'{name} must be (N, C + 1): C >= 2 foreground classes and the '
            f'background last, got shape {tuple(logits.shape)}')
    return logits.size(1) - 1


def foreground_logit_adjust(logits: Tensor, correction: Tensor) -> Tensor:
    """Logits whose softmax is ``[(1 - p_bg) * softmax(z_fg - c), p_bg]``.

    The foreground logits become ``z_fg - c + d`` with the per-RoI constant
    ``d = logsumexp(z_fg) - logsumexp(z_fg - c)``, so their log-sum-exp, and
    with it ``p_bg``, are those of ``z``; the background logit is kept.
    Working on logits (not scores) lets every consumer of a stock RoI
    head's logits (its softmax, Cascade R-CNN's average over stages,
    ``mode='tensor'``) see the correction.

    Args:
        logits (Tensor): RoI classifier logits, (N, C + 1), background last.
        correction (Tensor): ``c``, (N, C) or (C, ); a constant over the
            classes changes nothing.

    Returns:
        Tensor: Adjusted logits, (N, C + 1).
    """
    num_fg = _check_logits(logits)
    if correction.shape not in ((num_fg, ), (logits.size(0), num_fg)):
        raise ValueError(
            f'correction must be (C, ) or (N, C) with C = {num_fg} foreground '
            f'classes for logits of shape {tuple(logits.shape)}, got '
            f'{tuple(correction.shape)}')
    fg, bg = logits[:, :-1], logits[:, -1:]
    shifted = fg - correction.to(fg)
    shifted = shifted + (
        fg.logsumexp(1, keepdim=True) - shifted.logsumexp(1, keepdim=True))
    return torch.cat([shifted, bg], dim=1)


def foreground_balanced_softmax_loss(logits: Tensor, labels: Tensor,
                                     log_counts: Tensor) -> Tensor:
    """Unreduced Balanced Softmax loss of a classifier with background.

    ``-log p(y)`` under the training-prior model ``p_bg = softmax(z)[C]``,
    ``p(j) = (1 - p_bg) * softmax(z_fg + log n)_j``: background RoIs get
    plain cross-entropy, foreground ones
    ``-log(1 - p_bg) - log softmax(z_fg + log n)_y``. Counts that are all
    equal give plain cross-entropy; at test time the plain softmax of ``z``
    is the balanced prediction.

    Args:
        logits (Tensor): (N, C + 1), background last.
        labels (Tensor): (N, ) integer labels in ``[0, C]`` (``C`` is
            background).
        log_counts (Tensor): ``log n_j`` of the foreground classes, (C, ).

    Returns:
        Tensor: Loss per RoI, (N, ).
    """
    num_fg = _check_logits(logits)
    if labels.shape != logits.shape[:1] or labels.is_floating_point():
        raise ValueError('labels must be (N, ) integer labels for logits of '
                         f'shape {tuple(logits.shape)}, got '
                         f'{tuple(labels.shape)} ({labels.dtype})')
    if log_counts.shape != (num_fg, ):
        raise ValueError(f'log_counts must have C = {num_fg} entries (the '
                         'foreground classes), got shape '
                         f'{tuple(log_counts.shape)}')
    bad = (labels < 0) | (labels > num_fg)
    if bad.any():
        raise ValueError(f'labels must be in [0, {num_fg}] ({num_fg} is the '
                         f'background), got {int(labels[bad][0])}')
    fg_logits = logits[:, :-1]
    is_fg = labels < num_fg
    index = torch.where(is_fg, labels, torch.zeros_like(labels))
    # -log(1 - p_bg) = logsumexp(z) - logsumexp(z_fg)
    fg_mass = logits.logsumexp(1) - fg_logits.logsumexp(1)
    balanced = fg_logits + log_counts.to(fg_logits)
    conditional = balanced.logsumexp(1) - balanced.gather(
        1, index.unsqueeze(1)).squeeze(1)
    background = logits.logsumexp(1) - logits[:, -1]
    return torch.where(is_fg, fg_mass + conditional, background)
