from typing import List, Optional, Tuple

import torch
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmnpe.engine import ClassCountsMixin, TargetPriorMixin
from mmnpe.engine.class_counts_mixin import CountsArg
from mmnpe.functional import centered_log_prior, check_tau, npe_logit_adjust
from mmnpe.functional.label_shift import TargetPriorArg


@MODELS.register_module()
class LogitAdjustClsHead(ClassCountsMixin, TargetPriorMixin, LinearClsHead):
    """Linear classifier with post-hoc logit adjustment ``z - tau * log pi``.

    Menon et al., `Long-tail learning via logit adjustment
    <https://arxiv.org/abs/2007.07314>`_, Eq. 8. A drop-in for
    :class:`LinearClsHead`: a stock (CE) checkpoint loads with only the
    ``head.class_counts`` buffer missing, and ``tools/test.py CONFIG CKPT``
    evaluates the adjusted model without training. The operation is
    NPE-LA's (:func:`npe_logit_adjust`) with the fixed, centred log-prior as
    ``eta``; ``scale_factor`` is ``tau``.

    - ``loss(): pre_logits() -> fc -> loss`` (plain logits: training this
      head is CE training, corrected afterwards)
    - ``predict(): pre_logits() -> fc(h) - tau * (log pi - mean log pi) ->
      softmax``

    ``target_prior`` predicts for another class prior ``pi_t``: the counts'
    prior removed in full, whatever ``tau``, plus ``log pi_t - mean log
    pi_t`` (:class:`TargetPriorMixin`; docs/user_guides/label_shift.md);
    ``'source'`` gives the plain logits back. A Balanced Softmax model
    (whose plain logits hold under a uniform prior) predicts for ``pi_t``
    with this head, uniform ``class_counts`` and ``target_prior=pi_t``.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Feature dimension.
        class_counts (str | Sequence[float] | None): Images per class, the
            path of a counts JSON, or None: counted from the training data set
            by ``ClassCountsHook`` (add it to ``custom_hooks``; at test time
            it builds ``cfg.train_dataloader.dataset``). Defaults to None.
        tau (float): Finite, >= 0; 0 is exactly :class:`LinearClsHead`.
            Defaults to 1.0.
        eps (float, optional): Added to ``pi`` inside the log; allows empty
            classes. Defaults to None (zero counts are an error).
        target_prior (str | Sequence[float] | None): The class prior to
            predict for: None / 'uniform' (post-hoc LA as it is), 'source'
            (the counts' prior), C probabilities or counts, or a JSON path.
            Defaults to None.
        **kwargs: Arguments of :class:`LinearClsHead`.
    """

    source_undoes_correction = False

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 class_counts: CountsArg = None,
                 tau: float = 1.0,
                 eps: Optional[float] = None,
                 target_prior: TargetPriorArg = None,
                 **kwargs) -> None:
        self.scale_factor = check_tau(tau)
        super().__init__(num_classes, in_channels, **kwargs)
        self.init_class_counts(class_counts, num_classes, eps=eps)
        self.init_target_prior(target_prior, num_classes)

    @property
    def tau(self) -> float:
        """``tau``, the same number as ``scale_factor``."""
        return self.scale_factor

    @tau.setter
    def tau(self, value: float) -> None:
        self.scale_factor = check_tau(value)

    def estimate_prior(self, pre_logits: torch.Tensor) -> torch.Tensor:
        """The centred log-prior, (N, C), for pooled features (N, D) (they
        only give N, dtype and device)."""
        eta = centered_log_prior(self.log_class_prior())
        return eta.to(
            device=pre_logits.device,
            dtype=pre_logits.dtype).expand(pre_logits.size(0), -1)

    def source_log_prior_offset(self) -> torch.Tensor:
        """The counts' centred log prior, (C,) float64 (what
        ``target_prior='source'`` adds)."""
        return centered_log_prior(self.log_class_prior())

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Adjusted logits, (N, C): ``fc(h) - tau * eta`` (+ the target
        prior's centred log, when one is set)."""
        pre_logits = self.pre_logits(feats)
        logits = self.fc(pre_logits)
        if self.prediction_scale_factor != 0:
            logits = npe_logit_adjust(logits, self.estimate_prior(pre_logits),
                                      self.prediction_scale_factor)
        return self.add_target_prior(logits)

    def loss(self, feats: Tuple[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> dict:
        """The loss of the plain logits (post-hoc LA changes prediction
        only)."""
        return self._get_loss(
            self.fc(self.pre_logits(feats)), data_samples, **kwargs)
