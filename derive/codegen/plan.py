"""Planning the matrix products of a generated function, before it is printed.

Every matrix-product chain is planned once per function: each distinct product
once, sub-chains reused, the association order by multiply count (sizes
``p >> k``); ``A A^T`` with a wide inner dimension becomes a _gram product
(BLAS syrk), another product known to be symmetric, like ``Q (Q Q)``, a
blocked symmetric product. The sums of a p x p output are rearranged first:
powers of ``Q`` in Horner form (:func:`_horner`), terms through a thin
dimension summed into one product (:func:`_factor_thin`), ``c X + c X^T``
paired (:func:`pair_transposes`), a symmetric product merged with a
symmetrised term (:func:`_merge_symmetric`). :func:`plan_function` ends with
one joint ``sympy.cse`` over all outputs, so a product like ``Q @ Q`` is
computed once and reused.

The planned nodes (:class:`_matmul`, :class:`_gram`, ...) are sympy functions
that the printer of :mod:`derive.codegen.printer` knows; :func:`bench.products.multiply_counts` lists
the products a plan computes, with their multiply counts, at given sizes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import sympy as sp

from derive.algebra.matrix_expr import Q, es, is_scalar, mm, shape, tp, transpose
from derive.codegen.contraction import CONTRACTIONS, contraction_shape, plan_contraction
from derive.codegen.functions import OUTPUT_SHAPES, FunctionSpec
from derive.model.model import k, p


class _matmul(sp.Function):  # noqa: N801
    """Binary matrix product as planned for printing (never flattened, unlike ``mm``)."""

    nargs = 2


class _gram(sp.Function):  # noqa: N801
    """``A @ A^T``, printed with a transposed view of ``A`` so BLAS can use syrk (half the flops)."""

    nargs = 1


class _thin_gram(sp.Function):  # noqa: N801
    """``A @ A^T`` through a thin inner dimension: a plain product (OpenBLAS syrk is slow there)."""

    nargs = 1


class _symmetric(sp.Function):  # noqa: N801
    """``A @ B`` known to be symmetric (its chain is its own transpose), e.g. ``Q @ (Q @ Q)``.

    With a third argument ``Y``: ``A @ B + Y + Y^T``.
    """

    nargs = (2, 3)


class _lincomb(sp.Function):  # noqa: N801
    """``c_1 M_1 + c_2 M_2 + ...`` from ``(c_1, M_1, c_2, M_2, ...)``: printed with each scalar applied once."""


class _shift(sp.Function):  # noqa: N801
    """``A + c I`` (``A`` square)."""

    nargs = 2


class _hcat(sp.Function):  # noqa: N801
    """Matrices side by side (last axis)."""


class _vcat(sp.Function):  # noqa: N801
    """Matrices stacked (second-to-last axis)."""


#: The planned product nodes.
#: Public names of the planned operations, for the printer. The classes themselves keep their
#: underscored names: sympy prints an unknown function by its class name, and the printed code
#: calls the runtime helpers under those names (``_shift``, ...).
PlannedMatmul = _matmul
PlannedGram = _gram
PlannedThinGram = _thin_gram
PlannedSymmetric = _symmetric
PlannedLincomb = _lincomb
PlannedShift = _shift
PlannedHcat = _hcat
PlannedVcat = _vcat

PRODUCTS = (_matmul, _gram, _thin_gram, _symmetric)


# sizes used only to rank the association orders of a product chain (the
# order that is best for p >> k is also no worse at small p) and to tell wide
# inner dimensions (p) from thin ones (k, 1)
_RANK_SIZES = {p: 1000, k: 10}
_WIDE = 1000


def _dims(expr: sp.Expr) -> tuple[int, int]:
    try:
        rows, cols = shape(expr)
    except (TypeError, ValueError):
        return (1000, 1000)
    return (_RANK_SIZES.get(rows, 1), _RANK_SIZES.get(cols, 1))


def _flip(factors: tuple[sp.Expr, ...]) -> tuple[sp.Expr, ...]:
    """The chain of the transposed product (Q and T are symmetric)."""
    flipped = []
    for factor in reversed(factors):
        try:
            flipped.append(transpose(factor))
        except (TypeError, ValueError):
            flipped.append(tp(factor))
    return tuple(flipped)


class _ChainPlanner:
    """Evaluate every distinct matrix-product chain once, each sub-chain once.

    A chain whose transpose was already built is that product transposed (a
    view); a symmetric chain ``A A^T`` becomes a _gram product, another chain
    equal to its own transpose a symmetric product; otherwise the association
    order minimises the multiply count, counting sub-chains built earlier as
    free, so ``Q @ Q @ Q`` reuses ``Q @ Q``.
    """

    def __init__(self) -> None:
        self.built: dict[tuple[sp.Expr, ...], sp.Expr] = {}

    def _known(self, factors: tuple[sp.Expr, ...]) -> bool:
        return len(factors) == 1 or factors in self.built or _flip(factors) in self.built

    def _cost(self, factors: tuple[sp.Expr, ...], memo: dict) -> tuple[float, int]:
        if self._known(factors):
            return (0.0, 0)
        if factors not in memo:
            rows, cols = _dims(factors[0])[0], _dims(factors[-1])[1]
            options = []
            for split in range(1, len(factors)):
                left, right = factors[:split], factors[split:]
                flops = rows * _dims(left[-1])[1] * cols
                if right == _flip(left):
                    flops /= 2
                cost = self._cost(left, memo)[0] + self._cost(right, memo)[0] + flops
                options.append((cost, split))
            memo[factors] = min(options)
        return memo[factors]

    def build(self, factors: tuple[sp.Expr, ...]) -> sp.Expr:
        if len(factors) == 1:
            return factors[0]
        if factors in self.built:
            return self.built[factors]
        flipped = _flip(factors)
        if flipped in self.built:
            return tp(self.built[flipped])
        split = self._cost(factors, {})[1]
        left, right = factors[:split], factors[split:]
        wide = _dims(left[-1])[1] >= _WIDE
        if right == _flip(left):
            product = (_gram if wide else _thin_gram)(self.build(left))
        elif wide and flipped == factors:
            product = _symmetric(self.build(left), self.build(right))
        else:
            product = _matmul(self.build(left), self.build(right))
        self.built[factors] = product
        return product


def _collect(expr: sp.Expr) -> list[tuple[sp.Expr, sp.Expr]]:
    """``expr`` as ``[(scalar coefficient, matrix monomial), ...]``, one entry per monomial.

    Scalars have shape (1, 1) (numbers, p, k, traces, totals), so each matrix
    is scaled once by a coefficient computed on scalars first.
    """
    grouped: dict[sp.Expr, list[sp.Expr]] = {}
    for term in sp.Add.make_args(sp.expand(expr, deep=False)):
        scalars, matrices = [], []
        for factor in sp.Mul.make_args(term):
            (scalars if is_scalar(factor) else matrices).append(factor)
        grouped.setdefault(product_of_factors(matrices), []).append(product_of_factors(scalars))
    return [(sp.Add(*coefficients), monomial) for monomial, coefficients in grouped.items()]


def product_of_factors(factors: list[sp.Expr]) -> sp.Expr:
    """``sympy.Mul(*factors)`` for factors taken, in order, from one product as sympy built it.

    Those factors are already sorted and combined (one number, first; distinct bases), so the
    product is assembled without sorting them again (thousands of terms per sum at degree 6).
    A sum among them is left to ``sympy.Mul`` (a number times a sum is distributed).

    Parameters
    ----------
    factors : list of sympy.Expr
        A sub-sequence of the ``args`` of one ``sympy.Mul``.

    Returns
    -------
    sympy.Expr
        The product, equal (same ``args``, same order) to ``sympy.Mul(*factors)``; ``1`` when empty.
    """
    if not factors:
        return sp.S.One
    if len(factors) == 1:
        return factors[0]
    if any(factor.is_Add for factor in factors):
        return sp.Mul(*factors)
    return sp.Mul._from_args(factors)


def pair_transposes(terms: list[tuple[sp.Expr, sp.Expr]]) -> list[tuple[sp.Expr, sp.Expr]]:
    """Merge ``c X + c X^T`` into ``c (X + X^T)``: one scaling instead of two."""
    # lookups by (coefficient, monomial): the sums of high-degree models have thousands of terms.
    # The partner c*tp(X) of c*X is found by (c, X) among the transposed terms, so no
    # tp(X) is built for the look-up (each would cost a sympy function construction).
    position = {(coefficient, monomial): i for i, (coefficient, monomial) in enumerate(terms)}
    transposed = {(c, monomial.args[0]): i for i, (c, monomial) in enumerate(terms) if isinstance(monomial, tp)}
    merged: list[tuple[sp.Expr, sp.Expr]] = []
    used: set[int] = set()
    for i, (coefficient, monomial) in enumerate(terms):
        if i in used:
            continue
        if coefficient != 0:
            partners = [transposed.get((coefficient, monomial))]
            if isinstance(monomial, tp):
                partners.append(position.get((coefficient, monomial.args[0])))
            partners = [j for j in partners if j is not None and j > i and j not in used]
            if partners:
                j = min(partners)
                monomial = sp.Add(monomial, terms[j][1], evaluate=False)
                used.add(j)
        merged.append((coefficient, monomial))
    return merged


def _horner(terms: list[tuple[sp.Expr, sp.Expr]]) -> list[tuple[sp.Expr, sp.Expr]]:
    """``c_3 Q^3 + c_2 Q^2 + c_1 Q`` (any degree >= 3) as the symmetric product ``Q (c_3 Q^2 + c_2 Q + c_1 I)``.

    The powers below the top one are then scaled and added inside the product's
    operand, and the p x p result is written once (``Q^2`` is still a _gram
    product): two fewer scalings and additions of p x p matrices.
    """
    powers: dict[int, sp.Expr] = {}
    rest = []
    for coefficient, monomial in terms:
        if coefficient != 0 and monomial == Q:
            powers[1] = coefficient
        elif coefficient != 0 and isinstance(monomial, mm) and all(f == Q for f in monomial.args):
            powers[len(monomial.args)] = coefficient
        else:
            rest.append((coefficient, monomial))
    if max(powers, default=0) < 3:
        return terms
    inner: list[sp.Expr] = []
    for degree in sorted(powers, reverse=True):
        if degree > 1:
            inner.extend([powers[degree], mm(*[Q] * (degree - 1))])
    operand = _lincomb(*inner)
    if 1 in powers:
        operand = _shift(operand, powers[1])
    return rest + [(sp.Integer(1), _symmetric(Q, operand))]


def _thin_splits(factors: tuple[sp.Expr, ...]) -> list[tuple[tuple[sp.Expr, ...], tuple[sp.Expr, ...]]]:
    """The ways to cut a chain into ``left @ right`` through a thin (k or 1) dimension."""
    return [(factors[:j], factors[j:]) for j in range(1, len(factors)) if _dims(factors[j - 1])[1] < _WIDE]


def _factor_thin(terms: list[tuple[sp.Expr, sp.Expr]]) -> list[tuple[sp.Expr, sp.Expr]]:
    """Sum the terms of a p x p output that pass through a thin dimension in one product.

    A product chain ``L_i R_i`` cut through a thin inner dimension (k or 1) is
    grouped by its right factor: ``sum_i c_i L_i R_g = (sum_i c_i L_i) R_g``, so
    the scaling and adding happen on thin (p x k) matrices and the p x p result
    is written once instead of one p x p product, scaling and addition per term.
    Several groups become one product ``[L_1 | L_2 | ...] [R_1; R_2; ...]``.

    The p x p outputs are symmetric (derivatives of Q). When the thin terms are
    closed under transposition, their sum is ``Y + Y^T`` with ``Y`` half of it,
    and each term may enter ``Y`` transposed: then ``R R^T``, ``Q R R^T``,
    ``R R^T Q`` and ``R T R^T`` of the paper model share the right factor
    ``R^T`` and ``Y = ((c_1/2) R + c_2 Q R + (c_3/2) R T) R^T`` is one thin
    product. The right factor of each term is the one most terms share (then
    the shortest).
    """
    candidates = [
        (index, monomial.args)
        for index, (coefficient, monomial) in enumerate(terms)
        # only full p x p products (a broadcast row or column term is left alone)
        if coefficient != 0 and isinstance(monomial, mm) and shape(monomial) == (p, p) and _thin_splits(monomial.args)
    ]
    if len(candidates) < 2:
        return terms
    coefficients = {factors: terms[index][0] for index, factors in candidates}
    symmetric = all(coefficients.get(_flip(factors)) == c for factors, c in coefficients.items())
    options = []
    for factors, coefficient in coefficients.items():
        splits = _thin_splits(factors)
        if symmetric:
            splits = splits + _thin_splits(_flip(factors))
            coefficient = coefficient / 2
        options.append((coefficient, splits))
    shared = Counter(right for _, splits in options for _, right in splits)
    groups: dict[tuple[sp.Expr, ...], dict[sp.Expr, sp.Expr]] = {}
    for coefficient, splits in options:
        left, right = max(splits, key=lambda split: (shared[split[1]], -len(split[1])))
        members = groups.setdefault(right, {})
        members[mm(*left)] = members.get(mm(*left), sp.Integer(0)) + coefficient
    lefts = [_lincomb(*[a for left, c in members.items() for a in (c, left)]) for members in groups.values()]
    rights = [mm(*right) for right in groups]
    if len(groups) == 1:
        product = _matmul(lefts[0], rights[0], evaluate=False)
    else:
        product = _matmul(_hcat(*lefts), _vcat(*rights), evaluate=False)
    if symmetric:
        product = sp.Add(product, tp(product, evaluate=False), evaluate=False)
    grouped = {index for index, _ in candidates}
    return [term for index, term in enumerate(terms) if index not in grouped] + [(sp.Integer(1), product)]


def _merge_symmetric(terms: list[tuple[sp.Expr, sp.Expr]]) -> list[tuple[sp.Expr, sp.Expr]]:
    """``A B + Y + Y^T`` (a symmetric product and a symmetrised term) as one call.

    The symmetric product then adds ``Y + Y^T`` on the blocks of its upper
    triangle only, before mirroring: half the additions of two full p x p sums.
    """
    def addend(monomial: sp.Expr) -> sp.Expr | None:
        # Y when the monomial is Y + Y^T
        if not isinstance(monomial, sp.Add) or len(monomial.args) != 2:
            return None
        for a, b in (monomial.args, monomial.args[::-1]):
            if isinstance(b, tp) and b.args[0] == a:
                return a
        return None

    products = [i for i, (c, m) in enumerate(terms) if c == 1 and isinstance(m, _symmetric) and len(m.args) == 2]
    pairs = [i for i, (c, m) in enumerate(terms) if c == 1 and addend(m) is not None]
    if not products or not pairs:
        return terms
    product, pair = products[0], pairs[0]
    merged = _symmetric(*terms[product][1].args, addend(terms[pair][1]))
    return [t for i, t in enumerate(terms) if i not in (product, pair)] + [(sp.Integer(1), merged)]


def _combine(derived: dict, combination: tuple[tuple[sp.Expr, str], ...]) -> list[tuple[sp.Expr, sp.Expr]]:
    """``sum(c * quantity)`` as ``[(scalar coefficient, matrix monomial), ...]``, one entry per monomial."""
    merged: dict[sp.Expr, sp.Expr] = {}
    for scale, quantity in combination:
        for coefficient, monomial in _collect(derived[quantity]):
            merged[monomial] = merged.get(monomial, sp.Integer(0)) + scale * coefficient
    return [(coefficient, monomial) for monomial, coefficient in merged.items()]


@dataclass
class Plan:
    """A function's outputs after product planning and one joint ``cse``."""

    collected: list[list[tuple[sp.Expr, sp.Expr]]]
    full: list[bool]
    replacements: list[tuple[sp.Symbol, sp.Expr]]
    reduced: list[sp.Expr]
    products: list[sp.Expr]


