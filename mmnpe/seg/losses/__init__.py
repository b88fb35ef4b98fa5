from .balanced_sigmoid_loss import BalancedSigmoidLoss
from .balanced_softmax_loss import BalancedSoftmaxLoss
from .class_balanced_loss import ClassBalancedLoss
from .logit_adjust_loss import LogitAdjustLoss
from .one_way_logistic_loss import OneWayLogisticLoss
from .prior_loss import PriorLossBase

__all__ = [
    'BalancedSigmoidLoss', 'BalancedSoftmaxLoss', 'ClassBalancedLoss',
    'LogitAdjustLoss', 'OneWayLogisticLoss', 'PriorLossBase'
]
