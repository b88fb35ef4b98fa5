"""What the count-based RoI classifier losses share.

mmdet's ``BBoxHead`` hands its classifier to the loss when the loss sets
``custom_cls_channels`` (``get_cls_channels``: how many outputs ``fc_cls``
has), ``custom_activation`` (``get_activation``: the scores at test time;
without it ``BBoxHead`` applies a softmax even to a sigmoid classifier) and
``custom_accuracy`` (``get_accuracy``), as mmdet's ``SeesawLoss`` does. The
losses here use that interface, take their class counts through
:class:`ClassCountsMixin` (the foreground classes only) and reduce as
mmdet's losses do.
"""
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmdet.models.losses import accuracy
from mmdet.models.losses.utils import weight_reduce_loss
from torch import Tensor

from mmnpe.engine import DETECTION_KINDS, ClassCountsMixin
from mmnpe.engine.class_counts_mixin import CountsArg

_REDUCTIONS = ('none', 'mean', 'sum')


class RoIPriorLossBase(ClassCountsMixin, nn.Module):
    """Base of the RoI classifier losses (not registered).

    The number of foreground classes C is learnt from the ``BBoxHead`` that
    builds the loss (its ``get_cls_channels(num_classes)`` call); the counts
    buffer then has C entries, so a checkpoint's counts load into it and
    counts of another length are refused when the model is built.

    One-stage (dense) heads size their classifier from the config's
    ``loss_cls.use_sigmoid`` and call ``get_activation`` only at test time,
    expecting C columns and no background: these losses are refused there
    (:meth:`check_host_head`, and at the first call).

    Args:
        class_counts (str | Sequence[float] | None): Foreground counts per
            class, a counts-JSON path, or None: counted from the training
            data set by ``ClassCountsHook`` (add it to ``custom_hooks``).
            Defaults to None.
        kind (str): What ``ClassCountsHook`` counts: 'instances' or
            'images' (images holding the class). Defaults to 'instances'.
        reduction (str): 'none', 'mean' or 'sum'. Defaults to 'mean'.
        loss_weight (float): Defaults to 1.0.
        eps (float, optional): Allows categories without any count (an LVIS
            subset, a filtered set): added to the prior inside the log, so
            such a category gets ``log(eps)`` instead of ``-inf``. None: a
            zero count is refused. Defaults to None.
    """

    custom_cls_channels = True
    custom_activation = True
    custom_accuracy = True

    def __init__(self,
                 class_counts: CountsArg = None,
                 kind: str = 'instances',
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 eps: Optional[float] = None) -> None:
        super().__init__()
        name = type(self).__name__
        if reduction not in _REDUCTIONS:
            raise ValueError(f'{name}: reduction must be one of '
                             f'{_REDUCTIONS}, got {reduction!r}')
        if kind not in DETECTION_KINDS:
            raise ValueError(f'{name}: kind must be one of {DETECTION_KINDS} '
                             f'(what ClassCountsHook counts), got {kind!r}')
        if isinstance(
                loss_weight,
                bool) or not isinstance(loss_weight,
                                        (int, float)) or not loss_weight >= 0:
            raise ValueError(f'{name}: loss_weight must be a number >= 0, '
                             f'got {loss_weight!r}')
        self.reduction = reduction
        self.loss_weight = float(loss_weight)
        self.num_classes: Optional[int] = None
        self.init_class_counts(class_counts, eps=eps, kind=kind)

    def _channels(self, num_classes: int) -> int:
        """``fc_cls`` outputs for ``num_classes`` foreground classes."""
        raise NotImplementedError

    def get_cls_channels(self, num_classes: int) -> int:
        """Outputs of the classifier (mmdet's custom-classifier interface).

        Called by ``BBoxHead`` when it builds ``fc_cls``: from here on the
        loss knows C and its counts buffer has C entries.
        """
        name = type(self).__name__
        if isinstance(
                num_classes,
                bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f'{name}: the bbox head\'s num_classes must be '
                             f'an int >= 2, got {num_classes!r}')
        if self.num_classes not in (None, num_classes):
            raise ValueError(f'{name} serves a bbox head of num_classes='
                             f'{self.num_classes}, not {num_classes}')
        self.num_classes = num_classes
        self._class_counts_num_classes = num_classes
        if self.has_class_counts:
            self.check_num_class_counts(
                num_classes, f'the bbox head (num_classes={num_classes})')
        elif self.class_counts.numel() != num_classes:
            # Zeros mean "unset" (ClassCountsMixin); the shape now matches
            # the counts a checkpoint of this model holds.
            self.class_counts = torch.zeros(
                num_classes,
                dtype=torch.float64,
                device=self.class_counts.device)
        return self._channels(num_classes)

    def _refuse_host(self, host: str) -> TypeError:
        name = type(self).__name__
        return TypeError(
            f'{name} is an RoI classifier loss of a two-stage detector\'s '
            'bbox head (roi_head.bbox_head.loss_cls: BBoxHead builds fc_cls '
            'with get_cls_channels and scores RoIs with get_activation, the '
            f'background last); {host}. One-stage (dense) heads such as '
            'RetinaNet and ATSS size their classifier from '
            'loss_cls.use_sigmoid, never call get_cls_channels and expect '
            'get_activation to give C columns without a background, so '
            'they cannot carry it')

    def check_host_head(self, head: nn.Module) -> None:
        """Refuse a head that is not a ``BBoxHead`` using this loss through
        the custom-classifier interface (``ClassCountsHook.before_run``)."""
        if not (hasattr(head, 'fc_cls') and self.num_classes is not None
                and getattr(head, 'custom_cls_channels', False)):
            raise self._refuse_host(
                f'it is the loss_cls of a {type(head).__name__}')

    def _check_call(self, cls_score: Tensor, labels: Tensor) -> int:
        if self.num_classes is None:
            raise self._refuse_host('no BBoxHead built it (get_cls_channels '
                                    'was never called)')
        channels = self._channels(self.num_classes)
        if cls_score.dim() != 2 or cls_score.size(1) != channels:
            raise ValueError(
                f'{type(self).__name__}: cls_score must be (N, {channels}) '
                f'for {self.num_classes} classes, got '
                f'{tuple(cls_score.shape)}')
        if labels.shape != cls_score.shape[:1]:
            raise ValueError(f'{type(self).__name__}: labels must be (N, ) '
                             f'= ({cls_score.size(0)}, ), got '
                             f'{tuple(labels.shape)}')
        bad = (labels < 0) | (labels > self.num_classes)
        if bad.any():
            raise ValueError(f'{type(self).__name__}: labels must be in [0, '
                             f'{self.num_classes}] ({self.num_classes} is the '
                             f'background), got {int(labels[bad][0])}')
        return channels

    def _reduce(self, loss: Tensor, weight: Optional[Tensor],
                avg_factor: Optional[float],
                reduction_override: Optional[str]) -> Tensor:
        reduction = reduction_override or self.reduction
        if reduction not in _REDUCTIONS:
            raise ValueError(f'reduction_override must be one of '
                             f'{_REDUCTIONS}, got {reduction!r}')
        if weight is not None:
            weight = weight.float()
            if weight.dim() < loss.dim():
                weight = weight.unsqueeze(-1).expand_as(loss)
        return self.loss_weight * weight_reduce_loss(
            loss, weight=weight, reduction=reduction, avg_factor=avg_factor)

    def get_accuracy(self, cls_score: Tensor,
                     labels: Tensor) -> Dict[str, Tensor]:
        """mmdet's ``acc`` of the RoI classifier (background included)."""
        return dict(acc=accuracy(cls_score, labels))
