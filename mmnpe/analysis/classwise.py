"""Class-wise results of several runs, classes sorted by training frequency,
Many / Medium / Few bands shaded (the NPE paper's Figures 2 and 3).

The inputs are the per-class JSON files that :class:`LongTailAccuracy` and
:class:`ClassWiseIoUMetric` write when their ``per_class_file`` is set
(format ``mmnpe.per_class/1``).
"""
import json
import math
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np

FORMAT = 'mmnpe.per_class/1'


def load_per_class(path: str) -> dict:
    """Read and check one per-class JSON file."""
    with open(path) as f:
        record = json.load(f)
    if not isinstance(record, dict) or record.get('format') != FORMAT:
        raise ValueError(
            f'{path} is not a per-class result file (format {FORMAT!r}, '
            'written by LongTailAccuracy / ClassWiseIoUMetric with '
            'per_class_file set); got format '
            f'{record.get("format") if isinstance(record, dict) else None!r}')
    for key in ('task', 'classes', 'per_class'):
        if key not in record:
            raise ValueError(f'{path} lacks the key {key!r}')
    num = len(record['classes'])
    for name, values in record['per_class'].items():
        if len(values) != num:
            raise ValueError(f'{path}: per_class.{name} has {len(values)} '
                             f'values for {num} classes')
    record['path'] = path
    return record


def frequency_bands(counts: Sequence[float],
                    task: str,
                    many_threshold: Optional[float] = None,
                    few_threshold: Optional[float] = None) -> List[tuple]:
    """Many / Medium / Few bands over the classes sorted by descending
    count, as ``(name, start, stop)`` positions in that order.

    Classification uses the long-tail literature's thresholds on training
    images (Many > 100, Few < 20, as :class:`LongTailAccuracy`); for
    segmentation there is no such convention on pixel counts, so the sorted
    classes are split into thirds unless thresholds are given.
    """
    counts = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    num = len(counts)
    if task == 'cls' and many_threshold is None:
        many_threshold, few_threshold = 100, 20
    if many_threshold is not None:
        if few_threshold is None or few_threshold >= many_threshold:
            raise ValueError(
                'few_threshold must be a number < many_threshold, got '
                f'{few_threshold!r} and {many_threshold!r}')
        n_many = int((counts > many_threshold).sum())
        n_few = int((counts < few_threshold).sum())
        cuts = [0, n_many, num - n_few, num]
    else:
        third = num / 3
        cuts = [0, int(math.ceil(third)), int(math.ceil(2 * third)), num]
    names = ('Many', 'Medium', 'Few')
    return [(names[i], cuts[i], cuts[i + 1]) for i in range(3)
            if cuts[i + 1] > cuts[i]]


