import math
from numbers import Real
from typing import Optional

from mmengine.registry import MODELS
from torch import Tensor

from mmnpe.functional import balanced_sigmoid_loss, balanced_sigmoid_offset
from .prior_loss import CountsArg, PriorLossBase


# Registered in mmengine's root registry (mmseg and mmpretrain configs).
@MODELS.register_module()
class BalancedSigmoidLoss(PriorLossBase):
    """Balanced Sigmoid: BCE on ``z_j - log((n/k)/n_j * (n - n_j)/(n - n/k))``.

    The sigmoid counterpart of Balanced Softmax (Balanced Activation slides;
    derivation and the meaning of ``n``, ``n_j``, ``k`` in
    :mod:`mmnpe.functional.balanced_sigmoid`). The head predicts with the
    plain ``sigmoid(z)``. Uniform counts give plain BCE.

    Two uses:

    - one-channel binary segmentation (mmseg decode head with
      ``out_channels=1``, e.g. STARE): ``pred`` (N, 1, H, W), labels
      (N, H, W) in {0, 1} or ``ignore_index``; ``class_counts`` are the
      pixel counts of the two classes ``[background, foreground]`` (what
      ``tools/analysis/class_counts.py`` writes for STARE), so k = 2 and the
      foreground output gets ``log(n_1 / n_0)``;
    - multi-label classification (MMPretrain ``MultiLabelClsHead``):
      ``pred`` (N, C), multi-hot targets (N, C), ``class_counts`` the images
      carrying each class, and ``num_samples`` the number of images.

    A multi-channel softmax head (label map target, C > 1 channels) is
    refused: use :class:`BalancedSoftmaxLoss` there.

    - ``forward(): pred + offset -> BCE-with-logits -> weight_reduce_loss``

    Args:
        class_counts (str | Sequence[float] | None): Positives per class;
            see :class:`PriorLossBase`. Defaults to None (from the data set).
        num_samples (float, optional): ``n``; None means ``sum(counts)``,
            right whenever every sample has exactly one label (binary
            segmentation, single-label data); multi-label data must pass the
            number of images. Defaults to None.
        reduction (str): Defaults to 'mean'.
        loss_weight (float): Defaults to 1.0.
        ignore_index (int): Defaults to -100 (mmseg heads pass 255).
        loss_name (str): Defaults to 'loss_balanced_sigmoid'.
    """

    def __init__(self,
                 class_counts: CountsArg = None,
                 num_samples: Optional[float] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 ignore_index: int = -100,
                 loss_name: str = 'loss_balanced_sigmoid') -> None:
        if num_samples is not None and (isinstance(num_samples, bool)
                                        or not isinstance(num_samples, Real)
                                        or not math.isfinite(num_samples)
                                        or num_samples <= 0):
            raise ValueError('num_samples must be None or a finite number '
                             f'> 0, got {num_samples!r}')
        self.num_samples = num_samples
        super().__init__(class_counts, None, reduction, loss_weight,
                         ignore_index, loss_name)
        if self.has_class_counts:  # n > n_j, checked at build when known
            balanced_sigmoid_offset(self.class_counts, num_samples)

    def check_decode_out_channels(self, out_channels: int) -> None:
        """A segmentation head must be one-channel (sigmoid), not softmax."""
        if out_channels != 1:
            raise ValueError(
                'BalancedSigmoidLoss trains a one-channel sigmoid head '
                '(binary segmentation: decode_head.out_channels=1), but the '
                f'head has out_channels == {out_channels} (a softmax head); '
                'use BalancedSoftmaxLoss there')

    def offset(self) -> Tensor:
        """Per-class offsets ``log(n_j/(n-n_j)) - log((n/k)/(n-n/k))``, (k, ).
        """
        return balanced_sigmoid_offset(self.get_class_counts(),
                                       self.num_samples)

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
            pred (Tensor): (N, 1, H, W) binary-segmentation logits, or
                (N, C) multi-label logits.
            target (Tensor): (N, H, W) labels in {0, 1, ignore_index}, or
                (N, C) multi-hot targets in [0, 1].
            weight (Tensor, optional): Element-wise weight of the loss's
                shape ((N, H, W) or (N, C)).
            avg_factor (float, optional): Divisor of 'mean'; defaults to the
                number of non-ignored elements.
            reduction_override (str, optional): Overrides ``reduction``.
            ignore_index (int, optional): Overrides ``self.ignore_index``.

        Returns:
            Tensor: The weighted loss.
        """
        if ignore_index is None:
            ignore_index = self.ignore_index
        if target.shape == pred.shape:  # multi-hot
            self.check_num_class_counts(
                pred.size(1), 'the logits\' class axis')
            loss = balanced_sigmoid_loss(pred, target, self.offset())
            return self._reduce(loss, weight, avg_factor, reduction_override,
                                target.new_tensor(loss.numel()))
        if target.shape != pred.shape[:1] + pred.shape[2:]:
            raise ValueError(
                'pred must be (N, 1, H, W) with labels (N, H, W), or (N, C) '
                f'with multi-hot targets (N, C); got pred {tuple(pred.shape)}'
                f' and target {tuple(target.shape)}')
        self.check_decode_out_channels(pred.size(1))
        self.check_num_class_counts(
            2, 'a one-channel binary head (background, foreground)')
        valid = target != ignore_index
        bad = valid & (target != 0) & (target != 1)
        if bad.any():
            raise ValueError(
                f'a one-channel binary head needs labels 0 and 1 (or '
                f'ignore_index {ignore_index}), got {int(target[bad][0])}')
        positive = (target == 1).unsqueeze(1)
        # The single output is the foreground's (class 1), as mmseg's
        # sigmoid prediction thresholds it as class 1.
        loss = balanced_sigmoid_loss(pred, positive, self.offset()[1:])
        loss = loss.squeeze(1).masked_fill(~valid, 0.)
        return self._reduce(loss, weight, avg_factor, reduction_override,
                            valid.sum())
