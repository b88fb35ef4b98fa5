from .npe_cls_head import NPEClsHead

__all__ = ['NPEClsHead']
