"""The printer of the per-tuple kernels (:mod:`derive.codegen.tuples`): safe at singular blocks, small operands first.

A kernel ``kernel_<name>(c00, c01, ...)`` is called with block entries that broadcast:
entry ``c_ab`` varies only along the grid axes of slots ``a`` and ``b``
(:mod:`numerics.kernels.tuple_plan`), so an expression in the entries of a few slots is an
array smaller than the grid. The printer combines the operands of every sum and product
pairwise, those whose slots together are fewest first: ``1 + c22`` is added before the
grid-sized terms, a constant multiplies the smaller factor, and a prefactor in the students'
entries (a power of their block's determinant) is assembled on the pairs before it multiplies
the grid. It also prints subtractions rather than negated terms and divisions rather than
reciprocals, and keeps square roots and inverse sines inside their domains.
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE

from derive.gauss.kernels import ERF_ERF_ERF_ERF, THETA_THETA_RELU_RELU

#: A block entry argument ``c<a><b>`` (slots ``a`` and ``b``, one digit each).
ENTRY = re.compile(r"c(\d)(\d)")


class KernelPrinter(NumPyPrinter):
    """NumPy printer of kernel statements whose operands over few slots are combined first.

    The exact arguments of square roots are never negative (determinants and variances)
    nor those of inverse sines beyond one in absolute value (correlations); rounding can
    push them over at singular blocks, which repeated indices make common, so both are
    clipped.

    Parameters
    ----------
    supports : dict, optional
        The slots each statement symbol printed before depends on (filled by :meth:`statement`).
    """

    def __init__(self, supports: dict[sp.Symbol, frozenset[int]] | None = None) -> None:
        super().__init__()
        self.supports = {} if supports is None else supports

    def support(self, expr: sp.Expr) -> frozenset[int]:
        """The slots ``expr`` depends on (block entries by their name, statement symbols by their value)."""
        slots: set[int] = set()
        for symbol in expr.free_symbols:
            found = self.supports.get(symbol)
            if found is None:
                match = ENTRY.fullmatch(symbol.name)
                found = frozenset(int(d) for d in match.groups()) if match else frozenset()
            slots |= found
        return frozenset(slots)

    def statement(self, symbol: sp.Symbol, expr: sp.Expr) -> str:
        """``symbol = expr`` printed, the symbol's slots recorded for the statements after it."""
        self.supports[symbol] = self.support(expr)
        return f"{symbol} = {self.doprint(expr)}"

    def _merged(self, leaves: list[tuple[str, frozenset[int], bool, bool]], operator: str, inverse: str) -> str:
        """One sum or product of ``leaves`` ``(text, slots, inverted, compound)``, merged pairwise.

        The two operands whose slots together are fewest are combined first (ties: the
        pair adding fewest slots to its larger operand, then the earliest in sympy's
        order, so the print is deterministic), so that small arrays meet before they are
        broadcast to the grid. ``inverted`` marks a subtracted term or a divisor.
        """
        nodes = list(leaves)
        while len(nodes) > 1:
            i, j = _cheapest_pair([slots for _, slots, _, _ in nodes])
            left, right = nodes[i], nodes[j]
            if left[2] and not right[2]:  # a divisor or subtrahend goes on the right
                left, right = right, left
            right_text = f"({right[0]})" if right[3] else right[0]
            if left[2]:  # both inverted: the combined divisor or subtrahend
                text, inverted = f"{left[0]} {operator} {right_text}", True
            else:
                text, inverted = f"{left[0]} {inverse if right[2] else operator} {right_text}", False
            merged = (text, left[1] | right[1], inverted, True)
            nodes = [node for n, node in enumerate(nodes) if n not in (i, j)]
            nodes.insert(i, merged)
        text, _, inverted, compound = nodes[0]
        if not inverted:
            return text
        identity = "0" if operator == "+" else "1"
        return f"{identity} {inverse} ({text})" if compound else f"{identity} {inverse} {text}"

    def _print_Add(self, expr, order=None):  # noqa: N802 - sympy printer protocol
        leaves = []
        for term in sp.Add.make_args(expr):
            negative = term.could_extract_minus_sign()
            body = -term if negative else term
            leaves.append((self.parenthesize(body, PRECEDENCE["Add"], strict=True), self.support(body), negative,
                           False))
        text = self._merged(leaves, "+", "-")
        return f"-{text[4:]}" if text.startswith("0 - ") else text

    def _print_Mul(self, expr):  # noqa: N802
        coefficient, rest = expr.as_coeff_Mul()
        if coefficient < 0:
            return f"-{self.parenthesize(-expr, PRECEDENCE['Mul'], strict=True)}"
        leaves = [] if coefficient == 1 else [(self._print(coefficient), frozenset(), False, False)]
        for factor in sp.Mul.make_args(rest):
            base, exponent = factor.as_base_exp()
            if exponent.is_Number and exponent < 0:
                divisor = base**-exponent
                leaves.append((self.parenthesize(divisor, PRECEDENCE["Mul"], strict=False), self.support(divisor),
                               True, False))
            else:
                leaves.append((self.parenthesize(factor, PRECEDENCE["Mul"], strict=False), self.support(factor),
                               False, False))
        return self._merged(leaves, "*", "/")

    def _print_Pow(self, expr, rational=False):  # noqa: N802
        if expr.exp == sp.Rational(1, 2):
            return f"numpy.sqrt(numpy.maximum({self._print(expr.base)}, 0.0))"
        if expr.exp.is_Number and expr.exp < 0:
            return f"1/{self.parenthesize(expr.base**-expr.exp, PRECEDENCE['Mul'], strict=False)}"
        return super()._print_Pow(expr, rational=rational)

    def _print_asin(self, expr):  # noqa: N802
        return f"numpy.arcsin(numpy.clip({self._print(expr.args[0])}, -1.0, 1.0))"

    def _print_acos(self, expr):  # noqa: N802
        return f"numpy.arccos(numpy.clip({self._print(expr.args[0])}, -1.0, 1.0))"

    def _print_Function(self, expr):  # noqa: N802
        if expr.func == THETA_THETA_RELU_RELU:
            return f"_relu.theta_theta_relu_relu({', '.join(self._print(a) for a in expr.args)})"
        if expr.func == ERF_ERF_ERF_ERF:
            return f"_moments.erf_erf_erf_erf({', '.join(self._print(a) for a in expr.args)})"
        return super()._print_Function(expr)


def _cheapest_pair(supports: list[frozenset[int]]) -> tuple[int, int]:
    """The operands ``(i, j)``, ``i < j``, to combine first: fewest slots together, then fewest added, then first."""

    def cost(pair: tuple[int, int]) -> tuple:
        first, second = supports[pair[0]], supports[pair[1]]
        union = first | second
        return (len(union), len(union) - max(len(first), len(second)), pair)

    return min(((i, j) for i in range(len(supports)) for j in range(i + 1, len(supports))), key=cost)


__all__ = ["ENTRY", "KernelPrinter"]
