"""MMSegmentation adapters: OWL loss, PEM heads, NPE segmentor, data sets."""
from .datasets import SyntheticLTDataset, generate_synthetic_lt
from .decode_heads import PEMASPPHead, PEMDecodeHead, PEMFCNHead, PEMUPerHead
from .evaluation import ClassWiseIoUMetric
from .losses import (BalancedSigmoidLoss, BalancedSoftmaxLoss, LogitAdjustLoss,
                     OneWayLogisticLoss)
from .segmentors import (LogitAdjustEncoderDecoder, NPEEncoderDecoder,
                         PriorAdjustedEncoderDecoder)

__all__ = [
    'BalancedSigmoidLoss', 'BalancedSoftmaxLoss', 'LogitAdjustLoss',
    'LogitAdjustEncoderDecoder', 'PriorAdjustedEncoderDecoder',
    'OneWayLogisticLoss', 'PEMDecodeHead', 'PEMFCNHead', 'PEMASPPHead',
    'PEMUPerHead', 'NPEEncoderDecoder', 'SyntheticLTDataset',
    'generate_synthetic_lt', 'ClassWiseIoUMetric'
]
