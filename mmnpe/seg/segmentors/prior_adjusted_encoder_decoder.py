from abc import abstractmethod
from typing import List, Sequence

from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.utils import OptSampleList
from torch import Tensor

from mmnpe.functional import npe_logit_adjust


class PriorAdjustedEncoderDecoder(EncoderDecoder):
    """Encoder-decoder whose logits become ``z - scale_factor * eta`` at
    inference (not registered: the base of NPE-LA and post-hoc LA).

    The one correction path of mmnpe's segmentors. Subclasses give the class
    log-prior estimate ``eta`` (:meth:`estimate_prior`: learned by PEMs in
    :class:`NPEEncoderDecoder`, fixed from counts in
    :class:`LogitAdjustEncoderDecoder`) and set ``self.scale_factor``.

    - ``encode_decode(): extract_feat() -> decode_head.forward() -
      scale_factor * eta -> decode_head.predict_by_feat()``

    The correction lives in :meth:`encode_decode` (and :meth:`_forward`, for
    ``mode='tensor'``), so whole, slide (crop logits are averaged linearly)
    and TTA inference all get it; ``eta`` is computed once per forward at its
    own resolution and brought to the decode head's (a (N, C, 1, 1) estimate
    is broadcast, not interpolated). Training is untouched: losses see the
    plain logits.
    """

    scale_factor: float

    @abstractmethod
    def estimate_prior(self, x: Sequence[Tensor]) -> Tensor:
        """``eta`` from the features, centred over classes: (N, C, h, w) or
        (N, C, 1, 1)."""

    def _adjusted_logits(self, x: Sequence[Tensor]) -> Tensor:
        """Decode-head logits minus ``scale_factor * eta``, (N, C, h, w)."""
        seg_logits = self.decode_head.forward(x)
        if self.scale_factor == 0:
            return seg_logits
        eta = self.estimate_prior(x)
        if eta.shape[2:] != seg_logits.shape[2:]:
            if eta.shape[2:] == (1, 1):
                eta = eta.expand_as(seg_logits)
            else:
                eta = resize(
                    eta,
                    size=seg_logits.shape[2:],
                    mode='bilinear',
                    align_corners=self.align_corners)
        return npe_logit_adjust(seg_logits, eta, self.scale_factor)

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Adjusted logits resized to the input, (N, C, H, W)."""
        x = self.extract_feat(inputs)
        return self.decode_head.predict_by_feat(
            self._adjusted_logits(x), batch_img_metas)

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        """Adjusted logits at the decode head's resolution
        (``mode='tensor'``)."""
        return self._adjusted_logits(self.extract_feat(inputs))
