"""The grammar of a model field and the size-checked constructors both parsers build with.

A :class:`Grammar` says what one kind of field may contain (its symbols, whether
they enter only polynomially, a degree limit, whitelisted functions). The
constructors (:func:`checked_power`, :func:`checked_sqrt`, :func:`checked_division`,
:func:`checked_call`, :func:`check_size`) form one sympy node each from parts already
checked, tracking upper bounds on the degree and on the number of expanded terms
(:class:`Built`), and refuse (:class:`Refused`) before anything large is formed.
The text parser and the check of sympy input (:mod:`derive.model.parse`) share them,
so both kinds of input describe the same family.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

import sympy as sp

__all__ = [
    "MAX_CONSTANT_BITS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_TERMS",
    "Built",
    "Grammar",
    "Refused",
    "bounded",
    "check_size",
    "checked_call",
    "checked_division",
    "checked_power",
    "checked_sqrt",
    "exact_rational",
    "field_error",
    "float_range_problem",
]

#: Longest accepted text.
MAX_LENGTH = 2000
#: Deepest accepted nesting (of syntax nodes or of a sympy expression tree).
MAX_DEPTH = 200
#: Largest ``|n|`` in a power ``base**n`` whose base is not a rational number.
MAX_EXPONENT = 64
#: Largest bit size of a rational constant made by ``**`` or passed to ``sqrt``.
MAX_CONSTANT_BITS = 1024
#: Largest number of terms an expression may expand to (an upper bound is tracked).
MAX_TERMS = 256


@dataclass(frozen=True)
class Grammar:
    """What one kind of model field may contain.

    Attributes
    ----------
    what
        What the field is, for messages (e.g. ``"a polynomial in x"``).
    symbols
        Names allowed in the text and the sympy symbols they stand for.
    polynomial
        If true the symbols may enter only polynomially: no division by, no
        negative power of and no ``sqrt`` of an expression containing them.
    degree_limit
        Largest total degree in the symbols (an upper bound, counting
        ``1/p`` and ``sqrt(p)`` as degree 1, is tracked while building).
    degree_slack
        The bound may exceed ``degree_limit`` by this factor while building,
        so the caller can check the exact degree after cancellations.
    degree_name
        How messages name the degree limit (e.g. ``"MAX_DEGREE = 6"``).
    functions
        One-argument functions allowed besides ``sqrt``, by name, with the
        sympy constructor each name stands for (activations: ``erf`` and
        ``relu``). Only the call is built here; which arguments make sense is
        checked by the caller (:mod:`derive.model.model`).
    """

    what: str
    symbols: Mapping[str, sp.Symbol]
    polynomial: bool
    degree_limit: int
    degree_slack: int = 1
    degree_name: str = ""
    functions: Mapping[str, Callable[[sp.Expr], sp.Expr]] = field(default_factory=dict)

    def rules(self) -> str:
        """The grammar, in one sentence for error messages and docs."""
        if not self.symbols:
            names = "no variables"
        elif len(self.symbols) == 1:
            names = f"the variable {next(iter(self.symbols))}"
        else:
            *first, last = self.symbols
            names = f"the variables {', '.join(first)} and {last}"
        if self.polynomial and self.symbols:
            power = "** with an integer exponent (non-negative on a base containing a variable)"
            root = "sqrt(...) of a non-negative constant; division only by non-zero constants"
        else:
            power = "** with an integer exponent"
            root = "sqrt(...)"
        calls = [f"{name}(...)" for name in self.functions]
        listed = ", ".join(calls[:-1]) + " and " + calls[-1] if len(calls) > 1 else "".join(calls)
        calls = f"; the functions {listed}" if self.functions else ""
        return (
            f"integer and decimal numbers, {names}, unary + and -, binary + - * /, {power}, parentheses, {root}"
            f"{calls}"
        )


class Refused(Exception):
    """A node outside the grammar; the parser turns it into ValueError with the full context (:func:`field_error`)."""


@dataclass(frozen=True)
class Built:
    """A sympy expression with upper bounds on its degree and its number of expanded terms."""

    expr: sp.Expr
    degree: int
    terms: int

    @property
    def constant(self) -> bool:
        """No symbol enters (degree 0)."""
        return self.degree == 0


def float_range_problem(expr: sp.Basic) -> str | None:
    """What is wrong with the numbers of ``expr`` as float64 constants, or ``None``.

    The generated NumPy code evaluates every constant as a double: a rational
    beyond the float range would print as ``inf``, one below the smallest
    normal double would lose its digits (or become zero).
    """
    for number in sorted(expr.atoms(sp.Rational), key=lambda r: abs(Fraction(int(r.p), int(r.q)))):
        magnitude = abs(Fraction(int(number.p), int(number.q)))
        if magnitude > Fraction(sys.float_info.max):
            return f"the constant {_short(number)} is beyond the float range (above {sys.float_info.max:.4g})"
        if 0 < magnitude < Fraction(sys.float_info.min):
            return f"the constant {_short(number)} is below the float range (under {sys.float_info.min:.4g})"
    return None


def _short(number: sp.Rational) -> str:
    shown = str(number)
    if len(shown) <= 24:
        return shown
    # the decimal exponent, from the digit counts (the value itself is no float)
    exponent = len(str(abs(int(number.p)))) - len(str(int(number.q)))
    return f"{'-' if number.p < 0 else ''}(about 10**{exponent})"


def field_error(name: str, text: object, grammar: Grammar, problem: str) -> ValueError:
    """The error for the field ``name``: what was given, the ``problem``, and the grammar it must follow."""
    return ValueError(
        f"{name}: cannot parse {text!r}: {problem}. {name} must be {grammar.what}; allowed: {grammar.rules()}"
    )


# --------------------------------------------------------------------------
# constructors shared by the text and the sympy-expression paths
# --------------------------------------------------------------------------


def _rational_bits(value: sp.Expr) -> int | None:
    if value.is_Rational:
        return max(abs(int(value.p)).bit_length(), int(value.q).bit_length())
    return None


def exact_rational(value: float, shown: str) -> sp.Rational:
    """The exact rational a decimal literal denotes (``"0.1"`` -> 1/10, never the binary double)."""
    if not math.isfinite(value):
        raise Refused(f"the number {shown} is not finite")
    return sp.Rational(Fraction(shown.replace("_", "")))


def bounded(expr: sp.Expr, degree: int, terms: int) -> Built:
    """``expr`` with its bounds (a rational number counts as one term)."""
    # a number is one term however it was written, e.g. (1 + 2)
    return Built(expr, degree, 1 if expr.is_Rational else terms)


def check_size(built: Built, grammar: Grammar, where: str) -> Built:
    """``built`` itself, or :class:`Refused` if its degree or term bound exceeds the limits."""
    if built.degree > grammar.degree_limit * grammar.degree_slack:
        limit = grammar.degree_name or str(grammar.degree_limit)
        shown = str(built.degree) if built.degree < 10**12 else f"about 10**{len(str(built.degree)) - 1}"
        raise Refused(f"{where} has degree up to {shown}, above the limit {limit}")
    if built.terms > MAX_TERMS:
        raise Refused(f"{where} would expand to more than {MAX_TERMS} terms")
    return built


def checked_power(base: Built, exponent: sp.Expr, grammar: Grammar, where: str) -> Built:
    """``base**exponent`` for an integer exponent, with every size checked before the power is formed."""
    if not exponent.is_Integer:
        raise Refused(f"the exponent in {where} is {exponent}, not an integer (use sqrt(...) for square roots)")
    n = abs(int(exponent))
    if base.constant:
        if base.expr.is_zero and exponent.is_negative:
            raise Refused(f"{where} divides by zero")
        bits = _rational_bits(base.expr)
        if bits is not None:
            if bits * n > MAX_CONSTANT_BITS:
                raise Refused(f"the constant {where} is too large (more than {MAX_CONSTANT_BITS} bits)")
        elif n > MAX_EXPONENT:
            raise Refused(f"the exponent in {where} is above the limit {MAX_EXPONENT}")
    else:
        if grammar.polynomial and exponent.is_negative:
            raise Refused(f"the exponent in {where} is negative; {grammar.what} allows only non-negative powers")
        # the degree check comes first: it names the limit users care about, and bounds n
        check_size(Built(sp.Integer(0), base.degree * n, 1), grammar, where)
        if n > MAX_EXPONENT:
            raise Refused(f"the exponent in {where} is above the limit {MAX_EXPONENT}")
    # monomials of a multinomial power: an upper bound on the expanded terms (n is bounded here)
    terms = math.comb(base.terms + n - 1, n) if base.terms > 1 else 1
    return check_size(bounded(base.expr**exponent, base.degree * n, terms), grammar, where)


def checked_sqrt(argument: Built, grammar: Grammar, where: str) -> Built:
    """``sqrt(argument)``: of a non-negative, not too large constant, or (non-polynomial grammar) of anything."""
    if argument.constant:
        if argument.expr.is_negative:
            raise Refused(f"{where} is the square root of a negative number")
        if argument.expr.is_nonnegative is not True:
            raise Refused(f"{where}: cannot decide that the argument is non-negative")
        bits = _rational_bits(argument.expr)
        if bits is not None and bits > MAX_CONSTANT_BITS:
            raise Refused(f"the argument of {where} is too large (more than {MAX_CONSTANT_BITS} bits)")
    elif grammar.polynomial:
        raise Refused(f"{where} takes the square root of an expression containing {', '.join(grammar.symbols)}")
    return Built(sp.sqrt(argument.expr), argument.degree, 1)


def checked_call(constructor: Callable[[sp.Expr], sp.Expr], argument: Built, where: str) -> Built:
    """A whitelisted one-argument function of an already checked argument (counted as one term of degree 1)."""
    if argument.constant:
        raise Refused(f"{where} is a function of a constant, not of the variable")
    return Built(constructor(argument.expr), 1, 1)


def checked_division(numerator: Built, denominator: Built, grammar: Grammar, where: str) -> Built:
    """``numerator / denominator``: never by zero, and in a polynomial grammar only by constants."""
    if denominator.expr.is_zero:
        raise Refused(f"{where} divides by zero")
    if grammar.polynomial and not denominator.constant:
        raise Refused(f"{where} divides by an expression containing {', '.join(grammar.symbols)}")
    built = bounded(
        numerator.expr / denominator.expr, numerator.degree + denominator.degree, numerator.terms * denominator.terms
    )
    return check_size(built, grammar, where)
