from typing import Optional

from mmseg.models.decode_heads import FCNHead
from mmseg.registry import MODELS

from .pem_decode_head import PEMDecodeHead


@MODELS.register_module()
class PEMFCNHead(PEMDecodeHead, FCNHead):
    """Linear PEM by default: a single 1x1 conv on the selected feature.

    With ``num_convs=0`` (the default) the head is one 1x1 conv on the
    backbone feature the decode head reads, so it is linear in the features
    (the paper's "linear PEM"). ``num_convs > 0`` adds ``ConvModule`` layers
    without normalisation, as :class:`FCNHead` does. See
    :class:`PEMDecodeHead` for what every PEM enforces.

    Args:
        in_channels (int | list[int]): Channels of the selected feature (a
            list with ``input_transform='resize_concat'``, as HRNet heads).
        channels (int, optional): Channels of the hidden convs; defaults to
            ``in_channels`` (their sum for a list; required when
            ``num_convs=0``).
        num_convs (int): Hidden convs before the 1x1 output. Defaults to 0.
        kernel_size (int): Kernel of the hidden convs. Defaults to 1.
        concat_input (bool): As in :class:`FCNHead`. Defaults to False.
        **kwargs: See :class:`PEMDecodeHead` and :class:`BaseDecodeHead`.
    """

    def __init__(self,
                 in_channels: int,
                 channels: Optional[int] = None,
                 num_convs: int = 0,
                 kernel_size: int = 1,
                 concat_input: bool = False,
                 **kwargs) -> None:
        if channels is None:
            # 'resize_concat' (HRNet / OCRNet heads) concatenates the
            # selected features: the 1x1 conv sees their summed channels.
            channels = sum(in_channels) if isinstance(in_channels,
                                                      (list,
                                                       tuple)) else in_channels
        super().__init__(
            in_channels=in_channels,
            channels=channels,
            num_convs=num_convs,
            kernel_size=kernel_size,
            concat_input=concat_input,
            **kwargs)
