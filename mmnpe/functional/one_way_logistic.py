"""One-way logistic (OWL) loss, the training signal of the PEMs."""
import torch
import torch.nn.functional as F
from torch import Tensor

VALID_SIGNS = (-1, 1)


def check_sign(sign: int) -> int:
    """Return ``sign`` if it is -1 or +1, else raise a ``ValueError``."""
    if isinstance(sign, bool) or sign not in VALID_SIGNS:
        raise ValueError(f'sign must be -1 or +1, got {sign!r}')
    return int(sign)


def one_way_logistic_loss(pred: Tensor,
                          target: Tensor,
                          sign: int = -1,
                          ignore_index: int = -100) -> Tensor:
    """Unreduced one-way logistic loss ``softplus(-sign * pred[y])``.

    Only the true-class coordinate of each prediction is touched (NPE paper,
    Eq. 6): with ``sign=-1`` it is pushed down, with ``sign=+1`` up. The push
    never stops, so under weight decay each class settles at a value that
    grows with the log of how often it was seen; that value is the prior
    estimate.

    Args:
        pred (Tensor): PEM outputs, shape (N, C) or (N, C, H, W).
        target (Tensor): Integer labels, shape (N,) or (N, H, W).
        sign (int): -1 (the paper's choice) or +1. Defaults to -1.
        ignore_index (int): Label that gets no loss and no gradient.
            Defaults to -100.

    Returns:
        Tensor: Loss per sample / pixel, the shape of ``target``; zero at
        ignored positions.
    """
    sign = check_sign(sign)
    if target.is_floating_point() or target.is_complex():
        raise TypeError('target must hold integer class labels, got dtype '
                        f'{target.dtype}; soft (mixup/one-hot) targets have '
                        'no single true class for the one-way loss')
    if pred.dim() < 2 or target.shape != pred.shape[:1] + pred.shape[2:]:
        raise ValueError(
            'pred must be (N, C) or (N, C, H, W) and target '
            '(N,) or (N, H, W) with matching N, H, W; got pred '
            f'{tuple(pred.shape)} and target {tuple(target.shape)}')
    num_classes = pred.size(1)
    valid = target != ignore_index
    bad = valid & ((target < 0) | (target >= num_classes))
    if bad.any():
        raise ValueError(
            f'target contains label {int(target[bad][0])}, which is neither '
            f'in [0, {num_classes - 1}] (num_classes={num_classes}) nor the '
            f'ignore_index {ignore_index}')
    index = torch.where(valid, target, torch.zeros_like(target))
    true_class = pred.gather(1, index.unsqueeze(1)).squeeze(1)
    # masked_fill, not a multiplication, so ignored positions contribute an
    # exact zero loss and zero gradient even if their logits are not finite.
    return F.softplus(-sign * true_class).masked_fill(~valid, 0.)
