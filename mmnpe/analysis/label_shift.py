"""Predicting for another class prior: estimate the target prior from
unlabelled target data and evaluate the adapted predictions, one inference
pass per split.

The model runs once over a labelled validation split and once over the
target split, in eval mode; the logits it predicts from (NPE-LA / post-hoc
LA: the corrected logits at the model's scale factor, for a uniform prior;
any other classifier or segmentor: its plain logits) are cached
(:class:`LogitCache`), and everything else happens on the cache
(:func:`evaluate_label_shift`): calibration on the validation logits
(BCTS, temperature, none), the source prior, the target prior by EM and /
or BBSE, and the metrics of the predictions for the uniform, estimated and
true (oracle) target priors (docs/user_guides/label_shift.md).

The source prior ``pi_s`` is the prior the scores given to EM hold under:
after BCTS the validation labels' prior (the mean calibrated validation
posterior); after a temperature alone or no calibration the prior the
model's logits target (:func:`logits_prior`): the training prior for a
plain model, uniform for NPE-LA and post-hoc LA at full correction,
``pi_train^(1 - tau)`` for post-hoc LA at ``tau``. NPE-LA at a partial
``scale_factor`` leaves a per-sample prior there, and a stock segmentor's
training pixel prior is not known to the tool (give ``source_prior``);
those are refused without BCTS. Which one was used is logged and saved.

Segmentation estimates **one** pixel prior for the whole target split
(per-image EM drives the classes absent from an image to zero). Pixels are
cached at label resolution through the segmentor's own ``predict`` path
(whole or slide inference as ``test_cfg`` says, the logits
``tools/test.py`` takes the argmax of); ignored pixels are dropped from
every cache, so they enter neither EM, nor the source prior, nor the
oracle, nor the metrics. When the split has more than ``max_pixels``
pixels, every image contributes the same fraction of its pixels, drawn on
the device by one generator seeded with ``seed`` in data-loader order
(pixel-weighted like the oracle prior, which is still counted over every
labelled pixel). With every pixel cached the metrics are those of mmseg's
:class:`IoUMetric` on the same predictions.
"""
import copy
import logging
import math
import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from torch import Tensor

from mmnpe.functional import (adjust_to_prior, bbse_prior, check_calibration,
                              check_method, em_prior,
                              expected_calibration_error, fit_calibration,
                              identity_calibration, mean_posterior)
from mmnpe.functional.class_counts import check_class_counts
from mmnpe.functional.label_shift import (CONFUSIONS, PRIOR_FLOOR,
                                          LabelShiftConvergenceWarning,
                                          check_prior, floor_prior,
                                          load_target_prior)
from .builder import (build_dataloader, build_model,
                      classification_train_counts, eval_dataloader_cfg,
                      find_metric, load_config)
from .interface import target_prior_set
from .scale_sweep import image_areas

#: Evaluated predictions, in report order.
ROWS = ('model', 'calibrated', 'em', 'bbse', 'oracle', 'oracle_uncalibrated')
ROW_LABELS = dict(
    model='model as configured (uniform prior)',
    calibrated='calibrated (source prior)',
    em='EM estimate',
    bbse='BBSE estimate',
    oracle='true target prior',
    oracle_uncalibrated='true target prior, uncalibrated (target_prior key)')
DEFAULT_MAX_PIXELS = 1_000_000
DEFAULT_MAX_CACHE_BYTES = 8 * 2**30
SPLITS = ('val', 'test')


@dataclass
class LogitCache:
    """What a model predicts from, for every cached sample or pixel.

    Attributes:
        task (str): 'cls' or 'seg'.
        logits (Tensor): (N, C) float32.
        labels (Tensor | None): (N,) int64 (pixels may hold the ignore
            index), or None for an unlabelled split.
        num_images (int): Images the model ran on.
        label_counts (Tensor | None): Labelled samples / pixels per class
            over the whole split (before any pixel subsampling), (C,) int64.
        ignore_index (int | None): Label of pixels that are not evaluated
            (none of them is cached).
        pixels_per_image (list[int] | None): Segmentation: cached pixels of
            each image, in loader order.
    """
    task: str
    logits: Tensor
    labels: Optional[Tensor]
    num_images: int
    label_counts: Optional[Tensor] = None
    ignore_index: Optional[int] = None
    pixels_per_image: Optional[List[int]] = None

    @property
    def num_classes(self) -> int:
        return self.logits.shape[1]

    def evaluated(self) -> Tensor:
        """Mask of the cached entries with a label that is evaluated, (N,)."""
        if self.labels is None:
            return torch.zeros(len(self.logits), dtype=torch.bool)
        mask = torch.ones(len(self.labels), dtype=torch.bool)
        if self.ignore_index is not None:
            mask &= self.labels != self.ignore_index
        return mask

    def select(self, indices: Sequence[int]) -> 'LogitCache':
        """The cache of the samples ``indices`` (classification: e.g. a
        label-shifted subset, see
        :func:`mmnpe.cls.datasets.label_shift_indices`)."""
        if self.task != 'cls':
            raise ValueError('select() picks samples of a classification '
                             'cache; a segmentation cache holds pixels')
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        labels = None if self.labels is None else self.labels[idx]
        counts = None if labels is None else torch.bincount(
            labels, minlength=self.num_classes)
        return LogitCache('cls', self.logits[idx], labels, len(idx), counts)


