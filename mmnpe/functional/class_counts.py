"""Class counts: the prior every count-based baseline needs.

Logit adjustment, Balanced Softmax / Sigmoid and IWB all start from how often
each class occurs in the training data: images per class for classification,
pixels per class for segmentation (docs/method.md, "Class counts"). This module
validates such counts and turns them into a log-prior; it is pure torch.
"""
import json
import math
import os.path as osp
from numbers import Real
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

CountsLike = Union[str, Sequence[float], Tensor]


def _check_eps(eps: Optional[float], name: str) -> Optional[float]:
    if eps is None:
        return None
    if (isinstance(eps, bool) or not isinstance(eps, Real)
            or not math.isfinite(eps) or eps <= 0):
        raise ValueError(f'{name} eps must be None or a finite number > 0, '
                         f'got {eps!r}')
    return float(eps)


def check_class_counts(counts: Union[Sequence[float], Tensor],
                       num_classes: Optional[int] = None,
                       eps: Optional[float] = None,
                       name: str = 'class_counts',
                       classes: Optional[Sequence[str]] = None) -> Tensor:
    """Validate per-class counts and return them as a float64 tensor.

    Args:
        counts (Sequence[float] | Tensor): One count per class, shape (C, ).
        num_classes (int, optional): The expected C. Defaults to None (any).
        eps (float, optional): Allows zero counts: a class never seen then
            gets ``log(eps)`` instead of ``-inf`` in :func:`log_prior`.
            Without it a zero count is an error. Defaults to None.
        name (str): The argument's name in error messages.
        classes (Sequence[str], optional): Class names, one per count: an
            error about a count names its class too. Defaults to None.

    Returns:
        Tensor: The counts, float64, shape (C, ).
    """
    if isinstance(counts, (str, bytes)):
        raise TypeError(
            f'{name} must be a sequence of numbers here, got the '
            f'string {counts!r} (use load_class_counts for a path)')
    try:
        t = torch.as_tensor(counts, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f'{name} must be a sequence of numbers, got '
                        f'{type(counts).__name__}: {e}') from None
    if t.dim() != 1 or t.numel() == 0:
        raise ValueError(f'{name} must be a non-empty 1-d sequence (one count '
                         f'per class), got shape {tuple(t.shape)}')
    if num_classes is not None and t.numel() != num_classes:
        raise ValueError(f'{name} must have num_classes={num_classes} '
                         f'entries, got {t.numel()}')
    bad = (~torch.isfinite(t)).nonzero().flatten()
    if bad.numel():
        i = int(bad[0])
        raise ValueError(f'{name}[{i}] must be a finite number, got '
                         f'{t[i].item()}')
    neg = (t < 0).nonzero().flatten()
    if neg.numel():
        i = int(neg[0])
        raise ValueError(f'{name}[{i}] must be >= 0, got {t[i].item():g}')
    if not t.sum() > 0:
        raise ValueError(f'{name} must not be all zero (no class was seen)')
    eps = _check_eps(eps, name)
    zero = (t == 0).nonzero().flatten()
    if zero.numel() and eps is None:
        i = int(zero[0])
        which = f'class index {i}'
        if classes is not None and len(classes) == t.numel():
            which += f', {classes[i]!r},'
        more = (f'; {zero.numel()} classes have none'
                if zero.numel() > 1 else '')
        raise ValueError(
            f'{name}[{i}] is 0 ({which} never occurs{more}), so its '
            'log-prior would be -inf; pass an explicit eps to allow empty '
            'classes, chosen for the loss: a test-time correction (post-hoc '
            'LA) or a training offset whose empty-class logit gets almost '
            "no gradient (Balanced Sigmoid variant='slides') needs eps of "
            f'the order of 1 / n (n = {float(t.sum()):g}, the total count): '
            'the empty class is then treated as one seen about once, while '
            'a tiny eps (1e-12) raises it by -log(eps) = 27.6 and it takes '
            "the foreground mass; Balanced Softmax and variant='balms' push "
            'its logit down in training, where a tiny eps (1e-12) is fine')
    return t


def load_class_counts(counts: CountsLike,
                      classes: Optional[Sequence[str]] = None,
                      name: str = 'class_counts') -> list:
    """Read class counts given as a list or as the path of a counts JSON.

    The JSON is what ``tools/analysis/class_counts.py`` writes:
    ``{"kind": "images"|"pixels", "classes": [...], "counts": [...]}``.

    Args:
        counts (str | Sequence[float] | Tensor): The counts, or a JSON path.
        classes (Sequence[str], optional): The data set's class names; a
            JSON whose ``classes`` differ is an error. Defaults to None.
        name (str): The argument's name in error messages.

    Returns:
        list[float]: The counts, one per class (not yet validated: pass them
        to :func:`check_class_counts`).
    """
    if isinstance(counts, Tensor):
        return counts.detach().cpu().tolist()
    if not isinstance(counts, str):
        return list(counts)
    if not osp.isfile(counts):
        raise FileNotFoundError(f'{name}: no class-counts JSON at {counts!r}; '
                                'write one with tools/analysis/'
                                'class_counts.py CONFIG --out FILE')
    with open(counts) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{name}: {counts!r} is not valid JSON: {e}')
    if not isinstance(data, dict) or 'counts' not in data:
        raise ValueError(f'{name}: {counts!r} must hold a JSON object with a '
                         '"counts" list (and "classes", "kind")')
    if classes is not None and data.get('classes') is not None:
        if list(data['classes']) != list(classes):
            diff = [(i, a, b)
                    for i, (a, b) in enumerate(zip(data['classes'], classes))
                    if a != b]
            where = (f'first difference at index {diff[0][0]}: '
                     f'{diff[0][1]!r} in the file, {diff[0][2]!r} in the '
                     'data set' if diff else
                     f'{len(data["classes"])} classes in the file, '
                     f'{len(classes)} in the data set')
            raise ValueError(f'{name}: the classes in {counts!r} differ from '
                             f'the data set\'s ({where})')
    return list(data['counts'])


def log_prior(counts: Tensor, eps: Optional[float] = None) -> Tensor:
    """``log(counts / sum(counts) + eps)``, shape (C, ), float64.

    Args:
        counts (Tensor): Validated counts (see :func:`check_class_counts`).
        eps (float, optional): Added inside the log (a tiny epsilon
            keeps unseen classes finite). Defaults to None.
    """
    prior = counts.double() / counts.double().sum()
    if eps is not None:
        prior = prior + eps
    return prior.log()


def counts_file_num_images(path: str) -> Optional[float]:
    """The ``num_images`` a counts JSON holds (what
    ``tools/analysis/class_counts.py`` writes for a detection data set: the
    number of training images, repeats included), or None without it.

    Image frequencies ``image_count_j / number_of_images`` need that total,
    which the per-class counts alone do not give.
    """
    if not osp.isfile(path):
        return None  # load_class_counts says what is missing
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError:
            return None
    total = data.get('num_images') if isinstance(data, dict) else None
    if total is None:
        return None
    if (isinstance(total, bool) or not isinstance(total, Real)
            or not math.isfinite(total) or total <= 0):
        raise ValueError(f'{path!r}: num_images must be a number > 0, got '
                         f'{total!r}')
    return float(total)
