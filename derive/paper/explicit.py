"""Explicit-index expansion for one small width (p, k): the cross-check of the index-free form.

Here nothing is summed symbolically: ``lambda_1..lambda_p`` and ``nu_1..nu_k``
are separate Gaussian variables with covariance built from explicit entries
``Q_j_l``, ``R_j_r``, ``T_r_s``, the residual is written out term by term, and
every entry of every quantity is one call of :func:`derive.gauss.wick.expectation`.
"""

from __future__ import annotations

import sympy as sp

from derive.algebra.matrix_expr import broadcast, evaluate
from derive.model.model import Model, k, p, x
from derive.quantities.ode import QUANTITY_NAMES, derive_quantities


def overlap_symbols(n_student: int, n_teacher: int) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    """Symbolic ``Q`` (symmetric), ``R`` and ``T`` (symmetric) with named entries."""
    Q = sp.Matrix(n_student, n_student, lambda i, j: sp.Symbol(f"Q_{min(i, j)}_{max(i, j)}"))
    R = sp.Matrix(n_student, n_teacher, lambda i, r: sp.Symbol(f"R_{i}_{r}"))
    T = sp.Matrix(n_teacher, n_teacher, lambda r, s: sp.Symbol(f"T_{min(r, s)}_{max(r, s)}"))
    return Q, R, T


def explicit_quantities(model: Model, n_student: int, n_teacher: int) -> dict[str, sp.Matrix]:
    """Every quantity of :data:`derive.quantities.ode.QUANTITY_NAMES` entry by entry.

    Returns matrices of expanded sympy expressions in the entries of
    :func:`overlap_symbols`; ``residual_risk`` is 1 x 1.
    """
    Q, R, T = overlap_symbols(n_student, n_teacher)
    lam = sp.symbols(f"lambda0:{n_student}")
    nu = sp.symbols(f"nu0:{n_teacher}")
    variables = list(lam) + list(nu)
    covariance = sp.BlockMatrix([[Q, R], [R.T, T]]).as_explicit()
    sizes = {p: n_student, k: n_teacher}
    a = model.student_readout.subs(sizes)
    b = model.teacher_readout.subs(sizes)
    sigma, sigma_star = model.student_activation, model.teacher_activation
    derivative = sp.diff(sigma, x)
    residual = b * sum(sigma_star.subs(x, v) for v in nu) - a * sum(sigma.subs(x, v) for v in lam)

    def average(expr: sp.Expr) -> sp.Expr:
        return sp.expand(_expectation(sp.expand(expr), variables, covariance))

    d = [derivative.subs(x, v) for v in lam]
    drift_R = sp.Matrix(n_student, n_teacher, lambda j, r: average(a * d[j] * nu[r] * residual))
    half = sp.Matrix(n_student, n_student, lambda j, l: average(a * d[j] * lam[l] * residual))
    residual_sq = sp.expand(residual**2)
    diffusion = sp.Matrix(n_student, n_student, lambda j, l: average(a**2 * d[j] * d[l] * residual_sq))
    noise = sp.Matrix(n_student, n_student, lambda j, l: average(a**2 * d[j] * d[l]))
    risk = sp.Matrix([[average(residual_sq / 2)]])
    return {
        "drift_R": drift_R,
        "drift_Q": (half + half.T).applyfunc(sp.expand),
        "diffusion_Q": diffusion,
        "noise_Q": noise,
        "residual_risk": risk,
    }


def _expectation(expr: sp.Expr, variables: list[sp.Symbol], covariance: sp.Matrix) -> sp.Expr:
    from derive.gauss.wick import expectation

    return expectation(expr, variables, covariance)


def index_free_evaluated(model: Model, n_student: int, n_teacher: int) -> dict[str, sp.Matrix]:
    """The index-free quantities evaluated on the explicit symbolic overlaps."""
    Q, R, T = overlap_symbols(n_student, n_teacher)
    derived = derive_quantities(model).as_dict()
    return {name: evaluate(derived[name], Q, R, T) for name in QUANTITY_NAMES}


def mismatches(model: Model, n_student: int, n_teacher: int) -> list[str]:
    """Names of quantities whose index-free and explicit forms differ (empty when all agree)."""
    explicit = explicit_quantities(model, n_student, n_teacher)
    index_free = index_free_evaluated(model, n_student, n_teacher)
    bad = []
    for name in QUANTITY_NAMES:
        a, b = explicit[name], index_free[name]
        b = broadcast(sp.zeros(*a.shape), b, lambda u, v: u + v)
        if any(sp.expand(u - v) != 0 for u, v in zip(a, b)):
            bad.append(name)
    return bad