def plan_function(spec: FunctionSpec, derived: dict, *, planned_contractions: bool = True) -> Plan:
    """The planned outputs of ``spec`` from the derived quantities ``derived`` (name -> expression).

    ``planned_contractions=False`` leaves every einsum fallback as one multi-operand einsum (the
    route before generator version 8, kept as the baseline of ``bench/bench_contractions.py``);
    otherwise each is planned into matrix products by :mod:`derive.codegen.contraction`.
    """
    planner = _ChainPlanner()
    collected = [_combine(derived, combination) for _, combination in spec.outputs]
    # a term of the output's full shape makes the sum full-shaped (no broadcast needed)
    full = [
        any(coefficient != 0 and shape(monomial) == OUTPUT_SHAPES[output] for coefficient, monomial in terms)
        for (output, _), terms in zip(spec.outputs, collected)
    ]
    collected = [
        _merge_symmetric(_factor_thin(_horner(terms))) if OUTPUT_SHAPES[output] == (p, p) else terms
        for (output, _), terms in zip(spec.outputs, collected)
    ]
    parts = [part for terms in collected for pair in terms for part in pair]
    chains = {node for node in distinct_nodes(parts) if isinstance(node, mm)}
    # shorter chains first, so longer ones can reuse them
    chains = sorted(chains, key=lambda chain: (len(chain.args), sp.default_sort_key(chain)))
    for chain in chains:
        planner.build(chain.args)

    # the terms share most sub-expressions (a degree-6 sum has ~10^4 terms over a few hundred
    # distinct factors): each distinct one is planned once
    done: dict[sp.Expr, sp.Expr] = {}

    def planned(expr: sp.Expr) -> sp.Expr:
        if not expr.args:
            return expr
        result = done.get(expr)
        if result is None:
            result = done[expr] = _planned_node(expr, [planned(a) for a in expr.args])
        return result

    def _planned_node(expr: sp.Expr, args: list[sp.Expr]) -> sp.Expr:
        if isinstance(expr, mm):
            return planner.build(tuple(args))
        if isinstance(expr, es) and planned_contractions:
            return plan_contraction(expr, args[2:])
        if all(new is old for new, old in zip(args, expr.args)):
            return expr
        if isinstance(expr, sp.Function):
            # no re-evaluation: the simplifying evals of matrix_expr do not know planned products
            return expr.func(*args, evaluate=False)
        return expr.func(*args)

    flat = [planned(part) for part in parts]
    # the products the printed code computes: those of terms with a nonzero coefficient
    live = [part for i in range(0, len(flat), 2) if parts[i] != 0 for part in flat[i : i + 2]]
    products = [node for node in distinct_nodes(live) if isinstance(node, PRODUCTS)]
    replacements, reduced = sp.cse(flat, symbols=sp.numbered_symbols("x"), order="canonical")
    return Plan(collected, full, replacements, reduced, products)


