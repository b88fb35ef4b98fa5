from .npe_bbox_head_mixin import NPEBBoxHeadMixin, is_npe_bbox_head
from .npe_shared2fc_bbox_head import NPEShared2FCBBoxHead
from .npe_shared4conv1fc_bbox_head import NPEShared4Conv1FCBBoxHead

__all__ = [
    'NPEBBoxHeadMixin', 'NPEShared2FCBBoxHead', 'NPEShared4Conv1FCBBoxHead',
    'is_npe_bbox_head'
]
