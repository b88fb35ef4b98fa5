"""What the count-based losses share: counts, reduction, name, head check.

The losses live with the OWL loss in ``mmnpe.seg.losses`` because they
reduce, as mmseg's losses do, through mmseg's ``weight_reduce_loss``; they
are registered in mmengine's root ``MODELS``, so MMPretrain heads build them
from configs without ``mmnpe.cls`` importing ``mmnpe.seg``.
"""
from typing import Optional, Sequence, Union

import torch.nn as nn
from mmseg.models.losses.utils import weight_reduce_loss
from torch import Tensor

from mmnpe.engine import ClassCountsMixin

_REDUCTIONS = ('none', 'mean', 'sum')
CountsArg = Optional[Union[str, Sequence[float], Tensor]]


class PriorLossBase(ClassCountsMixin, nn.Module):
    """Base of :class:`LogitAdjustLoss`, :class:`BalancedSoftmaxLoss` and
    :class:`BalancedSigmoidLoss` (not registered).

    Args:
        class_counts (str | Sequence[float] | None): Counts per class, the
            path of a counts JSON, or None (filled from the training data set
            by ``ClassCountsHook``). See :class:`ClassCountsMixin`.
        eps (float, optional): Allows zero counts. Defaults to None.
        reduction (str): 'none', 'mean' or 'sum'. Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        ignore_index (int): Label without loss; a head's ``ignore_index``
            passed at call time wins. Defaults to -100 (mmseg heads pass 255).
        loss_name (str): Name in the log, starting with ``loss_``.
    """

    def __init__(self,
                 class_counts: CountsArg = None,
                 eps: Optional[float] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 ignore_index: int = -100,
                 loss_name: str = 'loss_prior') -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f'reduction must be one of {_REDUCTIONS}, got '
                             f'{reduction!r}')
        if not isinstance(loss_name, str) or not loss_name.startswith('loss_'):
            raise ValueError("loss_name must start with 'loss_' to be "
                             f'back-propagated, got {loss_name!r}')
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self._loss_name = loss_name
        self.init_class_counts(class_counts, eps=eps)

    @property
    def loss_name(self) -> str:
        """Name of the loss item in the log."""
        return self._loss_name

    def check_decode_out_channels(self, out_channels: int) -> None:
        """Refuse a segmentation head this loss cannot train (raise)."""

    def _reduce(self, loss: Tensor, weight: Optional[Tensor],
                avg_factor: Optional[float], reduction_override: Optional[str],
                num_valid: Tensor) -> Tensor:
        reduction = reduction_override or self.reduction
        if reduction not in _REDUCTIONS:
            raise ValueError(f'reduction_override must be one of '
                             f'{_REDUCTIONS}, got {reduction!r}')
        if weight is not None:
            weight = weight.float()
            if weight.dim() == loss.dim() + 1 and weight.size(1) == 1:
                weight = weight.squeeze(1)
        # Mean over the non-ignored elements (not all of them, as mmseg's CE
        # does by default), so an ignore-heavy batch is not down-weighted
        # and an all-ignored one gives 0, not NaN.
        if avg_factor is None and reduction == 'mean':
            avg_factor = num_valid.clamp(min=1)
        loss = weight_reduce_loss(
            loss, weight=weight, reduction=reduction, avg_factor=avg_factor)
        return self.loss_weight * loss
