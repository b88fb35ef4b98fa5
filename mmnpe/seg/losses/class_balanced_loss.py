from typing import Optional

from mmengine.registry import MODELS
from torch import Tensor

from mmnpe.functional import (check_beta, class_balanced_cross_entropy,
                              effective_number_weights)
from .prior_loss import CountsArg, PriorLossBase


# Registered in mmengine's root registry (mmseg and mmpretrain configs).
@MODELS.register_module()
class ClassBalancedLoss(PriorLossBase):
    """Class-balanced softmax cross-entropy (effective number of samples).

    ``w[y] * CE(z, y)`` with ``w_i = (1 - beta) / (1 - beta ** n_i)``
    normalised to sum to C (`Cui et al. 2019
    <https://arxiv.org/abs/1901.05555>`_, Eq. 5); the loss IWB's stage 2
    trains the classifier with (beta = 0.9999). ``beta = 0`` is plain CE.
    The 'mean' reduction divides by the number of (non-ignored) samples, as
    Cui et al., not by the sum of the weights.

    - ``forward(): counts -> effective-number weights -> w[y] * CE(z, y)
      -> weight_reduce_loss``

    Args:
        class_counts (str | Sequence[float] | None): See
            :class:`PriorLossBase`; all counts must be > 0. Defaults to None
            (from the training data set, or from the head that owns the
            loss).
        beta (float): In [0, 1). Defaults to 0.9999.
        reduction (str): Defaults to 'mean' (over non-ignored elements).
        loss_weight (float): Defaults to 1.0.
        ignore_index (int): Defaults to -100.
        loss_name (str): Defaults to 'loss_class_balanced'.
    """

    def __init__(self,
                 class_counts: CountsArg = None,
                 beta: float = 0.9999,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 ignore_index: int = -100,
                 loss_name: str = 'loss_class_balanced') -> None:
        self.beta = check_beta(beta)
        super().__init__(class_counts, None, reduction, loss_weight,
                         ignore_index, loss_name)

    def class_weights(self, num_classes: int) -> Tensor:
        """The effective-number weights, (C, ) float64, summing to C."""
        counts = self.check_num_class_counts(num_classes,
                                             'the logits\' class axis')
        return effective_number_weights(counts, self.beta)

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
            pred (Tensor): Logits, (N, C) or (N, C, H, W).
            target (Tensor): Integer labels, (N, ) or (N, H, W).
            weight (Tensor, optional): Element-wise weight, target's shape.
            avg_factor (float, optional): Divisor of the 'mean' reduction;
                defaults to the number of non-ignored elements.
            reduction_override (str, optional): Overrides ``reduction``.
            ignore_index (int, optional): Overrides ``self.ignore_index``.

        Returns:
            Tensor: The weighted loss.
        """
        if ignore_index is None:
            ignore_index = self.ignore_index
        loss = class_balanced_cross_entropy(pred, target,
                                            self.class_weights(pred.size(1)),
                                            ignore_index)
        return self._reduce(loss, weight, avg_factor, reduction_override,
                            (target != ignore_index).sum())
