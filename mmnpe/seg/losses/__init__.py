from .one_way_logistic_loss import OneWayLogisticLoss

__all__ = ['OneWayLogisticLoss']
