"""The NPE estimate and NPE logit adjustment (NPE-LA)."""
import math
from numbers import Real
from typing import Sequence, Union

from torch import Tensor

from .one_way_logistic import check_sign

# One OWL sign for every PEM, or one per PEM.
_Signs = Union[int, Sequence[int]]


def check_scale_factor(scale_factor: float) -> float:
    """Return ``scale_factor`` as a float if it is finite and >= 0."""
    if (isinstance(scale_factor, bool) or not isinstance(scale_factor, Real)
            or not math.isfinite(scale_factor) or scale_factor < 0):
        raise ValueError('scale_factor must be a finite number >= 0, got '
                         f'{scale_factor!r}')
    return float(scale_factor)


def npe_estimate(pem_outputs: Union[Sequence[Tensor], Tensor],
                 signs: Union[int, Sequence[int]] = -1,
                 center: bool = True) -> Tensor:
    """Estimate the class log-prior from K PEM outputs.

    ``eta = mean_k(s_k * g_k)``: re-signing by the OWL sign makes ``eta``
    approximate ``log(prior) + const`` for either sign convention, and the
    mean (not the sum) keeps its scale independent of K.

    Args:
        pem_outputs (Sequence[Tensor] | Tensor): K tensors of shape (N, C)
            or (N, C, H, W), all of the same shape, or one tensor stacking
            them along its first dimension, (K, N, C) or (K, N, C, H, W)
            (reduced in one operation, as the K linear PEMs of a
            classification head come out of one matmul).
        signs (int | Sequence[int]): The OWL sign of every PEM, or one sign
            for all. Defaults to -1.
        center (bool): Subtract the mean over the class axis. It changes
            neither argmax nor softmax of adjusted logits but keeps them at
            their scale. Defaults to True.

    Returns:
        Tensor: ``eta``, the shape of one PEM output.
    """
    if isinstance(pem_outputs, Tensor):
        return _npe_estimate_stacked(pem_outputs, signs, center)
    if len(pem_outputs) == 0:
        raise ValueError('pem_outputs must hold at least one PEM output, '
                         'got an empty sequence')
    if isinstance(signs, int):
        signs = [signs] * len(pem_outputs)
    if len(signs) != len(pem_outputs):
        raise ValueError(f'signs must have one entry per PEM output '
                         f'({len(pem_outputs)}), got {len(signs)}')
    shape = pem_outputs[0].shape
    for out in pem_outputs:
        if out.shape != shape:
            raise ValueError('all PEM outputs must have the same shape, got '
                             f'{tuple(shape)} and {tuple(out.shape)}')
    eta = sum(check_sign(s) * out for s, out in zip(signs, pem_outputs))
    eta = eta / len(pem_outputs)
    if center:
        eta = eta - eta.mean(dim=1, keepdim=True)
    return eta


def _npe_estimate_stacked(pem_outputs: Tensor, signs: _Signs,
                          center: bool) -> Tensor:
    """:func:`npe_estimate` of K outputs stacked on dim 0, (K, N, C, ...)."""
    if pem_outputs.dim() < 3 or pem_outputs.size(0) == 0:
        raise ValueError('stacked pem_outputs must be (K, N, C) or (K, N, C, '
                         'H, W) with K >= 1, got shape '
                         f'{tuple(pem_outputs.shape)}')
    num_pems = pem_outputs.size(0)
    if isinstance(signs, int):
        eta = check_sign(signs) * pem_outputs.mean(dim=0)
    else:
        if len(signs) != num_pems:
            raise ValueError(f'signs must have one entry per PEM output '
                             f'({num_pems}), got {len(signs)}')
        sign = pem_outputs.new_tensor([check_sign(s) for s in signs])
        sign = sign.view(-1, *([1] * (pem_outputs.dim() - 1)))
        eta = (sign * pem_outputs).mean(dim=0)
    if center:
        eta = eta - eta.mean(dim=1, keepdim=True)
    return eta


def npe_logit_adjust(logits: Tensor,
                     eta: Tensor,
                     scale_factor: float = 1.0) -> Tensor:
    """NPE-LA: ``logits - scale_factor * eta``.

    Args:
        logits (Tensor): Classifier logits, (N, C) or (N, C, H, W).
        eta (Tensor): NPE estimate of the same shape.
        scale_factor (float): alpha; 1 for classification, the paper uses
            1, 0.2 and 0.1 for segmentation. Defaults to 1.0.

    Returns:
        Tensor: Adjusted logits, the shape of ``logits``.
    """
    if logits.shape != eta.shape:
        raise ValueError('logits and eta must have the same shape, got '
                         f'{tuple(logits.shape)} and {tuple(eta.shape)}')
    scale_factor = check_scale_factor(scale_factor)
    if scale_factor == 0:
        return logits
    return logits - scale_factor * eta
