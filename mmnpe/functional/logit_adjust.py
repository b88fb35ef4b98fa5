"""Logit adjustment with a fixed class prior: the LA loss, Balanced Softmax
and post-hoc LA (docs/method.md, "Baselines").

``log_prior`` everywhere is a (C, ) tensor (:func:`mmnpe.functional.log_prior`
of validated counts); it is added along the class axis (dim 1) of logits of
shape (N, C) or (N, C, H, W).
"""
import math
from numbers import Real

import torch
import torch.nn.functional as F
from torch import Tensor


def check_tau(tau: float, name: str = 'tau') -> float:
    """Return ``tau`` as a float if it is a finite number >= 0."""
    if (isinstance(tau, bool) or not isinstance(tau, Real)
            or not math.isfinite(tau) or tau < 0):
        raise ValueError(f'{name} must be a finite number >= 0, got {tau!r}')
    return float(tau)


def class_axis(vector: Tensor, like: Tensor) -> Tensor:
    """A (C, ) vector shaped to broadcast along dim 1 of ``like``, in its
    dtype and device: (1, C) or (1, C, 1, 1)."""
    if vector.dim() != 1 or like.dim() < 2 or vector.numel() != like.size(1):
        raise ValueError(
            f'a per-class vector of {vector.numel()} entries does not match '
            f'the class axis of a tensor of shape {tuple(like.shape)}')
    shape = (1, -1) + (1, ) * (like.dim() - 2)
    return vector.to(like.dtype).to(like.device).view(shape)


def _check_labels(pred: Tensor, target: Tensor, ignore_index: int) -> Tensor:
    """The valid mask of an integer label map matching ``pred``."""
    if target.is_floating_point():
        raise TypeError('target must hold integer labels (or be a soft '
                        f'target of pred\'s shape), got dtype {target.dtype}')
    if pred.dim() < 2 or target.shape != pred.shape[:1] + pred.shape[2:]:
        raise ValueError(
            'pred must be (N, C) or (N, C, H, W) and target (N,) or '
            '(N, H, W) with matching N, H, W; got pred '
            f'{tuple(pred.shape)} and target {tuple(target.shape)}')
    valid = target != ignore_index
    bad = valid & ((target < 0) | (target >= pred.size(1)))
    if bad.any():
        raise ValueError(
            f'target contains label {int(target[bad][0])}, which is neither '
            f'in [0, {pred.size(1) - 1}] nor the ignore_index {ignore_index}')
    return valid


def logit_adjusted_cross_entropy(pred: Tensor,
                                 target: Tensor,
                                 log_prior: Tensor,
                                 tau: float = 1.0,
                                 ignore_index: int = -100) -> Tensor:
    """Unreduced ``CE(pred + tau * log_prior, target)``, the LA loss.

    Menon et al., `Long-tail learning via logit adjustment
    <https://arxiv.org/abs/2007.07314>`_, Eq. 10: the offset makes the model
    learn balanced logits, so prediction uses the plain ``pred``.

    Args:
        pred (Tensor): Logits, (N, C) or (N, C, H, W).
        target (Tensor): Integer labels (N,) or (N, H, W), or a soft target
            of ``pred``'s shape (probabilities over the class axis).
        log_prior (Tensor): Log class prior, (C, ).
        tau (float): Finite, >= 0; 0 is plain CE. Defaults to 1.0.
        ignore_index (int): Label with no loss and no gradient (hard
            targets). Defaults to -100.

    Returns:
        Tensor: Loss per sample / pixel, (N,) or (N, H, W); exactly 0 at
        ignored positions.
    """
    tau = check_tau(tau)
    adjusted = pred + tau * class_axis(log_prior, pred)
    if target.shape == pred.shape and target.is_floating_point():
        return -(target * F.log_softmax(adjusted, dim=1)).sum(dim=1)
    valid = _check_labels(pred, target, ignore_index)
    index = torch.where(valid, target, torch.zeros_like(target))
    loss = F.cross_entropy(adjusted, index, reduction='none')
    # masked_fill: ignored positions give an exact 0 and no gradient.
    return loss.masked_fill(~valid, 0.)


def balanced_softmax_loss(pred: Tensor,
                          target: Tensor,
                          class_counts: Tensor,
                          ignore_index: int = -100) -> Tensor:
    """Unreduced Balanced Softmax loss ``CE(pred + log n, target)``.

    Ren et al., `Balanced Meta-Softmax <https://arxiv.org/abs/2007.10740>`_,
    Eq. 4. ``log n`` and ``log pi`` differ by the constant ``log sum(n)``,
    which softmax ignores, so this is exactly the LA loss with ``tau = 1``.

    Args:
        pred (Tensor): Logits, (N, C) or (N, C, H, W).
        target (Tensor): As :func:`logit_adjusted_cross_entropy`.
        class_counts (Tensor): Validated counts, all > 0, (C, ).
        ignore_index (int): Defaults to -100.

    Returns:
        Tensor: Loss per sample / pixel, (N,) or (N, H, W).
    """
    return logit_adjusted_cross_entropy(pred, target,
                                        class_counts.double().log(), 1.0,
                                        ignore_index)


def centered_log_prior(log_prior: Tensor) -> Tensor:
    """``log_prior - mean(log_prior)``, (C, ) float64: the fixed-prior
    counterpart of the NPE estimate ``eta`` (post-hoc LA is
    ``npe_logit_adjust(z, eta, tau)`` with it).

    Centring changes neither softmax nor argmax of ``z - tau * eta`` but keeps
    the logits at their scale, as NPE-LA's centred estimate does.

    Args:
        log_prior (Tensor): (C, ); centred in float64, cast by the caller.
    """
    eta = log_prior.double()
    return eta - eta.mean()
