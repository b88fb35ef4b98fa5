import torch.nn as nn
from mmpretrain.models.heads import StackedLinearClsHead
from mmpretrain.registry import MODELS

from .npe_head_mixin import NPEHeadMixin


@MODELS.register_module()
class NPEStackedLinearClsHead(NPEHeadMixin, StackedLinearClsHead):
    """:class:`StackedLinearClsHead` with K linear PEMs (NPE-LA).

    The PEMs read what the output layer reads: the features after the last
    hidden layer (``mid_channels[-1]`` of them, after its norm, activation
    and dropout) (`NPE paper <https://arxiv.org/abs/2602.17853>`_,
    Sec. 2.2-2.3). The output ``LinearBlock`` has no norm, activation or
    dropout, so the logits are its ``fc`` alone. See :class:`NPEHeadMixin`
    for training, prediction and fusion.

    - ``predict(): pre_logits() -> layers[-1].fc(h) - scale_factor * eta(h)
      -> softmax``

    Args:
        num_classes (int): Number of classes, > 1.
        in_channels (int): Dimension of the pooled feature.
        mid_channels (Sequence[int]): Widths of the hidden layers.
        num_pems (int): K, an int >= 0. Defaults to 1.
        **kwargs: The other arguments of :class:`NPEHeadMixin` and of
            :class:`StackedLinearClsHead` (``dropout_rate``, ``norm_cfg``,
            ``act_cfg``, ``loss`` ...).
    """

    @property
    def final_linear(self) -> nn.Linear:
        """``layers[-1].fc``."""
        return self.layers[-1].fc
