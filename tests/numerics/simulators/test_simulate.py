"""Finite-N one-pass SGD simulator: exact update, replica batching, ODE limit, bad input."""

import numpy as np
import pytest

from derive.model.model import HE3, PAPER
from numerics import SimulationError, compare_ode_simulation, simulate
from numerics.simulators.common import replica_seeds, replica_streams
from numerics.simulators.weights import weights_from_overlaps


def _one_step_by_hand(W0, W_star, x, xi, *, eta, delta, kappa, p, k):
    N = x.size
    lam, nu = W0 @ x / np.sqrt(N), W_star @ x / np.sqrt(N)
    y = (nu**2).sum() / k + np.sqrt(delta) * xi
    f = (lam**2).sum() / p
    E = (2 / p) * (y - f) * lam  # paper model: E_j = (2/p)(y - f) lambda_j
    return W0 + (eta / np.sqrt(N)) * np.outer(E, x) - (eta * kappa / N) * W0


@pytest.mark.parametrize("delta, kappa", [(0.0, 0.0), (0.3, 0.2)])
def test_one_step_equals_hand_computed_update(delta, kappa):
    N, p, k, eta, seed = 50, 3, 2, 0.7, 11
    model = PAPER.with_noise(delta).with_weight_decay(kappa)
    rng = np.random.default_rng(0)
    W0, W_star = rng.standard_normal((p, N)), rng.standard_normal((k, N))
    result = simulate(N=N, p=p, k=k, eta=eta, alpha_max=1 / N, model=model, seed=seed, record=[0, 1 / N],
                      W0=W0, W_star=W_star, progress=False)
    streams = replica_streams(seed, 1)[0]
    x, xi = streams.inputs.standard_normal(N), streams.noise.standard_normal()
    W1 = _one_step_by_hand(W0, W_star, x, xi, eta=eta, delta=delta, kappa=kappa, p=p, k=k)
    np.testing.assert_allclose(result.extra["W"], W1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.Q[1], W1 @ W1.T / N, rtol=1e-12)
    np.testing.assert_allclose(result.R[1], W1 @ W_star.T / N, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(result.Q[0], W0 @ W0.T / N, rtol=1e-12)
    np.testing.assert_allclose(result.T, W_star @ W_star.T / N, rtol=1e-12)


def test_default_start_is_orthonormal_with_random_overlaps():
    N, p, k = 400, 4, 2
    result = simulate(N=N, p=p, k=k, eta=0.5, alpha_max=1 / N, seed=3, replicas=50, progress=False)
    np.testing.assert_allclose(result.Q[:, 0], np.broadcast_to(np.eye(p), (50, p, p)), atol=1e-12)
    np.testing.assert_allclose(result.T, np.broadcast_to(np.eye(k), (50, k, k)), atol=1e-12)
    R0 = result.R[:, 0]
    # Var R0 = q0/N: 400 entries, the sample variance has relative error sqrt(2/400) = 7 %
    assert abs(R0.var() * N - 1.0) < 5 * np.sqrt(2 / R0.size)


def test_batched_replicas_equal_single_runs():
    kwargs = dict(N=120, p=3, k=2, eta=0.5, alpha_max=3.0, record=25, progress=False,
                  model=PAPER.with_noise(0.1))
    batched = simulate(seed=7, replicas=3, **kwargs)
    seeds = replica_seeds(7, 3)
    for i in range(3):
        alone = simulate(seed=[seeds[i]], replicas=1, **kwargs)
        np.testing.assert_allclose(batched.Q[i], alone.Q, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(batched.R[i], alone.R, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(batched.risk[i], alone.risk, rtol=1e-10)
    assert not np.allclose(batched.risk[0], batched.risk[1])


def _distances(model, eta, alpha_max, q0, r0, Ns, replicas):
    # macroscopic, N-independent initial overlaps: with the Eq. 8 start (R0 ~ N^-1/2) the SGD noise
    # during the plateau is as large as R0 itself, so the escape time fluctuates by O(1) at every N
    direction = np.random.default_rng(0).standard_normal((4, 2))
    R0 = r0 * direction / np.abs(direction).max()
    means, errors = [], []
    for N in Ns:
        W0, W_star = weights_from_overlaps(q0 * np.eye(4), R0, N=N, seed=5)
        sim = simulate(N=N, p=4, k=2, eta=eta, alpha_max=alpha_max, model=model, seed=2, replicas=replicas,
                       record=40, W0=W0, W_star=W_star, progress=False)
        distance = compare_ode_simulation(sim).risk_distance
        means.append(distance.mean())
        errors.append(distance.std(ddof=1) / np.sqrt(replicas))
    return np.array(means), np.array(errors)


@pytest.mark.parametrize(
    "model, eta, alpha_max, q0, r0, largest",
    [(None, 0.5, 15.0, 1.0, 0.3, 0.03),  # paper model, risk 0.73 -> 0.03: through the escape
     (HE3, 0.05, 10.0, 0.5, 0.2, 0.01)],  # non-quadratic, risk ~1.7
    ids=["paper", "he3"],
)
@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_finite_size_convergence_to_the_ode(model, eta, alpha_max, q0, r0, largest):
    Ns = np.array([100, 400, 1600])
    means, errors = _distances(model, eta, alpha_max, q0, r0, Ns, replicas=16)
    assert np.all(np.diff(means) < 0), means
    # weighted least squares in log-log; the log of a mean has standard error se / mean
    log_errors = errors / means
    weights = 1 / log_errors**2
    x, y = np.log(Ns), np.log(means)
    xm, ym = np.average(x, weights=weights), np.average(y, weights=weights)
    slope = np.sum(weights * (x - xm) * (y - ym)) / np.sum(weights * (x - xm) ** 2)
    slope_error = 1 / np.sqrt(np.sum(weights * (x - xm) ** 2))
    assert abs(slope + 0.5) < 4 * slope_error, (slope, slope_error, means)
    assert means[-1] < largest, means


def test_ode_restarted_from_a_later_recorded_alpha():
    sim = simulate(N=200, p=3, k=2, eta=0.3, alpha_max=8.0, seed=3, record=30, progress=False)
    i = 12
    later = compare_ode_simulation(sim, from_alpha=float(sim.alpha[i]))
    np.testing.assert_array_equal(later.ode.alpha, sim.alpha[i:])
    # the restarted ODE starts exactly at the measured overlaps of that time
    np.testing.assert_allclose(later.ode.R[0], sim.R[i], rtol=0, atol=1e-15)
    np.testing.assert_allclose(later.ode.Q[0], sim.Q[i], rtol=0, atol=1e-12)
    assert later.ode.risk.shape == sim.risk[i:].shape
    # the gap is measured from the restart on: here it includes the restart point, where it vanishes
    assert abs(later.ode.risk[0] - sim.risk[i]) < 1e-12
    with pytest.raises(ValueError, match="from_alpha"):
        compare_ode_simulation(sim, from_alpha=float(sim.alpha[-1]) + 1)


def test_divergence_raises_with_alpha():
    with pytest.raises(SimulationError, match="alpha = "):
        simulate(N=100, p=2, k=1, eta=5.0, alpha_max=20.0, seed=0, progress=False)


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(N=2), "N must be >= p \\+ k"),
        (dict(eta=0.0), "eta must be positive"),
        (dict(eta=-1.0), "eta must be positive"),
        (dict(replicas=0), "replicas"),
        (dict(W0=np.ones((3, 20))), "W0 must have shape"),
        (dict(W_star=np.ones((2, 21))), "W_star must have shape"),
        (dict(W0=np.full((2, 20), np.nan)), "W0 contains NaN"),
        (dict(W_star=np.full((1, 20), np.inf)), "W_star contains NaN"),
        (dict(alpha_max=0.0), "alpha_max"),
        (dict(record=[0.0, 5.0]), "record goes beyond"),
        (dict(seed=[1, 2]), "seed is a sequence"),
    ],
)
def test_bad_input(changes, match):
    kwargs = dict(N=20, p=2, k=1, eta=0.5, alpha_max=1.0, seed=0, progress=False)
    kwargs.update(changes)
    with pytest.raises(ValueError, match=match):
        simulate(**kwargs)
