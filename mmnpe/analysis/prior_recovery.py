"""Does the learned estimate follow the class prior? (NPE paper, Sec. 3)

The trained model runs over its *training* split (read with the test
pipeline, so without random augmentation); the estimate ``eta`` is averaged
per class over the samples of that class (classification) or the pixels
labelled with it (segmentation: ``eta`` is upsampled to the label's
resolution exactly as the logits are for prediction, and every labelled
pixel counts once, so classes are weighted by their pixels), and the
averages are compared with the log class frequency.
"""
import math
from typing import List, Optional

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from torch import Tensor

from .builder import (build_dataloader, build_model, build_train_set,
                      check_num_samples, classification_train_counts,
                      load_config, sample_subset)
from .interface import prior_correction
from .seg_maps import final_decode_head, seg_batch
from .stats import prior_recovery_stats


class ClassEstimateAccumulator:
    """Running per-class sums of the estimate.

    Args:
        num_classes (int): C.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.sum_true = torch.zeros(num_classes, dtype=torch.float64)
        self.sum_all = torch.zeros(num_classes, dtype=torch.float64)
        self.count = torch.zeros(num_classes, dtype=torch.int64)
        self.total = 0

    def update(self, eta: Tensor, label: Tensor) -> None:
        """Add samples (or pixels): estimates (M, C), true labels (M,) in
        [0, C)."""
        c = self.num_classes
        if eta.dim() != 2 or eta.shape[1] != c or label.shape != eta.shape[:1]:
            raise ValueError(f'eta must be (M, {c}) and label (M,), got '
                             f'{tuple(eta.shape)} and {tuple(label.shape)}')
        eta = eta.detach().double().cpu()
        label = label.long().cpu()
        own = eta.gather(1, label.view(-1, 1)).view(-1)
        self.sum_true += torch.bincount(label, weights=own, minlength=c)
        self.sum_all += eta.sum(dim=0)
        self.count += torch.bincount(label, minlength=c)
        self.total += len(label)

    def estimate(self) -> np.ndarray:
        """Mean of ``eta[c]`` over the samples of class c, (C,); NaN for a
        class without samples."""
        est = np.full(self.num_classes, np.nan)
        seen = self.count.numpy() > 0
        est[seen] = (self.sum_true.numpy()[seen] / self.count.numpy()[seen])
        return est

    def estimate_all(self) -> np.ndarray:
        """Mean of ``eta`` over all samples, (C,)."""
        return self.sum_all.numpy() / max(self.total, 1)


@torch.no_grad()
def collect_estimates(model: nn.Module,
                      dataloader,
                      num_classes: int,
                      ignore_index: int = 255,
                      progress: bool = False) -> ClassEstimateAccumulator:
    """Run the model over ``dataloader`` and accumulate its estimate per
    true class (per labelled pixel for a segmentor)."""
    task, head = prior_correction(model, 'prior_recovery')
    acc = ClassEstimateAccumulator(num_classes)
    bar = ProgressBar(len(dataloader.dataset)) if progress else None
    for batch in dataloader:
        if task == 'seg':
            maps, labels = seg_batch(model, batch)
            for (_, eta), label in zip(maps, labels):
                label = label.to(eta.device)
                valid = ((label != ignore_index) & (label >= 0) &
                         (label < num_classes))
                acc.update(eta[:, valid].t(), label[valid])
            done = len(labels)
        else:
            data = model.data_preprocessor(batch, False)
            feats = model.extract_feat(data['inputs'])
            target = torch.cat([s.gt_label for s in data['data_samples']])
            eta = head.estimate_prior(head.pre_logits(feats))
            acc.update(eta.expand(len(target), num_classes), target)
            done = len(target)
        if bar:
            bar.update(done)
    return acc


def _floats(values) -> List[Optional[float]]:
    return [
        None if v is None or not math.isfinite(v) else float(v) for v in values
    ]


def prior_recovery(config,
                   checkpoint: Optional[str],
                   num_samples: Optional[int] = None,
                   seed: int = 0,
                   cfg_options: Optional[dict] = None,
                   device: str = 'cpu',
                   progress: bool = False) -> dict:
    """Compare the per-class mean estimate with the log class frequency.

    Classification: ``log_freq`` from the training images per class (its
    labels counted, as ``tools/analysis/class_counts.py`` does), whatever
    ``num_samples``. Segmentation: from the labelled pixels of the images
    processed (all training images unless ``num_samples`` is given, then a
    sample estimate).

    Args:
        config (str | Config): Config of the trained model.
        checkpoint (str, optional): Its checkpoint.
        num_samples (int, optional): Use a seeded random subset of this many
            training samples. Defaults to None (all).
        seed (int): Seed of the subset. Defaults to 0.
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        device (str): Defaults to 'cpu'.
        progress (bool): Show a progress bar. Defaults to False.

    Returns:
        dict: ``task``, ``classes``, ``train_counts`` (images or pixels),
        ``log_freq``, ``estimate`` (per-class mean over the class's own
        samples, the coordinate the one-way loss trains), ``estimate_all``
        (mean over all samples), ``samples_per_class``, ``stats``
        (Pearson, Spearman, slope, intercept over the classes present) and
        the settings used.
    """
    check_num_samples(num_samples)
    cfg = load_config(config, cfg_options)
    model = build_model(cfg, checkpoint, device)
    task, holder = prior_correction(model, 'prior_recovery')
    dataset = build_train_set(cfg)
    subset, used = sample_subset(dataset, num_samples, seed)
    loader_cfg = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    loader = build_dataloader(loader_cfg, dataset=subset)
    classes = list(dataset.metainfo['classes'])
    num_classes = len(classes)
    ignore_index = (
        final_decode_head(model).ignore_index if task == 'seg' else 255)
    acc = collect_estimates(model, loader, num_classes, ignore_index, progress)

    if task == 'cls':
        counts = np.asarray(classification_train_counts(cfg), dtype=np.int64)
        kind, source = 'images', 'training set'
    else:
        counts = acc.count.numpy()
        kind = 'pixels'
        source = ('all training images' if used == len(dataset) else
                  f'{used} sampled training images')
    if len(counts) != num_classes:
        raise ValueError(f'training counts have {len(counts)} entries, the '
                         f'dataset has {num_classes} classes')
    estimate = acc.estimate()
    present = (counts > 0) & np.isfinite(estimate)
    absent = [classes[c] for c in np.where(~present)[0]]
    if absent:
        print_log(
            f'prior recovery: left out classes without training samples '
            f'among those processed: {absent}',
            logger='current')
    log_freq = np.full(num_classes, np.nan)
    log_freq[counts > 0] = np.log(counts[counts > 0] / counts.sum())
    stats = prior_recovery_stats(estimate[present], log_freq[present])
    print_log(
        'prior recovery: pearson {pearson:.3f}, spearman {spearman:.3f}, '
        'slope {slope:.3f}, intercept {intercept:.3f} over {num_classes} '
        'classes'.format(**stats),
        logger='current')
    return dict(
        task=task,
        config=config if isinstance(config, str) else None,
        checkpoint=checkpoint,
        scale_factor=float(holder.scale_factor),
        num_samples=used,
        classes=classes,
        train_counts=counts.tolist(),
        count_kind=kind,
        count_source=source,
        log_freq=_floats(log_freq),
        estimate=_floats(estimate),
        estimate_all=_floats(acc.estimate_all()),
        samples_per_class=acc.count.tolist(),
        absent_classes=absent,
        stats=stats)


def plot_prior_recovery(result: dict,
                        out_file: Optional[str] = None,
                        max_labels: int = 60):
    """Scatter of the per-class estimate against the log class frequency,
    with the identity-slope line through the centroid and the fit.

    Args:
        result (dict): The output of :func:`prior_recovery`.
        out_file (str, optional): PNG to write. Defaults to None.
        max_labels (int): Label the points with class names when there are
            at most this many classes. Defaults to 60.

    Returns:
        matplotlib.figure.Figure: The figure (no pyplot state touched).
    """
    from matplotlib.figure import Figure
    pts = [(x, y, name) for x, y, name in zip(
        result['log_freq'], result['estimate'], result['classes'])
           if x is not None and y is not None]
    x = np.array([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    stats = result['stats']
    fig = Figure(figsize=(5.6, 4.8))
    ax = fig.subplots()
    ax.scatter(x, y, s=18, zorder=3)
    xs = np.array([x.min(), x.max()])
    ax.plot(
        xs,
        xs - x.mean() + y.mean(),
        color='grey',
        linestyle='--',
        label='slope 1 (perfect log-prior)')
    ax.plot(
        xs,
        stats['slope'] * xs + stats['intercept'],
        color='tab:red',
        label=f'least squares, slope {stats["slope"]:.2f}')
    if len(pts) <= max_labels:
        for xi, yi, name in pts:
            ax.annotate(
                str(name), (xi, yi),
                textcoords='offset points',
                xytext=(3, 3),
                fontsize=7)
    ax.set_xlabel(f'log class frequency ({result["count_kind"]})')
    ax.set_ylabel('mean NPE estimate of the true class')
    ax.set_title(
        f'prior recovery: Pearson {stats["pearson"]:.3f}, Spearman '
        f'{stats["spearman"]:.3f}',
        fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    if out_file is not None:
        fig.savefig(out_file, dpi=100)
    return fig
