import inspect
from abc import abstractmethod
from typing import List, Sequence

import torch.nn as nn
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.utils import ConfigType, OptSampleList
from torch import Tensor

from mmnpe.engine import TargetPriorMixin
from mmnpe.functional import npe_logit_adjust
from .decode_head_compat import (FIRST_OUTPUT_PREDICTS, NPE_TYPES,
                                 SegmentorTypes, check_plain_decode_head)


class PriorAdjustedEncoderDecoder(TargetPriorMixin, EncoderDecoder):
    """Encoder-decoder whose logits become ``z - scale_factor * eta`` at
    inference (not registered: the base of NPE-LA and post-hoc LA).

    The one correction path of mmnpe's segmentors. Subclasses give the class
    log-prior estimate ``eta`` (:meth:`estimate_prior`: learned by PEMs in
    :class:`NPEEncoderDecoder`, fixed from counts in
    :class:`LogitAdjustEncoderDecoder`) and set ``self.scale_factor``.

    - ``encode_decode(): extract_feat() -> _decode_logits() -
      scale_factor * eta -> _final_decode_head().predict_by_feat()``

    :meth:`_decode_logits` and :meth:`_final_decode_head` are the decode
    path: the decode head's ``forward`` (its first output for DANet /
    EncNet) and the head itself here, the cascade's stages and its last
    stage with :class:`CascadePriorAdjustedMixin`. The analysis tools
    (``mmnpe.analysis``) read the logits through the same two methods.

    The correction lives in :meth:`encode_decode` (and :meth:`_forward`, for
    ``mode='tensor'``), so whole, slide (crop logits are averaged linearly)
    and TTA inference all get it; ``eta`` is computed once per forward at its
    own resolution and brought to the decode head's (a (N, C, 1, 1) estimate
    is broadcast, not interpolated). Training is untouched: losses see the
    plain logits.

    ``target_prior`` (:class:`TargetPriorMixin`, set by the subclasses'
    ``__init__``) predicts for another class prior: the corrected logits
    plus ``log pi_t - mean log pi_t`` at every pixel (one prior for the
    whole data set; docs/user_guides/label_shift.md).

    The decode head must compute per-class logits from the features alone
    and predict from them (``predict = predict_by_feat(forward(x))``); heads
    that do not (MaskFormer, Mask2Former, PointRend's point head, DDRNet,
    PIDNet ...) are refused when the model is built, naming the head and the
    reason, and so is a one-channel (sigmoid) head, which has no per-class
    logits to shift.
    """

    scale_factor: float
    # (plain, cascade) registered names of the segmentor family, which the
    # decode-head errors point to; post-hoc LA sets its own.
    _segmentor_types: SegmentorTypes = NPE_TYPES

    def __init__(self, *args, **kwargs) -> None:
        # Checked from the config, before the (possibly large) backbone.
        self._check_decode_head_cfg(args, kwargs)
        super().__init__(*args, **kwargs)
        if self.out_channels == 1:
            raise ValueError(
                f'{type(self).__name__} needs one logit per class, but the '
                'decode head has out_channels == 1 (sigmoid binary '
                'segmentation); set decode_head.out_channels = num_classes')
        self._logits_from_first_output = (
            type(self._final_decode_head()).predict in FIRST_OUTPUT_PREDICTS)

    def _check_decode_head_cfg(self, args: tuple, kwargs: dict) -> None:
        """Refuse, by class, a decode head whose logits cannot be
        corrected."""
        if 'decode_head' in kwargs:  # as configs pass it
            decode_head = kwargs['decode_head']
        else:
            try:
                decode_head = inspect.signature(super().__init__).bind(
                    *args, **kwargs).arguments['decode_head']
            except (TypeError, KeyError):
                return  # the stock __init__ reports bad arguments itself
        self._check_decode_heads(decode_head)

    def _check_decode_heads(self, decode_head: ConfigType) -> None:
        check_plain_decode_head(decode_head, types=self._segmentor_types)

    def _final_decode_head(self) -> nn.Module:
        """The head whose logits are predicted from (the last stage of a
        cascade)."""
        if isinstance(self.decode_head, nn.ModuleList):
            return self.decode_head[-1]
        return self.decode_head

    def _decode_logits(self, x: Sequence[Tensor]) -> Tensor:
        """The decode head's per-class logits, (N, C, h, w), as its
        ``predict()`` uses them (the first output of DANet / EncNet)."""
        seg_logits = self.decode_head.forward(x)
        if self._logits_from_first_output and isinstance(
                seg_logits, (tuple, list)):
            seg_logits = seg_logits[0]
        return seg_logits

    @abstractmethod
    def estimate_prior(self, x: Sequence[Tensor]) -> Tensor:
        """``eta`` from the features, centred over classes: (N, C, h, w) or
        (N, C, 1, 1)."""

    def _adjusted_logits(self, x: Sequence[Tensor]) -> Tensor:
        """Decode-head logits minus ``scale_factor * eta`` (+ the target
        prior's centred log), (N, C, h, w)."""
        seg_logits = self._decode_logits(x)
        scale = self.prediction_scale_factor
        if scale == 0 or self.restores_plain_logits:
            return self.add_target_prior(seg_logits)
        eta = self.estimate_prior(x)
        if eta.shape[2:] != seg_logits.shape[2:]:
            if eta.shape[2:] == (1, 1):
                eta = eta.expand_as(seg_logits)
            else:
                eta = resize(
                    eta,
                    size=seg_logits.shape[2:],
                    mode='bilinear',
                    align_corners=self.align_corners)
        return self.add_target_prior(npe_logit_adjust(seg_logits, eta, scale))

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Adjusted logits resized to the input, (N, C, H, W)."""
        x = self.extract_feat(inputs)
        return self._final_decode_head().predict_by_feat(
            self._adjusted_logits(x), batch_img_metas)

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        """Adjusted logits at the decode head's resolution
        (``mode='tensor'``)."""
        return self._adjusted_logits(self.extract_feat(inputs))
