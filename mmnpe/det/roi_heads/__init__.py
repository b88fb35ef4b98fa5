from .bbox_heads import (NPEBBoxHeadMixin, NPEShared2FCBBoxHead,
                         NPEShared4Conv1FCBBoxHead, is_npe_bbox_head)
from .npe_cascade_roi_head import NPECascadeRoIHead

__all__ = [
    'NPEBBoxHeadMixin', 'NPECascadeRoIHead', 'NPEShared2FCBBoxHead',
    'NPEShared4Conv1FCBBoxHead', 'is_npe_bbox_head'
]
