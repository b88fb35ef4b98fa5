from .cifar_lt import CIFAR10LT, CIFAR100LT, lt_class_counts, lt_subsample
from .digits_lt import DigitsLT
from .label_shift_dataset import LabelShiftDataset, label_shift_indices
from .long_tail_list_dataset import LongTailListDataset

__all__ = [
    'CIFAR10LT', 'CIFAR100LT', 'DigitsLT', 'LabelShiftDataset',
    'LongTailListDataset', 'label_shift_indices', 'lt_class_counts',
    'lt_subsample'
]
