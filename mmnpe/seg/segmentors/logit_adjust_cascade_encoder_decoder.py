from mmseg.models.segmentors import CascadeEncoderDecoder
from mmseg.registry import MODELS

from .cascade_prior_adjusted_mixin import CascadePriorAdjustedMixin
from .logit_adjust_encoder_decoder import LogitAdjustEncoderDecoder


@MODELS.register_module()
class LogitAdjustCascadeEncoderDecoder(CascadePriorAdjustedMixin,
                                       LogitAdjustEncoderDecoder,
                                       CascadeEncoderDecoder):
    """:class:`LogitAdjustEncoderDecoder` for cascade segmentors (OCRNet):
    post-hoc logit adjustment of the last stage's logits.

    Menon et al., `Long-tail learning via logit adjustment
    <https://arxiv.org/abs/2007.07314>`_, Eq. 8. The stages run as in
    :class:`CascadeEncoderDecoder`; the logits of the last stage become
    ``z - tau * (log pi - mean log pi)``, ``pi`` the pixels per class of the
    training annotations. No training: a stock ``CascadeEncoderDecoder``
    checkpoint loads with only the ``class_counts`` buffer missing.

    - ``encode_decode(): extract_feat() -> decode_head[0..n-1].forward() -
      tau * (log pi - mean log pi) -> decode_head[-1].predict_by_feat()``

    The cascade logic (stage checks, decode path) is
    :class:`CascadePriorAdjustedMixin`'s, shared with
    :class:`NPECascadeEncoderDecoder`.

    Args:
        num_stages (int): Number of cascaded decode heads.
        class_counts (str | Sequence[float]): Pixels per class, or the path
            of the JSON ``tools/analysis/class_counts.py`` writes.
        tau (float): Finite, >= 0; 0 gives exactly the stock logits.
            Defaults to 1.0.
        eps (float, optional): Added to ``pi`` inside the log. Defaults to
            None (zero counts are an error).
        target_prior (str | Sequence[float] | None): The class prior to
            predict for, as :class:`LogitAdjustEncoderDecoder`. Defaults to
            None.
        **kwargs: Arguments of :class:`CascadeEncoderDecoder`.
    """
