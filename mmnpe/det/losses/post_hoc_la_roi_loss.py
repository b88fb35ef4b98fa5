from typing import Optional

import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from mmnpe.engine.class_counts_mixin import CountsArg
from mmnpe.functional import check_tau, foreground_logit_adjust
from .roi_prior_loss import RoIPriorLossBase


@MODELS.register_module()
class PostHocLARoILoss(RoIPriorLossBase):
    """Post-hoc logit adjustment of a stock C + 1 softmax RoI classifier.

    Menon et al., `Long-tail learning via logit adjustment
    <https://arxiv.org/abs/2007.07314>`_, Eq. 8, on the foreground classes
    only: the test-time scores are

        scores_fg = (1 - p_bg) * softmax(z_fg - tau * log pi),  p_bg kept

    with ``pi`` the foreground class prior of the training data
    (:func:`foreground_logit_adjust`). A test-time method: put it in place
    of a stock config's ``CrossEntropyLoss`` and test the stock checkpoint
    (``fc_cls`` keeps its C + 1 outputs, the checkpoint lacks only the
    counts buffer); no retraining. Training with it is plain cross-entropy.

    - ``forward(): cross-entropy of z -> weight_reduce_loss``
    - ``get_activation(): softmax(foreground_logit_adjust(z, tau log pi))``;
      ``tau = 0`` is exactly the stock softmax

    Args:
        class_counts (str | Sequence[float] | None): Foreground counts, all
            > 0, a counts-JSON path, or None (``ClassCountsHook``; at test
            time it builds ``cfg.train_dataloader.dataset``). Defaults to
            None.
        tau (float): Finite, >= 0. Defaults to 1.0.
        kind (str): 'instances' or 'images'. Defaults to 'instances'.
        reduction (str): Defaults to 'mean'.
        loss_weight (float): Defaults to 1.0.
        eps (float, optional): Added inside the log, ``log(pi + eps)``:
            categories without any count get ``log(eps)`` and are raised
            the most. Defaults to None (a zero count is refused).
    """

    def __init__(self,
                 class_counts: CountsArg = None,
                 tau: float = 1.0,
                 kind: str = 'instances',
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 eps: Optional[float] = None) -> None:
        self.tau = check_tau(tau)
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
        """Plain cross-entropy (the correction is a test-time one)."""
        self._check_call(cls_score, labels)
        loss = F.cross_entropy(cls_score, labels, reduction='none')
        return self._reduce(loss, label_weights, avg_factor,
                            reduction_override)

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """Adjusted scores, (N, C + 1), background last and unchanged."""
        if self.tau == 0:
            return F.softmax(cls_score, dim=-1)
        self.check_num_class_counts(self.num_classes,
                                    'the bbox head\'s num_classes')
        correction = self.tau * self.log_class_prior()
        return F.softmax(
            foreground_logit_adjust(cls_score, correction), dim=-1)
