"""MMSegmentation adapters: OWL loss, PEM heads, NPE segmentor, data sets."""
from .datasets import SyntheticLTDataset, generate_synthetic_lt
from .decode_heads import PEMASPPHead, PEMDecodeHead, PEMFCNHead, PEMUPerHead
from .evaluation import ClassWiseIoUMetric
from .losses import (BalancedSigmoidLoss, BalancedSoftmaxLoss,
                     ClassBalancedLoss, LogitAdjustLoss, OneWayLogisticLoss)
from .segmentors import (CascadePriorAdjustedMixin,
                         LogitAdjustCascadeEncoderDecoder,
                         LogitAdjustEncoderDecoder, NPECascadeEncoderDecoder,
                         NPEEncoderDecoder, PriorAdjustedEncoderDecoder)

__all__ = [
    'BalancedSigmoidLoss', 'BalancedSoftmaxLoss', 'ClassBalancedLoss',
    'LogitAdjustLoss', 'LogitAdjustEncoderDecoder',
    'LogitAdjustCascadeEncoderDecoder', 'CascadePriorAdjustedMixin',
    'PriorAdjustedEncoderDecoder', 'OneWayLogisticLoss', 'PEMDecodeHead',
    'PEMFCNHead', 'PEMASPPHead', 'PEMUPerHead', 'NPEEncoderDecoder',
    'NPECascadeEncoderDecoder', 'SyntheticLTDataset', 'generate_synthetic_lt',
    'ClassWiseIoUMetric'
]
