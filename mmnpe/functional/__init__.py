"""Pure-torch building blocks of mmnpe (no mmseg / mmpretrain / mmdet
imports)."""
from .background import (foreground_balanced_softmax_loss,
                         foreground_logit_adjust)
from .balanced_sigmoid import balanced_sigmoid_loss, balanced_sigmoid_offset
from .class_balanced import (check_beta, class_balanced_cross_entropy,
                             effective_number_weights)
from .class_counts import check_class_counts, load_class_counts, log_prior
from .fusion import fuse_npe_linear
from .iwb import (KL_DIRECTIONS, check_iwb_lambda, check_kl_direction,
                  iwb_hardness_coefficient, iwb_kl_loss,
                  iwb_number_coefficient, iwb_target)
from .label_shift import (CALIBRATIONS, DIRECTIONS, METHODS, Calibration,
                          LabelShiftConvergenceWarning, OnlinePriorEstimator,
                          adjust_to_prior, bbse_prior, check_calibration,
                          check_logits, check_method, check_prior, em_prior,
                          estimate_target_prior, expected_calibration_error,
                          fit_calibration, identity_calibration,
                          label_shift_profile, load_target_prior,
                          mean_posterior)
from .logit_adjust import (balanced_softmax_loss, centered_log_prior,
                           check_tau, class_axis, logit_adjusted_cross_entropy)
from .npe import check_scale_factor, npe_estimate, npe_logit_adjust
from .one_way_logistic import check_sign, one_way_logistic_loss

__all__ = [
    'balanced_sigmoid_loss', 'balanced_sigmoid_offset',
    'balanced_softmax_loss', 'centered_log_prior', 'check_class_counts',
    'check_tau', 'class_axis', 'load_class_counts', 'log_prior',
    'logit_adjusted_cross_entropy', 'check_scale_factor', 'check_sign',
    'fuse_npe_linear', 'npe_estimate', 'npe_logit_adjust',
    'one_way_logistic_loss', 'check_beta', 'class_balanced_cross_entropy',
    'effective_number_weights', 'KL_DIRECTIONS', 'check_iwb_lambda',
    'check_kl_direction', 'iwb_hardness_coefficient', 'iwb_kl_loss',
    'iwb_number_coefficient', 'iwb_target', 'foreground_logit_adjust',
    'foreground_balanced_softmax_loss', 'CALIBRATIONS', 'DIRECTIONS',
    'METHODS', 'Calibration', 'LabelShiftConvergenceWarning',
    'OnlinePriorEstimator', 'adjust_to_prior', 'bbse_prior',
    'check_calibration', 'check_logits', 'check_method', 'check_prior',
    'em_prior', 'estimate_target_prior', 'expected_calibration_error',
    'fit_calibration', 'identity_calibration', 'label_shift_profile',
    'load_target_prior', 'mean_posterior'
]
