"""The plateau (numerics/analyses/plateau.py) of the paper model in gradient flow against its closed form.

At ``Q = q I``, ``R = 0``, ``T = I`` with ``sigma = x**2`` and readouts 1/p, 1/k (Isserlis):
``dQ_jj/dalpha = eta (4/p) (q - q**2 (p + 2)/p)``, so ``q* = p / (p + 2)``, and the risk is
``(1 + 2/k - 2 q + q**2 (1 + 2/p)) / 2``.
"""

import numpy as np
import pytest

from numerics.analyses.plateau import (
    fixed_point_norm,
    plateau_coefficients,
    plateau_fixed_point,
)
from numerics.ode.integrate import integrate


def closed_form_risk(q: float, p: int, k: int) -> float:
    return (1 + 2 / k - 2 * q + q**2 * (1 + 2 / p)) / 2


@pytest.mark.parametrize("p, k", [(1, 1), (3, 2), (5, 1)])
def test_gradient_flow_plateau_is_the_closed_form(p, k):
    q_star = p / (p + 2)
    assert fixed_point_norm(p, k, 0.1, second_order=False) == pytest.approx(q_star, rel=1e-10)
    plateau = plateau_fixed_point(p, k, 0.1, second_order=False)
    np.testing.assert_allclose(plateau.Q, q_star * np.eye(p), atol=1e-9)
    assert plateau.risk == pytest.approx(closed_form_risk(q_star, p, k), rel=1e-9)
    assert plateau.noise_floor == 0.0 and plateau.residual < 1e-9
    assert plateau.eigenvalues.shape == (p * (p + 1) // 2,) and np.all(plateau.eigenvalues.real < 0)


def test_the_plateau_is_where_an_uninformed_run_settles():
    # R(0) = 0 exactly: the run never leaves R = 0 and its Q converges to the plateau's
    p, k, eta = 2, 1, 0.3
    plateau = plateau_fixed_point(p, k, eta)
    run = integrate(0.2 * np.eye(p), np.zeros((p, k)), np.eye(k), eta=eta, alpha_max=200.0, n_points=5)
    np.testing.assert_allclose(run.Q[-1], plateau.Q, atol=1e-7)
    assert run.risk[-1] == pytest.approx(plateau.risk, abs=1e-7)
    assert fixed_point_norm(p, k, eta) == pytest.approx(plateau.Q[0, 0], rel=1e-8)


def test_coefficients_at_the_plateau():
    p, k, eta = 3, 1, 0.2
    coefficients = plateau_coefficients(p, k, eta)
    assert coefficients.q_star == pytest.approx(fixed_point_norm(p, k, eta), rel=1e-10)
    assert coefficients.risk_plateau == pytest.approx(plateau_fixed_point(p, k, eta).risk, rel=1e-8)
    assert coefficients.growth_R > 0  # the plateau is left along R


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: fixed_point_norm(0, 1, 0.1), "^p"),
        (lambda: fixed_point_norm(2, 1, -0.1), "^eta"),
        (lambda: fixed_point_norm(2, 1, 0.1, T=np.eye(2)), r"T must have shape \(1, 1\)"),
        (lambda: fixed_point_norm(2, 1, 50.0), "eta is too large"),
        (lambda: plateau_fixed_point(2, 0, 0.1), "^k"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
