from mmseg.models.segmentors import CascadeEncoderDecoder
from mmseg.registry import MODELS

from .cascade_prior_adjusted_mixin import CascadePriorAdjustedMixin
from .npe_encoder_decoder import NPEEncoderDecoder


@MODELS.register_module()
class NPECascadeEncoderDecoder(CascadePriorAdjustedMixin, NPEEncoderDecoder,
                               CascadeEncoderDecoder):
    """:class:`NPEEncoderDecoder` for cascade segmentors (OCRNet).

    The stages run as in :class:`CascadeEncoderDecoder`; the logits of the
    last stage are corrected by ``- scale_factor * eta``, with ``eta`` from
    PEMs on the backbone features (`NPE paper
    <https://arxiv.org/abs/2602.17853>`_, Eq. 8, 11). Training adds the PEM
    losses to the stages' losses (``decode_0.*``, ``decode_1.*``, ``pem.*``).

    - ``encode_decode(): extract_feat() -> decode_head[0..n-1].forward() -
      alpha * eta -> decode_head[-1].predict_by_feat()``

    The cascade logic (stage checks, decode path) is
    :class:`CascadePriorAdjustedMixin`'s, shared with
    :class:`LogitAdjustCascadeEncoderDecoder`. PEMs inherit ``ignore_index``
    and ``align_corners`` from the last stage.

    Args:
        num_stages (int): Number of cascaded decode heads.
        pem_head (dict | list[dict]): Config of one PEM, or of K PEMs.
        scale_factor (float): alpha, finite and >= 0; 0 gives exactly the
            stock model's logits. Defaults to 1.0.
        target_prior (str | Sequence[float] | None): The class prior to
            predict for, as :class:`NPEEncoderDecoder`. Defaults to None.
        **kwargs: Arguments of :class:`CascadeEncoderDecoder`.
    """
