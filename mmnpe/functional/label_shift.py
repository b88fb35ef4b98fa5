"""Label shift: predicting for another class prior, known or estimated.

Under label shift the class-conditional densities ``p(x|y)`` stay fixed and
only the class prior moves, from ``pi_s`` (the prior a model's calibrated
scores hold under) to ``pi_t``. Bayes' rule then gives the target posterior
from the source one up to a per-sample constant::

    log p_t(y|x) = log p_s(y|x) + log pi_t(y) - log pi_s(y) + const

(docs/user_guides/label_shift.md). This module estimates ``pi_t`` from
unlabelled target logits and applies it; it is pure torch.

- ``method='em'``: maximum-likelihood label shift by EM (Saerens, Latinne &
  Decaestecker, *Adjusting the Outputs of a Classifier to New a Priori
  Probabilities*, Neural Computation 14(1), 2002, Sec. 3);
  accelerated by SQUAREM with step-halving backtracking (Varadhan & Roland,
  Scand. J. Statist. 35, 2008), stopped on the estimated distance to the
  fixed point;
- ``method='bbse'``: black-box shift estimation (Lipton, Wang & Smola,
  *Detecting and Correcting for Label Shift with Black Box Predictors*,
  ICML 2018, Sec. 4): solve ``C w = mu_t`` for ``w = pi_t / pi_s`` (hard or
  soft confusion; least squares on the simplex when ``C`` is
  ill-conditioned);
- calibration ``'bcts'`` (bias-corrected temperature scaling: one
  temperature and one bias per class, fitted by NLL on labelled validation
  logits; Alexandari, Kundaje & Shrikumar, *Maximum Likelihood with
  Bias-Corrected Calibration is Hard-To-Beat at Label Shift Adaptation*,
  ICML 2020, Sec. 3), ``'temperature'`` (one temperature) or ``'none'``.

EM needs the prior ``pi_s`` its scores hold under: after BCTS the
validation labels' prior; without it, or after a temperature alone, the
prior the logits target (the training prior for a plain CE model, uniform
for NPE-LA / post-hoc LA at full correction), which the caller gives.

Logits are (N, C): N samples or pixels, C classes. Priors are (C,) tensors
that sum to 1. Estimation runs in float64. A target prior used for
prediction is floored at ``PRIOR_FLOOR / C`` so its log stays finite.
"""
import json
import math
import os.path as osp
import warnings
from dataclasses import dataclass
from numbers import Real
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .class_counts import check_class_counts
from .logit_adjust import class_axis

METHODS = ('em', 'bbse')
CALIBRATIONS = ('bcts', 'temperature', 'none')
DIRECTIONS = ('forward', 'backward')
TARGET_PRIOR_MODES = ('uniform', 'source', 'given')

PriorLike = Union[Sequence[float], Tensor]
TargetPriorArg = Optional[Union[str, Sequence[float], Tensor]]

# Rows per E-step chunk: bounds the float64 temporaries for millions of
# pixels without changing the result.
_CHUNK = 1 << 17

#: Smallest class probability a target prior is used with, relative to a
#: uniform prior: ``PRIOR_FLOOR / C``. EM drives a class absent from the
#: target towards 0 (1e-106 after a few hundred steps), whose log (-243)
#: makes the class impossible to predict and is -inf once a half-precision
#: model rounds the prior to 0; the floor keeps every offset finite
#: (``log(1e-6 / 150) = -18.8``) in every dtype.
PRIOR_FLOOR = 1e-6


class LabelShiftConvergenceWarning(RuntimeWarning):
    """EM or a calibration fit stopped at its iteration limit before
    reaching its tolerance."""


# Validation -----------------------------------------------------------------


def _check_positive(value, name: str, integer: bool = False):
    kind = 'an int' if integer else 'a finite number'
    ok = (not isinstance(value, bool) and isinstance(value, Real)
          and math.isfinite(value) and value > 0)
    if integer:
        ok = ok and isinstance(value, int)
    if not ok:
        raise ValueError(f'{name} must be {kind} > 0, got {value!r}')
    return value


def check_logits(logits: Tensor,
                 name: str = 'logits',
                 num_classes: Optional[int] = None) -> Tensor:
    """Return ``logits`` if they are a finite (N, C) float tensor, N >= 1,
    C >= 2 (and C == ``num_classes`` when given)."""
    if not isinstance(logits, Tensor):
        raise TypeError(f'{name} must be a torch.Tensor of shape (N, C), '
                        f'got {type(logits).__name__}')
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise ValueError(f'{name} must have shape (N, C) with C >= 2 '
                         f'classes, got {tuple(logits.shape)}')
    if logits.shape[0] == 0:
        raise ValueError(f'{name} must hold at least one sample, got an '
                         f'empty tensor of shape {tuple(logits.shape)}')
    if num_classes is not None and logits.shape[1] != num_classes:
        raise ValueError(f'{name} must have {num_classes} classes (columns), '
                         f'got {logits.shape[1]}')
    if not logits.is_floating_point():
        raise TypeError(f'{name} must be a float tensor, got {logits.dtype}')
    bad = ~torch.isfinite(logits)
    if bad.any():
        row = int(bad.any(dim=1).nonzero()[0])
        raise ValueError(f'{name} must be finite, got '
                         f'{int(bad.sum())} NaN / inf entries (first in row '
                         f'{row})')
    return logits


def check_labels(labels: Tensor,
                 num_samples: int,
                 num_classes: int,
                 name: str = 'val_labels') -> Tensor:
    """Return ``labels`` as int64 if they are (N,) integers in [0, C)."""
    if not isinstance(labels, Tensor):
        labels = torch.as_tensor(labels)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f'{name} must hold integer class indices, got dtype '
                        f'{labels.dtype}')
    if labels.shape != (num_samples, ):
        raise ValueError(f'{name} must have shape ({num_samples},) (one '
                         f'label per logit row), got {tuple(labels.shape)}')
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise ValueError(f'{name} must lie in [0, {num_classes - 1}], got '
                         f'{int(labels[bad][0])}')
    return labels.long()


