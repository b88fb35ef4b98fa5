from typing import Optional

import torch.nn as nn
from mmengine.registry import MODELS
from mmseg.models.losses.utils import weight_reduce_loss
from torch import Tensor

from mmnpe.functional import check_sign, one_way_logistic_loss

_REDUCTIONS = ('none', 'mean', 'sum')


# Registered in mmengine's root registry so that both mmseg and mmpretrain
# configs (whose registries fall back to the root) find it.
@MODELS.register_module()
class OneWayLogisticLoss(nn.Module):
    """One-way logistic loss of the Neural Prior Estimator.

    ``softplus(-sign * pred[y])`` on the true-class coordinate only
    (`NPE paper <https://arxiv.org/abs/2602.17853>`_, Eq. 6). Works for
    classification ``(N, C)`` and dense prediction ``(N, C, H, W)``.

    Args:
        sign (int): -1 (the paper's choice: push the true-class output down)
            or +1. Defaults to -1.
        reduction (str): 'none', 'mean' or 'sum'. Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        ignore_index (int): Label that gets no loss and no gradient; a head's
            ``ignore_index`` passed at call time wins. Defaults to -100 (as
            mmseg's CE; segmentation heads pass their 255).
        loss_name (str): Name in the log; must start with ``loss_`` to be
            back-propagated. Defaults to 'loss_npe'.
    """

    def __init__(self,
                 sign: int = -1,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 ignore_index: int = -100,
                 loss_name: str = 'loss_npe') -> None:
        super().__init__()
        self.sign = check_sign(sign)
        if reduction not in _REDUCTIONS:
            raise ValueError(f'reduction must be one of {_REDUCTIONS}, got '
                             f'{reduction!r}')
        if not loss_name.startswith('loss_'):
            raise ValueError("loss_name must start with 'loss_' to be "
                             f'back-propagated, got {loss_name!r}')
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self._loss_name = loss_name

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                ignore_index: Optional[int] = None,
                **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): (N, C) or (N, C, H, W) PEM outputs.
            target (Tensor): (N,) or (N, H, W) integer labels.
            weight (Tensor, optional): Element-wise weight, target's shape.
            avg_factor (float, optional): Divisor of the 'mean' reduction;
                defaults to the number of non-ignored elements, so a batch
                that is entirely ignored gives 0, not NaN.
            reduction_override (str, optional): Overrides ``reduction``.
            ignore_index (int, optional): Overrides ``self.ignore_index``.

        Returns:
            Tensor: The weighted loss.
        """
        reduction = reduction_override or self.reduction
        if reduction not in _REDUCTIONS:
            raise ValueError(f'reduction_override must be one of '
                             f'{_REDUCTIONS}, got {reduction!r}')
        if ignore_index is None:
            ignore_index = self.ignore_index
        loss = one_way_logistic_loss(pred, target, self.sign, ignore_index)
        if weight is not None:
            weight = weight.float()
        if avg_factor is None and reduction == 'mean':
            avg_factor = (target != ignore_index).sum()
        loss = weight_reduce_loss(
            loss, weight=weight, reduction=reduction, avg_factor=avg_factor)
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """Name of the loss item in the log."""
        return self._loss_name
