"""Label-shift core on data with known class densities: Gaussian classes
whose Bayes posterior is exact, so the true target prior, the Bayes-optimal
accuracy for it and the effect of (mis)calibration are known."""
import json
import math
import warnings

import pytest
import torch

from mmnpe.functional import (LabelShiftConvergenceWarning,
                              OnlinePriorEstimator, adjust_to_prior,
                              bbse_prior, em_prior, estimate_target_prior,
                              expected_calibration_error, fit_calibration,
                              label_shift_profile, load_target_prior)
from mmnpe.functional.label_shift import (PRIOR_FLOOR, floor_prior,
                                          simplex_least_squares)

C = 4
# SQUAREM's steps on the boundary case (50 measured; plain EM needs about
# 1 100 to the same tolerance) and plain EM's reference length on the
# boundary and flat cases (benchmarks/label_shift_em_steps.py prints both).
MAX_BOUNDARY_STEPS = 100
REF_STEPS = 20000
MEANS = torch.tensor([[0., 0.], [2.2, 0.], [0., 2.2], [2.2, 2.2]])
UNIFORM = torch.full((C, ), 1.0 / C, dtype=torch.float64)
# Miscalibration of a deep net: overconfident and biased per class.
SCALE, BIAS = 3.0, torch.tensor([1.0, -0.5, 0.0, -1.5], dtype=torch.float64)


