"""Evaluate many scale factors (alpha of NPE-LA, tau of post-hoc LA) in one
inference pass.

The logits ``z`` and the estimate ``eta`` are computed once per image; the
metric state of every scale factor ``s`` (predictions from
``z - s * eta``) is accumulated side by side:

- segmentation: per class the intersection, union, predicted and labelled
  areas of mmseg's :class:`IoUMetric`, per image in float32 and summed image
  by image in float32 as the metric sums them (:class:`SegSweepState`),
  turned into mIoU / mDice / mAcc by its own ``total_area_to_metrics``;
- classification: correct and total samples per true class, turned into
  top-1, balanced and Many / Medium / Few accuracy by
  :meth:`LongTailAccuracy.summarize`.

So each curve point is what a separate evaluation with ``scale_factor = s``
reports, for about the price of one evaluation.
"""
import logging
import math
from numbers import Real
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from torch import Tensor

from .builder import (build_dataloader, build_model,
                      classification_train_counts, eval_dataloader_cfg,
                      find_metric, load_config)
from .interface import prior_correction, scale_factor_set, target_prior_set
from .seg_maps import seg_batch

SEG_METRICS = ('mIoU', 'mDice', 'mAcc', 'aAcc')
AREA_KEYS = ('intersect', 'union', 'pred', 'label')
CLS_METRICS = ('top1', 'balanced', 'many', 'medium', 'few')


def check_scales(scales: Sequence[float], name: str = 'scales') -> List[float]:
    """Return the scale factors as floats if they are a non-empty sequence
    of distinct finite numbers >= 0.

    Args:
        scales (Sequence[float]): The scale factors.
        name (str): Argument name for the error message (``--scales`` from
            the command line). Defaults to 'scales'.
    """
    if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence):
        raise ValueError(f'{name} must be a list of numbers >= 0, got '
                         f'{scales!r}')
    if len(scales) == 0:
        raise ValueError(f'{name} must hold at least one scale factor, got '
                         'an empty list')
    out = []
    for i, s in enumerate(scales):
        if (isinstance(s, bool) or not isinstance(s, Real)
                or not math.isfinite(s) or s < 0):
            raise ValueError(f'{name} must hold finite numbers >= 0, got '
                             f'{s!r} at position {i}')
        out.append(float(s))
    if len(set(out)) != len(out):
        raise ValueError(f'{name} must hold distinct values, got {out}')
    return out


def image_areas(confusion: Tensor) -> Tensor:
    """One image's areas per scale, as ``IoUMetric.intersect_and_union``
    computes them from its prediction.

    Args:
        confusion (Tensor): (S, C + 1, C) int64 pixel counts per scale, row
            true class (row C: labels outside [0, C) that are not ignored),
            column predicted class.

    Returns:
        Tensor: (S, 4, C) float32: ``intersect``, ``union``, ``pred`` and
        ``label``; the union is ``pred + label - intersect`` in float32, as
        the metric computes it.
    """
    c = confusion.shape[-1]
    diag = torch.arange(c, device=confusion.device)
    intersect = confusion[:, diag, diag].float()
    pred = confusion.sum(dim=1).float()
    label = confusion[:, :c].sum(dim=2).float()
    union = pred + label - intersect
    return torch.stack([intersect, union, pred, label], dim=1)


