import math
from numbers import Real
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmdet.models.losses import accuracy
from mmdet.registry import MODELS
from torch import Tensor

from mmnpe.engine.class_counts_mixin import CountsArg
from mmnpe.functional import balanced_sigmoid_loss, balanced_sigmoid_offset
from .roi_prior_loss import RoIPriorLossBase


@MODELS.register_module()
class BalancedSigmoidRoILoss(RoIPriorLossBase):
    """Balanced Sigmoid for the RoI classifier of a two-stage detector.

    One sigmoid per foreground class and no background channel: ``fc_cls``
    has C outputs, a background RoI has all-zero targets. Training uses

        sigmoid(z_j - log((n/k) / n_j * (n - n_j) / (n - n/k)))

    with ``k = C`` foreground classes, ``n_j`` their counts and ``n = sum
    n_j`` (Balanced Activation slides, Ren et al., LVIS Challenge 2020; see
    :mod:`mmnpe.functional.balanced_sigmoid`); with ``f_j = n_j / n`` the
    offset is ``log(f_j / (1 - f_j)) + log(k - 1)``. The constant
    ``log(k - 1)`` (7.09 for LVIS's 1203 classes) is part of the method: a
    sigmoid has no normalisation to absorb it, only the bias during
    training. Test time uses the plain ``sigmoid(z_j)``.

    - ``forward(): z + offset -> BCE-with-logits against one-hot targets
      (background: all zero) -> weight_reduce_loss``
    - ``get_activation(): [sigmoid(z), clamp(1 - sum sigmoid(z), 0, 1)]``:
      mmdet's NMS drops the last column, which ``CrossEntropyCustomLoss``
      also fills this way.

    Args:
        class_counts (str | Sequence[float] | None): Foreground counts
            ``n_j``, a counts-JSON path, or None (``ClassCountsHook``).
            Defaults to None.
        kind (str): 'instances' or 'images' (what ``ClassCountsHook``
            counts). Defaults to 'instances'.
        num_samples (float, optional): ``n``; None is ``sum(n_j)``. Defaults
            to None.
        reduction (str): Defaults to 'mean' (over RoIs x classes, or the
            head's ``avg_factor`` RoIs).
        loss_weight (float): Defaults to 1.0.
    """

    def __init__(self,
                 class_counts: CountsArg = None,
                 kind: str = 'instances',
                 num_samples: Optional[float] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        if num_samples is not None and (isinstance(num_samples, bool)
                                        or not isinstance(num_samples, Real)
                                        or not math.isfinite(num_samples)
                                        or num_samples <= 0):
            raise ValueError('BalancedSigmoidRoILoss: num_samples must be '
                             f'None or a finite number > 0, got '
                             f'{num_samples!r}')
        self.num_samples = num_samples
        super().__init__(class_counts, kind, reduction, loss_weight)
        if self.has_class_counts:  # n > n_j, checked at build when known
            balanced_sigmoid_offset(self.class_counts, num_samples)

    def _channels(self, num_classes: int) -> int:
        return num_classes

    def offset(self) -> Tensor:
        """``log(n_j / (n - n_j)) - log((n/k) / (n - n/k))``, (C, ) float64.
        """
        counts = self.check_num_class_counts(self.num_classes,
                                             'the bbox head\'s num_classes')
        return balanced_sigmoid_offset(counts, self.num_samples)

    def forward(self,
                cls_score: Tensor,
                labels: Tensor,
                label_weights: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            cls_score (Tensor): RoI logits, (N, C).
            labels (Tensor): (N, ) in ``[0, C]``, ``C`` the background.
            label_weights (Tensor, optional): Per-RoI weights, (N, ).
            avg_factor (float, optional): Divisor of 'mean' (``BBoxHead``
                passes the number of weighted RoIs).
            reduction_override (str, optional): Overrides ``reduction``.

        Returns:
            Tensor: The loss.
        """
        self._check_call(cls_score, labels)
        # One-hot over C + 1 with the background column dropped: background
        # RoIs are negatives of every class.
        target = F.one_hot(labels, self.num_classes + 1)[:, :-1]
        loss = balanced_sigmoid_loss(cls_score, target, self.offset())
        return self._reduce(loss, label_weights, avg_factor,
                            reduction_override)

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """Test-time scores, (N, C + 1): the plain sigmoids of the C
        classes, then a background column (see the class docstring)."""
        scores = cls_score.sigmoid()
        background = (1 - scores.sum(dim=1, keepdim=True)).clamp(0, 1)
        return torch.cat([scores, background], dim=1)

    def get_accuracy(self, cls_score: Tensor,
                     labels: Tensor) -> Dict[str, Tensor]:
        """``acc_classes``: top-1 over the C sigmoids of foreground RoIs."""
        fg = labels < cls_score.size(1)
        return dict(acc_classes=accuracy(cls_score[fg], labels[fg]))
