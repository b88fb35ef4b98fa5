import torch.nn as nn
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS

from .npe_head_mixin import NPEHeadMixin


@MODELS.register_module()
class NPEClsHead(NPEHeadMixin, LinearClsHead):
    """:class:`LinearClsHead` with K linear Prior Estimation Modules.

    The K PEMs read the same pooled feature as ``fc`` (`NPE paper
    <https://arxiv.org/abs/2602.17853>`_, Sec. 2.2-2.3); see
    :class:`NPEHeadMixin` for training, prediction and fusion.

    - ``loss(): pre_logits() -> fc / pems -> CE ('loss') + pem_loss_weight *
      sum_k OWL ('loss_npe')``
    - ``predict(): pre_logits() -> fc(h) - scale_factor * eta(h) -> softmax``

    Args:
        num_classes (int): Number of classes, > 1.
        in_channels (int): Feature dimension.
        num_pems (int): K, an int >= 0. Defaults to 1.
        sign (int): OWL sign, -1 or +1. Defaults to -1.
        scale_factor (float): alpha, finite and >= 0. Defaults to 1.0.
        pem_loss_weight (float): Weight of the summed PEM loss, >= 0.
            Defaults to 1.0.
        pem_init_std (float): Std of the PEMs' normal init (bias 0).
            Defaults to 0.001.
        **kwargs: Arguments of :class:`LinearClsHead` (``loss``, ``topk``,
            ``init_cfg`` ...).
    """

    @property
    def final_linear(self) -> nn.Linear:
        """``fc``."""
        return self.fc