class SegSweepState:
    """Per scale factor, the four per-class areas of mmseg's IoU metric,
    summed as :class:`IoUMetric` sums them.

    ``IoUMetric`` holds each image's areas as float32 (``intersect_and_union``
    histograms) and adds them image by image in float32 (``compute_metrics``:
    ``sum`` over the per-image results, in the order the images came). Past
    2**24 pixels of a class in the running total float32 cannot hold every
    integer, so that sum rounds (ADE20K's commonest classes get there). The
    state does the same arithmetic: per image the confusion of every scale
    is counted exactly (one ``bincount``), that image's areas are turned into
    float32 (union as ``pred + label - intersect`` in float32) and added to
    float32 totals, image after image. Given the images in the order of the
    data loader (as :func:`sweep_segmentor` gives them), each scale's areas
    are those of ``tools/test.py`` bit for bit, rounding included.

    Args:
        scales (Sequence[float]): Scale factors, (S,).
        num_classes (int): C.
        ignore_index (int): Label ignored by the metric. Defaults to 255.

    Attributes:
        totals (Tensor): (S, 4, C) float32, per scale the summed
            ``intersect``, ``union``, ``pred`` and ``label`` areas.
        num_images (int): Images added so far.
    """

    def __init__(self,
                 scales: Sequence[float],
                 num_classes: int,
                 ignore_index: int = 255) -> None:
        self.scales = check_scales(scales)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.totals = torch.zeros(
            len(self.scales), len(AREA_KEYS), num_classes, dtype=torch.float32)
        self.num_images = 0

    def update(self, z: Tensor, eta: Tensor, label: Tensor) -> None:
        """Add one image: logits and estimate (C, H, W), label (H, W)."""
        c = self.num_classes
        if z.shape != eta.shape or z.shape[0] != c or z.shape[
                1:] != label.shape:
            raise ValueError(
                f'z and eta must be ({c}, H, W) and label (H, W), got '
                f'{tuple(z.shape)}, {tuple(eta.shape)} and '
                f'{tuple(label.shape)}')
        label = label.to(z.device).long()
        valid = label != self.ignore_index
        label = label[valid]
        # Row C collects labels outside [0, C) that are not ignored: their
        # predictions count in the predicted area, as with IoUMetric.
        label = torch.where((label >= 0) & (label < c), label,
                            torch.full_like(label, c))
        z, eta = z[:, valid], eta[:, valid]
        scales = torch.tensor(
            self.scales, dtype=z.dtype, device=z.device).view(-1, 1)
        # argmax over classes of z - s * eta for all scales, (S, P). A
        # running maximum over the class axis: elementwise on (S, P) rows,
        # much faster than torch's argmax over a strided axis; the strict
        # '>' keeps the first maximum, as argmax does.
        best = z[0] - scales * eta[0]
        pred = torch.zeros(best.shape, dtype=torch.long, device=z.device)
        for k in range(1, c):
            cur = z[k] - scales * eta[k]
            higher = cur > best
            best = torch.where(higher, cur, best)
            pred.masked_fill_(higher, k)
        offset = torch.arange(
            len(self.scales), device=z.device).view(-1, 1) * ((c + 1) * c)
        counts = torch.bincount(
            (offset + (label * c) + pred).reshape(-1),
            minlength=len(self.scales) * (c + 1) * c)
        self.add_areas(image_areas(counts.view(-1, c + 1, c).cpu()))

    def add_areas(self, areas: Tensor) -> None:
        """Add one image's areas, (S, 4, C) float32 (``intersect``,
        ``union``, ``pred``, ``label`` per scale, as
        ``IoUMetric.intersect_and_union`` gives them), to the totals in
        float32, as ``IoUMetric.compute_metrics`` adds the next image."""
        shape = (len(self.scales), len(AREA_KEYS), self.num_classes)
        if tuple(areas.shape) != shape or areas.dtype != torch.float32:
            raise ValueError(
                f'areas must be a float32 tensor of shape {shape} (scales, '
                f'{"/".join(AREA_KEYS)}, classes), got {areas.dtype} of '
                f'shape {tuple(areas.shape)}')
        self.totals += areas.cpu()
        self.num_images += 1

    def areas(self, index: int) -> Dict[str, Tensor]:
        """IoUMetric's four summed per-class areas of scale ``index``, (C,)
        float32 each, as its ``compute_metrics`` holds them."""
        return {
            key: self.totals[index, i].clone()
            for i, key in enumerate(AREA_KEYS)
        }

    def metrics(self,
                nan_to_num: Optional[int] = None,
                beta: int = 1) -> List[dict]:
        """Per scale: mIoU, mDice, mAcc, aAcc (rounded as mmseg does) and
        the per-class IoU, Acc, Dice (in %)."""
        from mmseg.evaluation import IoUMetric
        out = []
        for i in range(len(self.scales)):
            a = self.areas(i)
            ret = IoUMetric.total_area_to_metrics(a['intersect'], a['union'],
                                                  a['pred'], a['label'],
                                                  ['mIoU', 'mDice'],
                                                  nan_to_num, beta)
            summary = {
                ('aAcc' if k == 'aAcc' else 'm' + k):
                float(np.round(np.nanmean(v) * 100, 2))
                for k, v in ret.items()
            }
            # Rounded in mmseg's float32, as ClassWiseIoUMetric reports.
            per_class = {
                k: [
                    None if np.isnan(x) else float(np.round(x * 100, 2))
                    for x in np.asarray(v)
                ]
                for k, v in ret.items() if k != 'aAcc'
            }
            out.append(dict(summary, per_class=per_class))
        return out