def model_task(model: nn.Module):
    """('seg', model) or ('cls', model.head): the task and what holds the
    ``target_prior`` key (if any)."""
    if hasattr(model, 'decode_head') and hasattr(model, 'extract_feat'):
        if getattr(model, 'out_channels', 2) == 1:
            raise ValueError('label shift needs one output per class; the '
                             'decode head has out_channels == 1 (sigmoid)')
        return 'seg', model
    if hasattr(model, 'head') and hasattr(model, 'extract_feat'):
        return 'cls', model.head
    raise ValueError('label shift works on mmseg segmentors (with '
                     'decode_head) and mmpretrain classifiers (with head), '
                     f'got a {type(model).__name__}')


def _check_max_pixels(max_pixels: Optional[int]) -> None:
    if max_pixels is not None and (isinstance(max_pixels, bool)
                                   or not isinstance(max_pixels, int)
                                   or max_pixels < 1):
        raise ValueError('max_pixels must be an int >= 1 or None (every '
                         f'pixel), got {max_pixels!r}')


def logits_prior(model: nn.Module,
                 train_prior: Optional[Tensor] = None) -> tuple:
    """The prior the logits :func:`collect_logits` caches hold under (for a
    uniform ``target_prior``), as far as the model says.

    - NPE-LA (``scale_factor`` alpha = 1) and post-hoc LA at ``tau = 1``:
      uniform (the training prior removed);
    - post-hoc LA at ``tau``: ``pi_train^(1 - tau)``, normalised, from its
      counts;
    - a plain model (no correction, ``num_pems=0``, or alpha = 0): the
      training prior ``train_prior``, if given;
    - NPE-LA at 0 < alpha != 1: ``exp((1 - alpha) * eta)``, a prior per
      sample, which no single vector describes: unknown.

    Args:
        model (nn.Module): A built classifier or segmentor.
        train_prior (Tensor, optional): The training prior (images or pixels
            per class, normalised), (C,).

    Returns:
        tuple[Tensor | None, str]: The prior, float64 (C,), or None, and a
        sentence saying what it is (or why it is unknown).
    """
    _, holder = model_task(model)
    corrects = (
        hasattr(holder, 'scale_factor')
        and callable(getattr(holder, 'estimate_prior', None))
        and getattr(holder, 'num_pems', None) != 0)
    scale = float(getattr(holder, 'scale_factor', 0.0)) if corrects else 0.0
    name = type(holder).__name__
    if corrects and scale == 1:
        c = (
            model.out_channels
            if hasattr(model, 'decode_head') else holder.num_classes)
        return (torch.full((c, ), 1.0 / c, dtype=torch.float64),
                f'uniform ({name} removes the training prior at full '
                'strength)')
    if corrects and callable(getattr(holder, 'log_class_prior', None)):
        log_p = (1 - scale) * holder.log_class_prior()
        prior = torch.softmax(log_p, dim=0)
        return prior, (f'the training prior to the power 1 - tau = '
                       f'{1 - scale:g} ({name} at tau={scale:g}, from its '
                       'class_counts)')
    if corrects and scale != 0:
        return None, (f'{name} at scale_factor={scale:g} leaves a prior of '
                      f'exp({1 - scale:g} * eta) in its logits, different '
                      'for every sample, which no single source prior '
                      'describes; use --calibration bcts (its bias absorbs '
                      'most of it) or model.scale_factor=1')
    what = ('no prior correction'
            if not corrects else 'scale_factor=0 (no correction)')
    if train_prior is None:
        return None, (f'{name} has {what}, so its logits hold under the '
                      'training prior, which is not known here (pass '
                      'source_prior: the training class counts, e.g. the '
                      'JSON tools/analysis/class_counts.py writes)')
    return (torch.as_tensor(train_prior, dtype=torch.float64),
            f'the training prior ({name} has {what})')


