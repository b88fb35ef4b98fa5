from mmdet.models.roi_heads.bbox_heads import Shared4Conv1FCBBoxHead
from mmdet.registry import MODELS

from .npe_bbox_head_mixin import NPEBBoxHeadMixin


@MODELS.register_module()
class NPEShared4Conv1FCBBoxHead(NPEBBoxHeadMixin, Shared4Conv1FCBBoxHead):
    """:class:`Shared4Conv1FCBBoxHead` (the GN box head) with K linear Prior
    Estimation Modules on its shared-FC output.

    As :class:`NPEShared2FCBBoxHead`; see :class:`NPEBBoxHeadMixin`.

    Args:
        num_pems (int): K, an int >= 0. Defaults to 1.
        sign (int): OWL sign. Defaults to -1.
        scale_factor (float): alpha, >= 0. Defaults to 1.0.
        pem_loss_weight (float): Defaults to 1.0.
        pem_init_std (float): Defaults to 0.001.
        **kwargs: Arguments of :class:`Shared4Conv1FCBBoxHead`.
    """
