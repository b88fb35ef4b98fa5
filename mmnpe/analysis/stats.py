"""How well an estimate follows the log class frequency (pure numpy)."""
from typing import Dict, Sequence

import numpy as np


def rankdata(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties given the mean of the ranks they span."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind='mergesort')
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        stop = start + 1
        while stop < len(
                values) and sorted_values[stop] == sorted_values[start]:
            stop += 1
        ranks[order[start:stop]] = (start + stop + 1) / 2
        start = stop
    return ranks


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    dx, dy = x - x.mean(), y - y.mean()
    denom = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float((dx * dy).sum() / denom) if denom > 0 else float('nan')


def prior_recovery_stats(estimate: Sequence[float],
                         log_freq: Sequence[float]) -> Dict[str, float]:
    """Compare a per-class estimate with the log class frequency.

    A perfect estimate of the log-prior (up to the constant that centring
    removes) has slope 1 and correlation 1.

    Args:
        estimate (Sequence[float]): Estimate per class, (C,).
        log_freq (Sequence[float]): log(n_c / n) per class, (C,).

    Returns:
        dict: ``pearson``, ``spearman`` (NaN when the estimate is constant),
        least-squares ``slope`` and ``intercept`` of ``estimate ~ slope *
        log_freq + intercept``, and ``num_classes``.
    """
    y = np.asarray(estimate, dtype=np.float64)
    x = np.asarray(log_freq, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError('estimate and log_freq must be (C,) arrays of one '
                         f'shape, got {y.shape} and {x.shape}')
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError('estimate and log_freq must be finite (leave out '
                         'classes without samples), got '
                         f'estimate={y.tolist()} and log_freq={x.tolist()}')
    if len(x) < 2 or np.all(x == x[0]):
        raise ValueError('log_freq must hold at least two different values '
                         f'for a slope, got {x.tolist()}')
    dx = x - x.mean()
    slope = float((dx * (y - y.mean())).sum() / (dx * dx).sum())
    return dict(
        pearson=_pearson(x, y),
        spearman=_pearson(rankdata(x), rankdata(y)),
        slope=slope,
        intercept=float(y.mean() - slope * x.mean()),
        num_classes=int(len(x)))
