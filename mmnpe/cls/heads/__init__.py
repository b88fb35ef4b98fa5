from .iwb_cls_head import IWBClsHead
from .logit_adjust_cls_head import LogitAdjustClsHead
from .npe_cls_head import NPEClsHead
from .npe_head_mixin import NPE_HEAD_KEYS, NPEHeadMixin
from .npe_stacked_linear_cls_head import NPEStackedLinearClsHead
from .npe_vision_transformer_cls_head import NPEVisionTransformerClsHead

__all__ = [
    'IWBClsHead', 'LogitAdjustClsHead', 'NPEHeadMixin', 'NPE_HEAD_KEYS',
    'NPEClsHead', 'NPEVisionTransformerClsHead', 'NPEStackedLinearClsHead'
]
