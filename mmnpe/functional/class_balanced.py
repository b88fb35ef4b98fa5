"""Class-balanced loss: cross-entropy re-weighted by effective numbers."""
import math
from numbers import Real
from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .class_counts import check_class_counts
from .logit_adjust import _check_labels


def check_beta(beta: float) -> float:
    """Return ``beta`` as a float if it is a finite number in [0, 1)."""
    if (isinstance(beta, bool) or not isinstance(beta, Real)
            or not math.isfinite(beta) or not 0 <= beta < 1):
        raise ValueError(f'beta must be a number in [0, 1), got {beta!r}')
    return float(beta)


def effective_number_weights(counts: Union[Sequence[float], Tensor],
                             beta: float = 0.9999) -> Tensor:
    """Class weights ``(1 - beta) / (1 - beta ** n_i)``, summing to C.

    The inverse of the effective number of samples ``(1 - beta ** n) /
    (1 - beta)`` (`Cui et al. 2019 <https://arxiv.org/abs/1901.05555>`_,
    Eq. 3-4), normalised so that the weights sum to the number of classes C
    and the loss keeps CE's scale. ``beta = 0`` gives 1 for every class
    (plain CE); ``beta -> 1`` tends to inverse class frequency.

    Args:
        counts (Sequence[float] | Tensor): Images per class, (C, ), all > 0.
        beta (float): In [0, 1). Defaults to 0.9999.

    Returns:
        Tensor: The weights, (C, ) float64, summing to C.
    """
    beta = check_beta(beta)
    counts = check_class_counts(counts)
    # 1 - beta ** n as -expm1(n * log(beta)): exact for beta near 1.
    if beta == 0:
        effective = torch.ones_like(counts)
    else:
        effective = -torch.expm1(counts * math.log(beta)) / (1 - beta)
    weights = 1.0 / effective
    return weights * (counts.numel() / weights.sum())


def class_balanced_cross_entropy(pred: Tensor,
                                 target: Tensor,
                                 class_weights: Tensor,
                                 ignore_index: int = -100) -> Tensor:
    """Unreduced class-balanced CE ``w[y] * CE(z, y)`` (Cui et al., Eq. 5).

    Args:
        pred (Tensor): Logits, (N, C) or (N, C, H, W).
        target (Tensor): Integer labels, (N, ) or (N, H, W).
        class_weights (Tensor): (C, ), e.g. :func:`effective_number_weights`.
        ignore_index (int): Label with no loss and no gradient. Defaults to
            -100.

    Returns:
        Tensor: Loss per sample / pixel, (N, ) or (N, H, W); exactly 0 at
        ignored positions.
    """
    valid = _check_labels(pred, target, ignore_index)
    if class_weights.shape != pred.shape[1:2]:
        raise ValueError(f'class_weights must have C={pred.size(1)} '
                         f'entries, got shape {tuple(class_weights.shape)}')
    index = torch.where(valid, target, torch.zeros_like(target))
    weights = class_weights.to(pred)[index]
    loss = weights * F.cross_entropy(pred, index, reduction='none')
    # masked_fill: ignored positions give an exact 0 and no gradient.
    return loss.masked_fill(~valid, 0.)