def check_prior(prior: PriorLike,
                num_classes: Optional[int] = None,
                name: str = 'prior',
                atol: float = 1e-4) -> Tensor:
    """Validate a class prior and return it as a float64 (C,) tensor.

    Args:
        prior (Sequence[float] | Tensor): Probabilities, (C,).
        num_classes (int, optional): The expected C. Defaults to None.
        name (str): The argument's name in error messages.
        atol (float): Tolerance of the sum to 1. Defaults to 1e-4.

    Returns:
        Tensor: The prior, float64, renormalised exactly to sum 1.

    Raises:
        ValueError: Wrong length, NaN / inf, negative entries, or a sum
            other than 1.
    """
    try:
        t = torch.as_tensor(prior, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f'{name} must be a sequence of probabilities, got '
                        f'{type(prior).__name__}: {e}') from None
    if t.dim() != 1 or t.numel() < 2:
        raise ValueError(f'{name} must be a 1-d sequence of C >= 2 '
                         f'probabilities, got shape {tuple(t.shape)}')
    if num_classes is not None and t.numel() != num_classes:
        raise ValueError(f'{name} must have {num_classes} entries (one per '
                         f'class), got {t.numel()}')
    bad = (~torch.isfinite(t)).nonzero().flatten()
    if bad.numel():
        i = int(bad[0])
        raise ValueError(f'{name}[{i}] must be finite, got {t[i].item()}')
    neg = (t < 0).nonzero().flatten()
    if neg.numel():
        i = int(neg[0])
        raise ValueError(f'{name}[{i}] must be >= 0, got {t[i].item():g}')
    total = float(t.sum())
    if abs(total - 1) > atol:
        raise ValueError(f'{name} must sum to 1 (a probability vector), got '
                         f'a sum of {total:.6g}')
    return t / t.sum()


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`METHODS`."""
    if method not in METHODS:
        raise ValueError(f'method must be one of {METHODS}, got {method!r}')
    return method


def check_calibration(calibration: str) -> str:
    """``calibration`` if it is one of :data:`CALIBRATIONS`."""
    if calibration not in CALIBRATIONS:
        raise ValueError(f'calibration must be one of {CALIBRATIONS}, got '
                         f'{calibration!r}')
    return calibration


# Priors given as configuration values --------------------------------------


def floor_prior(prior: Tensor,
                floor: float = PRIOR_FLOOR,
                name: str = 'prior',
                warn: bool = False) -> Tensor:
    """``prior`` with every entry raised to at least ``floor / C`` and
    renormalised, float64 (C,).

    Args:
        prior (Tensor): A class prior, (C,), summing to 1.
        floor (float): The smallest entry relative to a uniform prior.
            Defaults to :data:`PRIOR_FLOOR` (1e-6).
        name (str): The prior's name in the warning.
        warn (bool): Warn (naming the classes) when an entry is raised.
            Defaults to False.
    """
    p = torch.as_tensor(prior, dtype=torch.float64)
    least = floor / p.numel()
    low = (p < least).nonzero().flatten().tolist()
    if not low:
        return p
    if warn:
        warnings.warn(
            f'{name}: class(es) {low[:10]} have a probability below '
            f'{floor:g} / C = {least:.3g} (smallest {float(p.min()):.3g}); '
            'raised to it so that their log prior stays finite',
            RuntimeWarning,
            stacklevel=3)
    p = p.clamp(min=least)
    return p / p.sum()


def _read_prior_file(path: str, name: str) -> list:
    """The probabilities or counts in a JSON file: a list, or an object with
    ``"prior"`` (``tools/analysis/label_shift.py`` writes it) or
    ``"counts"`` (``tools/analysis/class_counts.py`` writes it)."""
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{name}: {path!r} is not valid JSON: {e}')
    if isinstance(data, dict):
        for key in ('prior', 'counts'):
            if key in data:
                return list(data[key])
        raise ValueError(f'{name}: {path!r} must hold a list of numbers or a '
                         'JSON object with a "prior" or "counts" list, got '
                         f'an object with keys {sorted(data)}')
    if not isinstance(data, list):
        raise ValueError(f'{name}: {path!r} must hold a list of numbers or '
                         'an object with a "prior" or "counts" list, got '
                         f'{type(data).__name__}')
    return data


def load_target_prior(
        target_prior: TargetPriorArg,
        num_classes: int,
        name: str = 'target_prior') -> Tuple[str, Optional[Tensor]]:
    """Parse the ``target_prior`` key of a prior-correcting model.

    Args:
        target_prior (str | Sequence[float] | Tensor | None): None or
            ``'uniform'`` (predict for equally likely classes, the
            correction as it is), ``'source'`` (the training prior back), a
            list / tensor of C probabilities or counts, or the path of a
            JSON file holding one (a list, or an object with ``"prior"`` or
            ``"counts"``).
        num_classes (int): C.
        name (str): The argument's name in error messages.

    Returns:
        tuple[str, Tensor | None]: The mode (``'uniform'``, ``'source'`` or
        ``'given'``) and, for ``'given'``, the prior normalised to sum 1,
        float64 (C,).

    Entries below ``PRIOR_FLOOR / C`` (an EM estimate of a class absent
    from the target) are raised to it, with a warning (:func:`floor_prior`).

    Raises:
        ValueError: Wrong length, a negative, NaN or zero entry, all zero, or
            a string that is neither a mode nor an existing file.
    """
    if target_prior is None:
        return 'uniform', None
    if isinstance(target_prior, str):
        if target_prior in ('uniform', 'source'):
            return target_prior, None
        if not osp.isfile(target_prior):
            raise ValueError(
                f"{name} must be None, 'uniform', 'source', a list of "
                f'{num_classes} probabilities or counts, or the path of a '
                f'JSON file holding one; got {target_prior!r} (no such '
                'file)')
        values = _read_prior_file(target_prior, name)
    else:
        values = target_prior
    # Zero entries are refused as zero counts are: log 0 would make the
    # class impossible to predict, which is rarely meant.
    counts = check_class_counts(values, num_classes=num_classes, name=name)
    return 'given', floor_prior(counts / counts.sum(), name=name, warn=True)


def label_shift_profile(num_classes: int,
                        rho: float,
                        direction: str = 'forward') -> Tensor:
    """Relative class weights of a shifted test prior, max 1, float64 (C,).

    Forward ``rho^(-i/(C-1))`` (class 0 most frequent, as in the long-tailed
    training sets), backward ``rho^(-(C-1-i)/(C-1))`` (the order reversed),
    the shifted test sets of the long-tail literature (rho in 2, 5, 10, 25,
    50).

    Args:
        num_classes (int): C >= 2.
        rho (float): Ratio of the most to the least frequent class, >= 1.
        direction (str): 'forward' or 'backward'. Defaults to 'forward'.
    """
    if isinstance(num_classes,
                  bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f'num_classes must be an int >= 2, got '
                         f'{num_classes!r}')
    if (isinstance(rho, bool) or not isinstance(rho, Real)
            or not math.isfinite(rho) or rho < 1):
        raise ValueError(f'rho must be a finite number >= 1, got {rho!r}')
    if direction not in DIRECTIONS:
        raise ValueError(f'direction must be one of {DIRECTIONS}, got '
                         f'{direction!r}')
    i = torch.arange(num_classes, dtype=torch.float64)
    if direction == 'backward':
        i = (num_classes - 1) - i
    return torch.tensor(
        float(rho), dtype=torch.float64)**(-i / (num_classes - 1))


# Calibration ----------------------------------------------------------------


@dataclass
class Calibration:
    """A fitted calibration map ``z -> z / temperature + bias``.

    Attributes:
        kind (str): 'bcts', 'temperature' or 'none'.
        temperature (float): T > 0 (1 for 'none').
        bias (Tensor): One bias per class, float64 (C,) (zero unless
            'bcts').
        nll_before (float | None): Mean NLL of the validation logits before
            the fit (None for 'none').
        nll_after (float | None): ... and after.
        converged (bool): False when L-BFGS stopped at its iteration or
            function-evaluation limit instead of its tolerances.
        iterations (int): L-BFGS iterations run (0 for 'none').
    """
    kind: str
    temperature: float
    bias: Tensor
    nll_before: Optional[float] = None
    nll_after: Optional[float] = None
    converged: bool = True
    iterations: int = 0

    def __call__(self, logits: Tensor) -> Tensor:
        """Calibrated logits of (N, C) ``logits``, in their (floating)
        dtype."""
        if self.kind == 'none':
            return logits
        return logits / self.temperature + self.bias.to(logits)

    def as_dict(self) -> dict:
        """JSON-ready summary."""
        return dict(
            kind=self.kind,
            temperature=self.temperature,
            bias=self.bias.tolist(),
            nll_before=self.nll_before,
            nll_after=self.nll_after,
            converged=self.converged,
            iterations=self.iterations)


def identity_calibration(num_classes: int) -> Calibration:
    """The calibration that changes nothing (``'none'``)."""
    return Calibration('none', 1.0,
                       torch.zeros(num_classes, dtype=torch.float64))


def fit_calibration(val_logits: Tensor,
                    val_labels: Tensor,
                    calibration: str = 'bcts',
                    max_iter: int = 100) -> Calibration:
    """Fit a calibration map by NLL on labelled validation logits.

    ``'bcts'``: ``softmax(z / T + b)`` with one temperature T and one bias
    per class (Alexandari et al. 2020, Sec. 3); ``'temperature'``: ``b = 0``;
    ``'none'``: the identity. Fitted with :class:`torch.optim.LBFGS`
    (strong-Wolfe line search) in float64 from ``T = 1, b = 0``; T is
    parametrised by its log so it stays positive. On a balanced validation
    set the bias also absorbs a mis-scaled prior correction. L-BFGS may
    evaluate the loss ``5 * max_iter`` times; a fit that stops at either
    limit reports ``converged=False`` and warns
    (:class:`LabelShiftConvergenceWarning`).

    Args:
        val_logits (Tensor): (M, C) logits of labelled validation samples.
        val_labels (Tensor): (M,) their classes in [0, C).
        calibration (str): 'bcts', 'temperature' or 'none'. Defaults to
            'bcts'.
        max_iter (int): L-BFGS iterations. Defaults to 100.

    Returns:
        Calibration: The fitted map (``converged``, ``iterations``).
    """
    check_calibration(calibration)
    _check_positive(max_iter, 'max_iter', integer=True)
    z = check_logits(val_logits, 'val_logits').detach().double()
    c = z.shape[1]
    y = check_labels(val_labels, z.shape[0], c).to(z.device)
    if calibration == 'none':
        return identity_calibration(c)
    log_t = torch.zeros((), dtype=torch.float64, device=z.device)
    bias = torch.zeros(c, dtype=torch.float64, device=z.device)
    params = [log_t.requires_grad_()]
    if calibration == 'bcts':
        params.append(bias.requires_grad_())
    with torch.no_grad():
        before = float(F.cross_entropy(z, y))
    max_eval = 5 * max_iter
    opt = torch.optim.LBFGS(
        params,
        lr=1,
        max_iter=max_iter,
        max_eval=max_eval,
        tolerance_grad=1e-10,
        tolerance_change=1e-12,
        line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z * torch.exp(-log_t) + bias, y)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    state = opt.state[opt._params[0]]
    iterations, evals = int(state['n_iter']), int(state['func_evals'])
    converged = iterations < max_iter and evals < max_eval
    if not converged:
        warnings.warn(
            f'{calibration} calibration stopped at its limit ({iterations} '
            f'of max_iter={max_iter} L-BFGS iterations, {evals} of '
            f'{max_eval} loss evaluations) before its tolerances; the fit '
            'is used as it is (raise max_iter)',
            LabelShiftConvergenceWarning,
            stacklevel=2)
    log_t, bias = log_t.detach(), bias.detach()
    if not (torch.isfinite(log_t) and torch.isfinite(bias).all()):
        raise RuntimeError(f'{calibration} calibration diverged (T = '
                           f'{float(log_t.exp())}); check val_logits')
    # The biases are defined up to a constant, which softmax ignores.
    bias = bias - bias.mean()
    with torch.no_grad():
        after = float(F.cross_entropy(z * torch.exp(-log_t) + bias, y))
    return Calibration(calibration, float(log_t.exp()), bias.cpu(), before,
                       after, converged, iterations)


# Estimators -----------------------------------------------------------------


def mean_posterior(logits: Tensor) -> Tensor:
    """``mean_i softmax(logits_i)``, float64 (C,), in chunks."""
    total = torch.zeros(
        logits.shape[1], dtype=torch.float64, device=logits.device)
    for chunk in logits.split(_CHUNK):
        total += F.softmax(chunk.double(), dim=1).sum(dim=0)
    return (total / logits.shape[0]).cpu()


def _em_map(posteriors: List[Tensor], prior: Tensor,
            source: Tensor) -> Tuple[Tensor, float]:
    """One EM update of ``prior`` and the mean log-likelihood at ``prior``
    (up to a constant): ``mean_i log sum_y p_s(y|x_i) pi(y) / pi_s(y)``.

    With ``w = pi / pi_s`` and ``e_i = p_s(.|x_i) . w``, the E-step is
    ``q_i = p_s(.|x_i) * w / e_i`` and the M-step ``mean_i q_i = w * sum_i
    p_s(.|x_i) / e_i / N``: two matrix-vector products per chunk of the
    float64 posteriors, which are computed once.
    """
    w = prior / source
    total = torch.zeros_like(prior)
    loglik = 0.0
    n = 0
    for chunk in posteriors:
        evidence = chunk @ w
        total += evidence.reciprocal() @ chunk
        loglik += float(evidence.log().sum())
        n += chunk.shape[0]
    return w * total / n, loglik / n


def _log_likelihood(posteriors: List[Tensor], prior: Tensor,
                    source: Tensor) -> float:
    """The mean log-likelihood at ``prior`` (up to a constant)."""
    return _em_map(posteriors, prior, source)[1]


def _distance_to_fixed_point(p0: Tensor, p1: Tensor, p2: Tensor,
                             rates: List[float],
                             tol: float) -> Tuple[float, float, float]:
    """The estimated L1 distance of ``p2`` to EM's fixed point from two EM
    steps ``p0 -> p1 -> p2``, assuming geometric convergence.

    Two estimates, the larger is returned: ``|d2| rho / (1 - rho)`` with
    the L1 contraction rate ``rho = |d2| / |d1|`` at its largest over the
    last three iterations (``rates``, appended to; one window's rate is
    noisy on a flat likelihood), and ``sum_y |d2_y| rho_y / (1 - rho_y)``
    with a rate per class (a class heading to the boundary contracts at its
    own, slower rate); inf while either does not contract. Classes that
    move by less than ``1e-3 * tol / C`` are left out of the second.

    Returns:
        tuple[float, float, float]: ``|d2|``, ``rho`` (this window's) and
        the distance.
    """
    d1, d2 = (p1 - p0).abs(), (p2 - p1).abs()
    step, total = float(d2.sum()), float(d1.sum())
    rate = step / total if total > 0 else 0.0
    rates.append(rate)
    if step == 0:
        return step, rate, 0.0
    worst = max(rates[-3:])
    if worst >= 1:
        return step, rate, float('inf')
    overall = step * worst / (1 - worst)
    moving = d2 > 1e-3 * tol / len(d2)
    if not moving.any():
        return step, rate, overall
    rho = d2[moving] / d1[moving]
    if not bool((rho < 1).all()):
        return step, rate, float('inf')
    return step, rate, max(overall, float(
        (d2[moving] * rho / (1 - rho)).sum()))


def em_prior(logits: Tensor,
             source_prior: Tensor,
             tol: float = 1e-6,
             max_iter: int = 1000) -> Tuple[Tensor, Dict[str, object]]:
    """Maximum-likelihood target prior by EM (Saerens et al. 2002, Sec. 3).

    ``pi^(0) = pi_s``; E-step ``q_i ∝ p_s(y|x_i) * pi^(k) / pi_s``
    (computed as ``softmax(logits_i + log pi^(k) - log pi_s)``); M-step
    ``pi^(k+1) = mean_i q_i``.

    EM's fixed-point iteration slows to a crawl when a class's prior heads
    towards zero, so it is accelerated by SQUAREM (Varadhan & Roland, Scand.
    J. Statist. 35, 2008): from two EM steps ``p1 = F(p0)``, ``p2 = F(p1)``,
    ``r = p1 - p0``, ``v = p2 - 2 p1 + p0`` and the step length ``a = min(-|r|
    / |v|, -1)`` (their scheme S3), the point ``p0 - 2 a r + a^2 v`` is
    followed by one EM step and kept when it lies inside the simplex and
    the likelihood at that later point is no lower than at ``p0``;
    otherwise the step is halved towards plain EM, ``a <- (a - 1) / 2``
    (their backtracking), down to ``a = -1``, which is plain EM's ``p2``.
    That changes the path, not the fixed point, and the likelihood never
    decreases.

    Stopping: a step change says little on a flat likelihood, where EM
    moves slowly far from the optimum. Each SQUAREM iteration measures EM's
    contraction rate over its two plain EM steps, ``rho = |p2 - p1| / |p1 -
    p0|``, overall (at its largest over the last three iterations) and per
    class, and stops when the geometric estimate of the L1 distance still
    to go, ``|p2 - p1| rho / (1 - rho)`` (the larger of the two), is below
    ``tol``; never while the iteration does not contract.

    Args:
        logits (Tensor): (N, C) calibrated logits of the target samples:
            ``softmax`` of a row is ``p_s(y|x_i)``. Their softmax is kept
            in float64 (8 N C bytes) while EM runs.
        source_prior (Tensor): ``pi_s``, (C,), the prior those posteriors
            hold under; all entries > 0.
        tol (float): Estimated L1 distance to the fixed point that stops
            the iteration. Defaults to 1e-6.
        max_iter (int): Limit on EM steps (E- and M-step pairs, the
            extrapolated points' included). Defaults to 1000.

    Returns:
        tuple[Tensor, dict]: The estimate, float64 (C,), and ``iterations``
        (EM steps), ``converged``, ``change`` (the estimated distance to the
        fixed point), ``step`` (the last EM step's L1 change), ``rate``
        (the last contraction rate), ``loglik`` (mean log-likelihood at the
        estimate, up to a constant), ``loglik_path`` (the log-likelihood at
        the start of every iteration: non-decreasing) and
        ``extrapolations`` (accepted SQUAREM points). When the limit is
        reached first, ``converged`` is False and a
        :class:`LabelShiftConvergenceWarning` is issued through Python's
        ``warnings``.
    """
    _check_positive(tol, 'tol')
    _check_positive(max_iter, 'max_iter', integer=True)
    source = check_prior(source_prior, logits.shape[1], 'source_prior')
    if (source <= 0).any():
        raise ValueError('source_prior must be > 0 for every class (EM '
                         'divides by it), got a zero at class '
                         f'{int((source <= 0).nonzero()[0])}')
    device = logits.device
    source = source.to(device)
    # float64: the likelihood comparisons of the extrapolation need it.
    posteriors = [
        F.softmax(chunk.double(), dim=1) for chunk in logits.split(_CHUNK)
    ]
    p0 = source.clone()
    p1, loglik0 = _em_map(posteriors, p0, source)
    steps, accepted = 1, 0
    change = step = rate = float('inf')
    path: List[float] = []
    rates: List[float] = []
    # At the top of every iteration p1 = F(p0) and loglik0 = L(p0) are
    # known.
    while steps < max_iter:
        path.append(loglik0)
        p2, _ = _em_map(posteriors, p1, source)
        steps += 1
        step, rate, change = _distance_to_fixed_point(p0, p1, p2, rates, tol)
        if step == 0 or change < tol:
            return p2.cpu(), dict(
                iterations=steps,
                converged=True,
                change=change,
                step=step,
                rate=rate,
                loglik=_log_likelihood(posteriors, p2, source),
                loglik_path=path,
                extrapolations=accepted)
        if steps >= max_iter:
            p1 = p2
            break
        r = p1 - p0
        v = (p2 - p1) - r
        nv = float(v.norm())
        alpha = min(-float(r.norm()) / nv, -1.0) if nv > 0 else -1.0
        moved = False
        while alpha < -1 and steps + 2 <= max_iter:
            cand = p0 - 2 * alpha * r + alpha**2 * v
            if bool(torch.isfinite(cand).all()) and bool((cand > 0).all()):
                # The EM step after the extrapolation, and the likelihood
                # at that later point against the one at p0 (Varadhan &
                # Roland 2008's monotone scheme).
                c1, _ = _em_map(posteriors, cand / cand.sum(), source)
                c2, loglik_c1 = _em_map(posteriors, c1, source)
                steps += 2
                if loglik_c1 >= loglik0:
                    p0, p1, loglik0 = c1, c2, loglik_c1
                    accepted += 1
                    moved = True
                    break
            # Backtracking (Varadhan & Roland 2008): halve the distance to
            # the plain EM step, alpha = -1.
            alpha = (alpha - 1) / 2
            if alpha > -1.01:
                alpha = -1.0
        if moved:
            continue
        if steps >= max_iter:
            break
        p0 = p2
        p1, loglik0 = _em_map(posteriors, p0, source)
        steps += 1
    warnings.warn(
        'EM did not converge: the estimated L1 distance of the prior to '
        f'the fixed point was still {change:.3g} > tol={tol:g} (last step '
        f'{step:.3g}, contraction rate {rate:.4g}) after max_iter='
        f'{max_iter} EM steps; the estimate is returned as it is (raise '
        'max_iter or tol)',
        LabelShiftConvergenceWarning,
        stacklevel=2)
    return p1.cpu(), dict(
        iterations=steps,
        converged=False,
        change=change,
        step=step,
        rate=rate,
        loglik=_log_likelihood(posteriors, p1, source),
        loglik_path=path,
        extrapolations=accepted)


BBSE_SOLVERS = ('solve', 'simplex_lstsq')
CONFUSIONS = ('hard', 'soft')


def _project_simplex(x: Tensor) -> Tensor:
    """Euclidean projection of ``x`` (C,) onto the probability simplex
    (the sort-based algorithm: the threshold ``theta`` with ``sum max(x -
    theta, 0) = 1``)."""
    u = x.sort(descending=True).values
    css = u.cumsum(0) - 1
    k = torch.arange(1, len(x) + 1, dtype=x.dtype, device=x.device)
    rho = int((u - css / k > 0).nonzero().max())
    theta = css[rho] / (rho + 1)
    return (x - theta).clamp(min=0)


def simplex_least_squares(matrix: Tensor,
                          target: Tensor,
                          ridge: float = 0.0,
                          center: Optional[Tensor] = None,
                          tol: float = 1e-10,
                          max_iter: int = 5000) -> Tuple[Tensor, int]:
    """``argmin_p |matrix p - target|^2 + ridge * |p - center|^2`` over the
    probability simplex, by accelerated projected gradient (FISTA, step ``1
    / L`` with ``L = |matrix|_2^2 + ridge``, with adaptive restart).

    Args:
        matrix (Tensor): (C, C), float64.
        target (Tensor): (C,), float64.
        ridge (float): Weight of the pull towards ``center``, >= 0; > 0
            makes the minimiser unique (and the iteration converge
            linearly) when ``matrix`` is singular. Defaults to 0.
        center (Tensor, optional): (C,); uniform by default.
        tol (float): L1 change of one step that stops it. Defaults to 1e-10.
        max_iter (int): Defaults to 5000.

    Returns:
        tuple[Tensor, int]: The minimiser, (C,), and the steps taken.
    """
    c = matrix.shape[1]
    p = torch.full((c, ), 1.0 / c, dtype=matrix.dtype)
    center = p.clone() if center is None else center.to(matrix)
    gram = matrix.t() @ matrix + ridge * torch.eye(c, dtype=matrix.dtype)
    lin = matrix.t() @ target + ridge * center
    lipschitz = float(torch.linalg.matrix_norm(matrix, 2))**2 + ridge
    if lipschitz == 0:
        return p, 0
    y, t = p.clone(), 1.0
    for it in range(1, max_iter + 1):
        nxt = _project_simplex(y - (gram @ y - lin) / lipschitz)
        done = float((nxt - p).abs().sum()) < tol
        if float((y - nxt) @ (nxt - p)) > 0:
            # Adaptive restart (O'Donoghue & Candes, Found. Comput. Math.
            # 15, 2015): the momentum points uphill, drop it.
            t = 1.0
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        y = nxt + (t - 1) / t_next * (nxt - p)
        p, t = nxt, t_next
        if done:
            return p, it
    return p, max_iter


def bbse_prior(val_pred: Tensor,
               val_labels: Tensor,
               target_pred: Tensor,
               num_classes: int,
               max_condition: float = 1e6) -> Tuple[Tensor, Dict]:
    """Black-box shift estimation (Lipton et al. 2018, Sec. 4).

    ``C[i, j] = P_val(yhat = i, y = j)`` on the labelled validation set,
    ``mu_t(i) = P_target(yhat = i)``; solve ``C w = mu_t`` for ``w = pi_t /
    pi_val``, clip negative weights at 0 and return ``pi_t ∝ w * pi_val``
    (``pi_val`` the validation label frequencies).

    The predictions are hard classes ((M,) and (N,) integers: the confusion
    matrix of Lipton et al.) or class probabilities ((M, C) and (N, C)
    floats: the soft confusion matrix ``C[i, j] = mean_k p_k(i) [y_k = j]``
    and ``mu_t = mean_k p_k``, which uses the scores' confidence as well).
    When ``C`` is singular or its condition number exceeds
    ``max_condition`` (a class never predicted, too few validation samples
    per class) the linear solve is replaced by least squares on the
    simplex, ``argmin |M pi - mu_t|^2 + r |pi - pi_val|^2`` over priors
    ``pi`` with ``M = C diag(1 / pi_val)`` the per-class confusion (the
    constraint that RLLS, Azizzadenesheli et al., ICLR 2019, Sec. 3,
    relaxes into a penalty, and its shrinkage towards no shift, ``r = 1e-3
    |M|_2^2``, which makes the minimiser unique): defined for any ``C``.

    Args:
        val_pred (Tensor): (M,) predicted classes or (M, C) class
            probabilities of the validation samples.
        val_labels (Tensor): (M,) their true classes.
        target_pred (Tensor): (N,) predicted classes or (N, C) class
            probabilities of the target samples (the kind of ``val_pred``).
        num_classes (int): C.
        max_condition (float): Largest condition number of ``C`` that is
            solved directly. Defaults to 1e6.

    Returns:
        tuple[Tensor, dict]: The estimate, float64 (C,), and ``condition``
        (of ``C``), ``solver`` (``'solve'`` or ``'simplex_lstsq'``, the one
        used), ``confusion`` (``'hard'`` or ``'soft'``), ``clipped``
        (classes whose weight was negative; empty for ``'simplex_lstsq'``)
        and, for ``'simplex_lstsq'``, ``residual`` (``|M pi - mu_t|``).

    Raises:
        ValueError: A class without validation sample, predictions of two
            kinds, or every weight <= 0.
    """
    _check_positive(max_condition, 'max_condition')
    c = num_classes
    soft = val_pred.is_floating_point()
    if soft != target_pred.is_floating_point():
        raise ValueError('val_pred and target_pred must both be hard '
                         'classes (integers) or both class probabilities '
                         f'(floats), got {val_pred.dtype} and '
                         f'{target_pred.dtype}')
    val_labels = val_labels.long().cpu()
    if soft:
        if val_pred.shape != (
                len(val_labels),
                c) or target_pred.dim() != 2 or target_pred.shape[1] != c:
            raise ValueError(
                f'soft predictions must be (M, {c}) and (N, {c}) class '
                f'probabilities, got {tuple(val_pred.shape)} and '
                f'{tuple(target_pred.shape)}')
        probs = val_pred.detach().double().cpu()
        onehot = F.one_hot(val_labels, c).double()
        joint = probs.t() @ onehot / len(val_labels)
        mu = target_pred.detach().double().cpu().mean(dim=0)
    else:
        val_pred = val_pred.long().cpu()
        target_pred = target_pred.long().cpu()
        joint = torch.bincount(
            val_pred * c + val_labels, minlength=c * c).view(c, c).double()
        joint /= len(val_labels)
        mu = torch.bincount(
            target_pred, minlength=c).double() / len(target_pred)
    pi_val = joint.sum(dim=0)
    absent = (pi_val == 0).nonzero().flatten().tolist()
    if absent:
        raise ValueError(
            'BBSE needs validation samples of every class, but val_labels '
            f'has none of class(es) {absent[:10]}; use method=\'em\' or a '
            'validation set with every class')
    sv = torch.linalg.svdvals(joint)
    cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else float('inf')
    info: Dict[str, object] = dict(
        condition=cond, confusion='soft' if soft else 'hard')
    if not cond <= max_condition:
        never = (joint.sum(dim=1) == 0).nonzero().flatten().tolist()
        hint = (f'; class(es) {never[:10]} are never predicted on the '
                'validation set' if never else '')
        warnings.warn(
            'BBSE: the validation confusion matrix is singular or '
            f'ill-conditioned (condition number {cond:.3g} > max_condition='
            f'{max_condition:g}{hint}); solved by least squares on the '
            'simplex instead', RuntimeWarning)
        per_class = joint / pi_val
        # A small pull towards pi_val (no shift, as RLLS shrinks towards)
        # picks one minimiser where M is singular.
        ridge = 1e-3 * float(torch.linalg.matrix_norm(per_class, 2))**2
        prior, steps = simplex_least_squares(per_class, mu, ridge, pi_val)
        info.update(
            solver='simplex_lstsq',
            clipped=[],
            residual=float((per_class @ prior - mu).norm()),
            lstsq_steps=steps)
        return prior / prior.sum(), info
    w = torch.linalg.solve(joint, mu)
    clipped = (w < 0).nonzero().flatten().tolist()
    prior = w.clamp(min=0) * pi_val
    if not prior.sum() > 0:
        raise ValueError('BBSE: every importance weight came out <= 0; the '
                         'target predictions do not fit the validation '
                         'confusion matrix (use method=\'em\')')
    info.update(solver='solve', clipped=clipped)
    return prior / prior.sum(), info


def estimate_target_prior(target_logits: Tensor,
                          val_logits: Optional[Tensor] = None,
                          val_labels: Optional[Tensor] = None,
                          method: str = 'em',
                          calibration: str = 'bcts',
                          source_prior: Optional[Union[str, PriorLike]] = None,
                          tol: float = 1e-6,
                          max_iter: int = 1000,
                          max_condition: float = 1e6,
                          confusion: str = 'hard',
                          return_info: bool = False):
    """Estimate the class prior of unlabelled target data.

    The logits are calibrated on the labelled validation set first
    (``calibration``). EM needs the source prior ``pi_s``, the prior the
    scores it is given hold under:

    - ``'bcts'``: its per-class bias is fitted on the validation labels, so
      the calibrated scores hold under the validation labels' prior: the
      mean calibrated validation posterior (equal to the label frequencies
      at the fit's optimum; uniform for a balanced validation set);
    - ``'temperature'`` and ``'none'`` leave the prior the logits target,
      which only the caller knows: the training prior for a plain CE model,
      uniform for NPE-LA / post-hoc LA / Balanced Softmax at ``alpha = tau
      = 1``, ``pi_train^(1 - tau)`` for post-hoc LA at ``tau``; pass it as
      ``source_prior`` (``'uniform'`` for the uniform one).

    Args:
        target_logits (Tensor): (N, C) logits of the target samples (or
            pixels): NPE-LA / post-hoc LA logits as the model predicts from
            them, or any classifier's.
        val_logits (Tensor, optional): (M, C) logits of labelled validation
            samples; needed by 'bcts', 'temperature' and 'bbse'.
        val_labels (Tensor, optional): (M,) their classes.
        method (str): 'em' or 'bbse'. Defaults to 'em'.
        calibration (str): 'bcts', 'temperature' or 'none'. Defaults to
            'bcts'. BBSE's estimate with hard confusion does not depend on
            it (the raw logits' argmax is used); soft confusion uses the
            calibrated probabilities.
        source_prior (str | Sequence[float] | Tensor, optional): ``pi_s`` of
            the logits for ``calibration='none'`` / ``'temperature'`` (EM
            needs it), or ``'uniform'``. Refused with ``'bcts'``, whose
            scores hold under the validation labels' prior.
        tol (float): EM's tolerance on the estimated L1 distance to the
            fixed point. Defaults to 1e-6.
        max_iter (int): EM's iteration limit. Defaults to 1000.
        max_condition (float): BBSE's largest condition number solved
            directly (above it: least squares on the simplex). Defaults to
            1e6.
        confusion (str): BBSE: ``'hard'`` (argmax predictions, Lipton et
            al.) or ``'soft'`` (calibrated probabilities). Defaults to
            'hard'.
        return_info (bool): Also return a dict with the calibration, the
            source prior (and ``source_prior_kind``) and the method's
            diagnostics (EM: ``converged``, ``iterations``; BBSE:
            ``solver``, ``confusion``). Defaults to False.

    Returns:
        Tensor | tuple[Tensor, dict]: The estimated target prior, float64
        (C,), summing to 1 (and the info dict). EM that stops at
        ``max_iter`` warns (:class:`LabelShiftConvergenceWarning`) and
        reports ``converged=False`` in the info.

    Raises:
        ValueError: Among others, EM with ``calibration='none'`` or
            ``'temperature'`` and no ``source_prior``, or a
            ``source_prior`` with ``'bcts'``.
    """
    check_method(method)
    check_calibration(calibration)
    if confusion not in CONFUSIONS:
        raise ValueError(f'confusion must be one of {CONFUSIONS}, got '
                         f'{confusion!r}')
    target = check_logits(target_logits, 'target_logits').detach()
    c = target.shape[1]
    has_val = val_logits is not None or val_labels is not None
    if has_val:
        if val_logits is None or val_labels is None:
            raise ValueError('val_logits and val_labels must be given '
                             'together, got only one of them')
        val = check_logits(val_logits, 'val_logits', c).detach()
        labels = check_labels(val_labels, val.shape[0], c)
    needs_val = calibration != 'none' or method == 'bbse'
    if needs_val and not has_val:
        why = (f"calibration={calibration!r}"
               if calibration != 'none' else "method='bbse'")
        raise ValueError(f'{why} needs labelled validation data: pass '
                         'val_logits and val_labels (or use '
                         "method='em', calibration='none' with the "
                         'source_prior of the logits)')
    if calibration == 'bcts' and source_prior is not None:
        raise ValueError(
            "source_prior is the prior of uncalibrated or temperature-scaled "
            "logits; after calibration='bcts' the scores hold under the "
            "validation labels' prior, which is used (got source_prior="
            f'{source_prior!r})')
    if method == 'em' and calibration != 'bcts' and source_prior is None:
        raise ValueError(
            f"method='em' with calibration={calibration!r} needs "
            'source_prior, the prior the logits hold under: the training '
            'prior for a plain CE model, \'uniform\' for NPE-LA / post-hoc '
            'LA / Balanced Softmax at full correction; or use '
            "calibration='bcts' with validation data")
    cal = (
        fit_calibration(val, labels, calibration)
        if has_val else identity_calibration(c))
    if isinstance(source_prior, str):
        if source_prior != 'uniform':
            raise ValueError("source_prior must be 'uniform' or C "
                             f'probabilities, got {source_prior!r}')
        source = torch.full((c, ), 1.0 / c, dtype=torch.float64)
        kind = 'uniform'
    elif source_prior is not None:
        source = check_prior(source_prior, c, 'source_prior')
        kind = 'given'
    elif has_val:
        source = mean_posterior(cal(val))
        kind = 'validation'
    else:
        source = torch.full((c, ), 1.0 / c, dtype=torch.float64)
        kind = 'uniform'
    info: Dict[str, object] = dict(
        method=method,
        calibration=cal.as_dict(),
        source_prior=source,
        source_prior_kind=kind)
    if method == 'em':
        prior, extra = em_prior(cal(target), source, tol, max_iter)
    elif confusion == 'soft':
        prior, extra = bbse_prior(
            F.softmax(cal(val).double(), dim=1), labels,
            F.softmax(cal(target).double(), dim=1), c, max_condition)
    else:
        prior, extra = bbse_prior(
            val.argmax(dim=1), labels, target.argmax(dim=1), c, max_condition)
    info.update(extra)
    return (prior, info) if return_info else prior


def adjust_to_prior(logits: Tensor,
                    target_prior: PriorLike,
                    source_prior: Optional[PriorLike] = None) -> Tensor:
    """Bayes' rule for a new prior: ``logits + log pi_t - log pi_s``.

    Args:
        logits (Tensor): (N, C) or (N, C, H, W) logits whose softmax holds
            under ``source_prior``.
        target_prior (Sequence[float] | Tensor): ``pi_t``, (C,), summing to
            1; a zero entry makes its class impossible (``-inf``).
        source_prior (Sequence[float] | Tensor, optional): ``pi_s``, (C,),
            all > 0. Defaults to uniform.

    Returns:
        Tensor: The adjusted logits, the shape and dtype of ``logits``;
        exactly ``logits`` when the two priors are equal.
    """
    if logits.dim() < 2:
        raise ValueError('logits must be (N, C) or (N, C, H, W), got shape '
                         f'{tuple(logits.shape)}')
    c = logits.shape[1]
    target = check_prior(target_prior, c, 'target_prior')
    if source_prior is None:
        source = torch.full((c, ), 1.0 / c, dtype=torch.float64)
    else:
        source = check_prior(source_prior, c, 'source_prior')
    if (source <= 0).any():
        raise ValueError('source_prior must be > 0 for every class, got a '
                         f'zero at class {int((source <= 0).nonzero()[0])}')
    if torch.equal(target, source):
        return logits
    return logits + class_axis(target.log() - source.log(), logits)


class OnlinePriorEstimator:
    """Target prior of a stream, updated batch by batch (online EM).

    Each :meth:`update` folds the batch's E-step posteriors into
    exponentially forgotten sums (incremental EM)::

        S <- l^n * S + sum_i q_i(pi),   W <- l^n * W + n,   pi = S / W

    with ``q_i(pi) ∝ p_s(y|x_i) pi / pi_s`` (Saerens et al. 2002's E-step),
    ``n`` the batch's samples and ``l = 1 - 1 / memory`` the forgetting per
    **sample**, so that the estimate averages over about ``memory`` samples
    whatever the batch size. Within a batch the E- and M-steps alternate
    ``em_steps`` times on the new posteriors (the forgotten sums of earlier
    batches held fixed), so that a batch moves the estimate as far as EM
    would rather than one slow step.

    Only without forgetting (``memory=None``), and on a stationary stream,
    does the estimate approach the EM (maximum-likelihood) fixed point of
    the samples seen, slowly (each batch's posteriors are computed once,
    with the estimate of their time); with a finite memory it follows a
    change of prior within about ``memory`` samples and keeps fluctuating
    around the recent samples' fixed point.

    Args:
        num_classes (int): C.
        source_prior (Sequence[float] | Tensor, optional): ``pi_s`` of the
            (calibrated) logits; uniform by default.
        calibration (Calibration, optional): Applied to every batch (from
            :func:`fit_calibration`). Defaults to None (logits as given).
        memory (float, optional): Samples the estimate averages over, >= 1;
            None: no forgetting. Defaults to None.
        em_steps (int): E/M alternations per batch, >= 1. Defaults to 10.

    Attributes:
        prior (Tensor): The current estimate, float64 (C,).
        num_batches (int): Batches seen.
        num_samples (int): Samples seen.
    """

    def __init__(self,
                 num_classes: int,
                 source_prior: Optional[PriorLike] = None,
                 calibration: Optional[Calibration] = None,
                 memory: Optional[float] = None,
                 em_steps: int = 10) -> None:
        if (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                or num_classes < 2):
            raise ValueError('num_classes must be an int >= 2, got '
                             f'{num_classes!r}')
        if memory is not None and (isinstance(memory, bool)
                                   or not isinstance(memory, Real)
                                   or not math.isfinite(memory) or memory < 1):
            raise ValueError('memory must be a number of samples >= 1 or '
                             f'None (no forgetting), got {memory!r}')
        self.num_classes = num_classes
        if source_prior is None:
            source_prior = torch.full((num_classes, ), 1.0 / num_classes)
        self.source_prior = check_prior(source_prior, num_classes,
                                        'source_prior')
        if (self.source_prior <= 0).any():
            raise ValueError('source_prior must be > 0 for every class')
        self.calibration = calibration or identity_calibration(num_classes)
        self.memory = None if memory is None else float(memory)
        self.em_steps = _check_positive(em_steps, 'em_steps', integer=True)
        self.reset()

    def reset(self) -> None:
        """Forget everything: the estimate is the source prior again."""
        self.prior = self.source_prior.clone()
        self._sum = torch.zeros(self.num_classes, dtype=torch.float64)
        self._weight = 0.0
        self.num_batches = 0
        self.num_samples = 0

    def update(self, logits: Tensor) -> Tensor:
        """Fold in a batch of (N, C) logits; returns the new estimate (C,).
        """
        z = check_logits(logits, 'logits', self.num_classes).detach()
        z = self.calibration(z.double())
        n = z.shape[0]
        lam = 1.0 if self.memory is None else (1 - 1 / self.memory)**n
        log_source = self.source_prior.log().to(z.device)
        weight = lam * self._weight + n
        prior = self.prior
        for _ in range(self.em_steps):
            offset = prior.to(z.device).log() - log_source
            batch = F.softmax(z + offset, dim=1).sum(dim=0).cpu()
            prior = (lam * self._sum + batch) / weight
        self._sum = lam * self._sum + batch
        self._weight = weight
        self.prior = prior
        self.num_batches += 1
        self.num_samples += n
        return self.prior.clone()

    def adjust(self, logits: Tensor) -> Tensor:
        """(N, C) calibrated logits adjusted to the current estimate."""
        z = self.calibration(check_logits(logits, 'logits', self.num_classes))
        return adjust_to_prior(z, self.prior, self.source_prior)


def expected_calibration_error(probs: Tensor,
                               labels: Tensor,
                               num_bins: int = 15) -> float:
    """Expected calibration error of the top-1 confidence, in [0, 1].

    ``sum_b |B_b| / N * |accuracy(B_b) - confidence(B_b)|`` over
    ``num_bins`` equal-width confidence bins (upper edges inclusive).

    Args:
        probs (Tensor): (N, C) class probabilities.
        labels (Tensor): (N,) true classes.
        num_bins (int): Defaults to 15.
    """
    _check_positive(num_bins, 'num_bins', integer=True)
    probs = check_logits(probs, 'probs').double()
    labels = check_labels(labels, probs.shape[0], probs.shape[1], 'labels')
    conf, pred = probs.max(dim=1)
    hit = (pred.cpu() == labels.cpu()).double()
    conf = conf.cpu()
    # Bin b holds confidences in (b / B, (b + 1) / B]; 0 goes to bin 0.
    bins = (conf * num_bins).ceil().long().clamp(1, num_bins) - 1
    acc = torch.bincount(bins, weights=hit, minlength=num_bins)
    confidence = torch.bincount(bins, weights=conf, minlength=num_bins)
    return float((acc - confidence).abs().sum() / probs.shape[0])
