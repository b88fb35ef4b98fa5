from .bbox_heads import (NPEBBoxHeadMixin, NPEShared2FCBBoxHead,
                         NPEShared4Conv1FCBBoxHead, is_npe_bbox_head)

__all__ = [
    'NPEBBoxHeadMixin', 'NPEShared2FCBBoxHead', 'NPEShared4Conv1FCBBoxHead',
    'is_npe_bbox_head'
]
