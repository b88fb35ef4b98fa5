import torch.nn as nn
from mmpretrain.models.heads import VisionTransformerClsHead
from mmpretrain.registry import MODELS

from .npe_head_mixin import NPEHeadMixin


@MODELS.register_module()
class NPEVisionTransformerClsHead(NPEHeadMixin, VisionTransformerClsHead):
    """:class:`VisionTransformerClsHead` with K linear PEMs (NPE-LA).

    The PEMs read what ``layers.head`` reads: the class token, or the
    ``hidden_dim`` features after ``layers.pre_logits`` and ``layers.act``
    when ``hidden_dim`` is set (`NPE paper
    <https://arxiv.org/abs/2602.17853>`_, Sec. 2.2-2.3). A stock ViT head
    checkpoint loads as is (``layers.*``; only ``pems.*`` missing). See
    :class:`NPEHeadMixin` for training, prediction and fusion.

    - ``predict(): pre_logits() -> layers.head(h) - scale_factor * eta(h)
      -> softmax``

    Args:
        num_classes (int): Number of classes, > 1.
        in_channels (int): Dimension of the class token.
        num_pems (int): K, an int >= 0. Defaults to 1.
        **kwargs: The other arguments of :class:`NPEHeadMixin` and of
            :class:`VisionTransformerClsHead` (``hidden_dim``, ``act_cfg``,
            ``init_cfg``, ``loss`` ...).
    """

    @property
    def final_linear(self) -> nn.Linear:
        """``layers.head``."""
        return self.layers.head
