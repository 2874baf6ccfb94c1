"""A whitelisted parser for the expressions that define a model.

Model fields arrive as text (``"x**3 - 3*x"``, ``"1/sqrt(p)"``). ``sympy.sympify``
would ``eval`` that text, so any Python in it would run. Here the text is only
parsed (:func:`ast.parse`), every node is checked against a small grammar, and the
sympy expression is built from the checked nodes with sympy's constructors:
nothing the user writes is ever executed.

Sympy expressions passed in directly go through the same rules
(:func:`check_expression`), so both kinds of input describe the same family.

Size limits keep every input cheap to build and to expand: the text length, the
nesting depth, the integer exponents (checked before any power is formed), the
bit size of constant powers and square roots, an upper bound on the degree and
one on the number of terms after expansion (both tracked while building).
"""

from __future__ import annotations

import ast
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

import sympy as sp

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
        calls = f"; the functions {' and '.join(f'{name}(...)' for name in self.functions)}" if self.functions else ""
        return (
            f"integer and decimal numbers, {names}, unary + and -, binary + - * /, {power}, parentheses, {root}"
            f"{calls}"
        )


class _Refused(Exception):
    """A node outside the grammar; turned into ValueError with the full context."""


@dataclass(frozen=True)
class _Built:
    """A sympy expression with upper bounds on its degree and its number of expanded terms."""

    expr: sp.Expr
    degree: int
    terms: int

    @property
    def constant(self) -> bool:
        return self.degree == 0


def _error(name: str, text: object, grammar: Grammar, problem: str) -> ValueError:
    return ValueError(
        f"{name}: cannot parse {text!r}: {problem}. {name} must be {grammar.what}; allowed: {grammar.rules()}"
    )


# --------------------------------------------------------------------------
# helpers shared by the text and the sympy-expression paths
# --------------------------------------------------------------------------


def _rational_bits(value: sp.Expr) -> int | None:
    if value.is_Rational:
        return max(abs(int(value.p)).bit_length(), int(value.q).bit_length())
    return None


def _exact_float(value: float, shown: str) -> sp.Rational:
    """The exact rational a decimal literal denotes (``"0.1"`` -> 1/10, never the binary double)."""
    if not math.isfinite(value):
        raise _Refused(f"the number {shown} is not finite")
    return sp.Rational(Fraction(shown.replace("_", "")))


def _make(expr: sp.Expr, degree: int, terms: int) -> _Built:
    # a number is one term however it was written, e.g. (1 + 2)
    return _Built(expr, degree, 1 if expr.is_Rational else terms)


def _check_degree(built: _Built, grammar: Grammar, where: str) -> _Built:
    if built.degree > grammar.degree_limit * grammar.degree_slack:
        limit = grammar.degree_name or str(grammar.degree_limit)
        shown = str(built.degree) if built.degree < 10**12 else f"about 10**{len(str(built.degree)) - 1}"
        raise _Refused(f"{where} has degree up to {shown}, above the limit {limit}")
    if built.terms > MAX_TERMS:
        raise _Refused(f"{where} would expand to more than {MAX_TERMS} terms")
    return built


def _power(base: _Built, exponent: sp.Expr, grammar: Grammar, where: str) -> _Built:
    """``base**exponent`` for an integer exponent, with every size checked before the power is formed."""
    if not exponent.is_Integer:
        raise _Refused(f"the exponent in {where} is {exponent}, not an integer (use sqrt(...) for square roots)")
    n = abs(int(exponent))
    if base.constant:
        if base.expr.is_zero and exponent.is_negative:
            raise _Refused(f"{where} divides by zero")
        bits = _rational_bits(base.expr)
        if bits is not None:
            if bits * n > MAX_CONSTANT_BITS:
                raise _Refused(f"the constant {where} is too large (more than {MAX_CONSTANT_BITS} bits)")
        elif n > MAX_EXPONENT:
            raise _Refused(f"the exponent in {where} is above the limit {MAX_EXPONENT}")
    else:
        if grammar.polynomial and exponent.is_negative:
            raise _Refused(f"the exponent in {where} is negative; {grammar.what} allows only non-negative powers")
        # the degree check comes first: it names the limit users care about, and bounds n
        _check_degree(_Built(sp.Integer(0), base.degree * n, 1), grammar, where)
        if n > MAX_EXPONENT:
            raise _Refused(f"the exponent in {where} is above the limit {MAX_EXPONENT}")
    # monomials of a multinomial power: an upper bound on the expanded terms (n is bounded here)
    terms = math.comb(base.terms + n - 1, n) if base.terms > 1 else 1
    return _check_degree(_make(base.expr**exponent, base.degree * n, terms), grammar, where)


