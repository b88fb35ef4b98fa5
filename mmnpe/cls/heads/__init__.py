from .npe_cls_head import NPEClsHead
from .npe_head_mixin import NPE_HEAD_KEYS, NPEHeadMixin
from .npe_stacked_linear_cls_head import NPEStackedLinearClsHead
from .npe_vision_transformer_cls_head import NPEVisionTransformerClsHead

__all__ = [
    'NPEHeadMixin', 'NPE_HEAD_KEYS', 'NPEClsHead',
    'NPEVisionTransformerClsHead', 'NPEStackedLinearClsHead'
]
