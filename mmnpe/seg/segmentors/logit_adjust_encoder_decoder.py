from typing import Optional, Sequence

from mmseg.registry import MODELS
from torch import Tensor

from mmnpe.engine import ClassCountsMixin
from mmnpe.engine.class_counts_mixin import CountsArg
from mmnpe.functional import centered_log_prior, check_tau
from mmnpe.functional.label_shift import TargetPriorArg
from .prior_adjusted_encoder_decoder import PriorAdjustedEncoderDecoder


@MODELS.register_module()
class LogitAdjustEncoderDecoder(ClassCountsMixin, PriorAdjustedEncoderDecoder):
    """Post-hoc logit adjustment of a trained segmentor: ``z - tau * log pi``.

    Menon et al., `Long-tail learning via logit adjustment
    <https://arxiv.org/abs/2007.07314>`_, Eq. 8, with ``pi`` the pixels per
    class of the training annotations. No training: load a stock checkpoint
    (``tools/test.py CONFIG STOCK_CKPT``); only the ``class_counts`` buffer is
    not in it. It is NPE-LA with a fixed instead of a learned prior, through
    the same correction path (:class:`PriorAdjustedEncoderDecoder`: whole,
    slide, TTA, ``mode='tensor'``); ``scale_factor`` is ``tau``.

    - ``encode_decode(): extract_feat() -> decode_head.forward() - tau *
      (log pi - mean log pi) -> decode_head.predict_by_feat()``

    Args:
        class_counts (str | Sequence[float]): Pixels per class, or the path
            of the JSON ``tools/analysis/class_counts.py`` writes (its class
            names are checked against the data set's when
            ``ClassCountsHook`` is in ``custom_hooks``). None leaves them to
            the hook, which refuses pixel counting at run time.
        tau (float): Finite, >= 0; 0 gives exactly the stock logits.
            Defaults to 1.0.
        eps (float, optional): Added to ``pi`` inside the log; allows
            classes with no pixel. Defaults to None (zero counts are an
            error).
        target_prior (str | Sequence[float] | None): The pixel prior to
            predict for (one for the whole data set): None / 'uniform'
            (post-hoc LA as it is), 'source' (the plain logits back), C
            probabilities or counts, or a JSON path: the counts' prior
            removed in full, whatever ``tau``, plus ``log pi_t``
            (:class:`TargetPriorMixin`). On a Balanced Softmax model give
            uniform ``class_counts``. Defaults to None.
        **kwargs: Arguments of :class:`EncoderDecoder`.
    """

    _segmentor_types = ('LogitAdjustEncoderDecoder',
                        'LogitAdjustCascadeEncoderDecoder')
    source_undoes_correction = False

    def __init__(self,
                 *args,
                 class_counts: CountsArg = None,
                 tau: float = 1.0,
                 eps: Optional[float] = None,
                 target_prior: TargetPriorArg = None,
                 **kwargs) -> None:
        # Checked before the (possibly large) backbone is built.
        tau = check_tau(tau)
        super().__init__(*args, **kwargs)
        self.scale_factor = tau
        self.init_class_counts(class_counts, self.num_classes, eps=eps)
        self.init_target_prior(target_prior, self.num_classes)

    @property
    def tau(self) -> float:
        """``tau``, the same number as ``scale_factor``."""
        return self.scale_factor

    @tau.setter
    def tau(self, value: float) -> None:
        self.scale_factor = check_tau(value)

    def source_log_prior_offset(self) -> Tensor:
        """The counts' centred log prior, (C,) float64 (what
        ``target_prior='source'`` adds)."""
        return centered_log_prior(self.log_class_prior())

    def estimate_prior(self, x: Sequence[Tensor]) -> Tensor:
        """The centred log-prior ``log pi - mean(log pi)``, (N, C, 1, 1), in
        the features' dtype (the features only give N, dtype and device)."""
        feat = x[0]
        eta = centered_log_prior(self.log_class_prior())
        return eta.to(
            device=feat.device,
            dtype=feat.dtype).view(1, -1, 1, 1).expand(feat.size(0), -1, 1, 1)