def _sqrt(argument: _Built, grammar: Grammar, where: str) -> _Built:
    if argument.constant:
        if argument.expr.is_negative:
            raise _Refused(f"{where} is the square root of a negative number")
        if argument.expr.is_nonnegative is not True:
            raise _Refused(f"{where}: cannot decide that the argument is non-negative")
        bits = _rational_bits(argument.expr)
        if bits is not None and bits > MAX_CONSTANT_BITS:
            raise _Refused(f"the argument of {where} is too large (more than {MAX_CONSTANT_BITS} bits)")
    elif grammar.polynomial:
        raise _Refused(f"{where} takes the square root of an expression containing {', '.join(grammar.symbols)}")
    return _Built(sp.sqrt(argument.expr), argument.degree, 1)


def _function(constructor: Callable[[sp.Expr], sp.Expr], argument: _Built, where: str) -> _Built:
    """A whitelisted one-argument function of an already checked argument (counted as one term of degree 1)."""
    if argument.constant:
        raise _Refused(f"{where} is a function of a constant, not of the variable")
    return _Built(constructor(argument.expr), 1, 1)


def _divide(numerator: _Built, denominator: _Built, grammar: Grammar, where: str) -> _Built:
    if denominator.expr.is_zero:
        raise _Refused(f"{where} divides by zero")
    if grammar.polynomial and not denominator.constant:
        raise _Refused(f"{where} divides by an expression containing {', '.join(grammar.symbols)}")
    built = _make(
        numerator.expr / denominator.expr, numerator.degree + denominator.degree, numerator.terms * denominator.terms
    )
    return _check_degree(built, grammar, where)


# --------------------------------------------------------------------------
# text
# --------------------------------------------------------------------------

_KINDS = {
    ast.Attribute: "an attribute access",
    ast.Subscript: "a subscript",
    ast.Lambda: "a lambda",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.NamedExpr: "an assignment expression (:=)",
    ast.Compare: "a comparison",
    ast.BoolOp: "a boolean operator",
    ast.IfExp: "a conditional expression",
    ast.Tuple: "a tuple",
    ast.List: "a list",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.Starred: "a starred expression",
    ast.Await: "an await",
    ast.Yield: "a yield",
    ast.YieldFrom: "a yield",
    ast.Slice: "a slice",
}

_OPERATORS = {
    ast.FloorDiv: "'//'",
    ast.Mod: "'%'",
    ast.MatMult: "'@'",
    ast.BitXor: "'^' (write powers with '**')",
    ast.BitAnd: "'&'",
    ast.BitOr: "'|'",
    ast.LShift: "'<<'",
    ast.RShift: "'>>'",
    ast.Not: "'not'",
    ast.Invert: "'~'",
}


