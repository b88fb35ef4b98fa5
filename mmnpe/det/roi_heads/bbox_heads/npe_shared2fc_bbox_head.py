from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead
from mmdet.registry import MODELS

from .npe_bbox_head_mixin import NPEBBoxHeadMixin


@MODELS.register_module()
class NPEShared2FCBBoxHead(NPEBBoxHeadMixin, Shared2FCBBoxHead):
    """:class:`Shared2FCBBoxHead` with K linear Prior Estimation Modules on
    its shared-FC output (the feature ``fc_cls`` reads).

    `NPE paper <https://arxiv.org/abs/2602.17853>`_, Sec. 2.2-2.3; training,
    prediction and the background class as :class:`NPEBBoxHeadMixin` says.
    A drop-in for the stock head in Faster / Mask / Cascade R-CNN configs:
    ``roi_head.bbox_head.type='NPEShared2FCBBoxHead'`` plus ``num_pems``,
    ``scale_factor``.

    - ``loss(): shared FCs -> fc_cls / fc_reg / pems -> stock losses +
      loss_npe``
    - ``predict(): shared FCs -> foreground-corrected logits -> softmax ->
      NMS``

    Args:
        num_pems (int): K, an int >= 0. Defaults to 1.
        sign (int): OWL sign. Defaults to -1.
        scale_factor (float): alpha, >= 0. Defaults to 1.0.
        pem_loss_weight (float): Defaults to 1.0.
        pem_init_std (float): Defaults to 0.001.
        **kwargs: Arguments of :class:`Shared2FCBBoxHead`.
    """
