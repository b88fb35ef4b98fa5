from .cifar_lt import CIFAR10LT, CIFAR100LT, lt_class_counts, lt_subsample
from .digits_lt import DigitsLT
from .label_shift_dataset import LabelShiftDataset, label_shift_indices

__all__ = [
    'CIFAR10LT', 'CIFAR100LT', 'DigitsLT', 'LabelShiftDataset',
    'label_shift_indices', 'lt_class_counts', 'lt_subsample'
]
