import math
from numbers import Real
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmdet.models.losses import accuracy
from mmdet.registry import MODELS
from torch import Tensor

from mmnpe.engine.class_counts_mixin import CountsArg
from mmnpe.functional import balanced_sigmoid_loss, balanced_sigmoid_offset
from mmnpe.functional.balanced_sigmoid import BALANCED_SIGMOID_VARIANTS
from mmnpe.functional.class_counts import counts_file_num_images
from .roi_prior_loss import RoIPriorLossBase


@MODELS.register_module()
class BalancedSigmoidRoILoss(RoIPriorLossBase):
    """Balanced Sigmoid for the RoI classifier of a two-stage detector.

    One sigmoid per foreground class and no background channel: ``fc_cls``
    has C outputs, a background RoI has all-zero targets. Two variants of
    the training offset, ``k = C`` foreground classes, ``n_j`` their counts,
    ``n`` the number of samples and ``f_j = n_j / n``:

    - ``variant='slides'`` (the Balanced Activation slides, Ren et al., LVIS
      Challenge 2020): every RoI trains on

          sigmoid(z_j - log((n/k) / n_j * (n - n_j) / (n - n/k)))

      i.e. ``z_j + log(f_j / (1 - f_j)) + log(k - 1)``. The constant
      ``log(k - 1)`` (7.09 for LVIS's 1203 classes) is part of the formula:
      a sigmoid has no normalisation to absorb it, only the bias during
      training.
    - ``variant='balms'`` (the instance-segmentation code released with
      `Balanced Meta-Softmax <https://arxiv.org/abs/2007.10740>`_): only
      *foreground* RoIs get an offset, ``z_j + log(f_j / (1 - f_j))``
      without the constant, with image frequencies (``kind='images'``,
      required). Background RoIs train on the plain ``z``.

    ``n`` is ``sum_j n_j`` for instance counts (one label per instance) and
    the number of training images for image counts (an image holds several
    categories): ``ClassCountsHook`` counts it with the counts, repeats of
    repeat-factor sampling included, so ``f_j = image_count_j /
    number_of_images`` of the images trained on; ``num_samples`` overrides
    it. Test time uses the plain ``sigmoid(z_j)`` for both.

    - ``forward(): z + offset (balms: foreground RoIs only) -> BCE-with-
      logits against one-hot targets (background: all zero) ->
      weight_reduce_loss``
    - ``get_activation(): [sigmoid(z), clamp(1 - sum sigmoid(z), 0, 1)]``:
      mmdet's NMS drops the last column, which ``CrossEntropyCustomLoss``
      also fills this way.

    Args:
        class_counts (str | Sequence[float] | None): Foreground counts
            ``n_j``, a counts-JSON path, or None (``ClassCountsHook``).
            Defaults to None.
        kind (str): 'instances' or 'images' (what ``ClassCountsHook``
            counts). Defaults to 'instances'.
        num_samples (float, optional): ``n``; None is ``sum(n_j)`` for
            instances and the number of training images for images (from
            ``ClassCountsHook`` or the counts JSON's ``num_images``).
            Defaults to None.
        variant (str): 'slides' or 'balms' (see above). Defaults to
            'slides'.
        reduction (str): Defaults to 'mean' (over RoIs x classes, or the
            head's ``avg_factor`` RoIs).
        loss_weight (float): Defaults to 1.0.
        eps (float, optional): Allows categories without any count:
            ``f_j + eps`` inside the log. Defaults to None.
    """

    def __init__(self,
                 class_counts: CountsArg = None,
                 kind: str = 'instances',
                 num_samples: Optional[float] = None,
                 variant: str = 'slides',
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 eps: Optional[float] = None) -> None:
        if num_samples is not None and (isinstance(num_samples, bool)
                                        or not isinstance(num_samples, Real)
                                        or not math.isfinite(num_samples)
                                        or num_samples <= 0):
            raise ValueError('BalancedSigmoidRoILoss: num_samples must be '
                             f'None or a finite number > 0, got '
                             f'{num_samples!r}')
        if variant not in BALANCED_SIGMOID_VARIANTS:
            raise ValueError('BalancedSigmoidRoILoss: variant must be one of '
                             f'{BALANCED_SIGMOID_VARIANTS}, got {variant!r}')
        if variant == 'balms' and kind != 'images':
            raise ValueError(
                "BalancedSigmoidRoILoss: variant='balms' uses image "
                'frequencies (image_count_j / number_of_images, as the BALMS '
                f"code does), so kind must be 'images', got kind={kind!r}; "
                "use variant='slides' for instance counts")
        self.num_samples = num_samples
        self.variant = variant
        super().__init__(class_counts, kind, reduction, loss_weight, eps)
        # Image counts: n is the number of images, which the counts alone
        # do not give (an image holds several categories).
        self.needs_num_images = kind == 'images' and num_samples is None
        if self.needs_num_images:
            self.register_buffer('num_images',
                                 torch.zeros((), dtype=torch.float64))
            if isinstance(class_counts, str):
                total = counts_file_num_images(class_counts)
                if total is None:
                    raise ValueError(
                        "BalancedSigmoidRoILoss: with kind='images' n is the "
                        f'number of training images, which {class_counts!r} '
                        'does not hold (no "num_images"); write it again '
                        'with tools/analysis/class_counts.py or pass '
                        'num_samples=<number of images>')
                self.set_num_images(total)
            elif class_counts is not None:
                raise ValueError(
                    "BalancedSigmoidRoILoss: with kind='images' n is the "
                    'number of training images, which a list of counts does '
                    'not give; pass num_samples=<number of images> too, or '
                    'a counts JSON (tools/analysis/class_counts.py writes '
                    'num_images), or class_counts=None with ClassCountsHook')
        if self.has_class_counts and (not self.needs_num_images
                                      or self.num_images > 0):
            # n > n_j, checked at build when known.
            balanced_sigmoid_offset(self.class_counts, self._num_samples(),
                                    eps, variant)

    def set_num_images(self, num_images: float) -> None:
        """The number of training images (repeats included), ``n`` of image
        counts; set by ``ClassCountsHook`` with the counts."""
        if not self.needs_num_images:
            return
        if (isinstance(num_images, bool) or not isinstance(num_images, Real)
                or not num_images > 0):
            raise ValueError('BalancedSigmoidRoILoss: the number of '
                             f'training images must be > 0, got '
                             f'{num_images!r}')
        self.num_images.fill_(float(num_images))

    def _num_samples(self) -> Optional[float]:
        if not self.needs_num_images:
            return self.num_samples
        if not self.num_images > 0:
            return None
        return float(self.num_images)

    def _channels(self, num_classes: int) -> int:
        return num_classes

    def offset(self) -> Tensor:
        """The training offset of the variant (class docstring), (C, )
        float64."""
        counts = self.check_num_class_counts(self.num_classes,
                                             'the bbox head\'s num_classes')
        n = self._num_samples()
        if self.needs_num_images and n is None:
            raise RuntimeError(
                "BalancedSigmoidRoILoss: kind='images' needs the number of "
                'training images, not set; ClassCountsHook sets it with the '
                'counts, or pass num_samples')
        return balanced_sigmoid_offset(counts, n, self.class_counts_eps,
                                       self.variant)

    def forward(self,
                cls_score: Tensor,
                labels: Tensor,
                label_weights: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            cls_score (Tensor): RoI logits, (N, C).
            labels (Tensor): (N, ) in ``[0, C]``, ``C`` the background.
            label_weights (Tensor, optional): Per-RoI weights, (N, ).
            avg_factor (float, optional): Divisor of 'mean' (``BBoxHead``
                passes the number of weighted RoIs).
            reduction_override (str, optional): Overrides ``reduction``.

        Returns:
            Tensor: The loss.
        """
        self._check_call(cls_score, labels)
        # One-hot over C + 1 with the background column dropped: background
        # RoIs are negatives of every class.
        target = F.one_hot(labels, self.num_classes + 1)[:, :-1]
        offset = self.offset()
        if self.variant == 'balms':
            # The BALMS code offsets foreground RoIs only; background RoIs
            # are plain negatives of every class.
            fg = (labels < self.num_classes).unsqueeze(1)
            logits = torch.where(fg, cls_score + offset.to(cls_score),
                                 cls_score)
            loss = F.binary_cross_entropy_with_logits(
                logits, target.to(cls_score.dtype), reduction='none')
        else:
            loss = balanced_sigmoid_loss(cls_score, target, offset)
        return self._reduce(loss, label_weights, avg_factor,
                            reduction_override)

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """Test-time scores, (N, C + 1): the plain sigmoids of the C
        classes, then a background column (see the class docstring)."""
        scores = cls_score.sigmoid()
        background = (1 - scores.sum(dim=1, keepdim=True)).clamp(0, 1)
        return torch.cat([scores, background], dim=1)

    def get_accuracy(self, cls_score: Tensor,
                     labels: Tensor) -> Dict[str, Tensor]:
        """``acc_classes``: top-1 over the C sigmoids of foreground RoIs."""
        fg = labels < cls_score.size(1)
        return dict(acc_classes=accuracy(cls_score[fg], labels[fg]))
