"""A whitelisted parser for the expressions that define a model.

Model fields arrive as text (``"x**3 - 3*x"``, ``"1/sqrt(p)"``). ``sympy.sympify``
would ``eval`` that text, so any Python in it would run. Here the text is only
parsed (:func:`ast.parse`), every node is checked against a small grammar, and the
sympy expression is built from the checked nodes with sympy's constructors:
nothing the user writes is ever executed.

Sympy expressions passed in directly go through the same rules
(:func:`check_expression`), so both kinds of input describe the same family: both
build with the size-checked constructors of :mod:`derive.model.grammar`, which
also defines :class:`Grammar` and the limits (re-exported here).

Size limits keep every input cheap to build and to expand: the text length, the
nesting depth, the integer exponents (checked before any power is formed), the
bit size of constant powers and square roots, an upper bound on the degree and
one on the number of terms after expansion (both tracked while building).
"""

from __future__ import annotations

import ast
import math
import numbers

import sympy as sp

from derive.model.grammar import (
    MAX_CONSTANT_BITS,
    MAX_DEPTH,
    MAX_EXPONENT,
    MAX_LENGTH,
    MAX_TERMS,
    Built,
    Grammar,
    Refused,
    bounded,
    check_size,
    checked_call,
    checked_division,
    checked_power,
    checked_sqrt,
    exact_rational,
    field_error,
    float_range_problem,
)

