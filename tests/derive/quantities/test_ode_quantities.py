"""The overlap ODE quantities (derive/quantities/ode.py) of the linear and a quadratic model against
the Gaussian averages written out by hand."""

import numpy as np
import pytest
import sympy as sp

from derive.algebra.matrix_expr import evaluate
from derive.model.model import SCM, Model
from derive.quantities.ode import QUANTITY_NAMES, derive_quantities, indexed_integrands

P, K = 3, 2
A, B = 1 / P, 1 / K  # the default readouts 1/p, 1/k


def _overlaps():
    rng = np.random.default_rng(1)
    factor = rng.integers(-2, 3, size=(P + K, P + K + 2))
    C = factor @ factor.T
    return C[:P, :P].astype(float), C[:P, P:].astype(float), C[P:, P:].astype(float)


def _values(model: Model) -> dict[str, np.ndarray]:
    Q, R, T = _overlaps()
    matrices = [sp.Matrix(M.astype(int)) for M in (Q, R, T)]
    shapes = {"drift_R": (P, K), "residual_risk": (1, 1)}
    # an entry that does not depend on an index is a row, a column or a scalar: broadcast to the full shape
    return {name: np.broadcast_to(np.array(evaluate(expr, *matrices).tolist(), dtype=float), shapes.get(name, (P, P)))
            for name, expr in derive_quantities(model).as_dict().items()}


def test_linear_model_has_the_closed_form_averages():
    # residual y0 - f = b sum nu - a sum lambda, sigma' = 1
    Q, R, T = _overlaps()
    ones_p, ones_k = np.ones(P), np.ones(K)
    values = _values(Model(student_activation="x", teacher_activation="x"))
    assert list(values) == list(QUANTITY_NAMES)
    drift_R = A * (B * np.outer(ones_p, T @ ones_k) - A * np.outer(ones_p, R.T @ ones_p))
    np.testing.assert_allclose(values["drift_R"], drift_R)
    half = A * (B * R @ ones_k - A * Q @ ones_p)  # depends on l only
    np.testing.assert_allclose(values["drift_Q"], half[None, :] + half[:, None])
    risk = (B**2 * ones_k @ T @ ones_k - 2 * A * B * ones_p @ R @ ones_k + A**2 * ones_p @ Q @ ones_p) / 2
    np.testing.assert_allclose(values["residual_risk"], [[risk]])
    np.testing.assert_allclose(values["noise_Q"], A**2)
    np.testing.assert_allclose(values["diffusion_Q"], 2 * A**2 * risk)


def test_quadratic_student_against_isserlis():
    # sigma = x**2, sigma* = x: sigma'(lambda_j) = 2 lambda_j, so noise_Q = 4 a**2 Q_jl and
    # drift_R = 2a E[lambda_j nu_r (b sum nu - a sum lambda**2)]
    Q, R, T = _overlaps()
    values = _values(Model(student_activation="x**2", teacher_activation="x"))
    np.testing.assert_allclose(values["noise_Q"], 4 * A**2 * Q)
    # E[lambda_j nu_r nu_s] = 0 (odd); E[lambda_j nu_r lambda_m**2] = R_jr Q_mm + 2 Q_jm R_mr
    drift_R = 2 * A * (-A) * (R * np.trace(Q) + 2 * Q @ R)
    np.testing.assert_allclose(values["drift_R"], drift_R)
    # residual risk: (1/2) E[(b sum nu - a sum lambda**2)**2]
    risk = (B**2 * T.sum() + A**2 * (np.trace(Q) ** 2 + 2 * np.sum(Q**2))) / 2
    np.testing.assert_allclose(values["residual_risk"], [[risk]])


def test_integrands_have_the_free_indices_of_their_shapes():
    free = {name: indices for name, (_, indices) in indexed_integrands(Model("x**2", "x")).items()}
    assert free["drift_R"] == (("s", "j"), ("t", "r")) and free["residual_risk"] == ()
    assert free["noise_Q"] == free["diffusion_Q"] == (("s", "j"), ("s", "l"))


def test_a_non_polynomial_model_is_sent_to_the_per_tuple_route():
    with pytest.raises(ValueError, match="per-tuple route"):
        derive_quantities(SCM)
