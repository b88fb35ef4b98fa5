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

C = 4
MEANS = torch.tensor([[0., 0.], [2.2, 0.], [0., 2.2], [2.2, 2.2]])
UNIFORM = torch.full((C, ), 1.0 / C, dtype=torch.float64)
# Miscalibration of a deep net: overconfident and biased per class.
SCALE, BIAS = 3.0, torch.tensor([1.0, -0.5, 0.0, -1.5], dtype=torch.float64)


def sample(prior, n: int, seed: int):
    """n points of the Gaussian mixture with class prior ``prior`` and their
    exact log posterior under a uniform prior (up to a constant)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.multinomial(
        torch.as_tensor(prior, dtype=torch.float64), n, True, generator=g)
    x = MEANS[y] + torch.randn(n, 2, generator=g)
    logits = -((x[:, None] - MEANS[None])**2).sum(-1).double() / 2
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
    # Without validation data EM runs on the logits as they are, from a
    # uniform source prior (exact posteriors here).
    plain = estimate_target_prior(data['t_z'], calibration='none')
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
    none = estimate_target_prior(bad(z0), calibration='none')
    bcts = estimate_target_prior(bad(z0), val_z, val_y, calibration='bcts')
    assert l1(bcts, UNIFORM) < 0.03
    assert l1(none, UNIFORM) > 0.1 and l1(none,
                                          UNIFORM) > 4 * l1(bcts, UNIFORM)
    # A real shift: calibration gives the better estimate and accuracy.
    zt, yt, pi_t = bad(data['t_z']), data['t_y'], data['pi_t']
    none = estimate_target_prior(zt, calibration='none')
    temp = estimate_target_prior(zt, val_z, val_y, calibration='temperature')
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


def test_online_estimate_follows_a_switch_halfway():
    pi_a, pi_b = shifted(10.0), shifted(10.0, 'backward')
    stream = [
        sample(pi_a if k < 30 else pi_b, 1000, 100 + k)[0] for k in range(60)
    ]
    est = OnlinePriorEstimator(C, forgetting=0.8)
    trace = [est.update(z) for z in stream]
    assert est.num_batches == 60
    assert l1(trace[29], pi_a) < 0.05 and l1(trace[29], pi_b) > 1
    assert l1(trace[-1], pi_b) < 0.05 and l1(trace[-1], pi_a) > 1
    # It moves towards the new prior batch after batch.
    after = [l1(p, pi_b) for p in trace[30:45:5]]
    assert after == sorted(after, reverse=True)
    # Without forgetting every batch counts alike and the first half holds
    # the estimate back: it ends between the two priors.
    flat = OnlinePriorEstimator(C, forgetting=1.0)
    for z in stream:
        flat.update(z)
    assert pi_b[0] < flat.prior[0] < pi_a[0]
    assert l1(flat.prior, pi_b) > 3 * l1(trace[-1], pi_b)
    z, y = sample(pi_b, 2000, 999)
    assert accuracy(est.adjust(z), y) > accuracy(z, y)
    est.reset()
    assert torch.equal(est.prior, UNIFORM) and est.num_batches == 0


def test_em_reports_non_convergence(data):
    with pytest.warns(LabelShiftConvergenceWarning, match='did not converge'):
        prior, info = em_prior(data['t_z'], UNIFORM, tol=1e-12, max_iter=2)
    assert info['converged'] is False and info['iterations'] == 2
    assert float(prior.sum()) == pytest.approx(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter('error', LabelShiftConvergenceWarning)
        _, info = em_prior(data['t_z'], UNIFORM)
    assert info['converged']


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


def test_bbse_refuses_a_singular_confusion_matrix():
    val_labels = torch.tensor([0, 0, 1, 1, 2, 2])
    # Class 2 is never predicted: the confusion matrix has a zero row.
    val_pred = torch.tensor([0, 0, 1, 1, 1, 0])
    with pytest.raises(ValueError, match=r'singular.*\[2\] are never'):
        bbse_prior(val_pred, val_labels, torch.tensor([0, 1]), 3)
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
    with pytest.raises(ValueError, match='forgetting must be'):
        OnlinePriorEstimator(C, forgetting=0)
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
