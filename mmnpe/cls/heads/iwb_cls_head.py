import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from mmnpe.engine import ClassCountsMixin
from mmnpe.engine.class_counts_mixin import CountsArg
from mmnpe.functional import (check_iwb_lambda, check_kl_direction,
                              iwb_kl_loss, iwb_number_coefficient)


@MODELS.register_module()
class IWBClsHead(ClassCountsMixin, LinearClsHead):
    """Linear classifier trained with Inverse Weight-Balancing (stage 2).

    IWB (Dang et al., "Inverse Weight-Balancing for Deep Long-Tailed
    Learning", Eq. 8-10) fine-tunes the classifier of a CE-trained model,
    encoder frozen, with a classification loss (class-balanced CE by
    default, or CE) plus a KL term between the softmax of the classifier's
    row norms ``|W_i|`` and the softmax of ``P = lambda * NC * HC``, with
    ``NC_i = log2(N / (N_i + 1))`` from the training counts and the
    per-sample hardness ``HC_i = (1 - cos(W_i, x)) / 2``. The KL is computed
    per sample and averaged over the batch; P is a detached target (see
    :mod:`mmnpe.functional.iwb`). Prediction is the plain linear classifier.
    mmnpe's CIFAR-LT and demo IWB configs re-initialise this head after
    loading the CE checkpoint (as cRT does, so the two start alike); its
    ImageNet-LT, iNaturalist 2018 and Places-LT IWB configs fine-tune the
    loaded one (``StageTwoHook(reinit_modules=[])``), as the paper does.

    - ``loss(): pre_logits() -> fc -> loss ('loss') + kl_weight *
      mean_b KL(softmax|W| || softmax P_b) ('loss_kl')``
    - ``predict(): pre_logits() -> fc -> softmax`` (as ``LinearClsHead``)

    Args:
        num_classes (int): Number of classes, > 1.
        in_channels (int): Feature dimension.
        class_counts (str | list | None): Training images per class (NC), a
            counts-JSON path, or None: counted from the training data set by
            ``ClassCountsHook``. A count-based ``loss`` built without counts
            gets the same ones. Defaults to None.
        iwb_lambda (float): lambda, in (0, 1]. Defaults to 0.15 (the paper's
            CIFAR-100-LT value).
        kl_direction (str): 'forward' = KL(softmax|W| || softmax P), the
            paper's Eq. 8; 'reverse' = KL(softmax P || softmax|W|), the
            authors' code. Defaults to 'forward'.
        kl_weight (float): Weight of the KL term, finite and >= 0 (the
            paper adds it with weight 1). Defaults to 1.0.
        loss (dict): The classification loss. Defaults to
            ``ClassBalancedLoss`` with beta = 0.9999 (the paper's IWB+CB);
            ``dict(type='CrossEntropyLoss')`` gives IWB with CE.
        **kwargs: Arguments of :class:`LinearClsHead` (``topk``,
            ``init_cfg`` ...).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 class_counts: CountsArg = None,
                 iwb_lambda: float = 0.15,
                 kl_direction: str = 'forward',
                 kl_weight: float = 1.0,
                 loss: dict = dict(type='ClassBalancedLoss', beta=0.9999),
                 **kwargs) -> None:
        if isinstance(
                num_classes,
                bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError('num_classes must be an int > 1, got '
                             f'{num_classes!r}')
        self.iwb_lambda = check_iwb_lambda(iwb_lambda)
        self.kl_direction = check_kl_direction(kl_direction)
        if (isinstance(kl_weight, bool)
                or not isinstance(kl_weight, (int, float))
                or not math.isfinite(kl_weight) or kl_weight < 0):
            raise ValueError('kl_weight must be a finite number >= 0, got '
                             f'{kl_weight!r}')
        self.kl_weight = float(kl_weight)
        super().__init__(num_classes, in_channels, loss=loss, **kwargs)
        self.init_class_counts(class_counts, num_classes=num_classes)

    def _share_counts(self, counts: Union[Sequence[float], Tensor]) -> None:
        loss = self.loss_module
        if isinstance(loss,
                      ClassCountsMixin) and (loss.class_counts_from_dataset):
            loss.set_class_counts(counts)
            # The loss now follows this head: ClassCountsHook must not give
            # it other (data set) counts than the head's NC uses.
            loss.class_counts_from_dataset = False

    def set_class_counts(self,
                         counts: Union[Sequence[float], Tensor],
                         classes: Optional[Sequence[str]] = None) -> None:
        """Set the counts, and those of a count-based loss built without
        its own."""
        super().set_class_counts(counts, classes)
        if hasattr(self, 'loss_module'):
            self._share_counts(self.class_counts)

    def number_coefficient(self) -> Tensor:
        """``NC``, (C, ) float64 (Eq. 3)."""
        return iwb_number_coefficient(
            self.check_num_class_counts(self.num_classes, 'num_classes'))

    def loss(self, feats: Tuple[Tensor], data_samples: List[DataSample],
             **kwargs) -> dict:
        """Classification loss (``loss``) plus the IWB KL term
        (``loss_kl``, Eq. 10) on the pooled features (N, D)."""
        pre_logits = self.pre_logits(feats)
        losses = self._get_loss(self.fc(pre_logits), data_samples, **kwargs)
        kl = iwb_kl_loss(self.fc.weight, pre_logits, self.number_coefficient(),
                         self.iwb_lambda, self.kl_direction)
        losses['loss_kl'] = self.kl_weight * kl.mean()
        return losses

    @torch.no_grad()
    def weight_norms(self) -> Tensor:
        """The classifier's row norms ``|W_i|``, (C, ) -- what IWB
        inverts."""
        return self.fc.weight.norm(dim=1)