class _TextBuilder:
    def __init__(self, text: str, grammar: Grammar) -> None:
        self.grammar = grammar
        # node offsets count UTF-8 bytes; slicing these lines keeps segments linear in their length
        # (ast.get_source_segment re-splits the whole text for every node)
        self.lines = text.encode("utf-8").splitlines(keepends=True)

    def segment(self, node: ast.AST, limit: int | None = 60) -> str:
        """The source text of ``node``, shortened to ``limit`` characters for messages."""
        first, last = node.lineno - 1, node.end_lineno - 1
        if first == last:
            raw = self.lines[first][node.col_offset : node.end_col_offset]
        else:
            raw = (
                self.lines[first][node.col_offset :]
                + b"".join(self.lines[first + 1 : last])
                + self.lines[last][: node.end_col_offset]
            )
        shown = raw.decode("utf-8", "replace")
        return shown if limit is None or len(shown) <= limit else shown[: limit - 3] + "..."

    def build(self, node: ast.AST) -> _Built:
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            if node.id in self.grammar.symbols:
                return _Built(self.grammar.symbols[node.id], 1, 1)
            if node.id == "sqrt":
                raise _Refused("sqrt must be called, as sqrt(...)")
            raise _Refused(f"the name {node.id!r} is not allowed")
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return self.build(node.operand)
            if isinstance(node.op, ast.USub):
                operand = self.build(node.operand)
                return _Built(-operand.expr, operand.degree, operand.terms)
        where = repr(self.segment(node))
        if isinstance(node, ast.UnaryOp):
            raise _Refused(f"the operator {_OPERATORS.get(type(node.op), type(node.op).__name__)} in {where}")
        if isinstance(node, ast.BinOp):
            return self.binary(node, where)
        if isinstance(node, ast.Call):
            return self.call(node, where)
        kind = _KINDS.get(type(node), f"a {type(node).__name__} node")
        raise _Refused(f"found {kind}: {where}")

    def constant(self, node: ast.Constant) -> _Built:
        value = node.value
        shown = self.segment(node, limit=None)  # a decimal's exact value is read from its full text
        # bool is an int subclass: True / False are names of constants, not numbers
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = "a string" if isinstance(value, (str, bytes)) else f"the constant {shown}"
            if isinstance(value, complex):
                kind = f"the complex number {shown}"
            raise _Refused(f"found {kind}")
        if isinstance(value, int):
            return _Built(sp.Integer(value), 0, 1)
        return _Built(_exact_float(value, shown), 0, 1)

    def binary(self, node: ast.BinOp, where: str) -> _Built:
        op = node.op
        if isinstance(op, ast.Pow):
            base = self.build(node.left)
            exponent = self.build(node.right)
            if not exponent.constant:
                raise _Refused(f"the exponent in {where} is not a constant")
            return _power(base, exponent.expr, self.grammar, where)
        if not isinstance(op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            raise _Refused(f"the operator {_OPERATORS.get(type(op), type(op).__name__)} in {where}")
        left = self.build(node.left)
        right = self.build(node.right)
        if isinstance(op, ast.Div):
            return _divide(left, right, self.grammar, where)
        if isinstance(op, ast.Mult):
            built = _make(left.expr * right.expr, left.degree + right.degree, left.terms * right.terms)
        elif isinstance(op, ast.Add):
            built = _make(left.expr + right.expr, max(left.degree, right.degree), left.terms + right.terms)
        else:
            built = _make(left.expr - right.expr, max(left.degree, right.degree), left.terms + right.terms)
        return _check_degree(built, self.grammar, where)

    def call(self, node: ast.Call, where: str) -> _Built:
        allowed = ("sqrt", *self.grammar.functions)
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in allowed:
            if len(allowed) == 1:
                raise _Refused(f"found a call {where}; the only function is sqrt")
            raise _Refused(f"found a call {where}; the only functions are {', '.join(allowed)}")
        if len(node.args) != 1 or node.keywords or isinstance(node.args[0], ast.Starred):
            raise _Refused(f"{name} takes exactly one argument, found {where}")
        argument = self.build(node.args[0])
        if name == "sqrt":
            return _sqrt(argument, self.grammar, where)
        return _function(self.grammar.functions[name], argument, where)


def _depth(tree: ast.AST) -> int:
    """Nesting depth, computed without recursion (the text may be a recursion bomb)."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def parse(text: str, grammar: Grammar, name: str) -> sp.Expr:
    """Build the sympy expression a text denotes, without evaluating the text.

    Parameters
    ----------
    text
        The expression, e.g. ``"x**3 - 3*x"`` or ``"1/sqrt(p)"``.
    grammar
        What the field may contain.
    name
        Field name used in messages.

    Returns
    -------
    sympy.Expr
        Built with sympy's constructors; decimals are exact (``"0.1"`` -> 1/10).

    Raises
    ------
    ValueError
        If the text is outside the grammar or too large; the message says what
        was found and states the grammar.
    """
    if len(text) > MAX_LENGTH:
        raise _error(name, text[:40] + "...", grammar, f"the text is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        detail = getattr(error, "msg", None) or str(error) or type(error).__name__
        raise _error(name, text, grammar, f"not a valid expression ({detail})") from None
    if _depth(tree) > MAX_DEPTH:
        raise _error(name, text, grammar, f"nested more than {MAX_DEPTH} levels deep")
    try:
        return _TextBuilder(text.strip(), grammar).build(tree.body).expr
    except _Refused as refused:
        raise _error(name, text, grammar, str(refused)) from None


# --------------------------------------------------------------------------
# sympy expressions and Python numbers
# --------------------------------------------------------------------------


def _shown(expr: sp.Basic) -> str:
    shown = str(expr)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _check_tree(expr: sp.Basic, grammar: Grammar, depth: int) -> _Built:
    if depth > MAX_DEPTH:
        raise _Refused(f"the expression is nested more than {MAX_DEPTH} levels deep")
    if not isinstance(expr, sp.Expr):
        raise _Refused(f"found {type(expr).__name__} {expr}, not an expression")
    if expr.is_Symbol:
        if expr in grammar.symbols.values():
            return _Built(expr, 1, 1)
        if expr.name in grammar.symbols:
            raise _Refused(
                f"the symbol {expr.name} has other assumptions than derive.model.model.{expr.name}; use that symbol"
            )
        raise _Refused(f"the symbol {expr} is not allowed")
    if expr.is_Rational:
        return _Built(expr, 0, 1)
    if expr.is_Float:
        return _Built(_exact_float(float(expr), repr(float(expr))), 0, 1)
    if expr.is_Add or expr.is_Mul:
        parts = [_check_tree(arg, grammar, depth + 1) for arg in expr.args]
        # rebuild only when a float was made exact, so valid input comes back identical
        unchanged = all(part.expr == arg for part, arg in zip(parts, expr.args))
        rebuilt = expr if unchanged else expr.func(*(part.expr for part in parts))
        if expr.is_Add:
            built = _make(rebuilt, max(part.degree for part in parts), sum(part.terms for part in parts))
        else:
            built = _make(rebuilt, sum(part.degree for part in parts), math.prod(part.terms for part in parts))
        return _check_degree(built, grammar, _shown(expr))
    if expr.is_Pow:
        base, exponent = expr.args
        where = _shown(expr)
        checked = _check_tree(base, grammar, depth + 1)
        if exponent.is_Rational and exponent.q == 2:
            # sqrt(b)**n, e.g. sympy's 1/sqrt(p) = p**(-1/2)
            root = _sqrt(checked, grammar, where)
            return _power(root, sp.Integer(exponent.p), grammar, where)
        if exponent.is_Float or exponent.is_Rational:
            exponent = _check_tree(exponent, grammar, depth + 1).expr
        return _power(checked, exponent, grammar, where)
    if isinstance(expr, sp.Function):
        name = getattr(expr.func, "__name__", str(expr.func))
        constructor = grammar.functions.get(name)
        if constructor is not None and len(expr.args) == 1 and constructor(expr.args[0]) == expr:
            argument = _check_tree(expr.args[0], grammar, depth + 1)
            return _function(constructor, argument, _shown(expr))
        raise _Refused(f"found the function {expr.func}: {_shown(expr)}")
    raise _Refused(f"found {_shown(expr)} ({type(expr).__name__})")


def check_expression(expr: sp.Basic, grammar: Grammar, name: str) -> sp.Expr:
    """Check a sympy expression against ``grammar``; floats become exact rationals.

    Only the grammar's symbols, rational numbers, finite floats (made exact via
    their shortest decimal form: ``0.1`` -> 1/10), ``+``, ``*``, integer powers
    and square roots are accepted; ``nan``, ``zoo``, ``oo``, ``I``, ``E``,
    ``pi`` and functions are refused.

    Raises
    ------
    ValueError
        Naming what was found and stating the grammar.
    """
    try:
        checked = _check_tree(expr, grammar, 1).expr
    except _Refused as refused:
        raise _error(name, expr, grammar, str(refused)) from None
    # valid input comes back as the very same object (hashes of committed models rely on srepr)
    return expr if checked == expr else checked


def to_expression(value: object, grammar: Grammar, name: str) -> sp.Expr:
    """A model field as a checked sympy expression.

    Parameters
    ----------
    value
        Text (parsed by :func:`parse`), a Python int or float (floats are made
        exact via their shortest decimal form), a :class:`fractions.Fraction`,
        or a sympy expression (checked by :func:`check_expression`).
    grammar, name
        As in :func:`parse`.

    Raises
    ------
    ValueError
        For anything outside the grammar or of another type.
    """
    if isinstance(value, str):
        return parse(value, grammar, name)
    if isinstance(value, sp.Basic):
        return check_expression(value, grammar, name)
    try:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise _Refused(f"found a value of type {type(value).__name__}; give text, a number or a sympy expression")
        if isinstance(value, numbers.Integral):
            return sp.Integer(int(value))
        if isinstance(value, numbers.Rational):
            return sp.Rational(int(value.numerator), int(value.denominator))
        return _exact_float(float(value), repr(float(value)))
    except _Refused as refused:
        raise _error(name, value, grammar, str(refused)) from None
