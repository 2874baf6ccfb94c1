"""Plateau and escape (issue 6): derive's closed forms against the full ODE."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import sympy as sp

from derive import HE3
from derive.model.model import PAPER, k, p
from derive.paper import plateau
from numerics import (
    IntegrationResult,
    average_risk_reduction,
    compare_ode_simulation,
    escape_time,
    fixed_point_norm,
    initial_conditions,
    integrate,
    plateau_coefficients,
    plateau_fixed_point,
    simulate,
)


def _number(expr: sp.Expr, pv: int, kv: int, eta: float, **more: float) -> float:
    values = {p: pv, k: kv, plateau.eta: eta, **{getattr(plateau, name): v for name, v in more.items()}}
    return float(sp.N(expr.subs(values), 30))


@pytest.mark.parametrize("second_order", [False, True])
@pytest.mark.parametrize(("pv", "kv", "eta"), [(1, 1, 0.05), (3, 2, 0.2), (4, 1, 0.5)])
def test_fixed_point_norm_is_the_long_time_norm_with_r_zero(pv, kv, eta, second_order):
    q_star = _number(plateau.norm_learning(PAPER, second_order).fixed_point, pv, kv, eta)
    if not second_order:
        assert q_star == pytest.approx(pv / (pv + 2), rel=1e-14)
    result = integrate(np.eye(pv), np.zeros((pv, kv)), np.eye(kv), eta=eta, alpha_max=60 * pv / eta,
                       second_order=second_order, n_points=20)
    assert np.all(result.R == 0)  # R = 0 is invariant
    final = result.Q[-1]
    np.testing.assert_allclose(np.diag(final), q_star, rtol=1e-7)
    np.testing.assert_allclose(final - np.diag(np.diag(final)), 0, atol=1e-12)
    assert fixed_point_norm(pv, kv, eta, second_order=second_order) == pytest.approx(q_star, rel=1e-10)
    # stability: both eigenvalues of the reduced norm flow are negative at q*
    for eigenvalue in plateau.norm_learning(PAPER, second_order).eigenvalues:
        assert _number(eigenvalue.subs(plateau.q, plateau.norm_learning(PAPER, second_order).fixed_point),
                       pv, kv, eta) < 0


def test_linearised_growth_matches_the_ode_to_first_order():
    pv, kv, eta = 3, 2, 0.3
    lin = plateau.plateau_at_fixed_point(PAPER, False)
    growth = _number(lin.growth_R, pv, kv, eta)
    assert growth == pytest.approx(4 * eta / (kv * pv))
    q_star = pv / (pv + 2)
    direction = np.random.default_rng(1).normal(size=(pv, kv))
    alpha = np.log(20.0) / growth  # overlaps grow 20-fold
    errors = []
    for scale in (1e-2, 1e-3):
        R0 = scale * direction
        result = integrate(q_star * np.eye(pv), R0, np.eye(kv), eta=eta, alpha_eval=np.array([0.0, alpha]),
                           alpha_max=alpha, second_order=False, rtol=1e-11, atol=1e-15)
        predicted = R0 * np.exp(growth * alpha)
        errors.append(np.max(np.abs(result.R[-1] - predicted)) / np.max(np.abs(predicted)))
    # the neglected terms are cubic in R: the relative error falls like scale**2
    assert errors[0] < 0.1
    assert errors[1] < errors[0] / 50


@pytest.mark.parametrize("second_order", [False, True])
def test_average_risk_reduction_matches_ode_average(second_order):
    pv, kv, eta, N, starts = 2, 1, 0.2, 1e6, 400
    c = plateau_coefficients(pv, kv, eta, second_order=second_order)
    rng = np.random.default_rng(7)
    R0 = rng.normal(0.0, np.sqrt(c.q_star / N), size=(starts, pv, kv))
    Q0 = np.broadcast_to(c.q_star * np.eye(pv), (starts, pv, pv))
    alphas = np.log(np.array([2.0, 10.0, 50.0])) / (2 * c.growth_R)
    result = integrate(Q0, R0, np.eye(kv), eta=eta, alpha_eval=np.concatenate([[0.0], alphas]),
                       alpha_max=alphas[-1], second_order=second_order, rtol=1e-10, atol=1e-14)
    reduction = (result.risk[:, :1] - result.risk[:, 1:]) / c.risk_plateau
    mean = reduction.mean(axis=0)
    error = reduction.std(axis=0, ddof=1) / np.sqrt(starts)
    predicted = average_risk_reduction(alphas, pv, kv, eta=eta, N=N, second_order=second_order)
    assert np.all(np.abs(mean - predicted) < 5 * error), (mean, predicted, error)
    if not second_order:
        closed = plateau.average_risk_reduction(PAPER, False)
        for a, value in zip(alphas, predicted):
            assert _number(closed, pv, kv, eta, alpha=a, N=N) == pytest.approx(value, rel=1e-6)


def test_escape_time_grows_like_log_n():
    pv, kv, eta = 2, 2, 0.3
    direction = np.random.default_rng(3).normal(size=(pv, kv))
    Ns = np.array([1e4, 1e5, 1e6, 1e7])
    R0 = direction[None] / np.sqrt(Ns)[:, None, None]  # Eq. 8 scaling with q0 = 1
    Q0 = np.broadcast_to(np.eye(pv), (Ns.size, pv, pv))
    growth = plateau_coefficients(pv, kv, eta).growth_R
    result = integrate(Q0, R0, np.eye(kv), eta=eta, alpha_max=(np.log(Ns[-1]) + 10) / (2 * growth),
                       n_points=2000, grid="linear")
    times = escape_time(result)
    slope = np.polyfit(np.log(Ns), times, 1)[0]
    assert slope == pytest.approx(1 / (2 * growth), rel=0.005)


def _long_time_plateau_risk(pv, kv, eta, T, model, alpha_max):
    """Risk after a long run of the full ODE from Q = I, R = 0 (independent of plateau_fixed_point)."""
    result = integrate(np.eye(pv), np.zeros((pv, kv)), T, eta=eta, model=model, alpha_max=alpha_max, n_points=3,
                       grid="linear", rtol=1e-11, atol=1e-14)
    assert np.all(result.R == 0)  # R = 0 is invariant for this model and teacher
    return float(result.risk[-1]), result.Q[-1]


def _bracket(run, level):
    """Output times just before and at the first crossing of ``level`` (per start)."""
    below = np.argmax(run.risk < level, axis=-1)
    assert np.all(below > 0)
    return run.alpha[below - 1], run.alpha[below]


def test_plateau_fixed_point_is_the_isotropic_point_of_the_paper_model():
    for pv, kv, eta in [(4, 2, 0.4), (8, 1, 1.0), (1, 1, 0.05)]:
        found = plateau_fixed_point(pv, kv, eta)
        q_star = fixed_point_norm(pv, kv, eta)
        np.testing.assert_allclose(found.Q, q_star * np.eye(pv), atol=1e-12)
        assert found.risk == pytest.approx(plateau_coefficients(pv, kv, eta).risk_plateau, rel=1e-12)
        assert found.residual <= 1e-10 and np.max(found.eigenvalues.real) < 0
    with pytest.raises(ValueError, match="no plateau"):
        plateau_fixed_point(1, 1, 1.0)  # beyond the stability of the norm


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_escape_time_measures_a_he3_run_against_the_he3_plateau():
    pv, kv, eta = 2, 2, 0.02
    # He3 (information exponent 3) escapes only from sizeable overlaps: R(0) ~ N(0, 1/10)
    Q0, R0, T = initial_conditions(pv, kv, N=10, seed=1, batch=2)
    run = integrate(Q0, R0, T, eta=eta, model=HE3, alpha_max=150, n_points=1500, grid="linear")
    assert run.model is HE3
    level, Q_plateau = _long_time_plateau_risk(pv, kv, eta, T, HE3, alpha_max=8000)
    # the He3 plateau is not isotropic (negative student-student overlaps) and far above the paper's
    assert Q_plateau[0, 1] < -0.3
    assert level == pytest.approx(1.5475, abs=1e-4)
    assert plateau_coefficients(pv, kv, eta).risk_plateau < 0.8
    assert plateau_fixed_point(pv, kv, eta, model=HE3).risk == pytest.approx(level, rel=1e-9)
    times = escape_time(run)
    before, at = _bracket(run, 0.75 * level)
    assert np.all((before <= times) & (times <= at)), (before, times, at)
    assert np.all(times < 120)
    # the trajectory summary of `wickode run` also takes the model from the run, and its escape is escape_time's
    from numerics.analyses.summary import plateau_summary

    one = replace(run, Q=run.Q[0], R=run.R[0], risk=run.risk[0])
    assert plateau_summary(one).plateau_risk == plateau_summary(one, model=HE3).plateau_risk
    assert plateau_summary(one).plateau_risk == pytest.approx(level, rel=1e-9)
    assert plateau_summary(one).escape_alpha == escape_time(one) == times[0]
    with pytest.raises(ValueError, match="fixed point"):
        fixed_point_norm(pv, kv, eta, model=HE3)  # the isotropic ansatz does not hold for He3


def test_escape_time_measures_a_run_against_its_own_teacher():
    pv, kv, eta = 3, 2, 0.2
    T = np.array([[1.5, 0.3], [0.3, 0.7]])
    Q0, R0, _ = initial_conditions(pv, kv, N=1e4, seed=2, batch=3)
    run = integrate(Q0, R0, T, eta=eta, alpha_max=80, n_points=1600, grid="linear")
    level, _ = _long_time_plateau_risk(pv, kv, eta, T, None, alpha_max=2000)
    assert abs(level - plateau_coefficients(pv, kv, eta).risk_plateau) > 0.1  # not the T = I plateau
    assert fixed_point_norm(pv, kv, eta, T=T) == pytest.approx(plateau_fixed_point(pv, kv, eta, T=T).Q[0, 0])
    times = escape_time(run)
    before, at = _bracket(run, 0.75 * level)
    assert np.all((before <= times) & (times <= at)), (before, times, at)
    # the T = I level is crossed at a different time
    before_identity, _ = _bracket(run, 0.75 * plateau_coefficients(pv, kv, eta).risk_plateau)
    assert np.all(np.abs(before_identity - times) > 1.0)


def test_escape_time_refuses_runs_without_a_plateau_or_without_their_model():
    pv, kv = 2, 2
    T = np.diag([1.5, 0.7])
    n = 3
    fake = IntegrationResult(alpha=np.linspace(0, 1, n), Q=np.broadcast_to(np.eye(pv), (n, pv, pv)).copy(),
                             R=np.zeros((n, pv, kv)), risk=np.ones(n), T=T, eta=0.02, second_order=True,
                             model_name="he3", model=HE3)
    with pytest.raises(ValueError, match="not invariant"):
        escape_time(fake)  # He3 with T != I: the student correlates with the teacher from the start
    fake.model = None
    with pytest.raises(ValueError, match="does not carry"):
        escape_time(fake)


def test_results_carry_their_model():
    sim = simulate(N=40, p=2, k=1, eta=0.01, alpha_max=0.2, model=HE3, seed=0, record=5, progress=False)
    assert sim.model is HE3
    assert compare_ode_simulation(sim).ode.model is HE3
def test_plateau_summary_is_escape_time_and_run_plateaus():
    from numerics.analyses.plateau import run_plateaus
    from numerics.analyses.summary import plateau_summary

    Q0, R0, T = initial_conditions(3, 2, N=1e4, seed=4)
    run = integrate(Q0, R0, T, eta=0.3, alpha_max=120, n_points=600, grid="linear")
    summary = plateau_summary(run)
    assert summary.plateau_risk == run_plateaus(run)[0].risk
    assert summary.escaped and summary.escape_alpha == escape_time(run)
    assert plateau_summary(run, threshold=0.5).escape_alpha == escape_time(run, threshold=0.5)
    assert summary.final_risk == run.risk[-1]
    # cut before the escape: no crossing, reported as not escaped rather than a number
    early = replace(run, alpha=run.alpha[:20], Q=run.Q[:20], R=run.R[:20], risk=run.risk[:20])
    assert not plateau_summary(early).escaped and np.isnan(escape_time(early))
    with pytest.raises(ValueError, match="one trajectory"):
        plateau_summary(integrate(np.stack([Q0, Q0]), np.stack([R0, R0]), T, eta=0.3, alpha_max=1))


def test_escape_time_at_the_stability_edge_can_give_nan_with_the_reason(caplog):
    from numerics.analyses.summary import plateau_summary

    Q0, R0, T = initial_conditions(2, 2, N=1e4, seed=0)
    run = integrate(Q0, R0, T, eta=0.5, alpha_max=20, n_points=50)
    with pytest.raises(ValueError, match="no plateau"):
        escape_time(run)  # the default keeps raising
    with caplog.at_level("WARNING", logger="numerics.analyses.plateau"):
        assert np.isnan(escape_time(run, on_failure="nan"))
    assert "no plateau" in caplog.text
    assert "no plateau" in plateau_summary(run).no_plateau
    batched = IntegrationResult(alpha=run.alpha, Q=np.stack([run.Q] * 3), R=np.stack([run.R] * 3),
                                risk=np.stack([run.risk] * 3), T=run.T, eta=run.eta, second_order=True,
                                model=run.model)
    assert np.isnan(escape_time(batched, on_failure="nan")).all()
    assert escape_time(batched, on_failure="nan").shape == (3,)


@pytest.mark.parametrize("bad", [[1, 2, 3], None, {}])
def test_escape_time_of_something_that_is_no_result_is_a_value_error(bad):
    with pytest.raises(ValueError, match="run must be a result"):
        escape_time(bad)


def test_escape_time_on_failure_is_checked():
    Q0, R0, T = initial_conditions(2, 2, N=1e4, seed=0)
    run = integrate(Q0, R0, T, eta=0.3, alpha_max=1, n_points=5)
    with pytest.raises(ValueError, match="on_failure"):
        escape_time(run, on_failure="ignore")