class ClsSweepState:
    """Per scale factor, correct samples per true class.

    Args:
        scales (Sequence[float]): Scale factors, (S,).
        num_classes (int): C.
    """

    def __init__(self, scales: Sequence[float], num_classes: int) -> None:
        self.scales = check_scales(scales)
        self.num_classes = num_classes
        self.correct = torch.zeros(
            len(self.scales), num_classes, dtype=torch.int64)
        self.total = torch.zeros(num_classes, dtype=torch.int64)

    def update(self, z: Tensor, eta: Tensor, target: Tensor) -> None:
        """Add a batch: logits (N, C), estimate (N, C) or broadcastable,
        true labels (N,)."""
        c = self.num_classes
        if z.dim() != 2 or z.shape[1] != c or target.shape != z.shape[:1]:
            raise ValueError(f'z must be (N, {c}) and target (N,), got '
                             f'{tuple(z.shape)} and {tuple(target.shape)}')
        eta = eta.expand_as(z)
        target = target.to(z.device).long()
        self.total += torch.bincount(target, minlength=c).cpu()
        for i, s in enumerate(self.scales):
            # The head's own arithmetic (python float scale, softmax before
            # argmax), so each prediction is bit-identical to predict().
            scores = F.softmax(z - s * eta if s else z, dim=1)
            hit = scores.argmax(dim=1) == target
            self.correct[i] += torch.bincount(target[hit], minlength=c).cpu()

    def metrics(self,
                class_counts: Sequence[int],
                many_threshold: float = 100,
                few_threshold: float = 20) -> List[dict]:
        """Per scale: :meth:`LongTailAccuracy.summarize` (top1, balanced,
        many / medium / few, per_class)."""
        from mmnpe.cls import LongTailAccuracy
        out = []
        for i in range(len(self.scales)):
            res = LongTailAccuracy.summarize(self.correct[i].numpy(),
                                             self.total.numpy(), class_counts,
                                             many_threshold, few_threshold)
            per_class = [
                None if math.isnan(v) else v for v in res.pop('per_class')
            ]
            out.append(dict(res, per_class=dict(accuracy=per_class)))
        return out


@torch.no_grad()
def sweep_segmentor(model: nn.Module,
                    dataloader,
                    scales: Sequence[float],
                    num_classes: int,
                    ignore_index: int = 255,
                    progress: bool = False) -> SegSweepState:
    """One pass of a segmentor over ``dataloader`` for all ``scales``."""
    prior_correction(model, 'the scale sweep')
    state = SegSweepState(scales, num_classes, ignore_index)
    bar = ProgressBar(len(dataloader.dataset)) if progress else None
    for batch in dataloader:
        maps, labels = seg_batch(model, batch)
        for (z, eta), label in zip(maps, labels):
            state.update(z, eta, label)
            if bar:
                bar.update()
    return state


@torch.no_grad()
def sweep_classifier(model: nn.Module,
                     dataloader,
                     scales: Sequence[float],
                     num_classes: int,
                     progress: bool = False) -> ClsSweepState:
    """One pass of a classifier over ``dataloader`` for all ``scales``."""
    _, head = prior_correction(model, 'the scale sweep')
    state = ClsSweepState(scales, num_classes)
    bar = ProgressBar(len(dataloader.dataset)) if progress else None
    for batch in dataloader:
        data = model.data_preprocessor(batch, False)
        feats = model.extract_feat(data['inputs'])
        # The sweep is of the correction for a uniform prior.
        with scale_factor_set(head, 0.0), target_prior_set(head, 'uniform'):
            z = head(feats)
        eta = head.estimate_prior(head.pre_logits(feats))
        target = torch.cat([s.gt_label for s in data['data_samples']])
        state.update(z, eta, target)
        if bar:
            bar.update(len(target))
    return state


def best_scales(scales: Sequence[float], curves: Dict[str, list]) -> dict:
    """Per metric, the scale factor with the highest value (the first one
    on ties) and that value; metrics without a value are left out."""
    best = {}
    for name, values in curves.items():
        pairs = [(v, s) for s, v in zip(scales, values) if v is not None]
        if not pairs:
            continue
        value = max(v for v, _ in pairs)
        best[name] = dict(
            scale=next(s for v, s in pairs if v == value), value=value)
    return best


