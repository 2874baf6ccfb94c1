"""Implicit bias (paper Sec. 4.1, Eqs. 14-22, App. 7.4): closest zero-error solution and the conserved Omega."""

from __future__ import annotations

import numpy as np
import pytest

from numerics import (
    closest_solution,
    closest_solution_weights,
    distance_to,
    initial_conditions,
    integrate,
    omega,
    risk,
    simulate,
)
from numerics.analyses.implicit_bias import closest_solution_weights_numerical
from numerics.simulators.weights import weights_from_overlaps

# every (p, k) with p in {k, k + 1, 2k, 5} and k in {1, 2, 3}
WIDTHS = sorted({(p, k) for k in (1, 2, 3) for p in (k, k + 1, 2 * k, 5)})
EQUAL_WIDTHS = [(p, k) for p, k in WIDTHS if p == k]
WIDER_STUDENTS = [(p, k) for p, k in WIDTHS if p > k]
# gradient flow at a small learning rate, and the full ODE (eta**2 term) at eta = 0.1 p
REGIMES = {"gradient-flow": (False, lambda p: 0.1), "finite-eta": (True, lambda p: 0.1 * p)}
ALPHAS = np.array([0.0, 100.0, 300.0, 500.0, 1000.0, 2000.0, 3000.0])


