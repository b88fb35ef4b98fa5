from .cifar_lt import CIFAR10LT, CIFAR100LT, lt_class_counts, lt_subsample
from .digits_lt import DigitsLT

__all__ = [
    'CIFAR10LT', 'CIFAR100LT', 'DigitsLT', 'lt_class_counts', 'lt_subsample'
]
