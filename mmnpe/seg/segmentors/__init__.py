from .npe_encoder_decoder import NPEEncoderDecoder

__all__ = ['NPEEncoderDecoder']
