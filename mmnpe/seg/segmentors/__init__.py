from .cascade_prior_adjusted_mixin import CascadePriorAdjustedMixin
from .logit_adjust_cascade_encoder_decoder import \
    LogitAdjustCascadeEncoderDecoder
from .logit_adjust_encoder_decoder import LogitAdjustEncoderDecoder
from .npe_cascade_encoder_decoder import NPECascadeEncoderDecoder
from .npe_encoder_decoder import NPEEncoderDecoder
from .prior_adjusted_encoder_decoder import PriorAdjustedEncoderDecoder

__all__ = [
    'CascadePriorAdjustedMixin', 'LogitAdjustCascadeEncoderDecoder',
    'LogitAdjustEncoderDecoder', 'NPECascadeEncoderDecoder',
    'NPEEncoderDecoder', 'PriorAdjustedEncoderDecoder'
]
