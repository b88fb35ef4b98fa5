"""MMPretrain adapters: CIFAR ResNet, NPE head, long-tailed data, metric."""
from .backbones import CifarResNet
from .datasets import CIFAR10LT, CIFAR100LT, DigitsLT
from .evaluation import LongTailAccuracy
from .fuse import fuse_npe_classifier
from .heads import LogitAdjustClsHead, NPEClsHead

__all__ = [
    'CifarResNet', 'CIFAR10LT', 'CIFAR100LT', 'DigitsLT', 'LongTailAccuracy',
    'LogitAdjustClsHead', 'NPEClsHead', 'fuse_npe_classifier'
]
