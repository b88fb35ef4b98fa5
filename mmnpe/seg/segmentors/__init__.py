from .logit_adjust_encoder_decoder import LogitAdjustEncoderDecoder
from .npe_cascade_encoder_decoder import NPECascadeEncoderDecoder
from .npe_encoder_decoder import NPEEncoderDecoder
from .prior_adjusted_encoder_decoder import PriorAdjustedEncoderDecoder

__all__ = [
    'LogitAdjustEncoderDecoder', 'NPECascadeEncoderDecoder',
    'NPEEncoderDecoder', 'PriorAdjustedEncoderDecoder'
]
