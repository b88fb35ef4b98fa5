"""Fold linear PEMs into the linear classifier (zero-cost NPE-LA)."""
from typing import Tuple

import torch
from torch import Tensor

from .npe import check_scale_factor
from .one_way_logistic import check_sign


def fuse_npe_linear(weight: Tensor,
                    bias: Tensor,
                    pem_weight: Tensor,
                    pem_bias: Tensor,
                    sign: int = -1,
                    scale_factor: float = 1.0,
                    center: bool = True) -> Tuple[Tensor, Tensor]:
    """One linear layer computing NPE-LA logits of a linear classifier.

    With linear PEMs ``g_k(h) = W_k h + b_k`` on the classifier's features,
    ``z - alpha * eta`` is linear in ``h`` (docs/method.md, "Fusion"):
    ``W' = W - alpha * (s / K) * sum_k W_k`` (minus its class-mean row when
    centred), likewise ``b'``.

    Args:
        weight (Tensor): Classifier weight, (C, D).
        bias (Tensor): Classifier bias, (C,).
        pem_weight (Tensor): PEM weights, (K, C, D).
        pem_bias (Tensor): PEM biases, (K, C).
        sign (int): OWL sign of the PEMs. Defaults to -1.
        scale_factor (float): alpha. Defaults to 1.0.
        center (bool): Centre the estimate over classes, as
            :func:`npe_estimate` does. Defaults to True.

    Returns:
        tuple[Tensor, Tensor]: Fused weight (C, D) and bias (C,).
    """
    sign = check_sign(sign)
    scale_factor = check_scale_factor(scale_factor)
    num_classes, dim = weight.shape
    if (pem_weight.dim() != 3 or pem_weight.shape[1:] != weight.shape
            or pem_bias.shape != pem_weight.shape[:2]
            or bias.shape != (num_classes, )):
        raise ValueError(
            'expected weight (C, D), bias (C,), pem_weight (K, C, D) and '
            f'pem_bias (K, C); got {tuple(weight.shape)}, {tuple(bias.shape)}'
            f', {tuple(pem_weight.shape)} and {tuple(pem_bias.shape)}')
    with torch.no_grad():
        eta_w = sign * pem_weight.mean(dim=0)
        eta_b = sign * pem_bias.mean(dim=0)
        if center:
            eta_w = eta_w - eta_w.mean(dim=0, keepdim=True)
            eta_b = eta_b - eta_b.mean()
        return (weight - scale_factor * eta_w, bias - scale_factor * eta_b)
