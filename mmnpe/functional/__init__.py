"""Pure-torch building blocks of mmnpe (no mmseg / mmpretrain imports)."""
from .class_balanced import (check_beta, class_balanced_cross_entropy,
                             effective_number_weights)
from .class_counts import check_class_counts, load_class_counts, log_prior
from .fusion import fuse_npe_linear
from .iwb import (KL_DIRECTIONS, check_iwb_lambda, check_kl_direction,
                  iwb_hardness_coefficient, iwb_kl_loss,
                  iwb_number_coefficient, iwb_target)
from .npe import check_scale_factor, npe_estimate, npe_logit_adjust
from .one_way_logistic import check_sign, one_way_logistic_loss

__all__ = [
    'check_class_counts', 'load_class_counts', 'log_prior',
    'check_scale_factor', 'check_sign', 'fuse_npe_linear', 'npe_estimate',
    'npe_logit_adjust', 'one_way_logistic_loss', 'check_beta',
    'class_balanced_cross_entropy', 'effective_number_weights',
    'KL_DIRECTIONS', 'check_iwb_lambda', 'check_kl_direction',
    'iwb_hardness_coefficient', 'iwb_kl_loss', 'iwb_number_coefficient',
    'iwb_target'
]
