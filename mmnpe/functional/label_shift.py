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
- ``method='bbse'``: black-box shift estimation (Lipton, Wang & Smola,
  *Detecting and Correcting for Label Shift with Black Box Predictors*,
  ICML 2018, Sec. 4): solve ``C w = mu_t`` for ``w = pi_t / pi_s``;
- calibration ``'bcts'`` (bias-corrected temperature scaling: one
  temperature and one bias per class, fitted by NLL on labelled validation
  logits; Alexandari, Kundaje & Shrikumar, *Maximum Likelihood with
  Bias-Corrected Calibration is Hard-To-Beat at Label Shift Adaptation*,
  ICML 2020, Sec. 3), ``'temperature'`` (one temperature) or ``'none'``.

Logits are (N, C): N samples or pixels, C classes. Priors are (C,) tensors
that sum to 1. Estimation runs in float64.
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


class LabelShiftConvergenceWarning(RuntimeWarning):
    """EM stopped at its iteration limit before reaching its tolerance."""


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
    return 'given', counts / counts.sum()


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
    """
    kind: str
    temperature: float
    bias: Tensor
    nll_before: Optional[float] = None
    nll_after: Optional[float] = None

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
            nll_after=self.nll_after)


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
    set the bias also absorbs a mis-scaled prior correction.

    Args:
        val_logits (Tensor): (M, C) logits of labelled validation samples.
        val_labels (Tensor): (M,) their classes in [0, C).
        calibration (str): 'bcts', 'temperature' or 'none'. Defaults to
            'bcts'.
        max_iter (int): L-BFGS iterations. Defaults to 100.

    Returns:
        Calibration: The fitted map.
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
    opt = torch.optim.LBFGS(
        params,
        lr=1,
        max_iter=max_iter,
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
    log_t, bias = log_t.detach(), bias.detach()
    if not (torch.isfinite(log_t) and torch.isfinite(bias).all()):
        raise RuntimeError(f'{calibration} calibration diverged (T = '
                           f'{float(log_t.exp())}); check val_logits')
    # The biases are defined up to a constant, which softmax ignores.
    bias = bias - bias.mean()
    with torch.no_grad():
        after = float(F.cross_entropy(z * torch.exp(-log_t) + bias, y))
    return Calibration(calibration, float(log_t.exp()), bias.cpu(), before,
                       after)


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


def em_prior(logits: Tensor,
             source_prior: Tensor,
             tol: float = 1e-6,
             max_iter: int = 1000) -> Tuple[Tensor, Dict[str, object]]:
    """Maximum-likelihood target prior by EM (Saerens et al. 2002, Sec. 3).

    ``pi^(0) = pi_s``; E-step ``q_i ∝ p_s(y|x_i) * pi^(k) / pi_s``
    (computed as ``softmax(logits_i + log pi^(k) - log pi_s)``); M-step
    ``pi^(k+1) = mean_i q_i``; until the L1 change of one EM step is below
    ``tol``. EM's fixed-point iteration slows to a crawl when a class's
    prior heads towards zero, so it is accelerated by SQUAREM (Varadhan &
    Roland, Scand. J. Statist. 35, 2008: a squared extrapolation of two EM
    steps, kept only when it is a valid prior whose likelihood is no worse
    than one EM step's); that changes the path, not the fixed point.

    Args:
        logits (Tensor): (N, C) calibrated logits of the target samples:
            ``softmax`` of a row is ``p_s(y|x_i)``. Their softmax is kept
            in float64 (8 N C bytes) while EM runs.
        source_prior (Tensor): ``pi_s``, (C,), the prior those posteriors
            hold under; all entries > 0.
        tol (float): L1 change that stops the iteration. Defaults to 1e-6.
        max_iter (int): Limit on EM steps (E- and M-step pairs). Defaults
            to 1000.

    Returns:
        tuple[Tensor, dict]: The estimate, float64 (C,), and ``iterations``
        (EM steps), ``converged`` and ``change`` (the last L1 change). When
        the limit is reached first, ``converged`` is False and a
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
    p1, _ = _em_map(posteriors, p0, source)
    steps = 1
    change = float((p1 - p0).abs().sum())
    while steps < max_iter:
        p2, loglik1 = _em_map(posteriors, p1, source)
        steps += 1
        change = float((p2 - p1).abs().sum())
        if change < tol:
            return p2.cpu(), dict(
                iterations=steps, converged=True, change=change)
        r = p1 - p0
        v = (p2 - p1) - r
        nv = float(v.norm())
        alpha = min(-float(r.norm()) / nv, -1.0) if nv > 0 else -1.0
        # alpha = -1 is plain EM (p2).
        cand = p0 - 2 * alpha * r + alpha**2 * v
        if (alpha < -1 and steps < max_iter
                and bool(torch.isfinite(cand).all()) and bool(
                    (cand > 0).all())):
            cand = cand / cand.sum()
            c1, loglik_cand = _em_map(posteriors, cand, source)
            steps += 1
            if loglik_cand >= loglik1:
                p0, p1 = cand, c1
                continue
        if steps >= max_iter:
            p1 = p2
            break
        p0 = p2
        p1, _ = _em_map(posteriors, p0, source)
        steps += 1
    warnings.warn(
        f'EM did not converge: the L1 change of the prior was still '
        f'{change:.3g} > tol={tol:g} after max_iter={max_iter} EM steps; '
        'the estimate is returned as it is (raise max_iter or tol)',
        LabelShiftConvergenceWarning,
        stacklevel=2)
    return p1.cpu(), dict(iterations=steps, converged=False, change=change)


def bbse_prior(val_pred: Tensor,
               val_labels: Tensor,
               target_pred: Tensor,
               num_classes: int,
               max_condition: float = 1e6) -> Tuple[Tensor, Dict]:
    """Black-box shift estimation (Lipton et al. 2018, Sec. 4).

    ``C[i, j] = P_val(yhat = i, y = j)`` from the hard predictions on the
    labelled validation set, ``mu_t(i) = P_target(yhat = i)``; solve
    ``C w = mu_t`` for ``w = pi_t / pi_val``, clip negative weights at 0 and
    return ``pi_t ∝ w * pi_val`` (``pi_val`` the validation label
    frequencies).

    Args:
        val_pred (Tensor): (M,) predicted classes of the validation samples.
        val_labels (Tensor): (M,) their true classes.
        target_pred (Tensor): (N,) predicted classes of the target samples.
        num_classes (int): C.
        max_condition (float): Largest accepted condition number of ``C``.
            Defaults to 1e6.

    Returns:
        tuple[Tensor, dict]: The estimate, float64 (C,), and ``condition``
        (of ``C``) and ``clipped`` (classes whose weight was negative).

    Raises:
        ValueError: A class without validation sample, or a singular or
            ill-conditioned ``C`` (too few validation samples per class, or
            a class the model never predicts).
    """
    _check_positive(max_condition, 'max_condition')
    c = num_classes
    val_pred = val_pred.long().cpu()
    val_labels = val_labels.long().cpu()
    target_pred = target_pred.long().cpu()
    joint = torch.bincount(
        val_pred * c + val_labels, minlength=c * c).view(c, c).double()
    joint /= len(val_labels)
    pi_val = joint.sum(dim=0)
    absent = (pi_val == 0).nonzero().flatten().tolist()
    if absent:
        raise ValueError(
            'BBSE needs validation samples of every class, but val_labels '
            f'has none of class(es) {absent[:10]}; use method=\'em\' or a '
            'validation set with every class')
    mu = torch.bincount(target_pred, minlength=c).double() / len(target_pred)
    sv = torch.linalg.svdvals(joint)
    cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else float('inf')
    if not cond <= max_condition:
        never = (joint.sum(dim=1) == 0).nonzero().flatten().tolist()
        hint = (f' (class(es) {never[:10]} are never predicted on the '
                'validation set)' if never else '')
        raise ValueError(
            'BBSE: the validation confusion matrix is singular or '
            f'ill-conditioned: condition number {cond:.3g} > max_condition='
            f'{max_condition:g}{hint}; use method=\'em\', more validation '
            'samples per class, or a larger max_condition')
    w = torch.linalg.solve(joint, mu)
    clipped = (w < 0).nonzero().flatten().tolist()
    prior = w.clamp(min=0) * pi_val
    if not prior.sum() > 0:
        raise ValueError('BBSE: every importance weight came out <= 0; the '
                         'target predictions do not fit the validation '
                         'confusion matrix (use method=\'em\')')
    return prior / prior.sum(), dict(condition=cond, clipped=clipped)


def estimate_target_prior(target_logits: Tensor,
                          val_logits: Optional[Tensor] = None,
                          val_labels: Optional[Tensor] = None,
                          method: str = 'em',
                          calibration: str = 'bcts',
                          source_prior: Optional[PriorLike] = None,
                          tol: float = 1e-6,
                          max_iter: int = 1000,
                          max_condition: float = 1e6,
                          return_info: bool = False):
    """Estimate the class prior of unlabelled target data.

    The logits are calibrated on the labelled validation set first
    (``calibration``); the source prior ``pi_s`` is then the one the
    calibrated scores hold under: the mean calibrated posterior on the
    validation set (uniform for a balanced one), not the training counts.

    Args:
        target_logits (Tensor): (N, C) logits of the target samples (or
            pixels): NPE-LA / post-hoc LA logits as the model predicts from
            them, or any classifier's.
        val_logits (Tensor, optional): (M, C) logits of labelled validation
            samples; needed by 'bcts', 'temperature' and 'bbse'.
        val_labels (Tensor, optional): (M,) their classes.
        method (str): 'em' or 'bbse'. Defaults to 'em'.
        calibration (str): 'bcts', 'temperature' or 'none'. Defaults to
            'bcts'. BBSE's estimate does not depend on it (any fixed
            predictor will do; the raw logits' argmax is used).
        source_prior (Sequence[float] | Tensor, optional): ``pi_s``; by
            default the mean calibrated validation posterior, or uniform
            without validation data (NPE-LA and post-hoc LA logits target
            equally likely classes).
        tol (float): EM's tolerance on the L1 change. Defaults to 1e-6.
        max_iter (int): EM's iteration limit. Defaults to 1000.
        max_condition (float): BBSE's largest accepted condition number.
            Defaults to 1e6.
        return_info (bool): Also return a dict with the calibration, the
            source prior and the method's diagnostics (EM: ``converged``,
            ``iterations``). Defaults to False.

    Returns:
        Tensor | tuple[Tensor, dict]: The estimated target prior, float64
        (C,), summing to 1 (and the info dict). EM that stops at
        ``max_iter`` warns (:class:`LabelShiftConvergenceWarning`) and
        reports ``converged=False`` in the info.
    """
    check_method(method)
    check_calibration(calibration)
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
                         "method='em', calibration='none')")
    cal = (
        fit_calibration(val, labels, calibration)
        if has_val else identity_calibration(c))
    if source_prior is not None:
        source = check_prior(source_prior, c, 'source_prior')
    elif has_val:
        source = mean_posterior(cal(val))
    else:
        source = torch.full((c, ), 1.0 / c, dtype=torch.float64)
    info: Dict[str, object] = dict(
        method=method, calibration=cal.as_dict(), source_prior=source)
    if method == 'em':
        prior, extra = em_prior(cal(target), source, tol, max_iter)
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

        S <- lambda * S + sum_i q_i(pi),   W <- lambda * W + n,   pi = S / W

    with ``q_i(pi) ∝ p_s(y|x_i) pi / pi_s`` (Saerens et al. 2002's E-step).
    Within a batch the E- and M-steps alternate ``em_steps`` times on the
    new posteriors (the forgotten sums of earlier batches held fixed), so
    that a batch moves the estimate as far as EM would rather than one
    slow step. On a stationary stream the estimate settles at the EM
    (maximum-likelihood) fixed point; after a change of prior it follows
    with a memory of about ``1 / (1 - lambda)`` batches (``forgetting=1``
    weighs every sample seen alike).

    Args:
        num_classes (int): C.
        source_prior (Sequence[float] | Tensor, optional): ``pi_s`` of the
            (calibrated) logits; uniform by default.
        calibration (Calibration, optional): Applied to every batch (from
            :func:`fit_calibration`). Defaults to None (logits as given).
        forgetting (float): lambda in (0, 1]. Defaults to 0.9.
        em_steps (int): E/M alternations per batch, >= 1. Defaults to 10.

    Attributes:
        prior (Tensor): The current estimate, float64 (C,).
        num_batches (int): Batches seen.
    """

    def __init__(self,
                 num_classes: int,
                 source_prior: Optional[PriorLike] = None,
                 calibration: Optional[Calibration] = None,
                 forgetting: float = 0.9,
                 em_steps: int = 10) -> None:
        if (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                or num_classes < 2):
            raise ValueError('num_classes must be an int >= 2, got '
                             f'{num_classes!r}')
        if (isinstance(forgetting, bool) or not isinstance(forgetting, Real)
                or not 0 < forgetting <= 1):
            raise ValueError('forgetting must be a number in (0, 1], got '
                             f'{forgetting!r}')
        self.num_classes = num_classes
        if source_prior is None:
            source_prior = torch.full((num_classes, ), 1.0 / num_classes)
        self.source_prior = check_prior(source_prior, num_classes,
                                        'source_prior')
        if (self.source_prior <= 0).any():
            raise ValueError('source_prior must be > 0 for every class')
        self.calibration = calibration or identity_calibration(num_classes)
        self.forgetting = float(forgetting)
        self.em_steps = _check_positive(em_steps, 'em_steps', integer=True)
        self.reset()

    def reset(self) -> None:
        """Forget everything: the estimate is the source prior again."""
        self.prior = self.source_prior.clone()
        self._sum = torch.zeros(self.num_classes, dtype=torch.float64)
        self._weight = 0.0
        self.num_batches = 0

    def update(self, logits: Tensor) -> Tensor:
        """Fold in a batch of (N, C) logits; returns the new estimate (C,).
        """
        z = check_logits(logits, 'logits', self.num_classes).detach()
        z = self.calibration(z.double())
        lam = self.forgetting
        log_source = self.source_prior.log().to(z.device)
        weight = lam * self._weight + z.shape[0]
        prior = self.prior
        for _ in range(self.em_steps):
            offset = prior.to(z.device).log() - log_source
            batch = F.softmax(z + offset, dim=1).sum(dim=0).cpu()
            prior = (lam * self._sum + batch) / weight
        self._sum = lam * self._sum + batch
        self._weight = weight
        self.prior = prior
        self.num_batches += 1
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
