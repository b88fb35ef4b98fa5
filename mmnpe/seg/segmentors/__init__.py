from .logit_adjust_encoder_decoder import LogitAdjustEncoderDecoder
from .npe_encoder_decoder import NPEEncoderDecoder
from .prior_adjusted_encoder_decoder import PriorAdjustedEncoderDecoder

__all__ = [
    'LogitAdjustEncoderDecoder', 'NPEEncoderDecoder',
    'PriorAdjustedEncoderDecoder'
]
