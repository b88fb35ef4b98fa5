from typing import Optional

import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from mmnpe.engine.class_counts_mixin import CountsArg
from mmnpe.functional import foreground_balanced_softmax_loss
from .roi_prior_loss import RoIPriorLossBase


@MODELS.register_module()
class BalancedSoftmaxRoILoss(RoIPriorLossBase):
    """Balanced Softmax for the C + 1 softmax RoI classifier of a two-stage
    detector, the foreground / background split left as it is.

    Ren et al., `Balanced Meta-Softmax <https://arxiv.org/abs/2007.10740>`_,
    Eq. 4, on the foreground-conditional part of the softmax only: the
    training model is ``p_bg = softmax(z)[C]``, ``p(j) = (1 - p_bg) *
    softmax(z_fg + log n)_j`` (:func:`foreground_balanced_softmax_loss`), so
    background RoIs get plain cross-entropy and the counts (foreground
    classes only) never move the object / background decision. Test time
    uses the plain softmax: ``fc_cls`` keeps the stock C + 1 outputs, so a
    stock checkpoint loads and fine-tunes with it.

    - ``forward(): -log p(y) of the model above -> weight_reduce_loss``
    - ``get_activation(): softmax(z)``, exactly the stock head's scores

    Args:
        class_counts (str | Sequence[float] | None): Foreground counts, all
            > 0, a counts-JSON path, or None (``ClassCountsHook``). Defaults
            to None.
        kind (str): 'instances' or 'images'. Defaults to 'instances'.
        reduction (str): Defaults to 'mean'.
        loss_weight (float): Defaults to 1.0.
        eps (float, optional): Allows categories without any count: the
            offset is then ``log(n_j / n + eps)`` (the same up to a constant,
            which the softmax ignores). Defaults to None.
    """

    def __init__(self,
                 class_counts: CountsArg = None,
                 kind: str = 'instances',
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 eps: Optional[float] = None) -> None:
        super().__init__(class_counts, kind, reduction, loss_weight, eps)

    def _channels(self, num_classes: int) -> int:
        return num_classes + 1

    def forward(self,
                cls_score: Tensor,
                labels: Tensor,
                label_weights: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """Compute the loss; arguments as
        :meth:`BalancedSigmoidRoILoss.forward`, ``cls_score`` (N, C + 1).
        """
        self._check_call(cls_score, labels)
        counts = self.check_num_class_counts(self.num_classes,
                                             'the bbox head\'s num_classes')
        # log n_j and log(n_j / n) differ by a constant the softmax ignores;
        # the latter takes eps for categories without any count.
        log_counts = (
            counts.log()
            if self.class_counts_eps is None else self.log_class_prior())
        loss = foreground_balanced_softmax_loss(cls_score, labels, log_counts)
        return self._reduce(loss, label_weights, avg_factor,
                            reduction_override)

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """The plain softmax, (N, C + 1), background last."""
        return F.softmax(cls_score, dim=-1)
