"""Inverse Weight-Balancing (IWB): the KL term of its stage 2.

Dang et al., "Inverse Weight-Balancing for Deep Long-Tailed Learning",
fine-tune the classifier of a CE-trained model (encoder frozen) with a
classification loss plus a KL term that pulls the distribution of the
classifier's row norms towards an *inverse* target built from the class
counts and each sample's hardness (paper Eq. 3-8):

    NC_i = log2(N / (N_i + 1))                      (C, )   Eq. 3
    HC_i(x) = (1 - cos(W_i, x)) / 2                 (B, C)  Eq. 5-6
    P(x) = lambda * NC * HC(x)                      (B, C)  Eq. 7
    KL(softmax |W| || softmax P(x))                 (B, )   Eq. 8

Design decisions (the paper leaves them open):

- P is a *target*: it is detached, so the gradient reaches W only through
  the row norms |W|, not through the cosines inside HC (nor the features).
  The paper builds P to "make the distribution |W| close to the
  distribution P"; letting P move towards |W| would weaken that pull.
- |W| is one C-vector, P one per sample: the KL is computed per sample
  (sum over classes) and the batch mean is taken by the caller (the
  paper's Eq. 10 adds it to each sample's loss).
- ``direction='forward'`` is Eq. 8, KL(softmax|W| || softmax P);
  ``'reverse'`` is KL(softmax P || softmax|W|), the direction the authors'
  code computes (docs/method.md, "Inverse Weight-Balancing").
"""
import math
from numbers import Real
from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .class_counts import check_class_counts

KL_DIRECTIONS = ('forward', 'reverse')


def check_iwb_lambda(value: float, name: str = 'iwb_lambda') -> float:
    """Return ``value`` as a float if it is a finite number in (0, 1]."""
    if (isinstance(value, bool) or not isinstance(value, Real)
            or not math.isfinite(value) or not 0 < value <= 1):
        raise ValueError(f'{name} must be a number in (0, 1], got {value!r}')
    return float(value)


def check_kl_direction(direction: str) -> str:
    """Return ``direction`` if it is one of :data:`KL_DIRECTIONS`."""
    if direction not in KL_DIRECTIONS:
        raise ValueError(
            f'kl_direction must be one of {KL_DIRECTIONS} (forward: the '
            "paper's KL(softmax|W| || softmax P); reverse: the authors' "
            f'code), got {direction!r}')
    return direction


def iwb_number_coefficient(counts: Union[Sequence[float], Tensor]) -> Tensor:
    """``NC_i = log2(N / (N_i + 1))`` with ``N = sum_i N_i`` (Eq. 3).

    Args:
        counts (Sequence[float] | Tensor): Training images per class, (C, ).

    Returns:
        Tensor: (C, ) float64; larger for rarer classes.
    """
    counts = check_class_counts(counts, name='class_counts')
    return torch.log2(counts.sum() / (counts + 1))


def iwb_hardness_coefficient(weight: Tensor, feats: Tensor) -> Tensor:
    """``HC = (1 - cos(W_i, x)) / 2`` per sample and class (Eq. 5-6).

    Args:
        weight (Tensor): Classifier weight, (C, D).
        feats (Tensor): Features the classifier reads, (B, D).

    Returns:
        Tensor: (B, C), in [0, 1]; 1 when x points away from W_i.
    """
    if (weight.dim() != 2 or feats.dim() != 2
            or weight.size(1) != feats.size(1)):
        raise ValueError('weight must be (C, D) and feats (B, D) with the '
                         f'same D; got {tuple(weight.shape)} and '
                         f'{tuple(feats.shape)}')
    cos = F.normalize(feats, dim=1) @ F.normalize(weight, dim=1).t()
    return (1 - cos) / 2


def iwb_target(weight: Tensor, feats: Tensor, number_coef: Tensor,
               iwb_lambda: float) -> Tensor:
    """``P = lambda * NC * HC``, (B, C) (Eq. 7), detached (see module doc).

    Args:
        weight (Tensor): Classifier weight, (C, D).
        feats (Tensor): Features, (B, D).
        number_coef (Tensor): NC, (C, ) (:func:`iwb_number_coefficient`).
        iwb_lambda (float): lambda, in (0, 1].
    """
    iwb_lambda = check_iwb_lambda(iwb_lambda)
    if number_coef.shape != weight.shape[:1]:
        raise ValueError(f'number_coef must have C={weight.size(0)} '
                         f'entries, got shape {tuple(number_coef.shape)}')
    hc = iwb_hardness_coefficient(weight.detach(), feats.detach())
    return iwb_lambda * number_coef.to(hc) * hc


def iwb_kl_loss(weight: Tensor,
                feats: Tensor,
                number_coef: Tensor,
                iwb_lambda: float = 0.15,
                direction: str = 'forward') -> Tensor:
    """Unreduced IWB KL term between softmax(|W|) and softmax(P), (B, ).

    Args:
        weight (Tensor): Classifier weight, (C, D); the gradient flows into
            it through the row norms only.
        feats (Tensor): Features the classifier reads, (B, D).
        number_coef (Tensor): NC, (C, ).
        iwb_lambda (float): lambda in (0, 1]. Defaults to 0.15 (the paper's
            CIFAR-100-LT value).
        direction (str): 'forward' = KL(softmax|W| || softmax P) (Eq. 8),
            'reverse' = KL(softmax P || softmax|W|). Defaults to 'forward'.

    Returns:
        Tensor: KL per sample, (B, ), >= 0.
    """
    direction = check_kl_direction(direction)
    log_target = F.log_softmax(
        iwb_target(weight, feats, number_coef, iwb_lambda), dim=1)
    log_norms = F.log_softmax(weight.norm(dim=1), dim=0).unsqueeze(0)
    if direction == 'forward':
        return (log_norms.exp() * (log_norms - log_target)).sum(1)
    return (log_target.exp() * (log_target - log_norms)).sum(1)