def _train_mode_restored(model: nn.Module):
    """Put ``model`` in eval mode; return what restores every submodule's
    own mode."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()

    def restore():
        for m, training in modes:
            m.training = training

    return restore


@torch.no_grad()
def collect_logits(
        model: nn.Module,
        dataloader,
        max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
        seed: int = 0,
        ignore_index: int = 255,
        progress: bool = False,
        max_cache_bytes: float = DEFAULT_MAX_CACHE_BYTES) -> LogitCache:
    """One pass of ``model`` over ``dataloader``, caching its logits.

    The pass runs in eval mode (dropout off, batch-norm running statistics:
    in training mode two passes over the same data disagree and EM finds a
    shift that is not there); every submodule's own mode is restored
    afterwards, and so is the model's ``target_prior`` (the model predicts
    for a uniform prior during the pass).

    Segmentation caches the pixels with a label that is evaluated (ignored
    pixels are dropped; every pixel of an unlabelled split). When
    ``max_pixels`` is given, every image contributes the same **fraction**
    ``f`` of its pixels, ``f = max_pixels / (N * P)`` (N images, P the
    first image's pixels; at most 1), drawn on the model's device before
    the copy to the CPU by one generator seeded with ``seed`` in loader
    order (the number per image rounded at random, so it is unbiased):
    the sample is weighted by pixel, as the oracle prior and the metrics
    are, not by image.

    Args:
        model (nn.Module): A built classifier or segmentor.
        dataloader: The split's data loader (deterministic order).
        max_pixels (int, optional): Segmentation: cache about this many
            pixels of the split. None caches every pixel. Defaults to
            1 000 000.
        seed (int): Seed of the pixel sample. Defaults to 0.
        ignore_index (int): Segmentation label that is not evaluated.
            Defaults to 255.
        progress (bool): Show a progress bar. Defaults to False.
        max_cache_bytes (float): Segmentation with ``max_pixels=None``:
            refuse (after the first image, which gives the size) a cache
            larger than this. Defaults to 8 GiB.

    Returns:
        LogitCache: The cached logits and labels.

    Raises:
        ValueError: Every pixel of the split would not fit in
            ``max_cache_bytes``.
    """
    _check_max_pixels(max_pixels)
    task, holder = model_task(model)
    bar = ProgressBar(len(dataloader.dataset)) if progress else None
    logits: List[Tensor] = []
    labels: List[Tensor] = []
    per_image: List[int] = []
    labelled = True
    num_images = 0
    counts = None
    fraction = None
    gen = torch.Generator().manual_seed(seed)
    restore = _train_mode_restored(model)
    try:
        with target_prior_set(holder, 'uniform'):
            for batch in dataloader:
                data = model.data_preprocessor(batch, False)
                samples = data['data_samples']
                if task == 'cls':
                    z = model.head(model.extract_feat(data['inputs']))
                    logits.append(z.float().cpu())
                    if labelled and all('gt_label' in s for s in samples):
                        labels.append(torch.cat([s.gt_label for s in samples]))
                    else:
                        labelled = False
                    num_images += len(samples)
                else:
                    for out in model.predict(data['inputs'], samples):
                        z = out.seg_logits.data.flatten(1)
                        c = z.shape[0]
                        if fraction is None:
                            fraction = _pixel_fraction(max_pixels,
                                                       len(dataloader.dataset),
                                                       z.shape[1], c,
                                                       max_cache_bytes)
                        label = (
                            out.gt_sem_seg.data.flatten().long().to(z.device)
                            if 'gt_sem_seg' in out else None)
                        if label is None:
                            labelled = False
                            keep = torch.arange(z.shape[1], device=z.device)
                        else:
                            keep = (label != ignore_index).nonzero().flatten()
                            valid = label[keep]
                            valid = valid[(valid >= 0) & (valid < c)]
                            n = torch.bincount(valid, minlength=c).cpu()
                            counts = n if counts is None else counts + n
                        if fraction < 1:
                            k = math.floor(fraction * len(keep) +
                                           float(torch.rand(1, generator=gen)))
                            pick = torch.randperm(
                                len(keep), generator=gen)[:k].sort().values
                            keep = keep[pick.to(keep.device)]
                        logits.append(z[:, keep].t().float().cpu())
                        if label is not None:
                            labels.append(label[keep].cpu())
                        per_image.append(len(keep))
                        num_images += 1
                if bar:
                    bar.update(len(samples))
    finally:
        restore()
    if not logits:
        raise ValueError('the data loader gave no samples')
    all_logits = torch.cat(logits)
    all_labels = torch.cat(labels).long() if labelled and labels else None
    if task == 'cls':
        counts = (None if all_labels is None else torch.bincount(
            all_labels, minlength=all_logits.shape[1]))
        return LogitCache('cls', all_logits, all_labels, num_images, counts)
    return LogitCache('seg', all_logits, all_labels, num_images,
                      counts if labelled else None, ignore_index, per_image)


def _pixel_fraction(max_pixels: Optional[int], num_images: int, pixels: int,
                    num_classes: int, max_cache_bytes: float) -> float:
    """The fraction of every image's pixels to cache, from the first
    image's size; refuses an every-pixel cache above ``max_cache_bytes``."""
    total = num_images * pixels
    if max_pixels is not None:
        return min(1.0, max_pixels / max(total, 1))
    size = total * (4 * num_classes + 8)
    msg = (f'caching every pixel of the split takes about {size / 2**30:.3g}'
           f' GiB ({num_images} images x {pixels} pixels x {num_classes} '
           'classes, float32 logits and int64 labels)')
    if size > max_cache_bytes:
        raise ValueError(
            f'{msg}, more than max_cache_bytes={max_cache_bytes / 2**30:.3g} '
            'GiB; cache a sample instead (max_pixels, e.g. 1000000: '
            '--max-pixels on tools/analysis/label_shift.py) or raise '
            'max_cache_bytes')
    print_log(f'label shift: {msg}', logger='current')
    return 1.0


# Evaluation on the cache ----------------------------------------------------


def _cls_row(logits: Tensor, labels: Tensor, train_counts, many: float,
             few: float) -> dict:
    from mmnpe.cls import LongTailAccuracy
    c = logits.shape[1]
    probs = F.softmax(logits.double(), dim=1)
    pred = probs.argmax(dim=1)
    total = torch.bincount(labels, minlength=c)
    correct = torch.bincount(labels[pred == labels], minlength=c)
    counts = train_counts if train_counts is not None else [0] * c
    res = LongTailAccuracy.summarize(correct.numpy(), total.numpy(), counts,
                                     many, few)
    if train_counts is None:
        # Without training counts there are no frequency groups.
        for key in ('many', 'medium', 'few'):
            res.pop(key, None)
    res['per_class'] = [None if math.isnan(v) else v for v in res['per_class']]
    res['ece'] = 100 * expected_calibration_error(probs, labels)
    return res


def _seg_row(logits: Tensor, labels: Tensor, nan_to_num, beta: int) -> dict:
    from mmseg.evaluation import IoUMetric
    c = logits.shape[1]
    pred = logits.argmax(dim=1)
    # Row C: labels outside [0, C) that are not ignored, as IoUMetric counts
    # their predictions in the predicted area.
    rows = torch.where((labels >= 0) & (labels < c), labels,
                       torch.full_like(labels, c))
    confusion = torch.bincount(
        rows * c + pred, minlength=(c + 1) * c).view(1, c + 1, c)
    areas = image_areas(confusion)[0]
    ret = IoUMetric.total_area_to_metrics(areas[0], areas[1], areas[2],
                                          areas[3], ['mIoU'], nan_to_num, beta)
    out = {
        ('aAcc' if k == 'aAcc' else 'm' + k):
        float(np.round(np.nanmean(v) * 100, 2))
        for k, v in ret.items()
    }
    out['per_class'] = {
        k: [
            None if np.isnan(x) else float(np.round(x * 100, 2))
            for x in np.asarray(v)
        ]
        for k, v in ret.items() if k != 'aAcc'
    }
    inside = rows < c
    out['ece'] = 100 * expected_calibration_error(
        F.softmax(logits[inside].double(), dim=1), labels[inside])
    return out


def evaluate_label_shift(target: LogitCache,
                         val: Optional[LogitCache] = None,
                         methods: Sequence[str] = ('em', 'bbse'),
                         calibration: str = 'bcts',
                         train_counts: Optional[Sequence[int]] = None,
                         many_threshold: float = 100,
                         few_threshold: float = 20,
                         nan_to_num: Optional[int] = None,
                         beta: int = 1,
                         tol: float = 1e-6,
                         max_iter: int = 1000,
                         max_condition: float = 1e6,
                         logits_prior: Optional[Tensor] = None,
                         logits_prior_note: Optional[str] = None,
                         confusion: str = 'hard') -> dict:
    """Estimate the target prior and evaluate the adapted predictions.

    The source prior ``pi_s`` EM and the adaptation use is the prior the
    scores hold under: after ``'bcts'`` the mean calibrated validation
    posterior (BCTS's bias is fitted on the validation labels, so it is
    their prior); after ``'temperature'`` or ``'none'`` the prior the
    cached logits target, ``logits_prior`` (:func:`logits_prior`: the
    training prior for a plain model, uniform for NPE-LA / post-hoc LA at
    full correction); without it they are refused. The result says which
    (``source_prior_kind``) and the log repeats it.

    Rows (:data:`ROWS`): ``model`` (the cached logits as they are: what
    ``tools/test.py`` predicts), ``calibrated`` (for the source prior),
    ``em`` / ``bbse`` (calibrated, adjusted to the estimate: ``z_cal + log
    pi_hat - log pi_s``), ``oracle`` (the same with the true target prior)
    and ``oracle_uncalibrated`` (the logits plus ``log pi_t - log
    logits_prior``: what the models' ``target_prior`` key predicts with the
    true prior; only with ``logits_prior``). Metrics need target labels;
    the estimates do not.

    Args:
        target (LogitCache): The target split.
        val (LogitCache, optional): The labelled validation split; needed
            by calibration other than 'none' and by BBSE.
        methods (Sequence[str]): Among 'em', 'bbse'. Defaults to both.
        calibration (str): 'bcts', 'temperature' or 'none'. Defaults to
            'bcts'.
        train_counts (Sequence[int], optional): Classification: training
            images per class, for the Many / Medium / Few groups.
        many_threshold (float): Defaults to 100.
        few_threshold (float): Defaults to 20.
        nan_to_num (int, optional): Segmentation: as :class:`IoUMetric`.
        beta (int): Segmentation: as :class:`IoUMetric`. Defaults to 1.
        tol (float): EM tolerance (estimated L1 distance to the fixed
            point). Defaults to 1e-6.
        max_iter (int): EM iteration limit. Defaults to 1000.
        max_condition (float): BBSE's largest condition number solved
            directly (least squares on the simplex above). Defaults to 1e6.
        logits_prior (Tensor, optional): The prior the cached logits hold
            under, (C,); needed by 'temperature' and 'none'.
        logits_prior_note (str, optional): What ``logits_prior`` is, or why
            it is unknown, for the log and the errors.
        confusion (str): BBSE's confusion matrix, 'hard' or 'soft'
            (calibrated probabilities). Defaults to 'hard'.

    Returns:
        dict: ``calibration`` (the fitted map, validation NLL and ECE
        before / after, ``converged``), ``source_prior`` and
        ``source_prior_kind``, ``oracle_prior``, ``estimates`` (per method
        the prior, its L1 error to the oracle and diagnostics, or the error
        that stopped it), ``rows`` (metrics per row) and ``row_order``.
    """
    methods = list(methods)
    if not methods:
        raise ValueError("methods must name at least one of 'em', 'bbse'")
    for m in methods:
        check_method(m)
    check_calibration(calibration)
    if confusion not in CONFUSIONS:
        raise ValueError(f'confusion must be one of {CONFUSIONS}, got '
                         f'{confusion!r}')
    c = target.num_classes
    if val is not None and val.num_classes != c:
        raise ValueError(f'the validation split has {val.num_classes} '
                         f'classes, the target split {c}')
    if val is not None and val.labels is None:
        raise ValueError('the validation split must be labelled (it '
                         'calibrates and, for BBSE, gives the confusion '
                         'matrix)')
    if val is None and (calibration != 'none' or 'bbse' in methods):
        raise ValueError(
            f"calibration={calibration!r} and method 'bbse' need a labelled "
            "validation split; without one use calibration='none' and "
            "methods=['em']")
    if logits_prior is not None:
        logits_prior = check_prior(logits_prior, c, 'logits_prior')
    if calibration != 'bcts' and logits_prior is None:
        why = f': {logits_prior_note}' if logits_prior_note else ''
        raise ValueError(
            f'calibration={calibration!r} keeps the prior the logits hold '
            'under as the source prior EM and the adaptation need, but it '
            f'is not known{why}. Use calibration=\'bcts\' (its scores hold '
            "under the validation labels' prior) or give logits_prior")
    if val is not None:
        keep = val.evaluated()
        val_z, val_y = val.logits[keep], val.labels[keep]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always', LabelShiftConvergenceWarning)
            cal = fit_calibration(val_z, val_y, calibration)
        _log_warnings(caught)
        cal_info = dict(
            cal.as_dict(),
            ece_val_before=100 * expected_calibration_error(
                F.softmax(val_z.double(), dim=1), val_y),
            ece_val_after=100 * expected_calibration_error(
                F.softmax(cal(val_z).double(), dim=1), val_y))
    else:
        cal = identity_calibration(c)
        cal_info = cal.as_dict()
    if calibration == 'bcts':
        source = mean_posterior(cal(val_z))
        kind = ('the mean BCTS-calibrated validation posterior (the '
                "validation labels' prior)")
    else:
        source = logits_prior
        kind = logits_prior_note or 'the prior the logits hold under'
    print_log(
        f'label shift: source prior pi_s = {kind}: '
        f'[{", ".join(f"{p:.3g}" for p in source.tolist()[:10])}'
        f'{", ..." if c > 10 else ""}]',
        logger='current')
    oracle = None
    if target.label_counts is not None and target.label_counts.sum() > 0:
        counts = target.label_counts.double()
        oracle = counts / counts.sum()

    target_cal = cal(target.logits)
    estimates: Dict[str, dict] = {}
    priors: Dict[str, Tensor] = {}
    for m in methods:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                if m == 'em':
                    prior, info = em_prior(target_cal, source, tol, max_iter)
                elif confusion == 'soft':
                    prior, info = bbse_prior(
                        F.softmax(cal(val_z).double(), dim=1), val_y,
                        F.softmax(target_cal.double(), dim=1), c,
                        max_condition)
                else:
                    prior, info = bbse_prior(
                        val_z.argmax(dim=1), val_y,
                        target.logits.argmax(dim=1), c, max_condition)
            _log_warnings(caught)
        except ValueError as e:
            print_log(
                f'label shift: {m} gave no estimate: {e}',
                logger='current',
                level=logging.WARNING)
            estimates[m] = dict(error=str(e))
            continue
        priors[m] = prior
        info.pop('loglik_path', None)
        entry = dict(prior=prior.tolist(), **info)
        if oracle is not None:
            entry['l1'] = float((prior - oracle).abs().sum())
        estimates[m] = entry

    result = dict(
        calibration=cal_info,
        source_prior=source.tolist(),
        source_prior_kind=kind,
        logits_prior=None if logits_prior is None else logits_prior.tolist(),
        oracle_prior=None if oracle is None else oracle.tolist(),
        estimates=estimates,
        num_val=None if val is None else int(val.evaluated().sum()),
        num_target=len(target.logits))
    keep = target.evaluated()
    if not keep.any():
        result.update(rows={}, row_order=[])
        return result
    z, y = target.logits[keep], target.labels[keep]
    z_cal = target_cal[keep]
    logits = dict(model=z, calibrated=z_cal)
    for m, prior in priors.items():
        logits[m] = adjust_to_prior(z_cal, prior, source)
    if oracle is not None:
        logits['oracle'] = adjust_to_prior(z_cal, oracle, source)
        if logits_prior is not None:
            logits['oracle_uncalibrated'] = adjust_to_prior(
                z, oracle, logits_prior)
    rows = {}
    for name in ROWS:
        if name not in logits:
            continue
        if target.task == 'cls':
            rows[name] = _cls_row(logits[name], y, train_counts,
                                  many_threshold, few_threshold)
        else:
            rows[name] = _seg_row(logits[name], y, nan_to_num, beta)
    result.update(rows=rows, row_order=list(rows))
    return result


def _log_warnings(caught) -> None:
    for w in caught:
        print_log(str(w.message), logger='current', level=logging.WARNING)


# The whole analysis from a config -------------------------------------------


def shifted_loader_cfg(loader_cfg: dict,
                       rho: float,
                       direction: str = 'forward',
                       seed: int = 0) -> dict:
    """``loader_cfg`` with its dataset wrapped in
    :class:`LabelShiftDataset` (classification)."""
    loader_cfg = copy.deepcopy(dict(loader_cfg))
    loader_cfg['dataset'] = dict(
        type='LabelShiftDataset',
        dataset=loader_cfg['dataset'],
        rho=rho,
        direction=direction,
        seed=seed)
    return loader_cfg


def label_shift(config,
                checkpoint: Optional[str],
                val_split: Optional[str] = 'val',
                target_split: str = 'test',
                methods: Sequence[str] = ('em', 'bbse'),
                calibration: str = 'bcts',
                shift: Optional[dict] = None,
                max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
                seed: int = 0,
                cfg_options: Optional[dict] = None,
                device: str = 'cpu',
                progress: bool = False,
                source_prior=None,
                confusion: str = 'hard',
                max_cache_bytes: float = DEFAULT_MAX_CACHE_BYTES) -> dict:
    """Label-shift analysis of a trained model from its config.

    The prior the model's logits hold under (:func:`logits_prior`) comes
    from the model and the training counts: classification counts the
    training set's images per class; segmentation knows it for NPE-LA and
    post-hoc LA only (a stock segmentor: give ``source_prior``, its training
    pixel counts). It is EM's source prior after ``calibration='none'`` or
    ``'temperature'`` (with ``val_split=None`` there is no calibration);
    after ``'bcts'`` the validation labels' prior is.

    Args:
        config (str | Config): Config of the model.
        checkpoint (str, optional): Its checkpoint.
        val_split (str, optional): Labelled split that calibrates ('val' or
            'test' dataloader), or None. Defaults to 'val'.
        target_split (str): Split whose prior is estimated. Defaults to
            'test'.
        methods (Sequence[str]): Among 'em', 'bbse'. Defaults to both.
        calibration (str): 'bcts', 'temperature' or 'none'. Defaults to
            'bcts'.
        shift (dict, optional): Classification: wrap the target split in
            :class:`LabelShiftDataset` with these arguments (``rho``,
            ``direction``, ``seed``). Defaults to None.
        max_pixels (int, optional): Segmentation: pixels cached per split
            (see the module docstring); None for all. Defaults to 1 000 000.
        seed (int): Seed of the pixel sample. Defaults to 0.
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        device (str): Defaults to 'cpu'.
        progress (bool): Show progress bars. Defaults to False.
        source_prior (str | Sequence[float], optional): The prior the
            logits hold under, overriding :func:`logits_prior`: C counts or
            probabilities, or a JSON file of them (a ``"counts"`` object as
            ``tools/analysis/class_counts.py`` writes it, or ``"prior"``).
            Refused with ``calibration='bcts'``. Defaults to None.
        confusion (str): BBSE's confusion matrix, 'hard' or 'soft'.
            Defaults to 'hard'.
        max_cache_bytes (float): Refuse an every-pixel segmentation cache
            larger than this (:func:`collect_logits`). Defaults to 8 GiB.

    Returns:
        dict: :func:`evaluate_label_shift`'s result with ``task``,
        ``classes`` and the settings used.
    """
    for name, split in (('val_split', val_split), ('target_split',
                                                   target_split)):
        if split is not None and split not in SPLITS:
            raise ValueError(f'{name} must be one of {SPLITS}'
                             f'{" or None" if name == "val_split" else ""}, '
                             f'got {split!r}')
    methods = [check_method(m) for m in methods]
    check_calibration(calibration)
    _check_max_pixels(max_pixels)
    if val_split is None and (calibration != 'none' or 'bbse' in methods):
        raise ValueError(
            'without a validation split (val_split=None) there is nothing '
            f"to calibrate on or to build BBSE's confusion matrix from: use "
            "calibration='none' and methods=['em'], got calibration="
            f'{calibration!r} and methods={methods}')
    if source_prior is not None and calibration == 'bcts':
        raise ValueError(
            "source_prior is the prior the model's logits hold under, used "
            "with calibration='none' or 'temperature'; after 'bcts' the "
            "scores hold under the validation labels' prior, which is used "
            f'(got source_prior={source_prior!r})')
    cfg = load_config(config, cfg_options)
    model = build_model(cfg, checkpoint, device)
    task, _ = model_task(model)
    target_cfg = eval_dataloader_cfg(cfg, target_split)
    val_cfg = None if val_split is None else eval_dataloader_cfg(
        cfg, val_split)
    if val_cfg is not None and val_cfg['dataset'] == target_cfg['dataset']:
        print_log(
            f'label shift: the {val_split} and {target_split} splits are the '
            'same data, so the labelled validation samples are also target '
            'samples; point one of them elsewhere (e.g. --cfg-options '
            f'{val_split}_dataloader.dataset...) for an honest estimate',
            logger='current',
            level=logging.WARNING)
    if shift is not None:
        if task != 'cls':
            raise ValueError('shift (LabelShiftDataset) subsamples images '
                             'and is for classification; a segmentation '
                             'target split keeps its own pixel prior')
        target_cfg = shifted_loader_cfg(target_cfg, **shift)
    ignore_index, nan_to_num, beta = 255, None, 1
    if task == 'seg':
        from mmseg.evaluation import IoUMetric
        metric = find_metric(cfg, target_split, IoUMetric) or IoUMetric()
        ignore_index, nan_to_num, beta = (metric.ignore_index,
                                          metric.nan_to_num, metric.beta)
    target_loader = build_dataloader(target_cfg)
    meta = target_loader.dataset.metainfo
    classes = list(meta['classes'])
    extra = {}
    train_counts = many = few = None
    if task == 'cls':
        from mmnpe.cls import LongTailAccuracy
        metric = find_metric(cfg, target_split, LongTailAccuracy)
        train_counts = getattr(metric, 'class_counts', None)
        if train_counts is None:
            train_counts = meta.get('train_class_counts')
        if train_counts is None:
            train_counts = classification_train_counts(cfg)
        many = metric.many_threshold if metric else 100
        few = metric.few_threshold if metric else 20
        extra = dict(
            train_class_counts=list(train_counts),
            many_threshold=many,
            few_threshold=few)
    c = len(classes)
    if source_prior is not None:
        if isinstance(source_prior, str):
            mode, prior = load_target_prior(source_prior, c, 'source_prior')
            if mode != 'given':
                raise ValueError('source_prior must be C counts or '
                                 'probabilities or a JSON file of them, got '
                                 f'{source_prior!r}')
        else:
            prior = check_class_counts(source_prior, c, name='source_prior')
            prior = prior / prior.sum()
        prior_note = 'given as source_prior'
    else:
        train_prior = None
        if train_counts is not None:
            counts = check_class_counts(
                train_counts, c, name='training class counts')
            train_prior = counts / counts.sum()
        prior, prior_note = logits_prior(model, train_prior)
    if calibration != 'bcts' and prior is None:
        # Refused before the inference passes.
        raise ValueError(
            f'calibration={calibration!r} keeps the prior the logits hold '
            f'under as EM\'s source prior, but it is not known: {prior_note}')
    print_log(
        f'label shift: the logits hold under {prior_note}', logger='current')
    val_cache = None
    if val_cfg is not None:
        val_cache = collect_logits(model, build_dataloader(val_cfg),
                                   max_pixels, seed, ignore_index, progress,
                                   max_cache_bytes)
    target_cache = collect_logits(model, target_loader, max_pixels, seed,
                                  ignore_index, progress, max_cache_bytes)
    result = evaluate_label_shift(
        target_cache,
        val_cache,
        methods,
        calibration,
        train_counts=train_counts,
        many_threshold=many if many is not None else 100,
        few_threshold=few if few is not None else 20,
        nan_to_num=nan_to_num,
        beta=beta,
        logits_prior=prior,
        logits_prior_note=prior_note,
        confusion=confusion)
    result.update(
        task=task,
        config=config if isinstance(config, str) else None,
        checkpoint=checkpoint,
        val_split=val_split,
        target_split=target_split,
        methods=methods,
        calibration_method=calibration,
        shift=shift,
        max_pixels=max_pixels if task == 'seg' else None,
        confusion=confusion,
        seed=seed,
        classes=classes,
        target_images=target_cache.num_images,
        **extra)
    if task == 'seg':
        result['ignore_index'] = ignore_index
    for m, est in result['estimates'].items():
        if 'l1' in est:
            print_log(
                f'label shift: {m} estimate, L1 error to the target '
                f'labels\' prior {est["l1"]:.4f}',
                logger='current')
    return result


def target_prior_record(result: dict, method: str) -> dict:
    """The JSON a model's ``target_prior`` key reads: ``{"kind": "prior",
    "method", "classes", "floor", "prior"}`` of one method's estimate, each
    entry at least ``PRIOR_FLOOR / C`` (:func:`floor_prior`: EM drives an
    absent class towards 0, whose log would make it impossible)."""
    est = result['estimates'].get(method)
    if est is None or 'prior' not in est:
        why = '' if est is None else f': {est.get("error")}'
        raise ValueError(f'no {method} estimate in the result{why}')
    prior = floor_prior(torch.tensor(est['prior'], dtype=torch.float64))
    return dict(
        kind='prior',
        method=method,
        calibration=result.get('calibration_method'),
        classes=result.get('classes'),
        floor=PRIOR_FLOOR,
        prior=prior.tolist())


def plot_label_shift(result: dict, out_file: Optional[str] = None):
    """True vs estimated target prior (left) and the metrics of every row
    (right).

    Args:
        result (dict): The output of :func:`label_shift`.
        out_file (str, optional): PNG to write. Defaults to None.

    Returns:
        matplotlib.figure.Figure: The figure (no pyplot state touched).
    """
    from matplotlib.figure import Figure
    classes = result.get('classes') or [
        str(i) for i in range(len(result['source_prior']))
    ]
    fig = Figure(figsize=(11, 4.2))
    ax, bx = fig.subplots(1, 2)
    series = [('source', result['source_prior'])]
    if result.get('oracle_prior') is not None:
        series.append(('true target', result['oracle_prior']))
    series += [(m, est['prior']) for m, est in result['estimates'].items()
               if 'prior' in est]
    x = np.arange(len(classes))
    width = 0.8 / len(series)
    for k, (name, prior) in enumerate(series):
        ax.bar(
            x + (k - (len(series) - 1) / 2) * width, prior, width, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels(
        classes, rotation=90 if len(classes) > 12 else 0, fontsize=7)
    ax.set_ylabel('class prior')
    ax.set_title('target prior: true vs estimated', fontsize=9)
    ax.legend(fontsize=8)
    rows = result.get('row_order', [])
    names = (['top1', 'balanced']
             if result.get('task') == 'cls' else ['aAcc', 'mIoU', 'mAcc'])
    if rows:
        y = np.arange(len(rows))
        height = 0.8 / len(names)
        for k, name in enumerate(names):
            values = [result['rows'][r].get(name, np.nan) for r in rows]
            bx.barh(
                y + (k - (len(names) - 1) / 2) * height,
                values,
                height,
                label=name)
        bx.set_yticks(y)
        bx.set_yticklabels([ROW_LABELS[r] for r in rows], fontsize=7)
        bx.invert_yaxis()
        bx.set_xlabel('%')
        bx.legend(fontsize=8)
    bx.set_title('metrics on the target split', fontsize=9)
    fig.tight_layout()
    if out_file is not None:
        fig.savefig(out_file, dpi=100)
    return fig
