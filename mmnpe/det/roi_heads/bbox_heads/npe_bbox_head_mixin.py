"""NPE-LA for mmdet's RoI box heads: K linear PEMs on the feature the RoI
classifier reads."""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.models.roi_heads.bbox_heads import BBoxHead, ConvFCBBoxHead
from torch import Tensor

from mmnpe.det.losses import BalancedSoftmaxRoILoss
from mmnpe.functional import (check_scale_factor, check_sign,
                              foreground_logit_adjust, npe_estimate,
                              one_way_logistic_loss)

_IGNORE = -100


class NPEBBoxHeadMixin:
    """A ``BBoxHead`` whose RoI classifier gets K Prior Estimation Modules.

    Mixed in front of a stock box head (``Shared2FCBBoxHead`` ...). The K
    linear PEMs read the feature ``fc_cls`` reads (the shared-FC output of
    ``Shared2FCBBoxHead``), one output per *foreground* class, and train with
    the one-way logistic loss on foreground RoIs only; background RoIs (about
    three in four) give them no loss and no gradient. At test time the
    correction ``c = scale_factor * eta`` (`NPE paper
    <https://arxiv.org/abs/2602.17853>`_, Eq. 8, 11; ``eta`` centred over the
    foreground classes) changes the foreground-conditional distribution
    only, ``p_bg`` is the stock head's:

    - softmax classifier (C + 1 outputs, ``CrossEntropyLoss``): the logits
      become
      :func:`foreground_logit_adjust` ``(z, c)``, whose softmax is
      ``[(1 - p_bg) * softmax(z_fg - c), p_bg]``;
    - ``SeesawLoss`` (C class logits + 2 objectness logits): ``c`` is taken
      from the class logits, whose softmax Seesaw scales by p(object).

    Sigmoid classifiers (``use_sigmoid=True``, ``BalancedSigmoidRoILoss``,
    focal losses) have no background channel to keep, and a loss that
    removes the prior already, at test time (``PostHocLARoILoss``) or in
    training (``BalancedSoftmaxRoILoss``), would have it removed twice: all
    are refused when the head is built.

    Data flow:

    - ``forward()`` in training mode: ``(cat([cls_score, pems(h)]),
      bbox_pred)``, the K * C PEM outputs after the classifier's columns;
      :meth:`loss` splits them again. In eval mode: ``(corrected cls_score,
      bbox_pred)`` of the stock shapes, so mmdet's softmax, TTA and
      ``mode='tensor'`` all see the correction. Cascade R-CNN averages its
      stages' logits before the last stage's activation: use
      :class:`NPECascadeRoIHead`, which averages the plain logits and the
      stages' corrections and corrects once, so ``p_bg`` stays exactly the
      stock cascade's (the stock ``CascadeRoIHead`` averages corrected
      logits, which keeps it only approximately).
    - ``loss()``: the stock losses of the plain logits plus ``loss_npe =
      pem_loss_weight * sum_k mean_fg OWL(g_k(h), y)`` (NPE paper, Eq. 6).

    ``scale_factor=0`` (or ``num_pems=0``) returns the stock head's logits
    bit for bit; a stock checkpoint loads with only ``pems.*`` missing.
    Frozen on a trained detector (``FrozenBackboneHook`` naming every module
    but the PEMs) only the PEMs train.

    Args:
        num_pems (int): K, an int >= 0. Defaults to 1.
        sign (int): OWL sign, -1 or +1. Defaults to -1.
        scale_factor (float): alpha, finite and >= 0. Defaults to 1.0.
        pem_loss_weight (float): Weight of the summed PEM loss, >= 0.
            Defaults to 1.0.
        pem_init_std (float): Std of the PEMs' normal init (bias 0), > 0.
            Defaults to 0.001.
        *args, **kwargs: Arguments of the stock box head.
    """

    def __init__(self,
                 *args,
                 num_pems: int = 1,
                 sign: int = -1,
                 scale_factor: float = 1.0,
                 pem_loss_weight: float = 1.0,
                 pem_init_std: float = 0.001,
                 **kwargs) -> None:
        name = type(self).__name__
        if isinstance(num_pems,
                      bool) or not isinstance(num_pems, int) or num_pems < 0:
            raise ValueError(
                f'{name}: num_pems must be an integer >= 0, got {num_pems!r}')
        if isinstance(pem_loss_weight, bool) or not isinstance(
                pem_loss_weight, (int, float)) or not pem_loss_weight >= 0:
            raise ValueError(f'{name}: pem_loss_weight must be a number >= '
                             f'0, got {pem_loss_weight!r}')
        if isinstance(
                pem_init_std,
                bool) or not isinstance(pem_init_std,
                                        (int, float)) or not pem_init_std > 0:
            raise ValueError(f'{name}: pem_init_std must be a number > 0, '
                             f'got {pem_init_std!r}')
        self.sign = check_sign(sign)
        self.scale_factor = check_scale_factor(scale_factor)
        super().__init__(*args, **kwargs)
        self.num_pems = num_pems
        self.pem_loss_weight = float(pem_loss_weight)
        self.pem_init_std = float(pem_init_std)
        self.classifier_kind = self._classifier_kind()
        # Set by NPECascadeRoIHead while it averages the stages: the
        # correction is then collected here and applied once, after the
        # average, instead of to this stage's logits.
        self.collected_corrections: Optional[List[Tensor]] = None
        self.cls_channels = self.fc_cls.out_features
        if num_pems:
            # All K PEMs in one matmul: (N, D) -> (N, K * C).
            self.pems = nn.Linear(self.fc_cls.in_features,
                                  num_pems * self.num_classes)
            self._init_pems()

    def _classifier_kind(self) -> str:
        """'softmax' or 'seesaw'; other classifiers cannot carry a PEM."""
        name = type(self).__name__
        loss = self.loss_cls
        loss_name = type(loss).__name__
        if not self.with_cls:
            raise ValueError(f'{name} needs a classifier (with_cls=True) to '
                             'correct')
        if not isinstance(getattr(self.fc_cls, 'in_features', None), int):
            raise TypeError(
                f'{name}: the PEMs read the input of fc_cls, which must be a '
                f'linear layer (cls_predictor_cfg Linear / NormedLinear), '
                f'got {type(self.fc_cls).__name__}')
        if getattr(loss, 'use_sigmoid',
                   False) or loss_name in ('BalancedSigmoidRoILoss',
                                           'FocalLoss', 'FocalCustomLoss'):
            raise TypeError(
                f'{name} cannot carry a PEM on a sigmoid classifier '
                f'(loss_cls {loss_name} with one sigmoid per class): NPE-LA '
                'corrects the foreground classes of a softmax with a '
                'background channel and keeps p(background); use '
                "CrossEntropyLoss(use_sigmoid=False) or SeesawLoss, or the "
                'stock head for sigmoids')
        if loss_name == 'SeesawLoss':
            return 'seesaw'
        if isinstance(loss, BalancedSoftmaxRoILoss):
            if not self.num_pems:
                # No PEM (an NPECascadeRoIHead stage that carries none):
                # nothing removes the prior a second time, and its C + 1
                # logits are a softmax's.
                return 'softmax'
            raise TypeError(
                f'{name} cannot carry a PEM with loss_cls {loss_name}: '
                'Balanced Softmax removes the training prior in training '
                '(its plain test-time logits already target a balanced '
                'prior), while the PEMs learn the prior of the training '
                'labels all the same, so NPE-LA would remove it a second '
                'time (as post-hoc LA on top would); use CrossEntropyLoss('
                'use_sigmoid=False) with the PEMs, or BalancedSoftmaxRoILoss '
                'on the stock head')
        if getattr(self, 'custom_cls_channels', False):
            raise TypeError(
                f'{name} cannot carry a PEM with loss_cls {loss_name}: its '
                'own test-time activation would apply after (or instead '
                'of) the NPE correction (PostHocLARoILoss would correct the '
                'prior twice); supported: CrossEntropyLoss(use_sigmoid='
                'False), SeesawLoss')
        if self.fc_cls.out_features != self.num_classes + 1:
            raise TypeError(
                f'{name}: a softmax classifier has num_classes + 1 = '
                f'{self.num_classes + 1} outputs (background last), got '
                f'{self.fc_cls.out_features}')
        return 'softmax'

    def _init_pems(self) -> None:
        nn.init.normal_(self.pems.weight, 0, self.pem_init_std)
        nn.init.zeros_(self.pems.bias)

    def init_weights(self) -> None:
        """As the stock head, then the PEMs (N(0, pem_init_std), bias 0)."""
        super().init_weights()
        if self.num_pems:
            self._init_pems()

    def pem_outputs(self, feats: Tensor) -> Tensor:
        """PEM outputs of the classifier's features (N, D), (N, K, C)."""
        return self.pems(feats).view(-1, self.num_pems, self.num_classes)

    def estimate_prior(self, feats: Tensor) -> Tensor:
        """NPE estimate ``eta`` of the foreground classes, (N, C), centred.
        """
        return npe_estimate(self.pem_outputs(feats).unbind(1), self.sign)

    def correct(self, cls_score: Tensor, correction: Tensor) -> Tensor:
        """The classifier's logits with the foreground correction ``c``
        ((N, C) or (C, )) applied, p(background) kept (class docstring)."""
        if self.classifier_kind == 'seesaw':
            fg = cls_score[:, :self.num_classes] - correction.to(cls_score)
            return torch.cat([fg, cls_score[:, self.num_classes:]], dim=1)
        return foreground_logit_adjust(cls_score, correction)

    def _forward_with_feats(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """The stock forward, plus the input of ``fc_cls`` (N, D)."""
        captured: List[Tensor] = []
        handle = self.fc_cls.register_forward_hook(
            lambda module, inputs, output: captured.append(inputs[0]))
        try:
            cls_score, bbox_pred = super().forward(x)
        finally:
            handle.remove()
        return cls_score, bbox_pred, captured[0]

    def classifier_features(self, x: Tensor) -> Tensor:
        """The input of ``fc_cls`` (N, D) for RoI features ``x`` (N, C_in,
        S, S), without running ``fc_cls`` or the regression branch.

        What the PEMs read. For a ``ConvFCBBoxHead`` (``Shared2FCBBoxHead``,
        ``Shared4Conv1FCBBoxHead``) only the shared convs / FCs and the
        classification branch run; the frozen-detector PEM iteration then
        skips ``fc_reg``, which for LVIS's class-specific regression (1203
        x 4 outputs) costs more than ``fc_cls``. Other heads run the stock
        forward (as does a ``ConvFCBBoxHead`` subclass whose own forward
        the mixin reaches, which the shortcut would not reproduce).
        """
        if getattr(super().forward, '__func__',
                   None) is not ConvFCBBoxHead.forward:
            return self._forward_with_feats(x)[2]
        for conv in self.shared_convs:
            x = conv(x)
        if self.num_shared_fcs > 0:
            if self.with_avg_pool:
                x = self.avg_pool(x)
            x = x.flatten(1)
            for fc in self.shared_fcs:
                x = self.relu(fc(x))
        for conv in self.cls_convs:
            x = conv(x)
        if x.dim() > 2:
            if self.with_avg_pool:
                x = self.avg_pool(x)
            x = x.flatten(1)
        for fc in self.cls_fcs:
            x = self.relu(fc(x))
        return x

    def pem_only_loss(self, feats: Tensor, labels: Tensor,
                      label_weights: Tensor) -> dict:
        """``loss_npe`` alone, from the classifier's features of sampled
        RoIs: the PEM iteration on a frozen detector
        (:class:`NPETwoStageDetector`), which needs no other loss.

        Args:
            feats (Tensor): :meth:`classifier_features` of the RoIs, (N, D);
                background RoIs may be left out (they give no loss).
            labels (Tensor): Their labels, (N, ) in ``[0, C]``.
            label_weights (Tensor): Their weights, (N, ).

        Returns:
            dict: ``{'loss_npe': pem_loss_weight * sum_k mean_fg OWL}``, the
            value the full iteration's :meth:`loss` gives on the same RoIs.
        """
        return dict(
            loss_npe=self.pem_loss_weight *
            self.pem_loss(self.pem_outputs(feats), labels, label_weights))

    def forward(self, x: Tensor) -> tuple:
        """See the class docstring for what training / eval mode return."""
        if not self.num_pems:
            return super().forward(x)
        if not self.training and self.scale_factor == 0:
            return super().forward(x)
        cls_score, bbox_pred, feats = self._forward_with_feats(x)
        if self.training:
            return torch.cat([cls_score, self.pems(feats)], dim=1), bbox_pred
        correction = self.scale_factor * self.estimate_prior(feats)
        if self.collected_corrections is not None:
            self.collected_corrections.append(correction)
            return cls_score, bbox_pred
        return self.correct(cls_score, correction), bbox_pred

    def _split(
        self, cls_score: Optional[Tensor]
    ) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        width = self.cls_channels + self.num_pems * self.num_classes
        if (cls_score is None or not self.num_pems
                or cls_score.size(-1) != width):
            return cls_score, None
        return (cls_score[:, :self.cls_channels],
                cls_score[:,
                          self.cls_channels:].reshape(-1, self.num_pems,
                                                      self.num_classes))

    def pem_loss(self, pem_outputs: Tensor, labels: Tensor,
                 label_weights: Tensor) -> Tensor:
        """``sum_k mean_fg OWL``: the K PEMs' one-way logistic loss,
        averaged over the foreground RoIs.

        Args:
            pem_outputs (Tensor): (N, K, C).
            labels (Tensor): (N, ) in ``[0, C]``, ``C`` the background.
            label_weights (Tensor): (N, ) per-RoI weights.

        Returns:
            Tensor: The loss (0 with a graph when no RoI is foreground, so
            DDP still sees the PEMs used).
        """
        k = self.num_pems
        fg = labels < self.num_classes
        # Background RoIs are ignored: no loss, no gradient (masked_fill in
        # one_way_logistic_loss), the estimate never touches them.
        target = torch.where(fg, labels, torch.full_like(labels, _IGNORE))
        loss = one_way_logistic_loss(
            pem_outputs.reshape(-1, self.num_classes),
            target.repeat_interleave(k),
            self.sign,
            ignore_index=_IGNORE)
        return weight_reduce_loss(
            loss,
            weight=label_weights.float().repeat_interleave(k),
            reduction='mean',
            avg_factor=max(float(fg.sum()), 1.0))

    def loss(self,
             cls_score: Tensor,
             bbox_pred: Tensor,
             rois: Tensor,
             labels: Tensor,
             label_weights: Tensor,
             bbox_targets: Tensor,
             bbox_weights: Tensor,
             reduction_override: Optional[str] = None) -> dict:
        """The stock losses of the plain logits plus ``loss_npe`` (skipped
        for ``reduction_override='none'``, the per-RoI losses OHEM ranks).
        """
        cls_score, pem_outputs = self._split(cls_score)
        losses = super().loss(cls_score, bbox_pred, rois, labels,
                              label_weights, bbox_targets, bbox_weights,
                              reduction_override)
        if pem_outputs is not None and reduction_override != 'none':
            losses['loss_npe'] = self.pem_loss_weight * self.pem_loss(
                pem_outputs, labels, label_weights)
        return losses

    def refine_bboxes(self, sampling_results, bbox_results: dict,
                      batch_img_metas: List[dict]):
        """Cascade R-CNN's refinement, on the classifier's columns only."""
        cls_score, _ = self._split(bbox_results.get('cls_score'))
        return super().refine_bboxes(sampling_results,
                                     dict(bbox_results, cls_score=cls_score),
                                     batch_img_metas)


def is_npe_bbox_head(module: nn.Module) -> bool:
    """Whether ``module`` is a box head with PEMs."""
    return isinstance(module, NPEBBoxHeadMixin) and isinstance(
        module, BBoxHead)
