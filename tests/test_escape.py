"""Plateau and escape (issue 6): derive's closed forms against the full ODE."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from derive import plateau
from derive.model import PAPER, k, p
from numerics import (
    average_risk_reduction,
    escape_time,
    fixed_point_norm,
    integrate,
    optimal_learning_rate,
    plateau_coefficients,
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


@pytest.mark.parametrize("kv", [1, 2])
def test_optimal_learning_rate_scales_linearly_with_p(kv):
    ratios, resolution = [], None
    for pv in (1, 2, 4, 8):
        # coarse geometric scan, resolution 2 (the optimum drifts slowly with p
        # at small p: eta_opt / p grows from 1/8 to 1/4 between p = 1 and 8 at k = 2)
        scan = optimal_learning_rate(pv, kv, seeds=2, etas=pv * 2.0 ** np.arange(-4, 1))
        resolution = scan.resolution
        assert scan.failed[-1]  # the scan reached the failing learning rates
        ratios.append(scan.best_eta / pv)
    # the best eta is known to one scan step: eta / p constant within it
    assert max(ratios) / min(ratios) <= resolution * (1 + 1e-9), ratios
