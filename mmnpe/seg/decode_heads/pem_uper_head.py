from mmseg.models.decode_heads import UPerHead
from mmseg.registry import MODELS

from .pem_decode_head import PEMDecodeHead


@MODELS.register_module()
class PEMUPerHead(PEMDecodeHead, UPerHead):
    """PEM with the structure of the UPerNet head, without BN.

    Takes the arguments of :class:`UPerHead` (``pool_scales``, ``channels``,
    multi-level ``in_channels`` / ``in_index``) and enforces what
    :class:`PEMDecodeHead` describes.
    """
