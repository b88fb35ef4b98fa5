"""Balanced Sigmoid: the prior offset for independent sigmoid outputs.

From the Balanced Activation slides (Ren et al., the sigmoid counterpart of
`Balanced Meta-Softmax <https://arxiv.org/abs/2007.10740>`_): with ``k``
classes, ``n`` samples and ``n_j`` positives of class ``j``, training uses

    sigmoid(z_j - log( (n/k) / n_j * (n - n_j) / (n - n/k) ))

i.e. ``z_j + log(n_j / (n - n_j)) - log((n/k) / (n - n/k))``: the training
log-odds of class j replace those of a balanced set, where every class has
``n/k`` positives. The model then learns balanced log-odds and predicts with
the plain ``sigmoid(z_j)``. Uniform counts give offset 0 (plain BCE).

**One-channel binary segmentation** (mmseg ``out_channels=1``): the classes
are background (0) and foreground (1), so ``k = 2``, ``n = n_0 + n_1`` is the
number of labelled pixels and the single output is the foreground's, whose
offset is ``log(n_1 / n_0) - log(1) = log(n_1 / n_0)``.

**Multi-label classification**: ``k = C``, ``n_j`` images carrying class
``j`` and ``n`` the number of images, which for multi-label data is *not*
``sum(n_j)`` and must be given.

**The BALMS variant.** The instance-segmentation code released with
Balanced Meta-Softmax trains the RoI classifier on ``z_j + log(f_j / (1 -
f_j))`` with the image frequency ``f_j = image_count_j / number_of_images``:
the slides' offset without its constant ``log(k - 1)``
(``variant='balms'``). Where it is added (foreground RoIs only, in that
code) is the caller's business.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .logit_adjust import class_axis

#: The Balanced Sigmoid offsets mmnpe offers (see
#: :func:`balanced_sigmoid_offset`).
BALANCED_SIGMOID_VARIANTS = ('slides', 'balms')


def balanced_sigmoid_offset(class_counts: Tensor,
                            num_samples: Optional[float] = None,
                            eps: Optional[float] = None,
                            variant: str = 'slides') -> Tensor:
    """The offset added to the logits in training, per class, (k, ).

    With ``f_j = n_j / n``:

    - ``variant='slides'`` (the Balanced Activation slides' formula):
      ``log(n_j / (n - n_j)) - log((n/k) / (n - n/k))``, i.e.
      ``log(f_j / (1 - f_j)) + log(k - 1)``;
    - ``variant='balms'`` (the BALMS instance-segmentation code):
      ``log(f_j / (1 - f_j))``, the constant ``log(k - 1)`` dropped.

    Args:
        class_counts (Tensor): Positives per class ``n_j``, all > 0 unless
            ``eps`` is given, (k, ).
        num_samples (float, optional): ``n``; None means ``sum(n_j)`` (one
            label per sample: single-label data, binary segmentation).
            Defaults to None.
        eps (float, optional): Added to ``f_j`` inside the log, so a class
            without any positive gets the finite ``log(eps)`` instead of
            ``-inf``. None: the counts must all be > 0. Defaults to None.
        variant (str): 'slides' or 'balms'. Defaults to 'slides'.

    Returns:
        Tensor: The offsets, float64, (k, ).
    """
    if variant not in BALANCED_SIGMOID_VARIANTS:
        raise ValueError(f'variant must be one of '
                         f'{BALANCED_SIGMOID_VARIANTS}, got {variant!r}')
    counts = class_counts.double()
    k = counts.numel()
    if k < 2:
        raise ValueError('balanced sigmoid needs counts of k >= 2 classes '
                         f'(binary: background and foreground), got {k}')
    n = counts.sum() if num_samples is None else torch.tensor(
        float(num_samples), dtype=torch.float64)
    full = (counts >= n).nonzero().flatten()
    if full.numel():
        j = int(full[0])
        raise ValueError(
            f'class_counts[{j}] = {counts[j].item():g} is not below the '
            f'number of samples n = {n.item():g}: every sample is a positive '
            'of that class and its log-odds are infinite (for multi-label '
            'data pass num_samples = the number of images)')
    if eps is None:
        offset = (counts / (n - counts)).log()
    else:
        offset = (counts / n + eps).log() - (1 - counts / n).log()
    if variant == 'balms':
        return offset
    balanced = n / k
    return offset - (balanced / (n - balanced)).log()


def balanced_sigmoid_loss(pred: Tensor, target: Tensor,
                          offset: Tensor) -> Tensor:
    """Unreduced ``BCE-with-logits(pred + offset, target)``.

    Args:
        pred (Tensor): Logits, (N, C) or (N, C, H, W).
        target (Tensor): Targets in [0, 1] of ``pred``'s shape.
        offset (Tensor): Per-channel offsets, (C, ) (see
            :func:`balanced_sigmoid_offset`).

    Returns:
        Tensor: Loss per element, ``pred``'s shape.
    """
    if target.shape != pred.shape:
        raise ValueError('target must have pred\'s shape, got pred '
                         f'{tuple(pred.shape)} and target '
                         f'{tuple(target.shape)}')
    return F.binary_cross_entropy_with_logits(
        pred + class_axis(offset, pred),
        target.to(pred.dtype),
        reduction='none')
