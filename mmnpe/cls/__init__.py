"""MMPretrain adapters: CIFAR ResNet, NPE heads, long-tailed data, metric."""
from .backbones import CifarResNet
from .datasets import (CIFAR10LT, CIFAR100LT, DigitsLT, LabelShiftDataset,
                       LongTailListDataset)
from .evaluation import LongTailAccuracy
from .fuse import config_needs_mmnpe, fuse_npe_classifier
from .heads import (IWBClsHead, LogitAdjustClsHead, NPEClsHead, NPEHeadMixin,
                    NPEStackedLinearClsHead, NPEVisionTransformerClsHead)

__all__ = [
    'CifarResNet', 'CIFAR10LT', 'CIFAR100LT', 'DigitsLT', 'IWBClsHead',
    'LabelShiftDataset', 'LongTailAccuracy', 'LongTailListDataset',
    'LogitAdjustClsHead', 'NPEHeadMixin', 'NPEClsHead',
    'NPEVisionTransformerClsHead', 'NPEStackedLinearClsHead',
    'config_needs_mmnpe', 'fuse_npe_classifier'
]
