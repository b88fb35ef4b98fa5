"""Pure-torch building blocks of mmnpe (no mmseg / mmpretrain imports)."""
from .class_counts import check_class_counts, load_class_counts, log_prior
from .fusion import fuse_npe_linear
from .npe import check_scale_factor, npe_estimate, npe_logit_adjust
from .one_way_logistic import check_sign, one_way_logistic_loss

__all__ = [
    'check_class_counts', 'load_class_counts', 'log_prior',
    'check_scale_factor', 'check_sign', 'fuse_npe_linear', 'npe_estimate',
    'npe_logit_adjust', 'one_way_logistic_loss'
]