def sample(prior, n: int, seed: int, means=MEANS):
    """n points of the Gaussian mixture with class prior ``prior`` and their
    exact log posterior under a uniform prior (up to a constant)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.multinomial(
        torch.as_tensor(prior, dtype=torch.float64), n, True, generator=g)
    x = means[y] + torch.randn(n, 2, generator=g)
    logits = -((x[:, None] - means[None])**2).sum(-1).double() / 2
    return logits, y


def shifted(rho=10.0, direction='forward'):
    w = label_shift_profile(C, rho, direction)
    return w / w.sum()


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    # Small tensors: a second intra-op thread only waits on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def data():
    val_z, val_y = sample(UNIFORM, 4000, 1)
    pi_t = shifted(10.0)
    t_z, t_y = sample(pi_t, 20000, 2)
    return dict(val_z=val_z, val_y=val_y, pi_t=pi_t, t_z=t_z, t_y=t_y)


def l1(a, b) -> float:
    return float((torch.as_tensor(a) - torch.as_tensor(b)).abs().sum())


def accuracy(logits, y) -> float:
    return float((logits.argmax(1) == y).double().mean())


def test_em_recovers_the_target_prior_bbse_looser(data):
    em, info = estimate_target_prior(
        data['t_z'],
        data['val_z'],
        data['val_y'],
        method='em',
        calibration='bcts',
        return_info=True)
    assert info['converged'] and info['iterations'] > 1
    assert em.dtype == torch.float64 and em.shape == (C, )
    assert float(em.sum()) == pytest.approx(1.0)
    assert l1(em, data['pi_t']) < 0.03
    # The source prior is the mean calibrated posterior of the balanced
    # validation set: uniform, not anything from training counts.
    assert l1(info['source_prior'], UNIFORM) < 0.02
    bbse, info = estimate_target_prior(
        data['t_z'],
        data['val_z'],
        data['val_y'],
        method='bbse',
        return_info=True)
    assert l1(bbse, data['pi_t']) < 0.1
    assert info['condition'] < 100
    # Without validation data EM runs on the logits as they are, from the
    # prior they hold under (uniform for these exact posteriors).
    plain = estimate_target_prior(
        data['t_z'], calibration='none', source_prior='uniform')
    assert l1(plain, data['pi_t']) < 0.03


def test_adapted_predictions_reach_the_bayes_optimal_accuracy(data):
    z, y, pi_t = data['t_z'], data['t_y'], data['pi_t']
    bayes = accuracy(adjust_to_prior(z, pi_t), y)
    uniform = accuracy(z, y)
    est = estimate_target_prior(z, data['val_z'], data['val_y'])
    adapted = accuracy(adjust_to_prior(z, est), y)
    assert bayes > uniform + 0.03
    assert adapted >= bayes - 0.005
    # The backward shift too.
    pi_b = shifted(10.0, 'backward')
    zb, yb = sample(pi_b, 20000, 3)
    est_b = estimate_target_prior(zb, data['val_z'], data['val_y'])
    assert l1(est_b, pi_b) < 0.03
    assert accuracy(adjust_to_prior(zb, est_b),
                    yb) >= accuracy(adjust_to_prior(zb, pi_b), yb) - 0.005


def test_calibration_matters_on_miscalibrated_logits(data):
    """EM without calibration on overconfident, biased logits finds a shift
    that is not there; with BCTS it does not."""

    def bad(z):
        return z * SCALE + BIAS

    val_z, val_y = bad(data['val_z']), data['val_y']
    # No shift at all: the target is balanced like the validation set.
    z0, _ = sample(UNIFORM, 20000, 4)
    none = estimate_target_prior(
        bad(z0), calibration='none', source_prior='uniform')
    bcts = estimate_target_prior(bad(z0), val_z, val_y, calibration='bcts')
    assert l1(bcts, UNIFORM) < 0.03
    assert l1(none, UNIFORM) > 0.1 and l1(none,
                                          UNIFORM) > 4 * l1(bcts, UNIFORM)
    # A real shift: calibration gives the better estimate and accuracy.
    zt, yt, pi_t = bad(data['t_z']), data['t_y'], data['pi_t']
    none = estimate_target_prior(
        zt, calibration='none', source_prior='uniform')
    temp = estimate_target_prior(
        zt, val_z, val_y, calibration='temperature', source_prior='uniform')
    bcts, info = estimate_target_prior(
        zt, val_z, val_y, calibration='bcts', return_info=True)
    assert l1(bcts, pi_t) < 0.03
    assert l1(none, pi_t) > 3 * l1(bcts, pi_t)
    assert l1(temp, pi_t) > l1(bcts, pi_t)
    fitted = fit_calibration(val_z, val_y, 'bcts')
    bayes = accuracy(adjust_to_prior(data['t_z'], pi_t), yt)
    calibrated = accuracy(adjust_to_prior(fitted(zt), bcts), yt)
    assert calibrated >= bayes - 0.005
    assert calibrated > accuracy(adjust_to_prior(zt, none), yt)
    cal = info['calibration']
    assert cal['temperature'] == pytest.approx(SCALE, rel=0.05)
    assert cal['nll_after'] < cal['nll_before']


def test_bcts_recovers_temperature_and_bias(data):
    z, y = data['val_z'], data['val_y']
    cal = fit_calibration(z * SCALE + BIAS, y, 'bcts')
    assert cal.temperature == pytest.approx(SCALE, rel=0.05)
    want = -(BIAS - BIAS.mean()) / SCALE
    torch.testing.assert_close(cal.bias, want, atol=0.06, rtol=0)
    temp = fit_calibration(z * SCALE, y, 'temperature')
    assert temp.temperature == pytest.approx(SCALE, rel=0.05)
    assert not temp.bias.any()
    none = fit_calibration(z, y, 'none')
    assert none(z) is z


def test_no_shift_leaves_predictions_as_they_were(data):
    z0, _ = sample(UNIFORM, 20000, 5)
    est = estimate_target_prior(z0, data['val_z'], data['val_y'])
    assert l1(est, UNIFORM) < 0.03
    agree = (adjust_to_prior(z0, est).argmax(1) == z0.argmax(1)).double()
    assert float(agree.mean()) > 0.99
    # Equal priors: the logits themselves, bit for bit.
    z32 = z0.float()
    assert adjust_to_prior(z32, UNIFORM) is z32
    p = shifted(5.0)
    assert torch.equal(adjust_to_prior(z32, p, p), z32)


def test_adjust_to_prior_closed_form_and_dense_shape():
    z = torch.zeros(1, 2, 3, 3)
    out = adjust_to_prior(z, [0.75, 0.25], [0.5, 0.5])
    torch.testing.assert_close(
        out.softmax(1)[0, :, 1, 1], torch.tensor([0.75, 0.25]))
    assert out.dtype == z.dtype and out.shape == z.shape
    # A zero target entry makes its class impossible.
    out = adjust_to_prior(torch.zeros(2, 2), [1.0, 0.0])
    assert torch.isinf(out[:, 1]).all() and (out.argmax(1) == 0).all()


def _switching_stream(n: int = 3000):
    """n samples of one prior, then n of the reversed one."""
    pi_a, pi_b = shifted(10.0), shifted(10.0, 'backward')
    za, _ = sample(pi_a, n, 100)
    zb, _ = sample(pi_b, n, 101)
    return pi_a, pi_b, torch.cat([za, zb])


def test_online_estimate_follows_a_switch_halfway():
    pi_a, pi_b, z = _switching_stream()
    est = OnlinePriorEstimator(C, memory=600)
    trace = [est.update(chunk) for chunk in z.split(100)]
    assert est.num_batches == 60 and est.num_samples == 6000
    assert l1(trace[29], pi_a) < 0.1 and l1(trace[29], pi_b) > 1
    assert l1(trace[-1], pi_b) < 0.1 and l1(trace[-1], pi_a) > 1
    # It moves towards the new prior batch after batch.
    after = [l1(p, pi_b) for p in trace[30:45:5]]
    assert after == sorted(after, reverse=True)
    # Without forgetting every sample counts alike and the first half holds
    # the estimate back: it ends between the two priors.
    flat = OnlinePriorEstimator(C)
    for chunk in z.split(100):
        flat.update(chunk)
    assert pi_b[0] < flat.prior[0] < pi_a[0]
    assert l1(flat.prior, pi_b) > 3 * l1(trace[-1], pi_b)
    # On a stationary stream it approaches the EM fixed point of all the
    # samples, slowly: each batch's posteriors are computed once, with the
    # estimate of their time (L1 0.062 after 4 000 samples, 0.033 after
    # 24 000 here).
    zs, _ = sample(pi_b, 24000, 7)
    whole, _ = em_prior(zs, UNIFORM, tol=1e-9, max_iter=10000)
    flat.reset()
    errors = []
    for k, chunk in enumerate(zs.split(100)):
        flat.update(chunk)
        if k in (39, 239):
            errors.append(l1(flat.prior, whole))
    assert errors[1] < errors[0] and errors[1] < 0.04, errors
    zt, y = sample(pi_b, 2000, 999)
    assert accuracy(est.adjust(zt), y) > accuracy(zt, y)
    est.reset()
    assert torch.equal(est.prior, UNIFORM) and est.num_batches == 0


def test_online_memory_is_in_samples_whatever_the_batch_size():
    """The same memory (600 samples) at batch 1, 8 and 64: the error over
    the second half of a switching stream is about the same (a memory in
    batches made it 8 and 64 times longer)."""
    pi_a, pi_b, z = _switching_stream()
    errors, lags = {}, {}
    for batch in (1, 8, 64):
        est = OnlinePriorEstimator(C, memory=600, em_steps=3)
        seen, trace = 0, []
        for chunk in z.split(batch):
            est.update(chunk)
            seen += len(chunk)
            trace.append((seen, l1(est.prior, pi_b), l1(est.prior, pi_a)))
        late = [b for n, b, _ in trace if n > 4500]
        errors[batch] = sum(late) / len(late)
        # Samples after the switch until the estimate is nearer pi_b.
        lags[batch] = next(n for n, b, a in trace if n > 3000 and b < a) - 3000
    assert max(errors.values()) < 0.15, errors
    assert max(errors.values()) < 1.6 * min(errors.values()), errors
    assert max(lags.values()) - min(lags.values()) <= 128, lags


def test_em_reports_non_convergence(data):
    with pytest.warns(LabelShiftConvergenceWarning, match='did not converge'):
        prior, info = em_prior(data['t_z'], UNIFORM, tol=1e-12, max_iter=2)
    assert info['converged'] is False and info['iterations'] == 2
    assert float(prior.sum()) == pytest.approx(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter('error', LabelShiftConvergenceWarning)
        _, info = em_prior(data['t_z'], UNIFORM)
    assert info['converged']


def _plain_em(z, source, steps: int):
    """Plain EM (no acceleration), ``steps`` steps: the reference."""
    post = torch.softmax(z.double(), dim=1)
    p = source.clone()
    for _ in range(steps):
        w = p / source
        p = w * ((post @ w).reciprocal() @ post) / len(post)
    return p


def _loglik(z, prior, source=UNIFORM) -> float:
    post = torch.softmax(z.double(), dim=1)
    return float((post @ (prior / source)).log().mean())


def test_squarem_on_a_boundary_optimum():
    """Overlapping classes (means x 0.5), a target of classes 0 and 1
    only: the maximum-likelihood prior has class 2 at 0, on the simplex's
    boundary, where EM's extrapolations leave the simplex. With
    step-halving SQUAREM reaches it in a fraction of plain EM's steps (a
    step 10 times too long is halved over and over: thousands)."""
    z, _ = sample([0.5, 0.5, 0.0, 0.0], 4000, 5, MEANS * 0.5)
    ref = _plain_em(z, UNIFORM, REF_STEPS)
    assert float(ref[2]) < 1e-50
    prior, info = em_prior(z, UNIFORM)
    assert info['converged'] and info['extrapolations'] > 0
    assert info['iterations'] <= MAX_BOUNDARY_STEPS, info['iterations']
    path = info['loglik_path']
    assert all(b >= a for a, b in zip(path, path[1:]))
    assert _loglik(z, prior) >= _loglik(z, ref) - 1e-9
    assert info['loglik'] == pytest.approx(_loglik(z, prior), abs=1e-12)
    assert l1(prior, ref) < 2e-6, l1(prior, ref)


def test_backtracking_where_extrapolations_leave_the_simplex():
    """Barely separated classes (means x 0.3), a target of two classes:
    the long extrapolations leave the simplex; halving them keeps SQUAREM
    fast (178 steps measured; falling back to a plain EM step instead takes
    about 3 000)."""
    z, _ = sample([0.7, 0.3, 0.0, 0.0], 4000, 6, MEANS * 0.3)
    _, info = em_prior(z, UNIFORM, max_iter=5000)
    assert info['converged'] and info['iterations'] < 400, info['iterations']
    path = info['loglik_path']
    assert all(b >= a for a, b in zip(path, path[1:]))


def test_em_stops_near_the_optimum_on_a_flat_likelihood():
    """Barely separated classes (means x 0.25): the likelihood is flat,
    EM contracts at a rate near 1 and one step's change is tiny far from
    the maximum. The stopping rule scales it by the contraction rate, so
    the estimate is within about tol of a long plain-EM run, and the
    extrapolations never lower the likelihood."""
    z, _ = sample([0.4, 0.3, 0.2, 0.1], 4000, 5, MEANS * 0.25)
    ref = _plain_em(z, UNIFORM, REF_STEPS)
    prior, info = em_prior(z, UNIFORM, tol=1e-6)
    assert info['converged'] and info['extrapolations'] > 0
    path = info['loglik_path']
    assert all(b >= a for a, b in zip(path, path[1:]))
    assert l1(prior, ref) < 2e-6, l1(prior, ref)


def test_calibration_reports_its_iteration_limit(data):
    z, y = data['val_z'] * SCALE + BIAS, data['val_y']
    with pytest.warns(
            LabelShiftConvergenceWarning,
            match='calibration stopped at its limit'):
        cal = fit_calibration(z, y, 'bcts', max_iter=2)
    assert not cal.converged and cal.iterations == 2
    assert cal.as_dict()['converged'] is False
    with warnings.catch_warnings():
        warnings.simplefilter('error', LabelShiftConvergenceWarning)
        cal = fit_calibration(z, y, 'bcts')
    assert cal.converged and 2 < cal.iterations < 100


def test_near_zero_priors_are_floored():
    c = 150
    p = torch.full((c, ), 1.0 / (c - 1), dtype=torch.float64)
    p[0] = 1e-106
    p = p / p.sum()
    floored = floor_prior(p)
    assert float(floored.min()) == pytest.approx(PRIOR_FLOOR / c, rel=1e-6)
    assert float(floored.sum()) == pytest.approx(1.0)
    assert float(floored.log().min()) > -20
    assert torch.equal(floor_prior(UNIFORM), UNIFORM)
    with pytest.warns(RuntimeWarning, match=r'class\(es\) \[0\]'):
        _, loaded = load_target_prior(p.tolist(), c)
    torch.testing.assert_close(loaded, floored)


def test_em_matches_quapy_emq(data):
    """QuaPy's EMQ (a maintained quantification library) on the same
    posteriors."""
    pytest.importorskip('quapy')
    from quapy.method.aggregative import EMQ
    z = data['t_z']
    source = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    # Posteriors that hold under ``source``.
    post = torch.softmax(z + source.log(), dim=1)
    ours, _ = em_prior(post.log(), source, tol=1e-12)
    theirs, _ = EMQ.EM(source.numpy(), post.numpy(), epsilon=1e-10)
    torch.testing.assert_close(
        ours, torch.as_tensor(theirs, dtype=torch.float64), atol=1e-6, rtol=0)


def test_bbse_falls_back_to_simplex_least_squares_and_says_so():
    val_labels = torch.tensor([0, 0, 1, 1, 2, 2])
    # Class 2 is never predicted: the confusion matrix has a zero row.
    val_pred = torch.tensor([0, 0, 1, 1, 1, 0])
    with pytest.warns(RuntimeWarning, match=r'\[2\] are never predicted'):
        prior, info = bbse_prior(val_pred, val_labels,
                                 torch.tensor([0, 1, 1, 1]), 3)
    assert info['solver'] == 'simplex_lstsq' and info['condition'] > 1e6
    assert float(prior.sum()) == pytest.approx(1.0) and (prior >= 0).all()
    # M = P(yhat | y) has the zero row of class 2 and mu = (.25, .75, 0):
    # priors on a line fit exactly; the small pull towards pi_val picks
    # one, at a residual of the pull's order.
    assert info['residual'] < 1e-2 and info['lstsq_steps'] < 5000
    with pytest.raises(ValueError, match='none of class'):
        bbse_prior(val_pred, torch.tensor([0, 0, 1, 1, 1, 1]),
                   torch.tensor([0, 1]), 3)
    # Well-posed: the exact solution, negatives clipped.
    val_pred = torch.tensor([0, 0, 1, 1, 2, 2])
    prior, info = bbse_prior(val_pred, val_labels, torch.tensor([0, 0, 0, 2]),
                             3)
    torch.testing.assert_close(
        prior, torch.tensor([0.75, 0.0, 0.25], dtype=torch.float64))
    assert info['condition'] == pytest.approx(1.0)
    assert info['solver'] == 'solve' and info['confusion'] == 'hard'


def test_simplex_least_squares_is_the_constrained_minimum():
    g = torch.Generator().manual_seed(0)
    m = torch.rand(5, 5, generator=g, dtype=torch.float64)
    truth = torch.tensor([0.5, 0.3, 0.2, 0.0, 0.0], dtype=torch.float64)
    p, _ = simplex_least_squares(m, m @ truth)
    torch.testing.assert_close(p, truth, atol=1e-6, rtol=0)
    # Outside the simplex: no feasible point does better than the result.
    target = torch.rand(5, generator=g, dtype=torch.float64)
    p, _ = simplex_least_squares(m, target)
    best = float((m @ p - target).norm())
    for _ in range(200):
        q = torch.distributions.Dirichlet(torch.ones(5)).sample().double()
        assert float((m @ q - target).norm()) >= best - 1e-9


def test_bbse_with_an_imbalanced_validation_set():
    """w = pi_t / pi_val: the estimate is w * pi_val, which only a
    validation set whose prior is not uniform tells apart from w."""
    pi_val = shifted(8.0, 'backward')
    pi_t = shifted(8.0)
    val_z, val_y = sample(pi_val, 40000, 11)
    t_z, _ = sample(pi_t, 40000, 12)
    for confusion in ('hard', 'soft'):
        est, info = estimate_target_prior(
            t_z,
            val_z,
            val_y,
            method='bbse',
            calibration='bcts',
            confusion=confusion,
            return_info=True)
        assert info['confusion'] == confusion and info['solver'] == 'solve'
        assert l1(est, pi_t) < 0.05, confusion
    with pytest.raises(ValueError, match='confusion must be one of'):
        estimate_target_prior(t_z, val_z, val_y, 'bbse', confusion='fuzzy')


def test_adjust_to_prior_from_a_non_uniform_source():
    """Bayes' rule p_t ∝ p_s * pi_t / pi_s, closed form: p_s = (.5, .5)
    under pi_s = (.8, .2), target (.5, .5): (.5/.8, .5/.2) normalised is
    (.2, .8)."""
    out = adjust_to_prior(torch.zeros(1, 2), [0.5, 0.5], [0.8, 0.2])
    torch.testing.assert_close(
        out.softmax(1), torch.tensor([[0.2, 0.8]]), atol=1e-6, rtol=0)
    # EM from that source leaves posteriors that already fit it alone.
    z, _ = sample(UNIFORM, 20000, 13)
    source = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    prior, _ = em_prior(z + source.log(), source)
    assert l1(prior, UNIFORM) < 0.03


def test_source_prior_of_a_plain_ce_model_is_the_training_prior():
    """A CE model's scores are posteriors under the training prior (here
    exact: 10 Gaussian classes, training rho 50); EM from a uniform source
    on them, as without calibration before, is far off; from the training
    prior it recovers the backward-10 target."""
    c = 10
    g = torch.Generator().manual_seed(3)
    means = 2.5 * torch.randn(c, 2, generator=g).double()
    w = label_shift_profile(c, 50.0)
    pi_train = w / w.sum()
    w = label_shift_profile(c, 10.0, 'backward')
    pi_t = w / w.sum()
    y = torch.multinomial(pi_t, 20000, True, generator=g)
    x = means[y] + torch.randn(20000, 2, generator=g).double()
    ce_logits = -((x[:, None] - means[None])**2).sum(-1) / 2 + pi_train.log()
    good = estimate_target_prior(
        ce_logits, calibration='none', source_prior=pi_train)
    bad = estimate_target_prior(
        ce_logits, calibration='none', source_prior='uniform')
    assert l1(good, pi_t) < 0.08
    assert l1(bad, pi_t) > 1.0
    bayes = accuracy(adjust_to_prior(ce_logits, pi_t, pi_train), y)
    assert accuracy(adjust_to_prior(ce_logits, good, pi_train),
                    y) > bayes - 0.01
    # Nothing to guess from: the prior must be given.
    with pytest.raises(ValueError, match='needs source_prior'):
        estimate_target_prior(ce_logits, calibration='none')
    with pytest.raises(ValueError, match="after calibration='bcts'"):
        estimate_target_prior(
            ce_logits,
            ce_logits[:100],
            y[:100],
            calibration='bcts',
            source_prior=pi_train)


def _z(n=8, c=C):
    return torch.randn(n, c)


@pytest.mark.parametrize('kwargs, match', [
    (dict(target_logits=torch.empty(0, C)), 'target_logits must hold'),
    (dict(target_logits=torch.tensor([[0.0, float('nan')]])),
     'target_logits must be finite'),
    (dict(target_logits=_z(), method='mlls'), 'method must be one of'),
    (dict(target_logits=_z(), calibration='vs'), 'calibration must be one of'),
    (dict(target_logits=_z()), "calibration='bcts' needs labelled"),
    (dict(target_logits=_z(), calibration='none',
          method='bbse'), "method='bbse' needs labelled"),
    (dict(target_logits=_z(), val_logits=_z()), 'given together'),
    (dict(
        target_logits=_z(),
        val_logits=_z(c=3),
        val_labels=torch.zeros(
            8, dtype=torch.long)), 'val_logits must have 4 classes'),
    (dict(
        target_logits=_z(), val_logits=_z(), val_labels=torch.full(
            (8, ), 4)), r'val_labels must lie in'),
    (dict(
        target_logits=_z(),
        val_logits=_z(),
        val_labels=torch.zeros(
            7, dtype=torch.long)), r'val_labels must have shape \(8,\)'),
    (dict(target_logits=_z(), calibration='none',
          source_prior=[0.5, 0.5]), 'source_prior must have 4 entries'),
    (dict(
        target_logits=_z(),
        calibration='none',
        source_prior=[0.5, 0.6, -0.1, 0.0
                      ]), r'source_prior\[2\] must be >= 0'),
    (dict(
        target_logits=_z(),
        calibration='none',
        source_prior=[0.3, 0.3, 0.3, 0.3]), 'source_prior must sum to 1'),
])
def test_bad_inputs_name_the_argument(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        estimate_target_prior(**kwargs)


def test_bad_prior_and_online_arguments():
    with pytest.raises(ValueError, match='target_prior must sum to 1'):
        adjust_to_prior(torch.zeros(2, 2), [0.2, 0.2])
    with pytest.raises(ValueError, match='memory must be a number'):
        OnlinePriorEstimator(C, memory=0.5)
    with pytest.raises(ValueError, match='logits must have 4 classes'):
        OnlinePriorEstimator(C).update(torch.zeros(3, 2))
    with pytest.raises(ValueError, match='tol must be'):
        em_prior(_z().double(), UNIFORM, tol=-1)
    with pytest.raises(ValueError, match='rho must be a finite number >= 1'):
        label_shift_profile(C, 0.5)
    with pytest.raises(ValueError, match='direction must be one of'):
        label_shift_profile(C, 10, 'sideways')


def test_shift_profile_endpoints():
    fwd = label_shift_profile(5, 10.0, 'forward')
    torch.testing.assert_close(fwd[[0, -1]],
                               torch.tensor([1.0, 0.1], dtype=torch.float64))
    assert (fwd[1:] < fwd[:-1]).all()
    torch.testing.assert_close(
        label_shift_profile(5, 10.0, 'backward'), fwd.flip(0))
    assert torch.equal(label_shift_profile(5, 1.0), torch.ones(5).double())


def test_expected_calibration_error_closed_form():
    # Confidence 0.9 everywhere, half right: ECE = |0.5 - 0.9| = 0.4.
    probs = torch.tensor([[0.9, 0.1]] * 4)
    labels = torch.tensor([0, 0, 1, 1])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4)
    # Exact posteriors are calibrated.
    z, y = sample(UNIFORM, 20000, 7)
    assert expected_calibration_error(z.softmax(1), y) < 0.02
    assert expected_calibration_error((3 * z).softmax(1), y) > 0.05


def test_target_prior_values(tmp_path):
    assert load_target_prior(None, 3) == ('uniform', None)
    assert load_target_prior('uniform', 3) == ('uniform', None)
    assert load_target_prior('source', 3) == ('source', None)
    mode, prior = load_target_prior([2, 1, 1], 3)
    assert mode == 'given'
    torch.testing.assert_close(
        prior, torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64))
    for i, content in enumerate(([2, 1, 1], dict(prior=[0.5, 0.25, 0.25]),
                                 dict(kind='pixels', counts=[20, 10, 10]))):
        path = tmp_path / f'p{i}.json'
        path.write_text(json.dumps(content))
        mode, p = load_target_prior(str(path), 3)
        assert mode == 'given' and torch.allclose(p, prior)
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(values=[1, 2, 3])))
    for value, match in (('unifrom', 'no such file'), ([1, 1], '3 entries'),
                         ([1, -1, 1], r'target_prior\[1\] must be >= 0'),
                         ([1, 0,
                           1], r'target_prior\[1\] is 0'), ([0, 0,
                                                             0], 'all zero'),
                         ([1, math.nan,
                           1], 'must be a finite'), (str(bad),
                                                     '"prior" or "counts"')):
        with pytest.raises(ValueError, match=match):
            load_target_prior(value, 3)
