from .npe_cascade_encoder_decoder import NPECascadeEncoderDecoder
from .npe_encoder_decoder import NPEEncoderDecoder

__all__ = ['NPEEncoderDecoder', 'NPECascadeEncoderDecoder']
