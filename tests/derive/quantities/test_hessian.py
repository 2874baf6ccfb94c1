"""Gaussian averages of the weight-space gradient and Hessian (derive/quantities/hessian.py) of a cubic
student and a quadratic teacher, against the averages written out by Isserlis' theorem."""

import numpy as np
import sympy as sp

from derive.algebra.matrix_expr import evaluate
from derive.model.model import HE3, PAPER, Model
from derive.quantities.hessian import HESSIAN_TERM_NAMES, derive_hessian_terms, hessian_result_hash

P, K = 3, 2
A, B = 1 / P, 1 / K  # the default readouts 1/p, 1/k
CUBIC = Model(student_activation="x**3", teacher_activation="x**2")
SHAPES = {"ss": (P, P), "st": (P, K), "V2": (P, 1), "V4": (P, 1)}


def _overlaps():
    rng = np.random.default_rng(2)
    factor = rng.integers(-2, 3, size=(P + K, P + K + 2))
    C = factor @ factor.T
    return C[:P, :P], C[:P, P:], C[P:, P:]


def _values(model: Model) -> dict[str, np.ndarray]:
    matrices = [sp.Matrix(M) for M in _overlaps()]
    out = {}
    for name, expr in derive_hessian_terms(model).items():
        shape = SHAPES.get(name, SHAPES[name[-2:]])
        value = np.array(evaluate(expr, *matrices).tolist(), dtype=float) if expr != 0 else np.zeros((1, 1))
        out[name] = np.broadcast_to(value, shape)
    return out


def test_cubic_student_quadratic_teacher():
    # g_j = -a lambda_j**3: g' = -3a lambda**2, g'' = -6a lambda, g''' = -6a, g'''' = 0;
    # g_r = b nu_r**2: g' = 2b nu, g'' = 2b
    Q, R, T = (M.astype(float) for M in _overlaps())
    values = _values(CUBIC)
    assert list(values) == list(HESSIAN_TERM_NAMES)
    d = np.diag(Q)
    np.testing.assert_allclose(values["M11_ss"], 9 * A**2 * (np.outer(d, d) + 2 * Q**2))
    np.testing.assert_allclose(values["M22_ss"], 36 * A**2 * Q)
    np.testing.assert_allclose(values["M13_ss"], 18 * A**2 * np.outer(d, np.ones(P)))
    for odd in ("M11_st", "M22_st", "M31_st", "V4"):  # odd moments, or g'''' = 0
        np.testing.assert_array_equal(values[odd], 0.0)
    # V2_j = E[rho g''_j], rho = b sum nu**2 - a sum lambda**3: 6a**2 sum_m E[lambda_m**3 lambda_j]
    np.testing.assert_allclose(values["V2"][:, 0], 18 * A**2 * Q @ d)


def test_the_result_hash_follows_the_derivation():
    assert hessian_result_hash(PAPER) == hessian_result_hash(PAPER)
    assert len({hessian_result_hash(model) for model in (PAPER, HE3, CUBIC)}) == 3
