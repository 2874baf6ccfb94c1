"""``sympy.cse`` for planned expressions, without rebuilding products sympy built already.

:func:`common_subexpressions` returns what ``sympy.cse(exprs, symbols=symbols,
order="canonical")`` returns, and is sympy's own algorithm: its search for optimisation
opportunities (``opt_cse``, copied here) followed by its ``tree_cse``. One step differs:
``opt_cse`` splits every product into its commutative and non-commutative factors and
rebuilds the commutative part with ``Mul(*factors)``; for a product without
non-commutative factors whose factors came back unchanged that rebuild is the product
itself, and it is skipped. The sums of a dense degree-6 activation hold thousands of
distinct products, and sympy's cache (1,000 entries) misses on nearly all of them, so each
rebuild was a full sort and merge (about a fifth of the ``cse`` time).

``tests/derive/codegen/test_first_use_fast_paths.py`` checks that a module printed with
``sympy.cse`` is the same, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy as sp
from sympy import Add, Mul, Pow
from sympy.matrices.expressions import MatAdd, MatMul, MatPow, MatrixExpr
from sympy.matrices.expressions.inverse import Inverse
from sympy.simplify.cse_main import OrderedSet, Unevaluated, match_common_args, tree_cse
from sympy.utilities.iterables import iterable, topological_sort


def common_subexpressions(
    exprs: list[sp.Expr], symbols: Iterable[sp.Symbol]
) -> tuple[list[tuple[sp.Symbol, sp.Expr]], list[sp.Expr]]:
    """``sympy.cse(exprs, symbols=symbols, order="canonical")`` for a list of sympy expressions.

    Parameters
    ----------
    exprs : list of sympy.Expr
        The expressions (no matrices).
    symbols : iterable of sympy.Symbol
        Names for the common sub-expressions, used in order.

    Returns
    -------
    replacements : list of (sympy.Symbol, sympy.Expr)
        The common sub-expressions, each in terms of the earlier ones.
    reduced : list of sympy.Expr
        ``exprs`` in terms of the replacements.
    """
    opt_subs = _opt_cse(exprs)
    return tree_cse(exprs, iter(symbols), opt_subs, "canonical", ())


def _opt_cse(exprs: list[sp.Expr]) -> dict:
    """sympy's ``opt_cse(exprs, order="canonical")`` (sympy 1.14), less the rebuild of unchanged products."""
    opt_subs: dict = {}
    adds: OrderedSet = OrderedSet()
    muls: OrderedSet = OrderedSet()
    seen_subexp: set = set()
    collapsible_subexp: set = set()

    def _find_opts(expr):
        if not isinstance(expr, (sp.Basic, Unevaluated)):
            return
        if expr.is_Atom or expr.is_Order:
            return
        if iterable(expr):
            list(map(_find_opts, expr))
            return
        if expr in seen_subexp:
            return
        seen_subexp.add(expr)
        list(map(_find_opts, expr.args))
        if not isinstance(expr, MatrixExpr) and expr.could_extract_minus_sign():
            neg_expr = Add(*(-i for i in expr.args)) if isinstance(expr, Add) else -expr
            if not neg_expr.is_Atom:
                opt_subs[expr] = Unevaluated(Mul, (sp.S.NegativeOne, neg_expr))
                seen_subexp.add(neg_expr)
                expr = neg_expr
        if isinstance(expr, (Mul, MatMul)):
            (collapsible_subexp if len(expr.args) == 1 else muls).add(expr)
        elif isinstance(expr, (Add, MatAdd)):
            (collapsible_subexp if len(expr.args) == 1 else adds).add(expr)
        elif isinstance(expr, Inverse):
            pass
        elif isinstance(expr, (Pow, MatPow)):
            base, exp = expr.base, expr.exp
            if exp.could_extract_minus_sign():
                opt_subs[expr] = Unevaluated(Pow, (Pow(base, -exp), -1))

    for expr in exprs:
        if isinstance(expr, (sp.Basic, Unevaluated)):
            _find_opts(expr)

    edges = [(s, s.args[0]) for s in collapsible_subexp if s.args[0] in collapsible_subexp]
    for expr in reversed(topological_sort((collapsible_subexp, edges))):
        opt_subs[expr] = opt_subs.get(expr.args[0], expr.args[0])

    commutative_muls: OrderedSet = OrderedSet()
    for product in muls:
        commutative, other = product.args_cnc(cset=False)
        if commutative:
            unchanged = not other and len(commutative) == len(product.args)
            if unchanged and all(a is b for a, b in zip(commutative, product.args)):
                commutative_product = product  # Mul(*product.args) is the product itself
            else:
                commutative_product = product.func(*commutative)
            if other:
                if commutative_product == 1:
                    new_obj = product.func(*other)
                elif isinstance(product, MatMul):
                    new_obj = product.func(commutative_product, *other, evaluate=False)
                else:
                    new_obj = product.func(commutative_product, product.func(*other), evaluate=False)
                opt_subs[product] = new_obj
            if len(commutative) > 1:
                commutative_muls.add(commutative_product)

    match_common_args(Add, adds, opt_subs)
    match_common_args(Mul, commutative_muls, opt_subs)
    return opt_subs
