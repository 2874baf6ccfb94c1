"""Increment moments of the printed route (derive/quantities/increments.py): the six averages of the
linear model at p = k = 1, contracted here, against Isserlis' theorem by hand; degree limits."""

import numpy as np
import pytest
import sympy as sp

from derive.algebra.matrix_expr import evaluate
from derive.model.model import HE2, HE3, PAPER, Model
from derive.quantities.increments import (
    DELTA,
    FREE,
    MAX_FLUCTUATION_DEGREE,
    MOMENT_NAMES,
    check_fluctuations_supported,
    derive_moments,
    fluctuations_supported,
    moment_integrands,
    uses_network_tables,
)

LINEAR = Model(student_activation="x", teacher_activation="x")
Q, R, T, NOISE = 2, 1, 3, sp.Rational(1, 2)  # p = k = 1: the readouts a = 1/p and b = 1/k are 1


def _moment(name: str) -> sp.Expr:
    """One average of ``derive_moments(LINEAR)`` at p = k = 1, contracted term by term."""
    overlaps = sp.Matrix([[Q]]), sp.Matrix([[R]]), sp.Matrix([[T]])
    total = sp.Integer(0)
    for term, coefficient in derive_moments(LINEAR)[name].items():
        operands = [np.array(evaluate(op, *overlaps).tolist(), dtype=object) for op in term.operands]
        output = "".join(c for c in term.output if c not in term.ones)
        value = np.einsum(",".join(term.subscripts) + "->" + output, *operands) if operands else 1
        # the scalar coefficient may hold index-free factors like total(Q), and the widths p, k
        scalar = evaluate(sp.sympify(coefficient).subs(DELTA, NOISE), *overlaps)[0, 0]
        total += scalar * sp.sympify(np.asarray(value).sum())
    return sp.nsimplify(total)


def test_linear_moments_are_isserlis_by_hand():
    # E = (g + s xi), g = nu - lambda; Var g = G, Cov(lambda, g) = c, Cov(nu, g) = d
    G, c, d = T - 2 * R + Q, R - Q, T - R
    want = {
        "LL": Q * G + 2 * c**2 + NOISE * Q,  # <lambda**2 (g**2 + Delta)>
        "LN": R * G + 2 * c * d + NOISE * R,  # <lambda nu (g**2 + Delta)>
        "NN": T * G + 2 * d**2 + NOISE * T,  # <nu**2 (g**2 + Delta)>
        "LE": 3 * c * G + 3 * NOISE * c,  # <lambda (g**3 + 3 Delta g)>
        "EN": 3 * d * G + 3 * NOISE * d,  # <nu (g**3 + 3 Delta g)>
        "EE": 3 * G**2 + 6 * NOISE * G + 3 * NOISE**2,  # <g**4 + 6 Delta g**2 + 3 Delta**2>
    }
    assert set(derive_moments(LINEAR)) == set(MOMENT_NAMES)
    for name in MOMENT_NAMES:
        assert _moment(name) == want[name], name


def test_integrands_expand_the_residual_powers_binomially():
    # LL = <s_j l s_i h (g**2 + Delta)> with g a sum of a teacher and a student part: 3 + 1 products
    parts = moment_integrands(LINEAR)["LL"]
    assert len(parts) == 4
    assert sorted(str(c) for c, _ in parts) == sorted(["1", "2", "1", "delta"])
    assert all(len(factors) == 4 + (0 if c == DELTA else 2) for c, factors in parts)
    assert {name for name, _ in FREE["NN"]} == {"s", "t"}


def test_degree_limits():
    assert fluctuations_supported(HE3) and not uses_network_tables(PAPER) and not uses_network_tables(HE2)
    assert uses_network_tables(HE3)
    quintic = Model(student_activation="x**5", teacher_activation="x")
    assert not fluctuations_supported(quintic)
    with pytest.raises(ValueError, match=f"degree <= {MAX_FLUCTUATION_DEGREE}.*sigma = x\\*\\*5"):
        check_fluctuations_supported(quintic)
    check_fluctuations_supported(HE3)  # no error
