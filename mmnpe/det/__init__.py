"""MMDetection adapters: count-based RoI classifier losses (Balanced
Sigmoid, Balanced Softmax, post-hoc LA), NPE box heads, the detector of
the frozen-detector PEM iteration, the synthetic
LVIS-format set and LVIS counts (docs/user_guides/detection.md).

Imported by ``mmnpe`` only where mmdet is installed. Importing it registers
the components in mmdet's registries and lets ``LVISMetric`` run on numpy
>= 1.24 (:func:`patch_lvis_numpy`, scoped to ``lvis.eval``).
"""
from .datasets import (frequency_tag, generate_synthetic_lvis,
                       lvis_category_counts, synthetic_lvis_classes)
from .detectors import NPETwoStageDetector
from .evaluation import patch_lvis_numpy
from .losses import (BalancedSigmoidRoILoss, BalancedSoftmaxRoILoss,
                     PostHocLARoILoss, RoIPriorLossBase)
from .roi_heads import (NPEBBoxHeadMixin, NPECascadeRoIHead,
                        NPEShared2FCBBoxHead, NPEShared4Conv1FCBBoxHead,
                        is_npe_bbox_head)

# The documented import-time step besides registration (see
# mmnpe.det.evaluation.lvis_numpy_compat): lvis 0.5.3 uses np.float.
patch_lvis_numpy()

__all__ = [
    'BalancedSigmoidRoILoss', 'BalancedSoftmaxRoILoss', 'PostHocLARoILoss',
    'RoIPriorLossBase', 'NPEBBoxHeadMixin', 'NPECascadeRoIHead',
    'NPEShared2FCBBoxHead', 'NPEShared4Conv1FCBBoxHead', 'is_npe_bbox_head',
    'NPETwoStageDetector', 'patch_lvis_numpy', 'frequency_tag',
    'generate_synthetic_lvis', 'lvis_category_counts', 'synthetic_lvis_classes'
]
