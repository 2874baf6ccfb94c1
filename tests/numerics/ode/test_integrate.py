"""Stage 4: the ODE solver, from Eq. 8 starts through the three regimes of Sec. 4.1."""

import numpy as np
import pytest

import numerics
from derive.model.model import Model, hermite
from numerics.core.validation import covariance
from numerics.ode.integrate import IntegrationError


@pytest.fixture(scope="module")
def paper_run():
    Q0, R0, T = numerics.initial_conditions(4, 2, N=1_000_000, seed=3)
    return numerics.integrate(Q0, R0, T, eta=0.05, alpha_max=2500, n_points=600)


def test_initial_conditions_follow_eq8():
    Q0, R0, T = numerics.initial_conditions(3, 2, N=400, q0=0.5, seed=1, batch=2000)
    assert Q0.shape == (2000, 3, 3) and R0.shape == (2000, 3, 2)
    np.testing.assert_array_equal(Q0[0], 0.5 * np.eye(3))
    np.testing.assert_array_equal(T, np.eye(2))
    # sample variance of R0 entries is q0 / N within 5 standard errors
    variance = R0.var()
    se = (0.5 / 400) * np.sqrt(2 / R0.size)
    assert abs(variance - 0.5 / 400) < 5 * se


def test_three_regimes(paper_run):
    result = paper_run
    alpha, risk, Q = result.alpha, result.risk, result.Q
    diag = np.diagonal(Q, axis1=-2, axis2=-1)
    # 1. norm learning: the norms reach a common value quickly while R stays small
    fast = np.searchsorted(alpha, 60.0)
    assert np.ptp(diag[fast]) < 1e-3 * diag[fast].mean()
    assert abs(diag[fast].mean() - 1.0) > 0.1  # the norms did move
    assert np.max(np.abs(result.R[fast])) < 0.05
    # 2. a plateau: the risk barely changes over a long stretch of alpha
    late = np.searchsorted(alpha, 150.0)
    assert abs(risk[late] - risk[fast]) < 0.05 * risk[fast]
    # 3. escape to zero risk
    assert risk[-1] < 1e-4 * risk[fast]
    escape = alpha[np.argmax(risk < 0.5 * risk[fast])]
    assert escape > 2.5 * alpha[fast]


def test_gradient_flow_fixed_point_norm():
    # with R = 0 (invariant) the norms go to q* = p / (p + 2) in gradient flow (T = I)
    p, k = 3, 2
    result = numerics.integrate(np.eye(p), np.zeros((p, k)), np.eye(k), eta=0.5, alpha_max=400, second_order=False)
    np.testing.assert_allclose(np.diagonal(result.Q[-1]), p / (p + 2), rtol=1e-7)
    np.testing.assert_array_equal(result.R[-1], 0.0)


def test_batched_starts_equal_individual_runs():
    Q0, R0, T = numerics.initial_conditions(3, 2, N=500, seed=4, batch=3)
    batched = numerics.integrate(Q0, R0, T, eta=0.3, alpha_max=50, n_points=40)
    assert batched.Q.shape == (3, 40, 3, 3) and batched.risk.shape == (3, 40)
    for b in range(3):
        single = numerics.integrate(Q0[b], R0[b], T, eta=0.3, alpha_max=50, n_points=40)
        np.testing.assert_allclose(batched.R[b], single.R, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(batched.risk[b], single.risk, rtol=1e-6, atol=1e-10)


def test_risk_along_trajectory_matches_pointwise_risk(paper_run):
    i = len(paper_run.alpha) // 2
    assert paper_run.risk[i] == pytest.approx(numerics.risk(paper_run.Q[i], paper_run.R[i], paper_run.T), rel=1e-12)


def test_unstable_learning_rate_is_reported():
    Q0, R0, T = numerics.initial_conditions(4, 2, N=1000, seed=1)
    with pytest.raises(IntegrationError, match=r"alpha = \d"):
        numerics.integrate(Q0, R0, T, eta=5.0, alpha_max=100)


def _polar_factor(R):
    U, _, Vt = np.linalg.svd(R, full_matrices=False)
    return U @ Vt


@pytest.mark.parametrize("p,k,eta", [(2, 2, 0.1), (4, 2, 0.2)])
def test_long_finite_eta_runs_stay_in_the_cone_and_reach_the_closest_solution(p, k, eta):
    # the eta**2 term on long runs: S = Q - R T^-1 R^T decays to round-off at the solution,
    # where a state of (Q, R) alone could not resolve it; the state stays physical by construction
    rng = np.random.default_rng(11)
    Q0, R0, T = 0.8 * np.eye(p), 0.05 * rng.standard_normal((p, k)), np.eye(k)
    result = numerics.integrate(Q0, R0, T, eta=eta, alpha_max=3000, n_points=300, grid="linear")
    S = result.Q - result.R @ np.swapaxes(result.R, -1, -2)
    assert np.linalg.eigvalsh(S).min() > -1e-9
    assert np.linalg.eigvalsh(covariance(result.Q, result.R, result.T)).min() > -1e-9
    omega = _polar_factor(result.R)
    assert np.max(np.abs(omega - omega[0])) < 1e-7
    assert result.risk[-1] < 1e-5
    if p == k:
        R_inf = np.sqrt(p / k) * _polar_factor(R0)
        np.testing.assert_allclose(result.R[-1], R_inf, atol=1e-6)
        np.testing.assert_allclose(result.Q[-1], R_inf @ R_inf.T, atol=1e-6)


def test_state_is_rebuilt_from_the_orthogonal_gram_matrix():
    # S = Q - R T^-1 R^T is carried exactly: with a non-identity T the overlaps come back unchanged
    rng = np.random.default_rng(5)
    T = np.array([[1.0, 0.3], [0.3, 0.7]])
    R0 = 0.2 * rng.standard_normal((3, 2))
    Q0 = np.eye(3) + R0 @ np.linalg.solve(T, R0.T)
    result = numerics.integrate(Q0, R0, T, eta=0.1, alpha_max=1e-6, n_points=2, grid="linear")
    np.testing.assert_allclose(result.Q[0], Q0, rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(result.R[0], R0)


def test_a_stopped_solver_names_the_alpha_of_its_last_accepted_step():
    # a x**5 student learning a He5 teacher from q0 = 0.25 blows up in finite time (near alpha = 7.9e-4 at
    # eta = 0.1); the solver's rejected trial steps reach about seven times further than the solution, so only
    # the last accepted step says where (a loose rtol: the generated degree-5 right-hand side is slow)
    model = Model(student_activation="x**5", teacher_activation=hermite(5))
    start = (0.25 * np.eye(1), np.zeros((1, 1)), np.eye(1))
    with pytest.raises(IntegrationError, match=r"solver stopped at alpha = \d") as error:
        numerics.integrate(*start, eta=0.1, model=model, alpha_max=1.0, rtol=1e-3, n_points=3)
    stopped = error.value.alpha
    assert error.value.kind == "solver stopped" and f"{stopped:.6g}" in str(error.value)
    # just before that alpha the solution exists and is already far from its start
    before = numerics.integrate(*start, eta=0.1, model=model, alpha_max=0.99 * stopped, n_points=3)
    assert before.Q[-1, 0, 0] > 1.5 * before.Q[0, 0, 0]