def distinct_nodes(exprs: list[sp.Expr]) -> list[sp.Expr]:
    """The distinct nodes of ``exprs`` in the order of their first appearance in a preorder walk.

    ``dict.fromkeys`` over ``sympy.preorder_traversal`` of each expression gives the same list, but
    walks a shared sub-expression again wherever it appears (the terms of a sum share most factors).

    Parameters
    ----------
    exprs : list of sympy.Expr
        The expressions walked, in order.

    Returns
    -------
    list of sympy.Expr
        Every node (the expressions themselves included), each once.
    """
    seen: dict[sp.Expr, None] = {}

    def walk(expr: sp.Expr) -> None:
        if expr in seen:
            return
        seen[expr] = None
        for arg in expr.args:
            walk(arg)

    for expr in exprs:
        walk(expr)
    return list(seen)


def planned_shape(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """Shape (from {p, k, 1}) of an expression that may contain planned products."""
    planned_nodes = (*PRODUCTS, *CONTRACTIONS, _lincomb, _shift, _hcat, _vcat)
    if not any(isinstance(node, planned_nodes) for node in sp.preorder_traversal(expr)):
        return shape(expr)
    if isinstance(expr, CONTRACTIONS):
        return contraction_shape(expr, lambda operand: planned_shape(operand)[0])
    if isinstance(expr, (_matmul, _symmetric)):
        return (planned_shape(expr.args[0])[0], planned_shape(expr.args[1])[1])
    if isinstance(expr, (_gram, _thin_gram)):
        rows = planned_shape(expr.args[0])[0]
        return (rows, rows)
    if isinstance(expr, _lincomb):
        return planned_shape(expr.args[1])
    if isinstance(expr, (_shift, sp.Pow)):
        return planned_shape(expr.args[0])
    if isinstance(expr, tp):
        rows, cols = planned_shape(expr.args[0])
        return (cols, rows)
    if isinstance(expr, _hcat):
        shapes = [planned_shape(a) for a in expr.args]
        return (shapes[0][0], sp.Add(*[c for _, c in shapes]))
    if isinstance(expr, _vcat):
        shapes = [planned_shape(a) for a in expr.args]
        return (sp.Add(*[r for r, _ in shapes]), shapes[0][1])
    if isinstance(expr, (sp.Add, sp.Mul)):
        rows, cols = sp.Integer(1), sp.Integer(1)
        for arg in expr.args:
            r, c = planned_shape(arg)
            rows, cols = (r if r != 1 else rows), (c if c != 1 else cols)
        return (rows, cols)
    raise TypeError(f"no shape for {expr!r}")
