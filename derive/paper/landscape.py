"""Closed-form Hessian spectra at the stationary points, and degrees of freedom (App. 7.2, 7.5).

Paper model (``sigma = x**2``, ``a = 1/p``, ``b = 1/k``, ``T = I``). The generated
blocks (derive/quantities/hessian.py) reduce there to

    N H = A (x) I_N + I_p (x) S + (4/p**2) P,
    A = (4/p**2) Q - (2/p)(1 - tr(Q)/p) I,      S = (4/p**2) (U^T U - (p/k) U*^T U*),
    P_jl = u_j u_l^T + u_l u_j^T,

so each stationary point splits into (i) directions orthogonal to the span of
the weights (eigenvalues of A, multiplicity ``N - rank``), (ii) per-student
directions in the teacher span or the span of the other students (eigenvalue
``A_jj`` plus that of S), and (iii) the student-student block, where on
``X`` (coordinates of the student moves in the student span) the operator is
``c (X + X^T + tr(X) I)``: 0 on antisymmetric X, ``2c`` on symmetric
traceless X and ``(r + 2) c`` on the identity. Collecting the pieces gives the
tables of ``derive/model/hessian_spectra.py`` (shared with numerics, which
evaluates them in exact fractions); :func:`spectra` returns ``{point: [(N * eigenvalue, multiplicity)]}``
as sympy expressions in ``N, p, k`` (and the plateau rank ``r``).
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from derive.model.hessian_spectra import POINT_NAMES, spectrum_table
from derive.model.model import k, p

N = sp.Symbol("N", positive=True, integer=True)
r = sp.Symbol("r", nonnegative=True, integer=True)
c2 = sp.Symbol("c2", positive=True)


def _choose2(n: sp.Expr) -> sp.Expr:
    return n * (n - 1) / 2


@cache
def aligned_norm() -> sp.Expr:
    """``c**2`` of the aligned point: minimise ``eps(c) = E[(sum nu**2/k - c**2 nu_1**2)**2]/2``.

    Moments of independent standard Gaussians: ``E nu**4 = 3``, ``E nu_1**2 nu_r**2 = 1``.
    """
    risk = (k + 2) / k - 2 * c2 * (k + 2) / k + 3 * c2**2
    (root,) = sp.solve(sp.diff(risk, c2), c2)
    return sp.factor(root)


@cache
def spectra() -> dict[str, list[tuple[sp.Expr, sp.Expr]]]:
    """``{point: [(N * eigenvalue, multiplicity), ...]}``; plateau with rank ``r`` (``1 <= r <= p``)."""
    raw = {point: spectrum_table(point, N, p, k, r, aligned_norm()) for point in POINT_NAMES}
    return {point: _merged(pairs) for point, pairs in raw.items()}


def _merged(pairs: list[tuple[sp.Expr, sp.Expr]]) -> list[tuple[sp.Expr, sp.Expr]]:
    out: dict[sp.Expr, sp.Expr] = {}
    for value, multiplicity in pairs:
        key = sp.factor(sp.simplify(value))
        out[key] = sp.factor(sp.expand(out.get(key, 0) + multiplicity))
    return list(out.items())


def _sign_of(value: sp.Expr) -> str:
    sample = value.subs({p: 5, k: 3, r: 2, N: 100})
    return "null" if value == 0 else ("negative" if sample < 0 else "positive")


@cache
def counts() -> dict[str, dict[str, sp.Expr]]:
    """Negative, null and positive multiplicities per point (``N >= p + k``; aligned: ``k >= 2``)."""
    out = {}
    for point, pairs in spectra().items():
        sums = {"negative": sp.Integer(0), "null": sp.Integer(0), "positive": sp.Integer(0)}
        for value, multiplicity in pairs:
            sums[_sign_of(value)] += multiplicity
        out[point] = {sign: sp.factor(sp.expand(total)) for sign, total in sums.items()}
    return out


@cache
def plateau_ratio() -> tuple[sp.Expr, sp.Expr]:
    """Eq. 29: negative / null at the full-rank plateau, and its leading large-N behaviour."""
    full = {key: value.subs(r, p) for key, value in counts()["plateau"].items()}
    ratio = sp.factor(full["negative"] / full["null"])
    leading = sp.limit(ratio * N, N, sp.oo) / N
    return ratio, leading


@cache
def degrees_of_freedom() -> tuple[sp.Expr, sp.Expr]:
    """Student expressivity ``dim{W^T W}`` (p <= N) and the zero-error manifold dimension (p >= k).

    Expressivity: ``pN`` parameters minus the ``p(p-1)/2`` rotations ``W -> O W``
    that leave ``W^T W`` unchanged (``N(N+1)/2`` once p >= N). Manifold: ``p(p-1)/2``
    rotations of one solution, minus the ``(p-k)(p-k-1)/2`` that only mix the
    ``p - k`` directions orthogonal to the rotation ``O`` (App. 7.5.2).
    """
    expressivity = sp.expand(p * N - _choose2(p))
    manifold = sp.factor(sp.expand(_choose2(p) - _choose2(p - k)))
    return expressivity, manifold
