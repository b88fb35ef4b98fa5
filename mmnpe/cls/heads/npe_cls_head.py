from typing import List, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmnpe.functional import (check_scale_factor, check_sign, fuse_npe_linear,
                              npe_estimate, npe_logit_adjust)


@MODELS.register_module()
class NPEClsHead(LinearClsHead):
    """Linear classifier with K linear Prior Estimation Modules (NPE-LA).

    The K PEMs read the same pooled feature as the classifier and are trained
    with the one-way logistic loss; their gradient reaches the backbone (no
    detach). Prediction subtracts ``scale_factor * eta`` from the logits
    (`NPE paper <https://arxiv.org/abs/2408.10176>`_, Sec. 3.1, Eq. 7-8).

    - ``loss(): pre_logits() -> fc / pems -> CE ('loss') + pem_loss_weight *
      sum_k OWL ('loss_npe')``
    - ``predict(): pre_logits() -> fc(h) - scale_factor * eta(h) -> softmax``

    ``num_pems=0`` is exactly :class:`LinearClsHead`; ``scale_factor=0``
    trains the PEMs but predicts with the plain classifier (the paper's
    Table 3 ablation). :meth:`fuse` folds everything into one ``nn.Linear``.

    Args:
        num_classes (int): Number of classes, > 1.
        in_channels (int): Feature dimension.
        num_pems (int): K, an int >= 0. Defaults to 1.
        sign (int): OWL sign, -1 or +1. Defaults to -1.
        scale_factor (float): alpha, finite and >= 0. Defaults to 1.0.
        pem_loss_weight (float): Weight of the summed PEM loss, >= 0.
            Defaults to 1.0.
        pem_init_std (float): Std of the PEMs' normal init (bias 0).
            Defaults to 0.001.
        **kwargs: Arguments of :class:`LinearClsHead` (``loss``, ``topk``,
            ``init_cfg`` ...).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 num_pems: int = 1,
                 sign: int = -1,
                 scale_factor: float = 1.0,
                 pem_loss_weight: float = 1.0,
                 pem_init_std: float = 0.001,
                 **kwargs) -> None:
        if isinstance(num_pems,
                      bool) or not isinstance(num_pems, int) or num_pems < 0:
            raise ValueError(
                f'num_pems must be an integer >= 0, got {num_pems!r}')
        if isinstance(
                num_classes,
                bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError('num_classes must be an int > 1 (one output per '
                             f'class), got {num_classes!r}')
        if not (isinstance(pem_loss_weight,
                           (int, float)) and pem_loss_weight >= 0):
            raise ValueError('pem_loss_weight must be a number >= 0, got '
                             f'{pem_loss_weight!r}')
        self.sign = check_sign(sign)
        self.scale_factor = check_scale_factor(scale_factor)
        super().__init__(num_classes, in_channels, **kwargs)
        self.num_pems = num_pems
        self.pem_loss_weight = float(pem_loss_weight)
        self.pem_init_std = pem_init_std
        if num_pems:
            # All K PEMs in one matmul: (N, D) -> (N, K * C).
            self.pems = nn.Linear(in_channels, num_pems * num_classes)
            self.pem_loss = MODELS.build(
                dict(type='OneWayLogisticLoss', sign=sign))
            self._init_pems()

    def _init_pems(self) -> None:
        nn.init.normal_(self.pems.weight, 0, self.pem_init_std)
        nn.init.zeros_(self.pems.bias)

    def init_weights(self) -> None:
        """Initialise the classifier as LinearClsHead does, then the PEMs."""
        super().init_weights()
        if self.num_pems:
            self._init_pems()

    def pem_outputs(self, pre_logits: torch.Tensor) -> torch.Tensor:
        """PEM outputs, (N, K, C)."""
        return self.pems(pre_logits).view(-1, self.num_pems, self.num_classes)

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """NPE-LA logits, (N, C): ``fc(h) - scale_factor * eta(h)``."""
        pre_logits = self.pre_logits(feats)
        logits = self.fc(pre_logits)
        if not self.num_pems or self.scale_factor == 0:
            return logits
        return npe_logit_adjust(logits, self.estimate_prior(pre_logits),
                                self.scale_factor)

    def estimate_prior(self, pre_logits: torch.Tensor) -> torch.Tensor:
        """NPE estimate ``eta`` of the pooled features (N, D), (N, C),
        centred over classes."""
        return npe_estimate(self.pem_outputs(pre_logits).unbind(1), self.sign)

    def loss(self, feats: Tuple[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> dict:
        """CE on the plain logits (``loss``) plus the summed OWL of the K
        PEMs (``loss_npe``, NPE paper Eq. 6)."""
        pre_logits = self.pre_logits(feats)
        losses = self._get_loss(self.fc(pre_logits), data_samples, **kwargs)
        if self.num_pems:
            if 'gt_score' in data_samples[0]:
                raise ValueError(
                    'NPEClsHead needs hard labels for the one-way logistic '
                    'loss; batch augmentations that make soft labels (Mixup, '
                    'CutMix) are not supported')
            target = torch.cat([s.gt_label for s in data_samples])
            outs = self.pem_outputs(pre_logits)
            k = self.num_pems
            # Mean over samples, sum over PEMs.
            loss = self.pem_loss(
                outs.reshape(-1, self.num_classes),
                target.repeat_interleave(k),
                avg_factor=target.numel())
            losses['loss_npe'] = self.pem_loss_weight * loss
        return losses

    def fuse(self) -> nn.Linear:
        """One ``nn.Linear`` whose logits equal :meth:`forward`'s (up to a
        per-sample constant when centring, which changes neither softmax nor
        argmax)."""
        fc = nn.Linear(self.in_channels, self.num_classes).to(self.fc.weight)
        if not self.num_pems:
            fc.load_state_dict(self.fc.state_dict())
            return fc
        k, c, d = self.num_pems, self.num_classes, self.in_channels
        weight, bias = fuse_npe_linear(self.fc.weight, self.fc.bias,
                                       self.pems.weight.view(k, c, d),
                                       self.pems.bias.view(k, c), self.sign,
                                       self.scale_factor)
        fc.weight.data.copy_(weight)
        fc.bias.data.copy_(bias)
        return fc
