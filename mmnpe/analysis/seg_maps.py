"""Decode-head logits and the prior estimate of a segmentor, kept apart.

Both go through the same path as mmseg's inference (whole or slide mode,
``predict_by_feat``, ``postprocess_result``), so ``z`` alone is what the
stock segmentor predicts from and ``z - s * eta`` is, up to float rounding,
what the prior-corrected one predicts from at scale factor ``s``: every
step after the decode head (bilinear resizes, averaging of overlapping
crops, padding crop, flip) is linear, so it commutes with the correction.

The logits come from the segmentor's own decode path
(:meth:`PriorAdjustedEncoderDecoder._decode_logits` and
``_final_decode_head``): the stages of a cascade (OCRNet), the first output
of DANet's and EncNet's heads, exactly as the segmentor predicts from them.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.utils import resize
from mmseg.structures import SegDataSample
from torch import Tensor


def _eta_like(eta: Tensor, z: Tensor, align_corners: bool) -> Tensor:
    """``eta`` brought to the shape of the logits ``z`` (N, C, h, w), as
    :class:`NPEEncoderDecoder` does (bilinear) or by broadcasting."""
    if (eta.dim() != 4 or eta.shape[1] != z.shape[1]
            or eta.shape[0] not in (1, z.shape[0])):
        raise ValueError(
            'estimate_prior must return (N, C, h, w) or a broadcastable '
            f'(1 | N, C, 1, 1) for logits of shape {tuple(z.shape)}, got '
            f'{tuple(eta.shape)}')
    if eta.shape[2:] != z.shape[2:] and tuple(eta.shape[2:]) != (1, 1):
        eta = resize(
            eta,
            size=z.shape[2:],
            mode='bilinear',
            align_corners=align_corners)
    return eta.expand_as(z)


def _decode_path(model: nn.Module,
                 x: Sequence[Tensor]) -> Tuple[Tensor, nn.Module]:
    """The decode-head logits (N, C, h, w) of the features ``x`` and the head
    that resizes them (``predict_by_feat``), as the segmentor predicts.

    mmnpe's segmentors name their decode path (``_decode_logits``,
    ``_final_decode_head``); another model with the prior-correction
    interface must have a single head whose ``forward`` gives the logits.
    """
    if hasattr(model, '_decode_logits') and hasattr(model,
                                                    '_final_decode_head'):
        return model._decode_logits(x), model._final_decode_head()
    head = model.decode_head
    if isinstance(head, nn.ModuleList):
        raise TypeError(
            f'{type(model).__name__} has a cascade of {len(head)} decode '
            'heads but no _decode_logits() / _final_decode_head() saying '
            'which logits it predicts from; use NPECascadeEncoderDecoder or '
            'LogitAdjustCascadeEncoderDecoder')
    z = head.forward(x)
    if not isinstance(z, Tensor):
        raise TypeError(
            f'{type(head).__name__}.forward() of {type(model).__name__} '
            'must return the logits (N, C, h, w), got a '
            f'{type(z).__name__}; give the model a _decode_logits() that '
            'picks them (as PriorAdjustedEncoderDecoder does)')
    return z, head


def final_decode_head(model: nn.Module) -> nn.Module:
    """The decode head a segmentor predicts with (the last stage of a
    cascade)."""
    if hasattr(model, '_final_decode_head'):
        return model._final_decode_head()
    head = model.decode_head
    return head[-1] if isinstance(head, nn.ModuleList) else head


def _crop_maps(model: nn.Module, inputs: Tensor,
               batch_img_metas: List[dict]) -> Tuple[Tensor, Tensor]:
    """Logits and estimate of one (crop of a) batch at its input size."""
    x = model.extract_feat(inputs)
    z, head = _decode_path(model, x)
    eta = _eta_like(model.estimate_prior(x), z, model.align_corners)
    # Resized apart: torch's bilinear kernel rounds differently for another
    # channel count, and z must stay bit-identical to the stock logits.
    return (head.predict_by_feat(z, batch_img_metas),
            head.predict_by_feat(eta, batch_img_metas))


def _slide_maps(model: nn.Module, inputs: Tensor,
                batch_img_metas: List[dict]) -> Tuple[Tensor, Tensor]:
    """mmseg's ``slide_inference`` (same crops, same arithmetic) with the
    logits and the estimate averaged over the crops separately."""
    h_stride, w_stride = model.test_cfg.stride
    h_crop, w_crop = model.test_cfg.crop_size
    batch_size, _, h_img, w_img = inputs.size()
    channels = model.out_channels
    h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
    z_sum = inputs.new_zeros((batch_size, channels, h_img, w_img))
    eta_sum = inputs.new_zeros((batch_size, channels, h_img, w_img))
    count = inputs.new_zeros((batch_size, 1, h_img, w_img))
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1 = h_idx * h_stride
            x1 = w_idx * w_stride
            y2 = min(y1 + h_crop, h_img)
            x2 = min(x1 + w_crop, w_img)
            y1 = max(y2 - h_crop, 0)
            x1 = max(x2 - w_crop, 0)
            crop = inputs[:, :, y1:y2, x1:x2]
            batch_img_metas[0]['img_shape'] = crop.shape[2:]
            z, eta = _crop_maps(model, crop, batch_img_metas)
            pad = (int(x1), int(w_img - x2), int(y1), int(h_img - y2))
            z_sum += F.pad(z, pad)
            eta_sum += F.pad(eta, pad)
            count[:, :, y1:y2, x1:x2] += 1
    if (count == 0).any():
        raise RuntimeError('slide inference left pixels uncovered; check '
                           'test_cfg.crop_size and test_cfg.stride')
    return z_sum / count, eta_sum / count


def _to_label_resolution(
        model: nn.Module, maps: Tensor,
        data_samples: Sequence[SegDataSample]) -> List[Tensor]:
    """mmseg's ``postprocess_result`` without the argmax: per image remove
    the padding, undo the flip, resize to ``ori_shape``. (C', H, W) each."""
    height, width = maps.shape[2:]
    out = []
    for i, sample in enumerate(data_samples):
        meta = sample.metainfo
        left, right, top, bottom = meta.get('img_padding_size',
                                            meta.get('padding_size', [0] * 4))
        one = maps[i:i + 1, :, top:height - bottom, left:width - right]
        if meta.get('flip', None):
            direction = meta.get('flip_direction', None)
            if direction not in ('horizontal', 'vertical'):
                raise ValueError("flip_direction must be 'horizontal' or "
                                 f"'vertical', got {direction!r}")
            one = one.flip(dims=(3, ) if direction == 'horizontal' else (2, ))
        out.append(
            resize(
                one,
                size=meta['ori_shape'],
                mode='bilinear',
                align_corners=model.align_corners,
                warning=False).squeeze(0))
    return out


def seg_logits_and_estimate(
        model: nn.Module, inputs: Tensor,
        data_samples: Sequence[SegDataSample]) -> List[Tuple[Tensor, Tensor]]:
    """Logits ``z`` and estimate ``eta`` of every image at the resolution of
    its label (``ori_shape``), as ``model.predict`` would produce the logits.

    Whole or slide inference follows ``model.test_cfg.mode``; in slide mode
    the crops' logits and estimates are averaged separately (the average is
    linear, so ``z - s * eta`` is the average of the crops' corrected
    logits).

    Args:
        model (nn.Module): An ``EncoderDecoder`` with ``estimate_prior``.
        inputs (Tensor): Preprocessed images, (N, 3, H, W).
        data_samples (Sequence[SegDataSample]): Their data samples.

    Returns:
        list[tuple[Tensor, Tensor]]: Per image ``(z, eta)``, each
        (C, H_ori, W_ori).
    """
    mode = model.test_cfg.get('mode', 'whole')
    if mode not in ('whole', 'slide'):
        raise ValueError("test_cfg.mode must be 'whole' or 'slide', got "
                         f'{mode!r}')
    # metainfo returns fresh dicts: slide mode may edit img_shape freely.
    metas = [sample.metainfo for sample in data_samples]
    z, eta = (_slide_maps if mode == 'slide' else _crop_maps)(model, inputs,
                                                              metas)
    return list(
        zip(
            _to_label_resolution(model, z, data_samples),
            _to_label_resolution(model, eta, data_samples)))


@torch.no_grad()
def seg_batch(model: nn.Module,
              batch: dict) -> Tuple[List[Tuple[Tensor, Tensor]], List[Tensor]]:
    """Preprocess a data batch and return per image ``(z, eta)`` at label
    resolution and the label, (H_ori, W_ori)."""
    data = model.data_preprocessor(batch, False)
    samples = data['data_samples']
    maps = seg_logits_and_estimate(model, data['inputs'], samples)
    labels = [sample.gt_sem_seg.data.squeeze(0) for sample in samples]
    return maps, labels
