from mmseg.models.decode_heads import ASPPHead
from mmseg.registry import MODELS

from .pem_decode_head import PEMDecodeHead


@MODELS.register_module()
class PEMASPPHead(PEMDecodeHead, ASPPHead):
    """PEM with the structure of DeepLabV3's ASPP head, without BN.

    Takes the arguments of :class:`ASPPHead` (``dilations``, ``channels`` ...)
    and enforces what :class:`PEMDecodeHead` describes.
    """
