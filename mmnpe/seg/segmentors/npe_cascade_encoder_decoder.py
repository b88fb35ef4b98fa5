from typing import List, Sequence

from mmseg.models.segmentors import CascadeEncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import ConfigType
from torch import Tensor

from .decode_head_compat import check_cascade_decode_heads
from .npe_encoder_decoder import NPEEncoderDecoder


@MODELS.register_module()
class NPECascadeEncoderDecoder(NPEEncoderDecoder, CascadeEncoderDecoder):
    """:class:`NPEEncoderDecoder` for cascade segmentors (OCRNet).

    The stages run as in :class:`CascadeEncoderDecoder`; the logits of the
    last stage are corrected by ``- scale_factor * eta``, with ``eta`` from
    PEMs on the backbone features (`NPE paper
    <https://arxiv.org/abs/2602.17853>`_, Eq. 8, 11). Training adds the PEM
    losses to the stages' losses (``decode_0.*``, ``decode_1.*``, ``pem.*``).

    - ``encode_decode(): extract_feat() -> decode_head[0..n-1].forward() -
      alpha * eta -> decode_head[-1].predict_by_feat()``

    The last stage must predict with ``predict_by_feat(forward(x, prev))``:
    PointRend's ``PointHead``, which refines points by subdivision at test
    time, is refused when the model is built. PEMs inherit ``ignore_index``
    and ``align_corners`` from the last stage.

    Args:
        num_stages (int): Number of cascaded decode heads.
        pem_head (dict | list[dict]): Config of one PEM, or of K PEMs.
        scale_factor (float): alpha, finite and >= 0; 0 gives exactly the
            stock model's logits. Defaults to 1.0.
        **kwargs: Arguments of :class:`CascadeEncoderDecoder`.
    """

    def _check_decode_heads(self, decode_head: ConfigType) -> None:
        check_cascade_decode_heads(decode_head)

    def _decode_logits(self, x: Sequence[Tensor]) -> Tensor:
        """Logits of the last stage, (N, C, h, w), as the stock cascade
        computes them before ``predict_by_feat``."""
        out = self.decode_head[0].forward(x)
        for head in self.decode_head[1:]:
            out = head.forward(x, out)
        return out

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """NPE-LA logits of the last stage resized to the input,
        (N, C, H, W)."""
        x = self.extract_feat(inputs)
        return self.decode_head[-1].predict_by_feat(
            self._adjusted_logits(x), batch_img_metas)
