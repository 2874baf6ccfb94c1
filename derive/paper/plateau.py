"""Norm learning, the plateau and the escape from it (paper Eqs. 9-13, App. 7.3).

Everything here is derived from the index-free right-hand sides of
:func:`derive.quantities.ode.derive_quantities`, for symbolic widths p and k, by
evaluating them on *structured* overlaps instead of explicit matrices:

* norm learning (Eq. 9): ``Q = D`` diagonal with entries ``q_j``, ``R = 0``,
  ``T = I_k``. Every matrix that appears is then a polynomial in ``D``, whose
  traces are the power sums ``S_n = sum_j q_j**n`` (``S_0 = p``).
* the plateau (Eqs. 11-12): ``Q = q I + D + X`` with ``D`` a small diagonal
  and ``X`` a small off-diagonal symmetric matrix, ``R = Y`` small, kept to
  second order in the bookkeeping parameter ``epsilon`` with ``Y ~ epsilon``
  and ``D, X ~ epsilon**2`` (the off-diagonal overlaps and the norm
  deviations are driven by ``R R^T``). The only traces that survive are
  ``tr(D) = s_D`` and ``tr(Y Y^T) = rr = sum(R**2)``; ``tr(X) = 0``.

Matrices are represented as linear combinations of *words* in the generators
(``()`` is the identity of the right size); this is exact for any p, k, as long
as the expressions use only matrix products, transposes, traces and
``sum(A∘A) = tr(A A^T)`` (true for the paper model and ``he2``; other
Hadamard structures raise ``NotImplementedError``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp

from derive.algebra.matrix_expr import Q, R, T, mm, total, tp, tr
from derive.model.model import PAPER, Model, k, p
from derive.quantities.ode import derive_quantities

eta, eta0, alpha, N, q, q0 = sp.symbols("eta eta_0 alpha N q q_0", positive=True)
epsilon = sp.Symbol("epsilon")
#: Traces in the plateau expansion: ``s_D = tr(D)``, ``rr = sum_jr R_jr**2``.
s_D, rr = sp.symbols("s_D rr")
#: Diagonal entry ``q_j`` in the norm-learning equations and power sums ``S_n``.
q_j = sp.Symbol("q_j", positive=True)


def power_sum(n: int) -> sp.Expr:
    """``S_n = sum_j q_j**n`` (``S_0 = p``)."""
    return p if n == 0 else sp.Symbol(f"S_{n}")


# generator -> (rows, cols, transpose)
_GENERATORS = {"D": ("p", "p", "D"), "X": ("p", "p", "X"), "Y": ("p", "k", "Yt"), "Yt": ("k", "p", "Y")}


@dataclass(frozen=True)
class _Setting:
    leaves: dict  # Q, R, T -> {word: coefficient}
    order: int | None  # truncation order in epsilon (None: exact)
    trace: object  # word -> trace


class _Mat:
    """``shape`` from {'p','k','1'}**2 and ``terms``: word -> coefficient."""

    def __init__(self, shape: tuple[str, str], terms: dict[tuple[str, ...], sp.Expr]):
        self.shape = shape
        self.terms = {w: c for w, c in terms.items() if c != 0}

    @property
    def scalar(self) -> bool:
        return self.shape == ("1", "1")

    def value(self) -> sp.Expr:
        return self.terms.get((), sp.Integer(0))


def _truncate(expr: sp.Expr, order: int | None) -> sp.Expr:
    expr = sp.expand(expr)
    if order is None:
        return expr
    return sp.Add(*[expr.coeff(epsilon, n) * epsilon**n for n in range(order + 1)])


def _structured_evaluate(expr: sp.Expr, setting: _Setting) -> _Mat:
    order = setting.order

    def scalar(value: sp.Expr) -> _Mat:
        return _Mat(("1", "1"), {(): _truncate(value, order)})

    def product(a: _Mat, b: _Mat) -> _Mat:
        if a.scalar or b.scalar:
            factor, other = (a, b) if a.scalar else (b, a)
            f = factor.value()
            return _Mat(other.shape, {w: _truncate(f * c, order) for w, c in other.terms.items()})
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"shape mismatch {a.shape} @ {b.shape}")
        out: dict[tuple[str, ...], sp.Expr] = {}
        for wa, ca in a.terms.items():
            for wb, cb in b.terms.items():
                out[wa + wb] = out.get(wa + wb, 0) + ca * cb
        return _Mat((a.shape[0], b.shape[1]), {w: _truncate(c, order) for w, c in out.items()})

    def transpose(a: _Mat) -> _Mat:
        terms = {tuple(_GENERATORS[g][2] for g in reversed(w)): c for w, c in a.terms.items()}
        return _Mat((a.shape[1], a.shape[0]), terms)

    def trace(a: _Mat) -> _Mat:
        if a.shape[0] != a.shape[1]:
            raise ValueError("trace of a non-square matrix")
        if a.scalar:
            return a
        total_ = sum((c * setting.trace(w, a.shape[0]) for w, c in a.terms.items()), sp.Integer(0))
        return scalar(total_)

    def ev(e: sp.Expr) -> _Mat:
        if e in (Q, R, T):
            rows, cols = {Q: ("p", "p"), R: ("p", "k"), T: ("k", "k")}[e]
            return _Mat((rows, cols), dict(setting.leaves[e]))
        if not e.has(Q, R, T):
            return scalar(e)
        if isinstance(e, mm):
            out = ev(e.args[0])
            for a in e.args[1:]:
                out = product(out, ev(a))
            return out
        if isinstance(e, tp):
            return transpose(ev(e.args[0]))
        if isinstance(e, tr):
            return trace(ev(e.args[0]))
        if isinstance(e, total):
            inner = e.args[0]
            if isinstance(inner, sp.Pow) and inner.exp == 2:
                base = ev(inner.base)
                return trace(product(base, transpose(base)))
            raise NotImplementedError(f"sum of entries of {inner} is outside the word algebra")
        if isinstance(e, sp.Add):
            parts = [ev(a) for a in e.args]
            shapes = {m.shape for m in parts if not m.scalar}
            if len(shapes) > 1 or (shapes and any(m.scalar for m in parts)):
                raise NotImplementedError(f"broadcast sum in {e}")
            out: dict[tuple[str, ...], sp.Expr] = {}
            for m in parts:
                for w, c in m.terms.items():
                    out[w] = out.get(w, 0) + c
            return _Mat(shapes.pop() if shapes else ("1", "1"), out)
        if isinstance(e, sp.Mul):
            parts = [ev(a) for a in e.args]
            if sum(not m.scalar for m in parts) > 1:
                raise NotImplementedError(f"Hadamard product in {e}")
            out_m = scalar(sp.Integer(1))
            for m in parts:
                out_m = product(out_m, m)
            return out_m
        if isinstance(e, sp.Pow):
            base = ev(e.base)
            if not base.scalar:
                raise NotImplementedError(f"entry-wise power in {e}")
            return scalar(base.value() ** e.exp)
        raise NotImplementedError(f"cannot evaluate {e!r} on structured overlaps")

    return ev(expr)


def _rhs(model: Model, setting: _Setting, second_order: bool) -> tuple[_Mat, _Mat, _Mat]:
    """Structured ``(dQ, dR, risk)`` including ``eta``, ``Delta`` and ``kappa``."""
    d = derive_quantities(model)
    dQ_expr = eta * d.drift_Q - 2 * eta * model.weight_decay * Q
    if second_order:
        dQ_expr += eta**2 * (d.diffusion_Q + model.noise_variance * d.noise_Q)
    dR_expr = eta * d.drift_R - eta * model.weight_decay * R
    risk_expr = d.residual_risk + model.noise_variance / 2
    return tuple(_structured_evaluate(e, setting) for e in (dQ_expr, dR_expr, risk_expr))  # type: ignore[return-value]


def _identity_trace(word: tuple[str, ...], size: str) -> sp.Expr:
    if not word:
        return {"p": p, "k": k}[size]
    return None  # type: ignore[return-value]


def _norm_trace(word: tuple[str, ...], size: str) -> sp.Expr:
    if set(word) <= {"D"}:
        return power_sum(len(word)) if size == "p" else k
    raise NotImplementedError(f"trace of {word} in the norm-learning setting")


def _plateau_trace(word: tuple[str, ...], size: str) -> sp.Expr:
    if not word:
        return {"p": p, "k": k}[size]
    if word == ("D",):
        return s_D
    if word == ("X",):
        return sp.Integer(0)
    if word in (("Y", "Yt"), ("Yt", "Y")):
        return rr
    raise NotImplementedError(f"trace of {word} in the plateau expansion")


# --------------------------------------------------------------------------
# Eqs. 9-10: norm learning and the fixed-point norm.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class NormLearning:
    """Reduced norm equations and their fixed point (paper Eqs. 9-10).

    ``rate`` is ``dq_j/dalpha`` as a polynomial in ``q_j`` and power sums
    ``S_n``; ``isotropic_rate`` is the same at ``q_j = q`` for all j;
    ``fixed_point`` is the attractive root continuing ``p/(p+2)``;
    ``eigenvalues`` are (symmetric mode, each of the p-1 relative modes) of the
    reduced flow at the fixed point.
    """

    rate: sp.Expr
    isotropic_rate: sp.Expr
    fixed_point: sp.Expr
    eigenvalues: tuple[sp.Expr, sp.Expr]


@cache
def norm_learning(model: Model = PAPER, second_order: bool = True) -> NormLearning:
    """Eq. 9 (``Q`` diagonal, ``R = 0``, ``T = I``) and Eq. 10, for symbolic p, k, eta."""
    Dword = {("D",): sp.Integer(1)}
    setting = _Setting({Q: Dword, R: {}, T: {(): sp.Integer(1)}}, None, _norm_trace)
    dQ, _, _ = _rhs(model, setting, second_order)
    # a polynomial in D is diagonal: entry j is the polynomial in q_j
    rate = sp.expand(sum(c * q_j ** len(w) for w, c in dQ.terms.items()))
    sums = sorted(rate.free_symbols & {power_sum(n) for n in range(1, 8)}, key=str)
    iso = {s: p * q ** int(str(s)[2:]) for s in sums}
    isotropic = sp.factor(rate.subs(iso).subs(q_j, q))
    roots = [r for r in sp.solve(sp.cancel(isotropic / q), q)]
    fixed = _continuing_root(roots, second_order)
    # Jacobian of the reduced flow at the isotropic point: own derivative
    # (relative modes) plus p times the derivative through the power sums.
    own = sp.diff(rate, q_j)
    through_sums = sum(sp.diff(rate, s) * int(str(s)[2:]) * q_j ** (int(str(s)[2:]) - 1) for s in sums)
    at_fixed = {**{s: p * q ** int(str(s)[2:]) for s in sums}}
    # eigenvalues as functions of the norm q (evaluated at q* in gradient flow,
    # where they stay short; at finite eta substitute fixed_point)
    relative = sp.factor(own.subs(at_fixed).subs(q_j, q))
    symmetric = sp.factor((own + p * through_sums).subs(at_fixed).subs(q_j, q))
    if not second_order:
        relative, symmetric = sp.factor(relative.subs(q, fixed)), sp.factor(symmetric.subs(q, fixed))
    return NormLearning(rate, isotropic, fixed, (symmetric, relative))


def _continuing_root(roots: list[sp.Expr], second_order: bool) -> sp.Expr:
    """The root equal to the gradient-flow fixed point as ``eta -> 0``."""
    if not second_order:
        (root,) = roots
        return root
    # the branches are swapped by the sign of a square root: pick the one that
    # matches p/(p+2) at a small eta for sample widths (the choice is the same
    # for all p, k since the discriminant does not vanish as eta -> 0)
    sample = {p: 3, k: 2, eta: sp.Rational(1, 10**4)}
    close = [r for r in roots if abs(sp.N(r.subs(sample)) - sp.Rational(3, 5)) < 1e-3]
    if len(close) != 1:
        raise ValueError(f"cannot identify the continuing fixed point among {roots}")
    return close[0]


# --------------------------------------------------------------------------
# Eqs. 11-13: linearisation in the plateau and the average risk reduction.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PlateauLinearisation:
    """Expansion of the ODEs around ``Q = q I``, ``R = 0`` (paper Eqs. 11-12).

    With ``Q = q I + D + X`` (``D`` diagonal, ``X`` off-diagonal), to leading order

        dR/dalpha       = growth_R * R
        dX_jl/dalpha    = growth_X * X_jl + source_X * (R R^T)_jl            (j != l)
        dD_jj/dalpha    = norm_drift + growth_D * D_jj + coupling_D * tr(D)
                          + source_D * (R R^T)_jj + source_D_sum * sum(R**2)
        risk            = risk_plateau + risk_D * tr(D) + risk_R * sum(R**2)

    Coefficients are functions of ``q``; ``at_fixed_point`` gives them at ``q*``.
    """

    growth_R: sp.Expr
    growth_X: sp.Expr
    source_X: sp.Expr
    norm_drift: sp.Expr
    growth_D: sp.Expr
    coupling_D: sp.Expr
    source_D: sp.Expr
    source_D_sum: sp.Expr
    risk_plateau: sp.Expr
    risk_D: sp.Expr
    risk_R: sp.Expr

    def at(self, value: sp.Expr) -> PlateauLinearisation:
        return PlateauLinearisation(*[sp.factor(getattr(self, f).subs(q, value)) for f in LINEARISATION_FIELDS])


#: The coefficients of :class:`PlateauLinearisation`, in order.
LINEARISATION_FIELDS = tuple(PlateauLinearisation.__dataclass_fields__)


@cache
def plateau_linearisation(model: Model = PAPER, second_order: bool = True) -> PlateauLinearisation:
    """Coefficients of Eqs. 11-12 as functions of the norm ``q``, symbolic p, k, eta."""
    e = epsilon
    leaves = {
        Q: {(): q, ("D",): e**2, ("X",): e**2},
        R: {("Y",): e},
        T: {(): sp.Integer(1)},
    }
    dQ, dR, risk = _rhs(model, _Setting(leaves, 2, _plateau_trace), second_order)

    def coefficient(m: _Mat, word: tuple[str, ...], power: int) -> sp.Expr:
        return sp.expand(m.terms.get(word, 0)).coeff(e, power)

    extra_R = set(dR.terms) - {("Y",)}
    extra_Q = set(dQ.terms) - {(), ("D",), ("X",), ("Y", "Yt")}
    if extra_R or extra_Q:
        raise NotImplementedError(f"unexpected structure in the plateau expansion: {extra_R | extra_Q}")
    identity = coefficient(dQ, (), 0) + coefficient(dQ, (), 2)
    risk_value = sp.expand(risk.value())
    return PlateauLinearisation(
        growth_R=sp.factor(coefficient(dR, ("Y",), 1)),
        growth_X=sp.factor(coefficient(dQ, ("X",), 2)),
        source_X=sp.factor(coefficient(dQ, ("Y", "Yt"), 2)),
        norm_drift=sp.factor(identity.subs({s_D: 0, rr: 0})),
        growth_D=sp.factor(coefficient(dQ, ("D",), 2)),
        coupling_D=sp.factor(sp.diff(identity, s_D)),
        source_D=sp.factor(coefficient(dQ, ("Y", "Yt"), 2)),
        source_D_sum=sp.factor(sp.diff(identity, rr)),
        risk_plateau=sp.factor(risk_value.coeff(e, 0)),
        risk_D=sp.factor(sp.diff(risk_value.coeff(e, 2), s_D)),
        risk_R=sp.factor(sp.diff(risk_value.coeff(e, 2), rr)),
    )


@cache
def plateau_at_fixed_point(model: Model = PAPER, second_order: bool = True) -> PlateauLinearisation:
    """:func:`plateau_linearisation` evaluated at the fixed-point norm ``q*``."""
    return plateau_linearisation(model, second_order).at(norm_learning(model, second_order).fixed_point)


@cache
def average_risk_reduction(model: Model = PAPER, second_order: bool = False) -> sp.Expr:
    """Eq. 13: ``E[(eps(0) - eps(alpha)) / eps_plateau]`` in the linearised plateau.

    The dynamics start on the plateau, ``Q(0) = q* I``, with ``R_jr(0)`` i.i.d.
    ``N(0, q*/N)`` (Eq. 8 with ``q0 = q*``), so ``E sum(R(0)**2) = p k q*/N``.
    ``sum(R**2)`` grows as ``exp(2 g alpha)`` (``g`` the R growth rate), and
    ``tr(D)`` solves ``d tr(D)/dalpha = lambda tr(D) + s sum(R**2)`` from 0.
    """
    lin = plateau_at_fixed_point(model, second_order)
    fixed = norm_learning(model, second_order).fixed_point
    grow = 2 * lin.growth_R
    lam = lin.growth_D + p * lin.coupling_D
    source = lin.source_D + p * lin.source_D_sum
    mean_rr0 = p * k * fixed / N
    rr_alpha = mean_rr0 * sp.exp(grow * alpha)
    trace_D = source * mean_rr0 * (sp.exp(grow * alpha) - sp.exp(lam * alpha)) / (grow - lam)
    change = lin.risk_R * (rr_alpha - mean_rr0) + lin.risk_D * trace_D
    result = -change / lin.risk_plateau
    # simplification is cheap in gradient flow, slow (minutes) at finite eta
    return sp.simplify(result) if not second_order else result