def scale_sweep(config,
                checkpoint: Optional[str],
                scales: Sequence[float],
                split: str = 'val',
                cfg_options: Optional[dict] = None,
                device: str = 'cpu',
                progress: bool = False) -> dict:
    """Metric curves of a prior-corrected model over scale factors.

    Args:
        config (str | Config): Config of the model.
        checkpoint (str, optional): Its checkpoint.
        scales (Sequence[float]): Scale factors, distinct, finite, >= 0.
        split (str): 'val' or 'test' dataloader. Defaults to 'val' (choose
            the scale factor on validation data, not on the test set).
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        device (str): Defaults to 'cpu'.
        progress (bool): Show a progress bar. Defaults to False.

    Returns:
        dict: ``task``, ``scales``, ``curves`` (metric -> list over
        scales), ``best`` (metric -> scale and value), ``per_scale`` (all
        metrics and per-class values of each scale), ``classes`` and the
        settings used.
    """
    scales = check_scales(scales)
    cfg = load_config(config, cfg_options)
    model = build_model(cfg, checkpoint, device)
    task, holder = prior_correction(model, 'the scale sweep')
    if getattr(holder, 'target_prior_mode', 'uniform') != 'uniform':
        print_log(
            'scale sweep: the curves are of the correction for a uniform '
            f'prior; the model\'s target_prior '
            f'({holder.target_prior_mode!r}) is not applied',
            logger='current',
            level=logging.WARNING)
    loader = build_dataloader(eval_dataloader_cfg(cfg, split))
    meta = loader.dataset.metainfo
    classes = list(meta['classes'])
    result = dict(
        task=task,
        config=config if isinstance(config, str) else None,
        checkpoint=checkpoint,
        split=split,
        num_samples=len(loader.dataset),
        classes=classes,
        scales=scales)
    if task == 'seg':
        from mmseg.evaluation import IoUMetric
        metric = find_metric(cfg, split, IoUMetric) or IoUMetric()
        state = sweep_segmentor(model, loader, scales, len(classes),
                                metric.ignore_index, progress)
        per_scale = state.metrics(metric.nan_to_num, metric.beta)
        names = SEG_METRICS
        result.update(ignore_index=metric.ignore_index)
    else:
        from mmnpe.cls import LongTailAccuracy
        metric = find_metric(cfg, split, LongTailAccuracy)
        counts = getattr(metric, 'class_counts', None)
        if counts is None:
            counts = meta.get('train_class_counts')
        if counts is None:
            counts = classification_train_counts(cfg)
        many = metric.many_threshold if metric else 100
        few = metric.few_threshold if metric else 20
        state = sweep_classifier(model, loader, scales, len(classes), progress)
        per_scale = state.metrics(counts, many, few)
        names = CLS_METRICS
        result.update(
            train_class_counts=list(counts),
            many_threshold=many,
            few_threshold=few)
    curves = {
        name: [m.get(name) for m in per_scale]
        for name in names if any(name in m for m in per_scale)
    }
    result.update(
        curves=curves,
        best=best_scales(scales, curves),
        per_scale=[dict(m, scale=s) for s, m in zip(scales, per_scale)])
    for name, best in result['best'].items():
        print_log(
            f'scale sweep: best {name} {best["value"]:.2f} at scale factor '
            f'{best["scale"]:g}',
            logger='current')
    return result


def plot_scale_sweep(result: dict, out_file: Optional[str] = None):
    """Metric curves over the scale factor, the best point of each marked.

    Args:
        result (dict): The output of :func:`scale_sweep`.
        out_file (str, optional): PNG to write. Defaults to None.

    Returns:
        matplotlib.figure.Figure: The figure (no pyplot state touched).
    """
    from matplotlib.figure import Figure
    scales = np.asarray(result['scales'])
    order = np.argsort(scales)
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    for name, values in result['curves'].items():
        ys = np.array([np.nan if v is None else v for v in values])
        line, = ax.plot(scales[order], ys[order], marker='o', label=name)
        best = result['best'].get(name)
        if best is not None:
            ax.plot([best['scale']], [best['value']],
                    marker='*',
                    markersize=14,
                    color=line.get_color(),
                    markeredgecolor='black')
            ax.annotate(
                f'{best["value"]:.1f} @ {best["scale"]:g}',
                (best['scale'], best['value']),
                textcoords='offset points',
                xytext=(4, 6),
                fontsize=7)
    ax.margins(x=0.08, y=0.1)
    ax.set_xlabel('scale factor (alpha / tau)')
    ax.set_ylabel('%')
    ax.set_title('one-pass scale sweep (star: best per metric)', fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    if out_file is not None:
        fig.savefig(out_file, dpi=100)
    return fig
