"""Tensor networks to index-free matrix expressions (derive/algebra/contract.py), evaluated on explicit
matrices against the Wick sums written out with indices."""

import numpy as np
import pytest
import sympy as sp

from derive.algebra.contract import network_to_expression, networks_to_expression
from derive.algebra.matrix_expr import evaluate
from derive.gauss.indexed import STUDENT, TEACHER, IndexedPolynomial, Network, average
from derive.model.model import x

P, K = 3, 2


def _overlaps():
    rng = np.random.default_rng(0)
    factor = rng.integers(-3, 4, size=(P + K, P + K + 1))
    C = factor @ factor.T
    return C[:P, :P], C[:P, P:], C[P:, P:]


def _evaluated(polynomial: IndexedPolynomial, free: tuple) -> np.ndarray:
    Q, R, T = _overlaps()
    expression = networks_to_expression(average(polynomial, free))
    value = evaluate(expression, sp.Matrix(Q), sp.Matrix(R), sp.Matrix(T))
    return np.array(value.tolist(), dtype=float)


def _slot(power_of_x: sp.Expr, kind: str, name: str, summed: bool = False) -> IndexedPolynomial:
    return IndexedPolynomial.of_slot(power_of_x, (kind, name), summed=summed)


def test_a_matrix_valued_network():
    # E[sum_m lambda_m**2 lambda_j nu_r] = tr(Q) R_jr + 2 (Q R)_jr
    Q, R, T = _overlaps()
    polynomial = _slot(x**2, STUDENT, "m", summed=True) * _slot(x, STUDENT, "j") * _slot(x, TEACHER, "r")
    got = _evaluated(polynomial, ((STUDENT, "j"), (TEACHER, "r")))
    np.testing.assert_array_equal(got, np.trace(Q) * R + 2 * Q @ R)


def test_a_scalar_network():
    # E[sum_m sum_s lambda_m**2 nu_s**2] = tr(Q) tr(T) + 2 sum R**2
    Q, R, T = _overlaps()
    polynomial = _slot(x**2, STUDENT, "m", summed=True) * _slot(x**2, TEACHER, "s", summed=True)
    got = _evaluated(polynomial, ())
    assert got.shape == (1, 1)
    assert got[0, 0] == np.trace(Q) * np.trace(T) + 2 * np.sum(R**2)


def test_summed_nodes_of_degree_three_are_finished_by_an_einsum():
    # E[sum_m sum_n lambda_m**3 lambda_n**3] = sum_mn 9 Q_mm Q_nn Q_mn + 6 Q_mn**3
    Q, _, _ = _overlaps()
    polynomial = _slot(x**3, STUDENT, "m", summed=True) * _slot(x**3, STUDENT, "n", summed=True)
    diagonal = np.diag(Q)
    want = 9 * diagonal @ Q @ diagonal + 6 * np.sum(Q**3)
    assert _evaluated(polynomial, ())[0, 0] == want


def test_a_vector_valued_network_is_refused():
    network = Network(edges=(("Q", "j", "m"),), summed=((STUDENT, "m"),), free=((STUDENT, "j"),))
    with pytest.raises(NotImplementedError, match="scalar and matrix-valued"):
        network_to_expression(network)