__all__ = [
    "MAX_CONSTANT_BITS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_TERMS",
    "Grammar",
    "check_expression",
    "parse",
    "to_expression",
]


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

    def build(self, node: ast.AST) -> Built:
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            if node.id in self.grammar.symbols:
                return Built(self.grammar.symbols[node.id], 1, 1)
            if node.id == "sqrt":
                raise Refused("sqrt must be called, as sqrt(...)")
            raise Refused(f"the name {node.id!r} is not allowed")
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return self.build(node.operand)
            if isinstance(node.op, ast.USub):
                operand = self.build(node.operand)
                return Built(-operand.expr, operand.degree, operand.terms)
        where = repr(self.segment(node))
        if isinstance(node, ast.UnaryOp):
            raise Refused(f"the operator {_OPERATORS.get(type(node.op), type(node.op).__name__)} in {where}")
        if isinstance(node, ast.BinOp):
            return self.binary(node, where)
        if isinstance(node, ast.Call):
            return self.call(node, where)
        kind = _KINDS.get(type(node), f"a {type(node).__name__} node")
        raise Refused(f"found {kind}: {where}")

    def constant(self, node: ast.Constant) -> Built:
        value = node.value
        shown = self.segment(node, limit=None)  # a decimal's exact value is read from its full text
        # bool is an int subclass: True / False are names of constants, not numbers
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = "a string" if isinstance(value, (str, bytes)) else f"the constant {shown}"
            if isinstance(value, complex):
                kind = f"the complex number {shown}"
            raise Refused(f"found {kind}")
        if isinstance(value, int):
            return Built(sp.Integer(value), 0, 1)
        return Built(exact_rational(value, shown), 0, 1)

    def binary(self, node: ast.BinOp, where: str) -> Built:
        op = node.op
        if isinstance(op, ast.Pow):
            base = self.build(node.left)
            exponent = self.build(node.right)
            if not exponent.constant:
                raise Refused(f"the exponent in {where} is not a constant")
            return checked_power(base, exponent.expr, self.grammar, where)
        if not isinstance(op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            raise Refused(f"the operator {_OPERATORS.get(type(op), type(op).__name__)} in {where}")
        left = self.build(node.left)
        right = self.build(node.right)
        if isinstance(op, ast.Div):
            return checked_division(left, right, self.grammar, where)
        if isinstance(op, ast.Mult):
            built = bounded(left.expr * right.expr, left.degree + right.degree, left.terms * right.terms)
        elif isinstance(op, ast.Add):
            built = bounded(left.expr + right.expr, max(left.degree, right.degree), left.terms + right.terms)
        else:
            built = bounded(left.expr - right.expr, max(left.degree, right.degree), left.terms + right.terms)
        return check_size(built, self.grammar, where)

    def call(self, node: ast.Call, where: str) -> Built:
        allowed = ("sqrt", *self.grammar.functions)
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in allowed:
            if len(allowed) == 1:
                raise Refused(f"found a call {where}; the only function is sqrt")
            raise Refused(f"found a call {where}; the only functions are {', '.join(allowed)}")
        if len(node.args) != 1 or node.keywords or isinstance(node.args[0], ast.Starred):
            raise Refused(f"{name} takes exactly one argument, found {where}")
        argument = self.build(node.args[0])
        if name == "sqrt":
            return checked_sqrt(argument, self.grammar, where)
        return checked_call(self.grammar.functions[name], argument, where)


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
        raise field_error(name, text[:40] + "...", grammar, f"the text is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        detail = getattr(error, "msg", None) or str(error) or type(error).__name__
        raise field_error(name, text, grammar, f"not a valid expression ({detail})") from None
    if _depth(tree) > MAX_DEPTH:
        raise field_error(name, text, grammar, f"nested more than {MAX_DEPTH} levels deep")
    try:
        return _TextBuilder(text.strip(), grammar).build(tree.body).expr
    except Refused as refused:
        raise field_error(name, text, grammar, str(refused)) from None


# --------------------------------------------------------------------------
# sympy expressions and Python numbers
# --------------------------------------------------------------------------


def _shown(expr: sp.Basic) -> str:
    shown = str(expr)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _check_tree(expr: sp.Basic, grammar: Grammar, depth: int) -> Built:
    if depth > MAX_DEPTH:
        raise Refused(f"the expression is nested more than {MAX_DEPTH} levels deep")
    if not isinstance(expr, sp.Expr):
        raise Refused(f"found {type(expr).__name__} {expr}, not an expression")
    if expr.is_Symbol:
        if expr in grammar.symbols.values():
            return Built(expr, 1, 1)
        if expr.name in grammar.symbols:
            raise Refused(
                f"the symbol {expr.name} has other assumptions than derive.model.model.{expr.name}; use that symbol"
            )
        raise Refused(f"the symbol {expr} is not allowed")
    if expr.is_Rational:
        return Built(expr, 0, 1)
    if expr.is_Float:
        return Built(exact_rational(float(expr), repr(float(expr))), 0, 1)
    if expr.is_Add or expr.is_Mul:
        parts = [_check_tree(arg, grammar, depth + 1) for arg in expr.args]
        # rebuild only when a float was made exact, so valid input comes back identical
        unchanged = all(part.expr == arg for part, arg in zip(parts, expr.args))
        rebuilt = expr if unchanged else expr.func(*(part.expr for part in parts))
        if expr.is_Add:
            built = bounded(rebuilt, max(part.degree for part in parts), sum(part.terms for part in parts))
        else:
            built = bounded(rebuilt, sum(part.degree for part in parts), math.prod(part.terms for part in parts))
        return check_size(built, grammar, _shown(expr))
    if expr.is_Pow:
        base, exponent = expr.args
        where = _shown(expr)
        checked = _check_tree(base, grammar, depth + 1)
        if exponent.is_Rational and exponent.q == 2:
            # sqrt(b)**n, e.g. sympy's 1/sqrt(p) = p**(-1/2)
            root = checked_sqrt(checked, grammar, where)
            return checked_power(root, sp.Integer(exponent.p), grammar, where)
        if exponent.is_Float or exponent.is_Rational:
            exponent = _check_tree(exponent, grammar, depth + 1).expr
        return checked_power(checked, exponent, grammar, where)
    if isinstance(expr, sp.Function):
        name = getattr(expr.func, "__name__", str(expr.func))
        constructor = grammar.functions.get(name)
        if constructor is not None and len(expr.args) == 1 and constructor(expr.args[0]) == expr:
            argument = _check_tree(expr.args[0], grammar, depth + 1)
            return checked_call(constructor, argument, _shown(expr))
        raise Refused(f"found the function {expr.func}: {_shown(expr)}")
    raise Refused(f"found {_shown(expr)} ({type(expr).__name__})")


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
    except Refused as refused:
        raise field_error(name, expr, grammar, str(refused)) from None
    # valid input comes back as the very same object (hashes of committed models rely on srepr)
    return expr if checked == expr else checked


def _in_float_range(expr: sp.Expr, value: object, grammar: Grammar, name: str) -> sp.Expr:
    problem = float_range_problem(expr)
    if problem is not None:
        raise field_error(name, value, grammar, problem)
    return expr


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
        return _in_float_range(parse(value, grammar, name), value, grammar, name)
    if isinstance(value, sp.Basic):
        return _in_float_range(check_expression(value, grammar, name), value, grammar, name)
    try:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise Refused(f"found a value of type {type(value).__name__}; give text, a number or a sympy expression")
        if isinstance(value, numbers.Integral):
            number = sp.Integer(int(value))
        elif isinstance(value, numbers.Rational):
            number = sp.Rational(int(value.numerator), int(value.denominator))
        else:
            number = exact_rational(float(value), repr(float(value)))
    except Refused as refused:
        raise field_error(name, value, grammar, str(refused)) from None
    return _in_float_range(number, value, grammar, name)
