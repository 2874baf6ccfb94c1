"""The diffusion approximation of finite-N SGD (``numerics.simulate_sde``).

Checked (the packed noise covariance itself: tests/numerics/noise/test_diffusion.py):

* in law against the exact overlap chain (``simulate(..., method="overlaps")``) at N = 2000 from an
  uninformed start: escape-time distributions agree by a two-sample KS test, and the same test rejects
  the SDE with the noise amplitude halved (N -> 4N);
* Var(R) on the plateau scales as 1/N (N = 1e4 ... 1e6);
* the mean follows the ODE at large N, with first-order convergence in the step;
* a replica's trajectory is the same alone or batched; every recorded C is positive semi-definite
  (and would not be without the projection); bad input raises clear errors.

Measured (fixed seeds, this file's parameters, the adaptive default step): escape times SDE against
the exact chain KS p = 0.32 (D = 0.102; medians 22.0 / 22.5, standard deviations 3.0 / 3.7, 200 and
150 replicas); with the noise halved KS p = 4e-23, the median delayed by 3.8 (ln 4 / (2 growth rate)
= 3.71).
The test sees a factor 2 in the noise amplitude, not a 20 % error (that shifts the escape by
0.36 standard deviations, below what 150 + 200 samples resolve at p < 0.01). Slope of
log Var(R) against log N: -0.995 +- 0.031 (former fixed step). Mean minus ODE (alpha <= 6): 1.2e-3
at the adaptive default step (mean step 0.059), 5.8e-4 with a fixed step a quarter of that mean
(first order).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy import stats

import numerics
from derive.model.model import PAPER, Model
from numerics import SimulationError, integrate, simulate, simulate_sde
from numerics.analyses.plateau import plateau_coefficients
from numerics.core.validation import covariance, min_relative_eigenvalue
from numerics.simulators.common import replica_seeds

# the escape comparison: paper model, p = 2, k = 1, uninformed start
P, K, ETA, N_ESCAPE, Q_START = 2, 1, 0.1, 2000, 0.5
ALPHA_ESCAPE = 40.0


# ---------------------------------------------------------------------------------------------
# in law: escape from the plateau against the exact overlap chain
# ---------------------------------------------------------------------------------------------


def _escape_times(result, level: float, alpha_max: float) -> np.ndarray:
    """First alpha with risk < level (linear interpolation); alpha_max where it never falls (censored)."""
    risk = np.atleast_2d(result.risk)
    times = np.full(risk.shape[0], alpha_max)
    for b, curve in enumerate(risk):
        below = np.flatnonzero(curve < level)
        if below.size and below[0] > 0:
            i = below[0]
            t0, t1 = result.alpha[i - 1], result.alpha[i]
            times[b] = t0 + (curve[i - 1] - level) / (curve[i - 1] - curve[i]) * (t1 - t0)
    return times


@pytest.fixture(scope="module")
def escape_samples():
    level = 0.75 * plateau_coefficients(P, K, ETA).risk_plateau
    Q0, R0, T = Q_START * np.eye(P), np.zeros((P, K)), np.eye(K)
    grid = np.linspace(0.0, ALPHA_ESCAPE, 321)
    exact = simulate(N=N_ESCAPE, p=P, k=K, eta=ETA, alpha_max=ALPHA_ESCAPE, seed=11, replicas=150, record=grid,
                     method="overlaps", Q0=Q0, R0=R0, T=T, progress=False)
    sde = simulate_sde(Q0, R0, T, N=N_ESCAPE, eta=ETA, alpha_max=ALPHA_ESCAPE, replicas=200, seed=12, record=grid,
                       progress=False)
    quiet = simulate_sde(Q0, R0, T, N=4 * N_ESCAPE, eta=ETA, alpha_max=ALPHA_ESCAPE, replicas=200, seed=13,
                         record=grid, progress=False)
    return {name: _escape_times(result, level, ALPHA_ESCAPE) for name, result in
            (("exact", exact), ("sde", sde), ("quiet", quiet))}


def test_escape_times_agree_with_the_exact_chain(escape_samples):
    exact, sde = escape_samples["exact"], escape_samples["sde"]
    # nearly every replica escapes within the window, so the censoring at alpha_max is immaterial
    assert np.mean(exact < ALPHA_ESCAPE) > 0.97 and np.mean(sde < ALPHA_ESCAPE) > 0.97
    assert stats.ks_2samp(exact, sde).pvalue > 0.01
    assert abs(np.median(exact) - np.median(sde)) < 1.0


def test_escape_time_comparison_has_the_power_to_see_half_the_noise(escape_samples):
    # the noise amplitude halved (N -> 4N) delays the escape by ln(4) / (2 growth rate), about one standard
    # deviation of the escape time: the same KS test must reject it
    exact, quiet = escape_samples["exact"], escape_samples["quiet"]
    growth = plateau_coefficients(P, K, ETA).growth_R
    assert np.median(quiet) - np.median(exact) == pytest.approx(np.log(4) / (2 * growth), rel=0.4)
    assert stats.ks_2samp(exact, quiet).pvalue < 0.01


# ---------------------------------------------------------------------------------------------
# scaling with N, the mean, batching, the cone, errors
# ---------------------------------------------------------------------------------------------


def test_plateau_variance_of_R_scales_as_one_over_N():
    q_star = plateau_coefficients(P, K, ETA).q_star
    Ns = np.array([1e4, 1e5, 1e6])
    replicas = 200
    log_var, errors = [], []
    for i, N in enumerate(Ns):
        result = simulate_sde(q_star * np.eye(P), np.zeros((P, K)), np.eye(K), N=N, eta=ETA, alpha_max=5.0,
                              replicas=replicas, seed=100 + i, record=[5.0], progress=False)
        R = result.R[:, -1].reshape(replicas, -1)  # (replicas, p k)
        log_var.append(np.log(np.mean(R**2)))  # E R = 0 on the plateau by symmetry
        errors.append(np.sqrt(2 / (replicas - 1)))  # standard error of a log variance (conservative)
    x = np.log(Ns)
    slope, _ = np.polyfit(x, log_var, 1)
    slope_error = float(np.max(errors)) / np.sqrt(np.sum((x - x.mean()) ** 2))
    assert slope_error < 0.05
    assert abs(slope + 1) < 3 * slope_error


@pytest.mark.parametrize("second_order", [True, False])
def test_mean_follows_the_ode_at_large_N(second_order):
    Q0 = np.array([[0.8, 0.1], [0.1, 0.6]])
    R0 = np.array([[0.3], [0.2]])
    T = np.eye(1)
    grid = np.linspace(0.0, 6.0, 7)
    ode = integrate(Q0, R0, T, eta=ETA, alpha_max=6.0, alpha_eval=grid, second_order=second_order)

    def run(N, replicas, dalpha=None):
        return simulate_sde(Q0, R0, T, N=N, eta=ETA, alpha_max=6.0, replicas=replicas, seed=7, record=grid,
                            dalpha=dalpha, second_order=second_order, progress=False)

    def gap(Q, R):
        return max(np.max(np.abs(Q - ode.Q)), np.max(np.abs(R - ode.R)))

    noisy = run(1e6, 50)
    step = noisy.extra["dalpha"]
    coarse = gap(noisy.Q.mean(0), noisy.R.mean(0))
    finer = run(1e6, 50, step / 4)
    fine = gap(finer.Q.mean(0), finer.R.mean(0))
    assert coarse < 5e-3
    assert fine < 0.5 * coarse  # Euler-Maruyama: weak order one in the step
    # the gap is the discretisation's: the mean agrees with the noiseless scheme (N = 1e14) within its error
    quiet = run(1e14, 1)
    standard_error = max(np.max(noisy.Q.std(0)), np.max(noisy.R.std(0))) / np.sqrt(50)
    assert max(np.max(np.abs(noisy.Q.mean(0) - quiet.Q)), np.max(np.abs(noisy.R.mean(0) - quiet.R))) \
        < 5 * standard_error


def test_a_replica_is_the_same_alone_or_batched():
    model = PAPER.with_noise(sp.Rational(1, 5))
    seed, replicas = 2024, 3
    Q0, R0, T = 0.7 * np.eye(2), np.array([[0.05], [-0.02]]), np.eye(1)
    batched = simulate_sde(Q0, R0, T, N=500, eta=0.2, alpha_max=2.0, model=model, replicas=replicas, seed=seed,
                           record=7, progress=False)
    for i, sequence in enumerate(replica_seeds(seed, replicas)):
        alone = simulate_sde(Q0, R0, T, N=500, eta=0.2, alpha_max=2.0, model=model, seed=[sequence], record=7,
                             progress=False)
        np.testing.assert_allclose(alone.Q, batched.Q[i], rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(alone.R, batched.R[i], rtol=1e-10, atol=1e-13)
    # per-replica starts with a given step: the step does not depend on the batch either
    starts = np.stack([0.6 * np.eye(2), 0.8 * np.eye(2), np.eye(2)])
    batched = simulate_sde(starts, R0, T, N=500, eta=0.2, alpha_max=2.0, replicas=3, seed=seed, dalpha=0.05,
                           record=7, progress=False)
    alone = simulate_sde(starts[2], R0, T, N=500, eta=0.2, alpha_max=2.0, seed=[replica_seeds(seed, 3)[2]],
                         dalpha=0.05, record=7, progress=False)
    np.testing.assert_allclose(alone.R, batched.R[2], rtol=1e-10, atol=1e-13)
    # and different seeds give different paths
    assert np.max(np.abs(batched.R[0] - batched.R[1])) > 1e-3


def _near_the_boundary(N=50, replicas=40, seed=3):
    # students almost in the teacher span (S = Q - R R^T = 1e-3 I) at small N: a Gaussian step of the
    # diffusion often leaves the cone of positive semi-definite C
    R0 = np.array([[0.6], [0.4]])
    Q0 = R0 @ R0.T + 1e-3 * np.eye(2)
    return simulate_sde(Q0, R0, np.eye(1), N=N, eta=0.2, alpha_max=4.0, replicas=replicas, seed=seed, record=81,
                        progress=False)


def test_every_recorded_covariance_is_positive_semidefinite():
    result = _near_the_boundary()
    C = covariance(result.Q, result.R, result.T[:, None])
    assert np.min(min_relative_eigenvalue(C)) > -1e-12
    assert result.extra["projections"] > 0


def test_without_the_projection_the_cone_would_be_left(monkeypatch):
    # the check above can fail: with the projection switched off the same runs leave the cone
    import numerics.simulators.sde_scheme as sde_scheme

    monkeypatch.setattr(sde_scheme, "project_to_cone", lambda Q, R, T_pinv: 0)
    result = _near_the_boundary()
    C = covariance(result.Q, result.R, result.T[:, None])
    assert np.min(min_relative_eigenvalue(C)) < -1e-6


def test_result_layout_and_cost_independent_of_N():
    Q0, R0, T = 0.5 * np.eye(2), np.zeros((2, 1)), np.eye(1)
    one = simulate_sde(Q0, R0, T, N=1e4, eta=ETA, alpha_max=2.0, seed=1, dalpha=0.1, record=[0.0, 1.0, 2.0],
                       progress=False)
    assert one.Q.shape == (3, 2, 2) and one.R.shape == (3, 2, 1) and one.risk.shape == (3,) and one.T.shape == (1, 1)
    np.testing.assert_allclose(one.alpha, [0.0, 1.0, 2.0])
    assert one.nfev == 20 and one.extra["dalpha"] == pytest.approx(0.1)
    assert one.extra["method"] == "sde" and one.extra["N"] == 1e4 and one.model_name == "paper"
    assert set(one.extra) >= {"N", "dalpha", "steps", "replicas", "model", "method", "seconds", "projections"}
    np.testing.assert_allclose(one.risk, numerics.risk(one.Q, one.R, np.eye(1)))
    many = simulate_sde(Q0, R0, T, N=1e4, eta=ETA, alpha_max=2.0, seed=1, replicas=4, record=5, progress=False)
    assert many.Q.shape[:2] == (4, many.alpha.size) and many.T.shape == (4, 1, 1) and many.risk.shape[0] == 4
    # the default step is set by the drift, not by N (the noise criterion binds only at small N)
    huge = simulate_sde(Q0, R0, T, N=1e9, eta=ETA, alpha_max=2.0, seed=1, replicas=4, record=5, progress=False)
    assert huge.nfev == many.nfev
    # a step that does not divide alpha_max is shortened to a whole number of steps
    odd = simulate_sde(Q0, R0, T, N=1e4, eta=ETA, alpha_max=1.0, seed=1, dalpha=0.3, record=2, progress=False)
    assert odd.nfev == 4 and odd.extra["dalpha"] == pytest.approx(0.25) and odd.alpha[-1] == pytest.approx(1.0)


def test_divergence_names_the_alpha():
    with pytest.raises(SimulationError, match=r"alpha = [0-9.]+"):
        simulate_sde(np.eye(2), np.array([[0.5], [0.5]]), np.eye(1), N=1e4, eta=3.0, alpha_max=50.0, seed=0,
                     progress=False)


GOOD = dict(Q0=0.5 * np.eye(2), R0=np.zeros((2, 1)), T=np.eye(1))


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(N=0), "N"),
        (dict(N=0.5), "N"),
        (dict(N=float("nan")), "N"),
        (dict(N=float("inf")), "N"),
        (dict(N=True), "N"),
        (dict(eta=0.0), "eta"),
        (dict(eta=-1.0), "eta"),
        (dict(alpha_max=0.0), "alpha_max"),
        (dict(alpha_max=float("nan")), "alpha_max"),
        (dict(dalpha=0.0), "dalpha"),
        (dict(dalpha=-0.1), "dalpha"),
        (dict(dalpha=float("nan")), "dalpha"),
        (dict(dalpha=20.0), "dalpha"),
        (dict(replicas=0), "replicas"),
        (dict(replicas=2.5), "replicas"),
        (dict(record=1), "record"),
        (dict(record=[0.0, 11.0]), "record"),
        (dict(record=[1.0, 0.5]), "record"),
        (dict(Q0=np.eye(3)), "R"),
        (dict(Q0=np.diag([1.0, -1.0])), "positive semi-definite"),
        (dict(R0=np.array([[2.0], [0.0]])), "positive semi-definite"),
        (dict(Q0=np.array([[1.0, 0.5], [0.0, 1.0]])), "symmetric"),
        (dict(Q0=np.stack([np.eye(2)] * 3), replicas=2), "replicas"),
        (dict(Q0=np.full((2, 2), np.nan)), "NaN"),
        (dict(T=np.zeros((1, 1, 1, 1))), "2-d"),
        (dict(second_order="yes"), "second_order"),
        (dict(model=Model(student_activation="x**5", teacher_activation="x**5")), "degree <= 4"),
    ],
)
def test_bad_input_raises_a_clear_error(changes, match):
    arguments = dict(GOOD, N=1000, eta=0.1, alpha_max=10.0, progress=False)
    arguments.update(changes)
    Q0, R0, T = arguments.pop("Q0"), arguments.pop("R0"), arguments.pop("T")
    with pytest.raises(ValueError, match=match):
        simulate_sde(Q0, R0, T, **arguments)