def classwise_table(records: Sequence[dict],
                    labels: Optional[Sequence[str]] = None,
                    metric: Optional[str] = None,
                    class_counts: Optional[Sequence[float]] = None,
                    many_threshold: Optional[float] = None,
                    few_threshold: Optional[float] = None) -> dict:
    """Line the runs up on the classes sorted by training frequency.

    Args:
        records (Sequence[dict]): Per-class results (:func:`load_per_class`)
            of one task on one class list.
        labels (Sequence[str], optional): One name per run. Defaults to the
            file names.
        metric (str, optional): Per-class value to show: 'accuracy' (cls,
            the default), 'IoU' (seg default), 'Acc', 'Dice' ...
        class_counts (Sequence[float], optional): Training counts, for
            results written without them (segmentation metrics that were
            given none).
        many_threshold (float, optional): Band thresholds on the counts;
            default: 100 / 20 images (cls), thirds of the classes (seg).
        few_threshold (float, optional): See ``many_threshold``.

    Returns:
        dict: ``task``, ``metric``, ``classes`` and ``counts`` (sorted by
        descending count), ``bands`` and ``runs`` (label, values in that
        order, band means).
    """
    if not records:
        raise ValueError('records must hold at least one per-class result')
    if labels is None:
        labels = [
            osp.splitext(osp.basename(r.get('path', f'run{i}')))[0]
            for i, r in enumerate(records)
        ]
    if len(labels) != len(records):
        raise ValueError(f'labels must have one entry per result file '
                         f'({len(records)}), got {len(labels)}')
    first = records[0]
    for r in records[1:]:
        if r['task'] != first['task'] or r['classes'] != first['classes']:
            raise ValueError(
                f'{r.get("path")} ({r["task"]}, {len(r["classes"])} classes)'
                f' does not match {first.get("path")} ({first["task"]}, '
                f'{len(first["classes"])} classes): compare runs on one data '
                'set')
    task, classes = first['task'], list(first['classes'])
    counts = class_counts
    for r in records:
        own = r.get('train_class_counts')
        if own is None:
            continue
        if counts is None:
            counts = own
        elif class_counts is None and list(own) != list(counts):
            raise ValueError(f'{r.get("path")} has other training counts '
                             f'than {first.get("path")}')
    if counts is None:
        raise ValueError(
            'the result files hold no train_class_counts to sort the '
            'classes by; pass class_counts (--class-counts counts.json '
            'from tools/analysis/class_counts.py) or set class_counts on '
            'the metric')
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape != (len(classes), ):
        raise ValueError(f'class_counts must have {len(classes)} entries, '
                         f'got {counts.shape[0]}')
    metric = metric or ('accuracy' if task == 'cls' else 'IoU')
    for r in records:
        if metric not in r['per_class']:
            raise ValueError(
                f'{r.get("path")} has no per-class {metric!r}; it has '
                f'{sorted(r["per_class"])}')
    if task == 'cls' and many_threshold is None:
        many_threshold = first.get('many_threshold', 100)
        few_threshold = first.get('few_threshold', 20)
    order = np.argsort(-counts, kind='stable')
    bands = frequency_bands(counts, task, many_threshold, few_threshold)
    runs = []
    for label, r in zip(labels, records):
        values = [r['per_class'][metric][i] for i in order]
        means = {}
        for name, start, stop in bands:
            vals = [v for v in values[start:stop] if v is not None]
            if vals:
                means[name] = float(np.mean(vals))
        runs.append(dict(label=label, values=values, band_means=means))
    return dict(
        task=task,
        metric=metric,
        count_kind=first.get('count_kind'),
        classes=[classes[i] for i in order],
        counts=counts[order].tolist(),
        bands=[dict(name=n, start=s, stop=e) for n, s, e in bands],
        runs=runs)


def plot_classwise(table: dict, out_file: Optional[str] = None):
    """Per-class values of every run over the frequency-sorted classes.

    Args:
        table (dict): The output of :func:`classwise_table`.
        out_file (str, optional): PNG to write. Defaults to None.

    Returns:
        matplotlib.figure.Figure: The figure (no pyplot state touched).
    """
    from matplotlib.figure import Figure
    num = len(table['classes'])
    runs = table['runs']
    fig = Figure(figsize=(max(6.4, min(16, 0.35 * num + 3)), 4.4))
    ax = fig.subplots()
    shades = dict(Many='#dbe9f6', Medium='#fdf0d5', Few='#f8d9d9')
    for band in table['bands']:
        ax.axvspan(
            band['start'] - 0.5,
            band['stop'] - 0.5,
            color=shades[band['name']],
            zorder=0)
        ax.text(
            (band['start'] + band['stop'] - 1) / 2,
            1.01,
            band['name'],
            transform=ax.get_xaxis_transform(),
            ha='center',
            fontsize=8)
    xs = np.arange(num)
    bars = num * len(runs) <= 120
    width = 0.8 / len(runs)
    for i, run in enumerate(runs):
        ys = np.array([np.nan if v is None else v for v in run['values']])
        if bars:
            ax.bar(
                xs - 0.4 + (i + 0.5) * width,
                ys,
                width,
                label=run['label'],
                zorder=2)
        else:
            ax.plot(xs, ys, marker='.', label=run['label'], zorder=2)
    if num <= 40:
        ax.set_xticks(xs)
        ax.set_xticklabels(table['classes'], rotation=60, fontsize=7)
    ax.set_xlim(-0.5, num - 0.5)
    ax.set_xlabel('classes, most to least frequent in training '
                  f'({table.get("count_kind") or "count"})')
    ax.set_ylabel(f'{table["metric"]} (%)')
    twin = ax.twinx()
    counts = np.asarray(table['counts'], dtype=np.float64)
    twin.plot(
        xs,
        np.where(counts > 0, counts, np.nan),
        color='grey',
        linewidth=1,
        zorder=1)
    twin.set_yscale('log')
    twin.set_ylabel('training count (grey, log)', color='grey', fontsize=8)
    ax.legend(fontsize=8, loc='lower left')
    fig.tight_layout()
    if out_file is not None:
        fig.savefig(out_file, dpi=100)
    return fig