def _haar(rng: np.random.Generator, rows: int, columns: int) -> np.ndarray:
    """Haar-random matrix with orthonormal columns (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((rows, rows)))
    return (q * np.sign(np.diagonal(r)))[:, :columns]


def _sqrtm_psd(A: np.ndarray) -> np.ndarray:
    eigenvalues, vectors = np.linalg.eigh(A)
    return (vectors * np.sqrt(eigenvalues)[..., None, :]) @ np.swapaxes(vectors, -1, -2)


def _overlaps(W: np.ndarray, W_star: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    N = W.shape[-1]
    Wt = np.swapaxes(W, -1, -2)
    W_star_t = np.swapaxes(W_star, -1, -2)
    Q = W @ Wt / N
    T = W_star @ W_star_t / N
    return (Q + np.swapaxes(Q, -1, -2)) / 2, W @ W_star_t / N, (T + np.swapaxes(T, -1, -2)) / 2


def _start(rng: np.random.Generator, p: int, k: int, N: int) -> tuple[np.ndarray, np.ndarray]:
    """A general teacher (Gaussian rows: T != I) and a student with macroscopic overlaps with it."""
    W_star = rng.standard_normal((k, N))
    W0 = rng.standard_normal((p, N)) + rng.standard_normal((p, k)) @ W_star
    return W0, W_star


# ---------------------------------------------------------------------------------------------- omega


def test_omega_has_orthonormal_columns_and_recovers_R():
    rng = np.random.default_rng(0)
    for p, k in [(1, 1), (3, 1), (3, 3), (5, 2)]:
        R = rng.standard_normal((4, 6, p, k))  # batch and trajectory axes
        O = omega(R)
        assert O.shape == R.shape
        gram = np.swapaxes(O, -1, -2) @ O
        np.testing.assert_allclose(gram, np.broadcast_to(np.eye(k), gram.shape), atol=1e-13)
        np.testing.assert_allclose(O @ _sqrtm_psd(np.swapaxes(R, -1, -2) @ R), R, atol=1e-12)
        # the defining formula R (R^T R)^(-1/2), evaluated independently by an eigendecomposition
        eigenvalues, vectors = np.linalg.eigh(np.swapaxes(R, -1, -2) @ R)
        inverse_root = (vectors / np.sqrt(eigenvalues)[..., None, :]) @ np.swapaxes(vectors, -1, -2)
        np.testing.assert_allclose(O, R @ inverse_root, atol=1e-10)


@pytest.mark.parametrize(
    "R, match",
    [
        (np.ones((2, 3)), "p = 2 < k = 3"),
        (np.zeros((3, 2)), "singular or ill-conditioned"),
        (np.outer([1.0, 2.0, 3.0], [1.0, -1.0]), "singular or ill-conditioned"),  # rank 1 < k = 2
        (np.stack([np.eye(3, 2), np.zeros((3, 2))]), r"batch index \(1,\)"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN or inf"),
        (np.array([[1.0, 0.0], [np.inf, 1.0]]), "NaN or inf"),
        (np.ones(3), "at least 2 axes"),
    ],
    ids=["p<k", "zero", "rank-deficient", "batched-zero", "nan", "inf", "1-d"],
)
def test_omega_rejects_bad_input(R, match):
    with pytest.raises(ValueError, match=match):
        omega(R)


def test_closest_solution_rejects_bad_input():
    with pytest.raises(ValueError, match="positive definite"):
        closest_solution(np.eye(3, 2), T=np.diag([1.0, 0.0]))
    with pytest.raises(ValueError, match="p_over_k"):
        closest_solution(np.eye(3, 2), p_over_k=-1.0)
    with pytest.raises(ValueError, match="same N"):
        closest_solution_weights(np.ones((2, 5)), np.ones((1, 6)))
    with pytest.raises(ValueError, match="linearly independent"):
        closest_solution_weights(np.eye(3, 6), np.ones((2, 6)))


# ------------------------------------------------------------------------------- closest zero-error point


@pytest.mark.parametrize(("p", "k", "N"), [(1, 1, 20), (2, 1, 30), (2, 2, 25), (3, 2, 40), (4, 2, 50), (3, 3, 40),
                                           (5, 3, 50)])
@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_closest_solution_weights_equals_numerical_minimum(p, k, N):
    rng = np.random.default_rng(100 * p + 10 * k + N)
    W0, W_star = _start(rng, p, k, N)
    closed_form = closest_solution_weights(W0, W_star)
    numerical = closest_solution_weights_numerical(W0, W_star, seed=1)
    np.testing.assert_allclose(closed_form, numerical, rtol=0, atol=1e-8)
    # also with a random (Eq. 8-like, small-overlap) student and an orthonormal teacher, T = I
    W_star = np.sqrt(N) * _haar(rng, N, k).T
    W0 = rng.standard_normal((p, N))
    np.testing.assert_allclose(closest_solution_weights(W0, W_star),
                               closest_solution_weights_numerical(W0, W_star, seed=2), rtol=0, atol=1e-8)


@pytest.mark.parametrize(("p", "k", "N"), [(2, 2, 30), (4, 2, 40), (5, 3, 50)])
def test_closest_solution_has_zero_risk_and_beats_other_manifold_points(p, k, N):
    rng = np.random.default_rng(7 * p + k)
    W0, W_star = _start(rng, p, k, N)
    W = closest_solution_weights(W0, W_star)
    Q, R, T = _overlaps(W, W_star)
    # zero risk up to round-off: the risk is a difference of O(1) quartic terms, so ~1e3 machine epsilons
    assert risk(Q, R, T) < 1e3 * np.finfo(float).eps
    assert risk(*_overlaps(W0, W_star)) > 0.1  # the start is not a solution
    best = np.sum((W0 - W) ** 2)
    c = np.sqrt(p / k)
    others = [np.sum((W0 - c * _haar(rng, p, k) @ W_star) ** 2) for _ in range(500)]
    assert best < min(others)
    # nearby manifold points (small rotations of the optimum) are farther too: a local minimum
    O = omega(W0 @ W_star.T / N)
    for _ in range(50):
        generator = 1e-3 * rng.standard_normal((p, p))
        rotation = np.linalg.qr(np.eye(p) + generator - generator.T)[0]
        assert best < np.sum((W0 - c * (rotation @ O) @ W_star) ** 2)


def test_closest_solution_overlaps_match_the_weights():
    rng = np.random.default_rng(3)
    for p, k in [(2, 2), (4, 2), (5, 3)]:
        # T = I: weights with prescribed overlaps
        Q0, R0, _ = initial_conditions(p, k, N=30, seed=p + k)
        W0, W_star = weights_from_overlaps(Q0, R0, N=60, seed=5)
        Q_inf, R_inf = closest_solution(R0)
        Q_w, R_w, _ = _overlaps(closest_solution_weights(W0, W_star), W_star)
        np.testing.assert_allclose(Q_w, Q_inf, atol=1e-12)
        np.testing.assert_allclose(R_w, R_inf, atol=1e-12)
        # a general teacher, T != I
        W0, W_star = _start(rng, p, k, 80)
        _, R0, T = _overlaps(W0, W_star)
        Q_inf, R_inf = closest_solution(R0, T=T)
        Q_w, R_w, _ = _overlaps(closest_solution_weights(W0, W_star), W_star)
        np.testing.assert_allclose(Q_w, Q_inf, atol=1e-12)
        np.testing.assert_allclose(R_w, R_inf, atol=1e-12)
    # batched overlaps equal one-by-one
    R0 = rng.standard_normal((6, 4, 2))
    Q_batch, R_batch = closest_solution(R0)
    for i in range(6):
        np.testing.assert_allclose(closest_solution(R0[i])[0], Q_batch[i], atol=1e-15)
        np.testing.assert_allclose(closest_solution(R0[i])[1], R_batch[i], atol=1e-15)


# ---------------------------------------------------------------------------------------------- distance


@pytest.mark.parametrize("teacher", ["orthonormal", "general"])
def test_distance_to_equals_weight_space_distance(teacher):
    rng = np.random.default_rng(11)
    B, n, p, k, N = 3, 5, 4, 2, 60
    if teacher == "orthonormal":
        W_star = np.sqrt(N) * _haar(rng, N, k).T
    else:
        W_star = rng.standard_normal((k, N)) * np.array([[1.0], [0.5]])
    W = rng.standard_normal((B, n, p, N)) + rng.standard_normal((B, n, p, k)) @ W_star
    target_weights = np.sqrt(p / k) * _haar(rng, p, k) @ W_star
    Q, R, T = _overlaps(W, W_star)
    Q_t, R_t, _ = _overlaps(target_weights, W_star)
    direct = np.sum((W - target_weights) ** 2, axis=(-2, -1)) / N
    from_overlaps = distance_to((Q, R), (Q_t, R_t), T=T)
    assert from_overlaps.shape == (B, n)
    np.testing.assert_allclose(from_overlaps, direct, rtol=1e-12)
    # one target per batch entry
    targets = np.sqrt(p / k) * np.stack([_haar(rng, p, k) for _ in range(B)]) @ W_star
    Q_t, R_t, _ = _overlaps(targets, W_star)
    direct = np.sum((W - targets[:, None]) ** 2, axis=(-2, -1)) / N
    np.testing.assert_allclose(distance_to((Q, R), (Q_t, R_t), T=T), direct, rtol=1e-12)
    # a target outside the teacher span: its distance is not a function of the overlaps
    Q_t, R_t, _ = _overlaps(W[0, 0], W_star)
    with pytest.raises(ValueError, match="teacher span"):
        distance_to((Q, R), (Q_t, R_t), T=T)


def test_distance_to_takes_an_integration_result():
    Q0, R0, T = initial_conditions(3, 2, N=100, seed=4, batch=2)
    result = integrate(Q0, R0, T, eta=0.3, alpha_max=5, n_points=6)
    target = closest_solution(R0[0])
    d = distance_to(result, target)
    assert d.shape == (2, 6)
    np.testing.assert_allclose(d, distance_to((result.Q, result.R), target), rtol=1e-15)


# --------------------------------------------------------------------------------- the ODE reaches it


def _ode_gaps(p, k, regime, **tolerances):
    second_order, learning_rate = REGIMES[regime]
    # Eq. 8 with N = 100: overlaps of 0.1, so the plateau is short and the runs are cheap
    Q0, R0, T = initial_conditions(p, k, N=100, seed=10 * p + k, batch=8)
    result = integrate(Q0, R0, T, eta=learning_rate(p), alpha_max=ALPHAS[-1], alpha_eval=ALPHAS,
                       second_order=second_order, **tolerances)
    Q_inf, R_inf = closest_solution(R0)
    gap_Q = np.max(np.abs(result.Q - Q_inf[:, None]), axis=(0, 2, 3))
    gap_R = np.max(np.abs(result.R - R_inf[:, None]), axis=(0, 2, 3))
    return result, gap_Q, gap_R


@pytest.mark.parametrize("regime", list(REGIMES))
@pytest.mark.parametrize(("p", "k"), EQUAL_WIDTHS)
def test_ode_end_point_is_the_closest_solution_for_p_equal_k(p, k, regime):
    # p = k: Q_inf = (p/k) I is non-degenerate, so the approach is exponential
    _, gap_Q, gap_R = _ode_gaps(p, k, regime, rtol=1e-10, atol=1e-13)
    assert gap_Q[0] > 0.5 or gap_R[0] > 0.5  # the start is far from the end point
    assert gap_Q[-1] < 1e-6 and gap_R[-1] < 1e-6, (gap_Q, gap_R)


@pytest.mark.slow
@pytest.mark.parametrize("regime", list(REGIMES))
@pytest.mark.parametrize(("p", "k"), WIDER_STUDENTS)
def test_ode_approaches_the_closest_solution_as_a_power_law_for_p_above_k(p, k, regime):
    # p > k: Q_inf has rank k < p, and the students' components outside the teacher span (Gram matrix S)
    # feel no linear restoring force there (the risk is quartic in them): dS/dalpha ~ -S^2, so S ~ 1/alpha,
    # and the deviation of R, driven by tr S, decays the same way. Expected exponent -1.
    result, gap_Q, gap_R = _ode_gaps(p, k, regime, rtol=1e-10, atol=1e-13)
    late = ALPHAS >= 500
    slope_Q = np.polyfit(np.log(ALPHAS[late]), np.log(gap_Q[late]), 1)[0]
    slope_R = np.polyfit(np.log(ALPHAS[late]), np.log(gap_R[late]), 1)[0]
    assert -1.2 < slope_Q < -0.8 and -1.2 < slope_R < -0.8, (slope_Q, slope_R, gap_Q, gap_R)
    assert gap_R[-1] < 3e-3, gap_R
    assert np.max(result.risk[:, -1]) < 1e-4


# ----------------------------------------------------------------------------------- conserved Omega


def _omega_drift(Q0, R0, T, eta, second_order, alpha_max=300.0):
    result = integrate(Q0, R0, T, eta=eta, alpha_max=alpha_max, n_points=60, second_order=second_order,
                       rtol=1e-11, atol=1e-13)
    drift = np.max(np.abs(omega(result.R) - omega(R0)[:, None]), axis=(1, 2, 3))
    return drift, result


@pytest.mark.parametrize("second_order", [False, True], ids=["gradient-flow", "finite-eta"])
@pytest.mark.parametrize(("p", "k"), [(2, 1), (2, 2), (4, 2), (5, 3)])
def test_omega_is_conserved_from_isotropic_starts(p, k, second_order):
    Q0, R0, T = initial_conditions(p, k, N=1000, seed=p + 7 * k, batch=4)  # Eq. 8
    drift, result = _omega_drift(Q0, R0, T, 0.1 * p, second_order)
    assert np.max(result.risk[:, -1]) < 1e-2 * np.min(result.risk[:, 0])  # the runs learn the teacher
    assert np.max(drift) < 1e-8, drift


@pytest.mark.parametrize("second_order", [False, True], ids=["gradient-flow", "finite-eta"])
@pytest.mark.parametrize("broken", ["anisotropic-Q0", "non-identity-T"])
def test_omega_drifts_without_isotropy(broken, second_order):
    # negative controls: the App. 7.4 argument needs Q(0) proportional to I and T = I
    p, k = 4, 2
    Q0, R0, T = initial_conditions(p, k, N=100, seed=1, batch=4)
    if broken == "anisotropic-Q0":
        Q0 = np.broadcast_to(np.diag([1.0, 0.8, 0.6, 0.4]), Q0.shape).copy()
    else:
        T = np.array([[1.0, 0.3], [0.3, 0.6]])
    drift, result = _omega_drift(Q0, R0, T, 0.4, second_order)
    assert np.max(result.risk[:, -1]) < 1e-2 * np.min(result.risk[:, 0])
    assert np.min(drift) > 1e-3, drift


@pytest.mark.parametrize("second_order", [False, True], ids=["gradient-flow", "finite-eta"])
def test_non_identity_teacher_reaches_a_solution_that_is_not_the_closest(second_order):
    # the closest point is omega(R0) for every T (closest_solution_weights), but the flow selects it only for
    # T = I: with T != I the run still ends on the zero-error manifold (p = k: exponentially), elsewhere on it
    p = k = 2
    Q0, R0, _ = initial_conditions(p, k, N=100, seed=1, batch=4)
    for T, reaches_closest in [(np.eye(k), True), (np.array([[1.0, 0.3], [0.3, 0.6]]), False)]:
        result = integrate(Q0, R0, T, eta=0.2, alpha_max=1000, n_points=10, second_order=second_order,
                           rtol=1e-10, atol=1e-13)
        O_end = result.R[:, -1] @ np.linalg.inv(T) / np.sqrt(p / k)
        np.testing.assert_allclose(np.swapaxes(O_end, -1, -2) @ O_end, np.broadcast_to(np.eye(k), (4, k, k)),
                                   atol=1e-8)  # on the manifold
        gap = distance_to(result, closest_solution(R0, T=T))[:, -1]
        if reaches_closest:
            assert np.max(np.abs(gap)) < 1e-10, gap
        else:  # every start ends six orders of magnitude farther than the T = I bound
            assert np.min(gap) > 1e6 * 1e-10, gap


# -------------------------------------------------------------------------------- finite-N one-pass SGD


@pytest.mark.slow
def test_sgd_ends_at_the_closest_solution_of_its_start():
    # p = k = 2 (exponential approach, so alpha = 50 leaves an ODE gap of 6e-6) and a macroscopic start:
    # with the Eq. 8 start the SGD noise during the plateau is as large as R(0) itself and the selected
    # solution is random at every N (docs/finite_n.md). Replicas have independent weights
    # with the same overlaps Q0 = I, R0 (singular values 0.8, 0.6).
    p = k = 2
    eta, alpha_max = 0.25, 50.0
    # the squared gap is chi-square-like (one rotation angle for p = k = 2): relative spread ~ sqrt(2),
    # so ~30 replicas resolve a factor 4 between neighbouring N; fewer at the largest, most expensive N
    replicas_per_N = {32: 32, 128: 32, 512: 24}
    rng = np.random.default_rng(0)
    R0 = _haar(rng, p, p) @ np.diag([0.8, 0.6]) @ _haar(rng, p, p).T
    Q0 = np.eye(p)
    Ns = np.array(list(replicas_per_N))
    means, errors = [], []
    for N, replicas in replicas_per_N.items():
        starts = [weights_from_overlaps(Q0, R0, N=N, seed=100 + r) for r in range(replicas)]
        W0 = np.stack([s[0] for s in starts])
        W_star = np.stack([s[1] for s in starts])
        sim = simulate(N=N, p=p, k=k, eta=eta, alpha_max=alpha_max, seed=1, replicas=replicas, W0=W0,
                       W_star=W_star, record=np.array([0.0, alpha_max]), progress=False)
        closest = closest_solution_weights(W0, W_star)
        gap = np.sum((sim.extra["W"] - closest) ** 2, axis=(-2, -1)) / N
        # the overlap formula gives the same squared distance
        np.testing.assert_allclose(distance_to(sim, _overlaps(closest, W_star)[:2])[:, -1], gap, rtol=1e-8,
                                   atol=1e-12)
        means.append(gap.mean())
        errors.append(gap.std(ddof=1) / np.sqrt(replicas))
    means, errors = np.array(means), np.array(errors)
    start_distance = float(distance_to((Q0[None], R0[None]), closest_solution(R0))[0])
    # at the largest N the end point is resolved to within 1% of the (squared) distance travelled
    assert means[-1] < 1e-2 * start_distance, means
    assert np.all(np.diff(means) < 0), means
    # the selected O random-walks with step variance ~ eta^2 / N^2 for alpha N steps: squared gap ~ 1/N.
    # Weighted least squares in log-log; the log of a mean has standard error se / mean.
    weights = (means / errors) ** 2
    x, y = np.log(Ns), np.log(means)
    xm, ym = np.average(x, weights=weights), np.average(y, weights=weights)
    slope = np.sum(weights * (x - xm) * (y - ym)) / np.sum(weights * (x - xm) ** 2)
    slope_error = 1 / np.sqrt(np.sum(weights * (x - xm) ** 2))
    assert abs(slope + 1) < 4 * slope_error, (slope, slope_error, means, errors)
