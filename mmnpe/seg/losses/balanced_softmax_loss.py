from typing import Optional

from mmengine.registry import MODELS
from torch import Tensor

from mmnpe.functional import balanced_softmax_loss
from .logit_adjust_loss import _softmax_channels
from .prior_loss import CountsArg, PriorLossBase


# Registered in mmengine's root registry (mmseg and mmpretrain configs).
@MODELS.register_module()
class BalancedSoftmaxLoss(PriorLossBase):
    """Balanced Softmax ``CE(z + log n, y)``; the head predicts with plain
    logits.

    Ren et al., `Balanced Meta-Softmax
    <https://arxiv.org/abs/2007.10740>`_, Eq. 4. Equal to
    :class:`LogitAdjustLoss` with ``tau = 1`` (``log n`` and ``log pi`` differ
    by a constant that softmax ignores); it exists under its own name because
    it is a method of its own in the literature and in result tables.

    - ``forward(): pred + log n -> CE -> weight_reduce_loss``

    Args:
        class_counts (str | Sequence[float] | None): See
            :class:`PriorLossBase`; all counts must be > 0 (a class never
            seen would need ``-inf``). Defaults to None (from the data set).
        reduction (str): Defaults to 'mean' (over non-ignored elements).
        loss_weight (float): Defaults to 1.0.
        ignore_index (int): Defaults to -100.
        loss_name (str): Defaults to 'loss_balanced_softmax'.
    """

    def __init__(self,
                 class_counts: CountsArg = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 ignore_index: int = -100,
                 loss_name: str = 'loss_balanced_softmax') -> None:
        super().__init__(class_counts, None, reduction, loss_weight,
                         ignore_index, loss_name)

    def check_decode_out_channels(self, out_channels: int) -> None:
        """A one-channel (sigmoid) head has no class axis to adjust."""
        _softmax_channels(self, out_channels)

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                ignore_index: Optional[int] = None,
                **kwargs) -> Tensor:
        """Compute the loss; arguments as :meth:`LogitAdjustLoss.forward`.
        """
        _softmax_channels(self, pred.size(1))
        counts = self.check_num_class_counts(
            pred.size(1), 'the logits\' class axis')
        if ignore_index is None:
            ignore_index = self.ignore_index
        loss = balanced_softmax_loss(pred, target, counts, ignore_index)
        soft = target.shape == pred.shape
        num_valid = target.new_tensor(
            loss.numel()) if soft else (target != ignore_index).sum()
        return self._reduce(loss, weight, avg_factor, reduction_override,
                            num_valid)
