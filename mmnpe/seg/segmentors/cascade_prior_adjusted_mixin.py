from typing import Sequence

from mmseg.utils import ConfigType
from torch import Tensor

from .decode_head_compat import check_cascade_decode_heads


class CascadePriorAdjustedMixin:
    """The cascade's decode path for a :class:`PriorAdjustedEncoderDecoder`
    (not registered: the one cascade logic of NPE-LA and post-hoc LA).

    Mix in first, before the prior-adjusted segmentor and mmseg's
    :class:`CascadeEncoderDecoder`::

        class NPECascadeEncoderDecoder(CascadePriorAdjustedMixin,
                                       NPEEncoderDecoder,
                                       CascadeEncoderDecoder)

    :class:`CascadeEncoderDecoder` builds the stages (``num_stages``, a
    ``ModuleList`` of decode heads) and trains them; this mixin checks the
    stages from the config, before the backbone is built, and gives the
    last stage's logits to the shared correction path (``encode_decode``,
    ``mode='tensor'``, whole / slide / TTA inference, the analysis tools),
    which predicts with the last stage
    (:meth:`PriorAdjustedEncoderDecoder._final_decode_head`):

    - ``encode_decode(): extract_feat() -> decode_head[0..n-1].forward() -
      scale_factor * eta -> decode_head[-1].predict_by_feat()``

    The last stage must predict with ``predict_by_feat(forward(x, prev))``:
    PointRend's ``PointHead``, which refines points by subdivision at test
    time, is refused when the model is built.
    """

    def _check_decode_heads(self, decode_head: ConfigType) -> None:
        check_cascade_decode_heads(decode_head, types=self._segmentor_types)

    def _decode_logits(self, x: Sequence[Tensor]) -> Tensor:
        """Logits of the last stage, (N, C, h, w), as the stock cascade
        computes them before ``predict_by_feat``."""
        out = self.decode_head[0].forward(x)
        for head in self.decode_head[1:]:
            out = head.forward(x, out)
        return out
