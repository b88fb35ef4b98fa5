from .pem_aspp_head import PEMASPPHead
from .pem_decode_head import PEMDecodeHead
from .pem_fcn_head import PEMFCNHead
from .pem_uper_head import PEMUPerHead

__all__ = ['PEMDecodeHead', 'PEMFCNHead', 'PEMASPPHead', 'PEMUPerHead']
