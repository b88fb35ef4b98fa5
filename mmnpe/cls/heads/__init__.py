from .logit_adjust_cls_head import LogitAdjustClsHead
from .npe_cls_head import NPEClsHead

__all__ = ['LogitAdjustClsHead', 'NPEClsHead']
