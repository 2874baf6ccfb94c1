"""The closed-form kernels of erf and relu units, stated for docs/equations.md and checked against the engine.

The classic integrals of erf networks (Saad and Solla 1995; Biehl and Schwarze
1995), for ``sigma(x) = erf(x / sqrt(2))`` and a block ``c`` of the covariance
(``c_ab`` its entries, slots numbered from 0), and the arc-cosine kernels of relu:
each is written here in its textbook form and compared, at random rational points,
with the program :func:`derive.gauss.kernels.block_average` derives by Wick contraction
and Gaussian tilting; a disagreement makes the document fail to build.
"""

from __future__ import annotations

import random

import sympy as sp

from derive.gauss.kernels import Vertex, block_average, covariance_symbols
from derive.model.activations import Activation

_c = covariance_symbols(4)


def _entry(a: int, b: int) -> sp.Symbol:
    return _c[a][b]


def _erf_forms() -> dict[str, tuple[tuple[Vertex, ...], sp.Expr, str]]:
    c11, c12, c13, c14 = _entry(0, 0), _entry(0, 1), _entry(0, 2), _entry(0, 3)
    c22, c23, c24 = _entry(1, 1), _entry(1, 2), _entry(1, 3)
    c33, c34, c44 = _entry(2, 2), _entry(2, 3), _entry(3, 3)
    erf = Activation("erf", scale=1 / sp.sqrt(2))
    identity = Activation("polynomial", coefficients=(sp.Integer(0), sp.Integer(1)))
    s, ds, x = Vertex(erf), Vertex(erf, 1), Vertex(identity)
    lambda4 = (1 + c11) * (1 + c22) - c12**2
    lambda0 = lambda4 * c34 - c23 * c24 * (1 + c11) - c13 * c14 * (1 + c22) + c12 * c13 * c24 + c12 * c14 * c23
    lambda1 = lambda4 * (1 + c33) - c23**2 * (1 + c11) - c13**2 * (1 + c22) + 2 * c12 * c13 * c23
    lambda2 = lambda4 * (1 + c44) - c24**2 * (1 + c11) - c14**2 * (1 + c22) + 2 * c12 * c14 * c24
    lambda3 = (1 + c11) * (1 + c33) - c13**2
    return {
        "I2": (
            (s, s),
            2 / sp.pi * sp.asin(c12 / sp.sqrt((1 + c11) * (1 + c22))),
            r"\langle \sigma(z_0)\, \sigma(z_1) \rangle",
        ),
        "J2": ((ds, ds), 2 / (sp.pi * sp.sqrt(lambda4)), r"\langle \sigma'(z_0)\, \sigma'(z_1) \rangle"),
        "I3": (
            (ds, x, s),
            2 / sp.pi * (c23 * (1 + c11) - c12 * c13) / ((1 + c11) * sp.sqrt(lambda3)),
            r"\langle \sigma'(z_0)\, z_1\, \sigma(z_2) \rangle",
        ),
        "I4": (
            (ds, ds, s, s),
            4 / (sp.pi**2 * sp.sqrt(lambda4)) * sp.asin(lambda0 / sp.sqrt(lambda1 * lambda2)),
            r"\langle \sigma'(z_0)\, \sigma'(z_1)\, \sigma(z_2)\, \sigma(z_3) \rangle",
        ),
    }


def _relu_forms() -> dict[str, tuple[tuple[Vertex, ...], sp.Expr, str]]:
    c11, c12, c22 = _entry(0, 0), _entry(0, 1), _entry(1, 1)
    c13, c23, c33 = _entry(0, 2), _entry(1, 2), _entry(2, 2)
    unit = Activation("relu")
    identity = Activation("polynomial", coefficients=(sp.Integer(0), sp.Integer(1)))
    r, theta, x = Vertex(unit), Vertex(unit, 1), Vertex(identity)
    return {
        "K_relu": (
            (r, r),
            (sp.sqrt(c11 * c22 - c12**2) + c12 * (sp.pi - sp.acos(c12 / sp.sqrt(c11 * c22)))) / (2 * sp.pi),
            r"\langle \mathrm{relu}(z_0)\, \mathrm{relu}(z_1) \rangle",
        ),
        "K_theta": (
            (theta, theta),
            sp.Rational(1, 4) + sp.asin(c12 / sp.sqrt(c11 * c22)) / (2 * sp.pi),
            r"\langle \theta(z_0)\, \theta(z_1) \rangle",
        ),
        "K_drift": (
            (theta, x, r),
            c12 * sp.sqrt(c11 * c33 - c13**2) / (2 * sp.pi * c11)
            + c23 * (sp.Rational(1, 4) + sp.asin(c13 / sp.sqrt(c11 * c33)) / (2 * sp.pi)),
            r"\langle \theta(z_0)\, z_1\, \mathrm{relu}(z_2) \rangle",
        ),
    }


def _random_block(n: int, rng: random.Random) -> dict[sp.Symbol, sp.Rational]:
    # a positive definite rational block: A A^T / d + I / 4
    A = [[sp.Rational(rng.randint(-6, 6), 5) for _ in range(n)] for _ in range(n)]
    values = {}
    for a in range(n):
        for b in range(a, n):
            entry = sum((A[a][i] * A[b][i] for i in range(n)), sp.Integer(0)) / n
            values[_entry(a, b)] = entry + (sp.Rational(1, 4) if a == b else 0)
    return values


def _evaluate(program, values: dict) -> sp.Float:
    env = dict(values)
    for symbol, expr in program.assignments:
        env[symbol] = sp.N(expr.xreplace(env), 30)
    return sp.N(program.result.xreplace(env), 30)


def checked_forms() -> dict[str, tuple[tuple[Vertex, ...], sp.Expr, str]]:
    """The stated forms, each checked against :func:`derive.gauss.kernels.block_average` at random blocks.

    Raises
    ------
    AssertionError
        When a stated form and the engine disagree (beyond 1e-20).
    """
    forms = {**_erf_forms(), **_relu_forms()}
    rng = random.Random(20260)
    for name, (vertices, stated, _) in forms.items():
        program = block_average(vertices)
        for _ in range(3):
            values = _random_block(len(vertices), rng)
            engine = _evaluate(program, values)
            textbook = sp.N(stated.xreplace(values), 30)
            if abs(engine - textbook) > 1e-20:
                raise AssertionError(f"the kernel {name} derived by derive.gauss.kernels differs from its stated form")
    return forms


__all__ = ["checked_forms"]
