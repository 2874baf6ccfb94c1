"""Conservation of ``Omega = R (R^T R)^(-1/2)`` (paper App. 7.4), proved instead of assumed.

The paper argues that Omega is conserved under a *closure assumption* (the
overlaps stay matrix functions of their initial values). Here the statement is
derived from the index-free right-hand sides of :mod:`derive.quantities.ode`, for
symbolic widths p, k, learning rate eta and a general teacher overlap T:

1. **Form of dR.** ``dR/dalpha = eta drift_R - eta kappa R`` is split into its
   monomials; each must be ``c Q^a R T^b`` with a scalar (trace) coefficient
   ``c`` and ``a = 0`` or ``b = 0``, so that ``dR/dalpha = A(Q) R + R B(T)`` with
   ``A`` a polynomial in Q and ``B`` one in T (:func:`sylvester_form`). Models
   whose drift has entry-wise products, diagonals or all-ones broadcasts (He3)
   raise :class:`NotOfThisForm`. dR has no ``eta**2`` term, so the finite
   learning rate and the label noise never enter it, and weight decay only as
   ``-eta kappa R`` (a multiple of the identity in ``A``).
2. **Derivative of the polar factor.** With ``R = Omega P``, ``P = (R^T R)^(1/2)``
   (full column rank), ``dOmega = (I - Omega Omega^T) dR P^-1 + Omega X`` where
   the antisymmetric ``X`` solves ``X P + P X = Omega^T dR - dR^T Omega``. For
   ``dR = A R + R B`` (A, B symmetric) this becomes
   ``dOmega = (I - Omega Omega^T) A Omega + Omega X`` with
   ``X P + P X = [Omega^T A Omega - B, P]``; hence ``dOmega = 0`` iff
   (i) ``(I - Omega Omega^T) A Omega = 0`` and (ii) ``[Omega^T A Omega - B, R^T R] = 0``
   (:func:`polar_identities_hold` checks the algebra on explicit symbolic
   matrices, p = 3, k = 2, at a generic point).
3. **Persistence.** Every term of every right-hand side of the paper model
   (first order, ``eta**2``, label noise, weight decay) is a *trace polynomial*:
   built from Q, R, T by matrix products, transposes, traces and scalar
   factors only (:func:`trace_polynomial_obstructions` lists the terms that are
   not). Trace polynomials are equivariant under ``Q -> U Q U^T``,
   ``R -> U R V^T``, ``T -> V T V^T`` and map *jointly diagonal* overlaps
   (``Q``, ``T`` diagonal, ``R_jr = 0`` for ``j != r``) to jointly diagonal
   right-hand sides (:func:`diagonal_closure` checks this on explicit symbolic
   matrices too). So the set of overlaps that are jointly diagonal in *some*
   pair of orthonormal bases is invariant, and on it ``dR_jj = (A_jj + B_jj) R_jj``
   keeps the sign of every singular value: Omega is constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp

from derive.algebra.matrix_expr import Q, R, T, evaluate, is_scalar, mm, total, tp, tr
from derive.model.model import PAPER, Model, k, p
from derive.paper.plateau import eta
from derive.quantities.ode import derive_quantities

#: Weight decay and label-noise variance, kept symbolic (a Model stores numbers).
kappa, Delta = sp.symbols("kappa Delta", nonnegative=True)


def _scalar(e: sp.Expr) -> bool:
    """``is_scalar`` that also accepts symbols other than the widths (eta, kappa, Delta)."""
    if not e.has(Q, R, T):
        return True
    if isinstance(e, (sp.Mul, sp.Add)):
        return all(_scalar(a) for a in e.args)
    if isinstance(e, sp.Pow):
        return _scalar(e.base)
    return is_scalar(e)


def matrix_factor(term: sp.Expr) -> sp.Expr:
    """The matrix part of a monomial: the product of its factors that are not scalars."""
    return sp.Mul(*[f for f in sp.Mul.make_args(term) if not _scalar(f)])


class NotOfThisForm(ValueError):
    """The right-hand side of R is not ``A(Q) R + R B(T)``; ``term`` is the first offending monomial."""

    def __init__(self, message: str, term: sp.Expr | None = None):
        super().__init__(message)
        self.term = term


def full_rhs(model: Model) -> tuple[sp.Expr, sp.Expr]:
    """``(dQ/dalpha, dR/dalpha)`` with symbolic ``eta``, ``Delta`` and ``kappa``.

    Parameters
    ----------
    model : Model
        Only its activations and readouts are used; the label noise and the
        weight decay are the symbols :data:`Delta` and :data:`kappa`.

    Returns
    -------
    dQ, dR : sympy.Expr
        Index-free expressions (see :mod:`derive.algebra.matrix_expr`), the ``eta**2``
        term included.
    """
    d = derive_quantities(model)
    dQ = eta * d.drift_Q + eta**2 * (d.diffusion_Q + Delta * d.noise_Q) - 2 * eta * kappa * Q
    dR = eta * d.drift_R - eta * kappa * R
    return dQ, dR


# --------------------------------------------------------------------------
# 1. dR = A(Q) R + R B(T)
# --------------------------------------------------------------------------


def _chain(factor: sp.Expr, term: sp.Expr) -> tuple[sp.Expr, ...]:
    """The leaves of a matrix product of leaves (``R^T`` counts as a leaf)."""
    if factor in (Q, R, T) or (isinstance(factor, tp) and factor.args[0] == R):
        return (factor,)
    if isinstance(factor, mm):
        return tuple(leaf for a in factor.args for leaf in _chain(a, term))
    raise NotOfThisForm(f"the term {term} contains {factor}, which is not a matrix product of Q, R, T", term)


def matrix_monomials(expr: sp.Expr) -> list[tuple[sp.Expr, tuple[sp.Expr, ...]]]:
    """Split an index-free matrix expression into ``(scalar coefficient, product chain)``.

    Parameters
    ----------
    expr : sympy.Expr
        A p x p, p x k or k x k index-free expression.

    Returns
    -------
    list of (coefficient, chain)
        ``expr == sum(coefficient * mm(*chain))``; coefficients are scalars
        (numbers, widths, eta, traces and sums of entries).

    Raises
    ------
    NotOfThisForm
        When a term is an entry-wise product of two matrix factors, an all-ones
        broadcast of a scalar, or contains diagonals, row sums, entry-wise
        powers or einsum networks.
    """
    monomials = []
    for term in sp.Add.make_args(sp.expand(expr)):
        matrices = [f for f in sp.Mul.make_args(term) if not _scalar(f)]
        if len(matrices) != 1:
            what = "a scalar broadcast to the all-ones matrix" if not matrices else "an entry-wise (Hadamard) product"
            raise NotOfThisForm(f"the term {term} is {what}", term)
        scalars = [f for f in sp.Mul.make_args(term) if _scalar(f)]
        monomials.append((sp.Mul(*scalars), _chain(matrices[0], term)))
    return monomials


@dataclass(frozen=True)
class SylvesterForm:
    """``dR/dalpha = A(Q) R + R B(T)``, ``A = sum_a left[a] Q^a``, ``B = sum_b right[b] T^b``.

    Scalar multiples of R are put into ``A`` (``left[0]``), so ``right`` has only
    powers ``b >= 1``. Both are symmetric (polynomials in symmetric matrices
    with scalar coefficients).
    """

    left: tuple[tuple[int, sp.Expr], ...]
    right: tuple[tuple[int, sp.Expr], ...]

    def coefficient(self, side: str, power: int) -> sp.Expr:
        """Coefficient of ``Q**power`` (``side="left"``) or ``T**power`` (``"right"``)."""
        return dict(getattr(self, side)).get(power, sp.Integer(0))

    def reconstruct(self) -> sp.Expr:
        """``A(Q) R + R B(T)`` as an index-free expression (matrix products spelled out)."""
        left = sum((c * mm(*([Q] * a), R) for a, c in self.left), sp.Integer(0))
        right = sum((c * mm(R, *([T] * b)) for b, c in self.right), sp.Integer(0))
        return left + right

    def canonical(self) -> str:
        """Printer-independent text of the coefficients (``srepr``)."""
        return "|".join(f"{side}{n}:{sp.srepr(c)}" for side in ("left", "right") for n, c in getattr(self, side))


def sylvester_form(expr: sp.Expr) -> SylvesterForm:
    """Decompose a p x k right-hand side as ``A(Q) R + R B(T)``.

    Parameters
    ----------
    expr : sympy.Expr
        Index-free p x k expression, e.g. ``eta * drift_R - eta * kappa * R``.

    Returns
    -------
    SylvesterForm

    Raises
    ------
    NotOfThisForm
        When a monomial is not ``c Q^a R T^b`` with ``a = 0`` or ``b = 0`` (see
        :func:`matrix_monomials` for the structural failures).
    """
    left: dict[int, sp.Expr] = {}
    right: dict[int, sp.Expr] = {}
    for coefficient, chain in matrix_monomials(expr):
        if chain.count(R) != 1 or tp(R) in chain:
            raise NotOfThisForm(f"the monomial {mm(*chain)} is not of the form Q^a R T^b", coefficient * mm(*chain))
        where = chain.index(R)
        before, after = chain[:where], chain[where + 1:]
        if set(before) - {Q} or set(after) - {T}:
            raise NotOfThisForm(f"the monomial {mm(*chain)} is not of the form Q^a R T^b", coefficient * mm(*chain))
        if before and after:
            raise NotOfThisForm(f"the monomial {mm(*chain)} mixes Q and T on both sides of R", coefficient * mm(*chain))
        if after:
            right[len(after)] = right.get(len(after), 0) + coefficient
        else:
            left[len(before)] = left.get(len(before), 0) + coefficient
    clean = {name: tuple(sorted((n, sp.factor(c)) for n, c in side.items() if sp.expand(c) != 0))
             for name, side in (("left", left), ("right", right))}
    form = SylvesterForm(clean["left"], clean["right"])
    # the decomposition must reproduce the input exactly
    if sp.expand(form.reconstruct() - expr) != 0:  # pragma: no cover - would be a bug in the splitting
        raise AssertionError("the A(Q) R + R B(T) decomposition does not reproduce the right-hand side")
    return form


@cache
def dR_form(model: Model = PAPER) -> SylvesterForm:
    """:func:`sylvester_form` of the full ``dR/dalpha`` of ``model`` (symbolic eta, kappa)."""
    return sylvester_form(full_rhs(model)[1])


def form_or_reason(model: Model) -> SylvesterForm | NotOfThisForm:
    """The form of dR, or the :class:`NotOfThisForm` error saying why the model does not have it."""
    try:
        return dR_form(model)
    except NotOfThisForm as error:
        return error


@cache
def condition_ratio(model: Model = PAPER) -> sp.Expr:
    """``gamma`` in condition (ii), ``[Omega^T Q Omega + gamma T, R^T R] = 0``.

    Valid when ``A = a_0 I + a_1 Q`` and ``B = b_1 T``: then
    ``Omega^T A Omega - B = a_0 I + a_1 (Omega^T Q Omega - (b_1 / a_1) T)``.
    """
    form = dR_form(model)
    if {n for n, _ in form.left} - {0, 1} or {n for n, _ in form.right} - {1}:
        raise NotOfThisForm("A is not linear in Q or B not linear in T")
    return sp.factor(-form.coefficient("right", 1) / form.coefficient("left", 1))


# --------------------------------------------------------------------------
# 2. The derivative of the polar factor (explicit symbolic check)
# --------------------------------------------------------------------------


def _symmetric(name: str, n: int) -> sp.Matrix:
    return sp.Matrix(n, n, lambda i, j: sp.Symbol(f"{name}_{min(i, j)}{max(i, j)}"))


def _antisymmetric(name: str, n: int) -> sp.Matrix:
    return sp.Matrix(n, n, lambda i, j: sp.Symbol(f"{name}_{min(i, j)}{max(i, j)}") * sp.sign(j - i))


@cache
def polar_identities(n_rows: int = 3, n_cols: int = 2, commutator_sign: int = 1) -> dict[str, bool]:
    """Check the identities of step 2 exactly, on explicit symbolic matrices.

    ``Omega = W / d`` is the first ``n_cols`` columns of the Cayley transform
    ``(I - S)^-1 (I + S) = 2 adj(I - S) / d - I``, ``d = det(I - S)``, of a symbolic
    antisymmetric S: a generic point of the Stiefel manifold. Moving S along a
    symbolic antisymmetric direction S' gives ``dOmega = Z / d**2`` with
    ``Z = 2 adj(I - S) S' adj(I - S)`` (first columns); ``P`` and ``dP`` are
    symbolic symmetric, ``R = Omega P``, ``dR = dOmega P + Omega dP``. Every
    identity is multiplied through by its denominators (powers of ``d`` and
    ``det P``), so each check is an exact polynomial identity in the entries,
    evaluated in a polynomial ring (``DomainMatrix``) where it is fast.

    Parameters
    ----------
    n_rows, n_cols : int
        p and k (``n_cols <= n_rows``).
    commutator_sign : int
        ``+1`` checks ``Omega^T dR - dR^T Omega = [Omega^T A Omega - B, P]``; ``-1`` checks
        the opposite sign, which must fail (a control for the check itself).

    Returns
    -------
    dict
        ``{name: holds}`` for ``stiefel`` (``Omega^T Omega = I``), ``antisymmetric``
        (``X = Omega^T dOmega``), ``sylvester`` (``X P + P X = Omega^T dR - dR^T Omega``),
        ``derivative`` (``dOmega = (I - Omega Omega^T) dR P^-1 + Omega X``), and, for
        ``dR = A R + R B`` with symbolic symmetric A, B: ``complement``
        (``(I - Omega Omega^T) dR P^-1 = (I - Omega Omega^T) A Omega``), ``commutator``
        (``Omega^T dR - dR^T Omega = [Omega^T A Omega - B, P]``) and ``blocks``
        (``[Q, R R^T] = Omega [M, P^2] Omega^T + (I - Omega Omega^T) Q Omega P^2 Omega^T -
        transpose``, ``M = Omega^T Q Omega``).
    """
    from sympy.polys.matrices import DomainMatrix

    n, m = n_rows, n_cols
    explicit = {
        "S": _antisymmetric("s", n), "S'": _antisymmetric("u", n), "P": _symmetric("P", m),
        "P'": _symmetric("V", m), "A": _symmetric("A", n), "B": _symmetric("B", m), "Q": _symmetric("Q", n),
    }
    ring = sp.ZZ[tuple(sorted(set().union(*(a.free_symbols for a in explicit.values())), key=str))]
    S, S_dot, P, P_dot, A, B, Qm = (DomainMatrix.from_Matrix(a).convert_to(ring) for a in explicit.values())
    eye, eye_k = DomainMatrix.eye(n, ring), DomainMatrix.eye(m, ring)
    first = (list(range(n)), list(range(m)))
    adj, d = (eye - S).adjugate(), (eye - S).det()
    W = (adj.mul(ring(2)) - eye.mul(d)).extract(*first)  # d * Omega
    Z = (adj * S_dot * adj).mul(ring(2)).extract(*first)  # d**2 * dOmega
    Wt = W.transpose()
    adj_P, det_P = P.adjugate(), P.det()

    def bracket(a, b):
        return a * b - b * a

    dR = Z * P + (W * P_dot).mul(d)  # d**2 * dR
    X = Wt * Z  # d**3 * X
    complement = eye.mul(d**2) - W * Wt  # d**2 * (I - Omega Omega^T)
    dR_form = A * W * P + W * P * B  # d * (A R + R B)
    P2 = P * P
    residuals = {
        "stiefel": Wt * W - eye_k.mul(d**2),
        "antisymmetric": X + X.transpose(),
        "sylvester": X * P + P * X - (Wt * dR - dR.transpose() * W),
        "derivative": Z.mul(d**2 * det_P) - (complement * dR * adj_P + (W * Wt * Z).mul(det_P)),
        "complement": complement * dR_form * adj_P - (complement * A * W).mul(det_P),
        "commutator": Wt * dR_form - dR_form.transpose() * W
        - bracket(Wt * A * W - B.mul(d**2), P).mul(ring(commutator_sign)),
        "blocks": bracket(Qm, W * P2 * Wt).mul(d**2)
        - (W * bracket(Wt * Qm * W, P2) * Wt + complement * Qm * W * P2 * Wt - W * P2 * Wt * Qm * complement),
    }
    return {name: residual.is_zero_matrix for name, residual in residuals.items()}


def polar_identities_hold() -> bool:
    """True when every identity of :func:`polar_identities` holds (p = 3, k = 2)."""
    return all(polar_identities().values())


# --------------------------------------------------------------------------
# 3. Persistence: trace polynomials and jointly diagonal overlaps
# --------------------------------------------------------------------------


def trace_polynomial_obstructions(expr: sp.Expr) -> list[sp.Expr]:
    """Terms of ``expr`` that are not built from matrix products, transposes and traces.

    Allowed: the leaves Q, R, T, scalars (numbers, p, k, eta, ...), ``mm``,
    ``tp``, ``tr``, ``sum(A∘A) = tr(A A^T)``, sums of same-shape matrices and
    scalar multiples. Everything else (entry-wise products of matrices,
    entry-wise powers, diagonals, row sums, sums of entries other than
    ``sum(A∘A)``, einsum networks, scalars broadcast to the all-ones matrix)
    is an obstruction: it is not equivariant under ``Q -> U Q U^T`` and does not
    preserve jointly diagonal overlaps.

    Parameters
    ----------
    expr : sympy.Expr
        Index-free expression.

    Returns
    -------
    list of sympy.Expr
        The top-level terms (of ``sympy.expand(expr)``) that contain an
        obstruction; empty for a trace polynomial.
    """
    expanded = sp.expand(expr)
    # in a matrix-valued expression a bare scalar term is the all-ones matrix
    broadcast = not _scalar(expanded)
    return [term for term in sp.Add.make_args(expanded)
            if (broadcast and _scalar(term)) or not _is_trace_polynomial(term)]


def _is_trace_polynomial(e: sp.Expr) -> bool:
    if e in (Q, R, T) or not e.has(Q, R, T):
        return True
    if isinstance(e, (mm, tp, tr)):
        return all(_is_trace_polynomial(a) for a in e.args)
    if isinstance(e, total):
        inner = e.args[0]
        return isinstance(inner, sp.Pow) and inner.exp == 2 and _is_trace_polynomial(inner.base)
    if isinstance(e, sp.Add):
        kinds = {_scalar(a) for a in e.args}
        return len(kinds) == 1 and all(_is_trace_polynomial(a) for a in e.args)
    if isinstance(e, sp.Mul):
        matrices = [a for a in e.args if not _scalar(a)]
        return len(matrices) <= 1 and all(_is_trace_polynomial(a) for a in e.args)
    if isinstance(e, sp.Pow):
        return _scalar(e.base) and _is_trace_polynomial(e.base)
    return False


#: The derived terms whose structure :func:`persistence` inspects; the weight-decay
#: terms ``-2 eta kappa Q`` and ``-eta kappa R`` are multiples of the leaves.
TERMS = ("drift_Q", "diffusion_Q", "noise_Q", "drift_R")


def _jointly_diagonal(n_p: int, n_k: int) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    Qm = sp.diag(*sp.symbols(f"q_1:{n_p + 1}", positive=True))
    Tm = sp.diag(*sp.symbols(f"t_1:{n_k + 1}", positive=True))
    s = sp.symbols(f"s_1:{min(n_p, n_k) + 1}")
    Rm = sp.Matrix(n_p, n_k, lambda j, r: s[j] if j == r else 0)
    return Qm, Rm, Tm


def _off_pattern(m: sp.Matrix) -> list[tuple[int, int]]:
    return [(i, j) for i in range(m.rows) for j in range(m.cols) if i != j and sp.expand(m[i, j]) != 0]


def diagonal_closure(model: Model, n_p: int, n_k: int) -> dict[str, list[tuple[int, int]]]:
    """Off-diagonal entries of each right-hand-side term at jointly diagonal symbolic overlaps.

    ``dQ = eta D_Q + eta**2 (V_Q + Delta N_Q) - 2 eta kappa Q`` and
    ``dR = eta D_R - eta kappa R`` are linear in ``D_Q, V_Q, N_Q, D_R`` with
    independent monomials in eta, Delta, kappa as coefficients, so the full right-hand
    sides keep the jointly diagonal form for all eta, Delta, kappa iff each term does.

    Parameters
    ----------
    model : Model
    n_p, n_k : int
        Explicit widths.

    Returns
    -------
    dict
        ``{"drift_Q": [(j, l), ...], "diffusion_Q": ..., "noise_Q": ..., "drift_R": ...}``:
        the positions off the diagonal (``j != l``) where the term is not identically
        zero when ``Q = diag(q)``, ``T = diag(t)``, ``R_jr = s_j delta_jr``. All lists
        empty: the jointly diagonal form is closed at these widths.
    """
    Qm, Rm, Tm = _jointly_diagonal(n_p, n_k)
    d = derive_quantities(model)
    return {name: _off_pattern(evaluate(getattr(d, name), Qm, Rm, Tm)) for name in TERMS}


@cache
def persistence(model: Model = PAPER) -> dict[str, tuple[int, tuple[sp.Expr, ...]]]:
    """``{term: (number of monomials, obstructions)}`` for the derived terms of ``model``.

    Parameters
    ----------
    model : Model

    Returns
    -------
    dict
        For each name of :data:`TERMS`, the number of monomials of the derived
        expression and the monomials :func:`trace_polynomial_obstructions` rejects.
    """
    d = derive_quantities(model)
    return {
        name: (len(sp.Add.make_args(sp.expand(getattr(d, name)))),
               tuple(trace_polynomial_obstructions(getattr(d, name))))
        for name in TERMS
    }


#: Explicit widths on which :func:`diagonal_closure` is evaluated for the document.
CLOSURE_SIZES: tuple[tuple[int, int], ...] = ((1, 1), (2, 1), (2, 2), (3, 2), (2, 3), (3, 3))


@cache
def commuting_but_not_conserved(model: Model = PAPER) -> sp.Expr:
    """How fast condition (ii) breaks from a start with ``[Q, R R^T] = [T, R^T R] = 0`` and ``dOmega = 0``.

    Start: ``p = k = 2``, ``Q = diag(q_1, q_2)``, ``R = r I``, ``T = [[t_1, c], [c, t_2]]``. Then
    ``Omega = I``, ``R^T R = r**2 I``, both commutators vanish and ``dOmega = 0`` at alpha = 0, but
    ``[T, R^T Q R] = r**4 [T, Q] != 0``. Since ``dOmega = 0`` there, the derivative of the (ii)
    commutator ``C = [Omega^T Q Omega + gamma T, R^T R]`` is ``[Q + gamma T, dR + dR^T] r``.

    Returns
    -------
    sympy.Expr
        The (0, 1) entry of ``dC/dalpha`` at alpha = 0 (factored); non-zero means
        Omega starts to move at first order in alpha.
    """
    q1, q2, t1, t2, c, r = sp.symbols("q_1 q_2 t_1 t_2 c r", positive=True)
    Qm, Tm, Rm = sp.diag(q1, q2), sp.Matrix([[t1, c], [c, t2]]), r * sp.eye(2)
    # weight decay adds a multiple of R to dR, which drops out of the commutator
    dR = eta * evaluate(derive_quantities(model).drift_R, Qm, Rm, Tm)
    gamma = condition_ratio(model).subs({p: 2, k: 2})
    rate = (Qm + gamma * Tm) * (dR + dR.T) * r - (dR + dR.T) * r * (Qm + gamma * Tm)
    return sp.factor(rate[0, 1])
