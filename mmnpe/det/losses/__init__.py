from .balanced_sigmoid_roi_loss import BalancedSigmoidRoILoss
from .balanced_softmax_roi_loss import BalancedSoftmaxRoILoss
from .post_hoc_la_roi_loss import PostHocLARoILoss
from .roi_prior_loss import RoIPriorLossBase

__all__ = [
    'BalancedSigmoidRoILoss', 'BalancedSoftmaxRoILoss', 'PostHocLARoILoss',
    'RoIPriorLossBase'
]
