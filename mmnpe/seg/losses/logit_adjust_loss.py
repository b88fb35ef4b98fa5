from typing import Optional

from mmengine.registry import MODELS
from torch import Tensor

from mmnpe.functional import check_tau, logit_adjusted_cross_entropy
from .prior_loss import CountsArg, PriorLossBase


def _softmax_channels(loss: PriorLossBase, num: int) -> None:
    if num == 1:
        raise ValueError(
            f'{type(loss).__name__} needs one logit per class (a softmax '
            'head), but the head has out_channels == 1 (a sigmoid binary '
            'head); use BalancedSigmoidLoss there, or set '
            'out_channels = num_classes')


# Registered in mmengine's root registry: mmseg (loss_decode=) and
# mmpretrain (head loss=) configs both find it.
@MODELS.register_module()
class LogitAdjustLoss(PriorLossBase):
    """Logit-adjusted cross-entropy ``CE(z + tau * log pi, y)``.

    Menon et al., `Long-tail learning via logit adjustment
    <https://arxiv.org/abs/2007.07314>`_, Eq. 10. Training with the prior
    added makes ``z`` itself balanced, so the head predicts with the plain
    logits. ``pi`` = counts / sum(counts) (images per class for
    classification, pixels per class for segmentation).

    - ``forward(): pred + tau * log pi -> CE (per sample / pixel) ->
      weight_reduce_loss``

    Works as a MMPretrain head ``loss=`` (``(N, C)`` logits, labels ``(N,)``
    or soft targets ``(N, C)``, ``avg_factor``) and a MMSegmentation
    ``loss_decode=`` (``(N, C, H, W)``, ``(N, H, W)``, ``weight``,
    ``ignore_index``).

    Args:
        class_counts (str | Sequence[float] | None): See
            :class:`PriorLossBase`. Defaults to None (from the data set).
        tau (float): Finite, >= 0; 0 is plain CE. Defaults to 1.0.
        eps (float, optional): Added to pi inside the log; allows zero
            counts. Defaults to None (zero counts are an error).
        reduction (str): Defaults to 'mean' (over non-ignored elements).
        loss_weight (float): Defaults to 1.0.
        ignore_index (int): Defaults to -100.
        loss_name (str): Defaults to 'loss_la'.
    """

    def __init__(self,
                 class_counts: CountsArg = None,
                 tau: float = 1.0,
                 eps: Optional[float] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 ignore_index: int = -100,
                 loss_name: str = 'loss_la') -> None:
        # Checked before the counts are read.
        self.tau = check_tau(tau)
        super().__init__(class_counts, eps, reduction, loss_weight,
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
        """Compute the loss.

        Args:
            pred (Tensor): Logits, (N, C) or (N, C, H, W).
            target (Tensor): Labels (N,) / (N, H, W), or soft (N, C).
            weight (Tensor, optional): Element-wise weight, (N,) / (N, H, W).
            avg_factor (float, optional): Divisor of 'mean'; defaults to the
                number of non-ignored elements.
            reduction_override (str, optional): Overrides ``reduction``.
            ignore_index (int, optional): Overrides ``self.ignore_index``.

        Returns:
            Tensor: The weighted loss.
        """
        _softmax_channels(self, pred.size(1))
        self.check_num_class_counts(pred.size(1), 'the logits\' class axis')
        if ignore_index is None:
            ignore_index = self.ignore_index
        loss = logit_adjusted_cross_entropy(pred, target,
                                            self.log_class_prior(), self.tau,
                                            ignore_index)
        soft = target.shape == pred.shape
        num_valid = target.new_tensor(
            loss.numel()) if soft else (target != ignore_index).sum()
        return self._reduce(loss, weight, avg_factor, reduction_override,
                            num_valid)
