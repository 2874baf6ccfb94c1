"""Index-free matrix expressions as sympy trees.

The overlap matrices are plain commutative symbols ``Q`` (p x p), ``R``
(p x k) and ``T`` (k x k). Products of them inside a sympy ``Mul`` mean the
*Hadamard* (entry-wise, broadcasting) product, so ``2*Q*R`` is never a matrix
product; matrix algebra goes through the functions below. Every object has a
2-d shape from ``{p, k, 1}``: column vectors are ``(n, 1)``, row vectors
``(1, n)`` and scalars ``(1, 1)``, so NumPy broadcasting multiplies them
correctly (``v * M`` is ``diag(v) M``). This keeps the expressions ordinary
sympy trees that ``sympy.cse`` and ``srepr`` handle.

Functions
---------
``mm(A, B, ...)``   matrix product, flattened.
``tp(A)``           transpose.
``dg(A)``           diagonal of a square matrix as a column vector.
``rowsum(A)``       ``A @ ones`` as a column vector.
``tr(A)``           trace (scalar).
``total(A)``        sum of all entries (scalar).
``es(subs, shape, *ops)``  einsum fallback for tensor networks with no
                    matrix-product form; ``subs`` and ``shape`` are symbols.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp
from sympy.printing.repr import ReprPrinter

from derive.model.model import k, p

Q = sp.Symbol("Q")
R = sp.Symbol("R")
T = sp.Symbol("T")
MATRICES = (Q, R, T)
SYMMETRIC = (Q, T)
LEAF_SHAPES = {Q: (p, p), R: (p, k), T: (k, k)}
ONE = sp.Integer(1)


class mm(sp.Function):  # noqa: N801 - printed names are kept short on purpose
    """Matrix product, n-ary and flattened."""

    @classmethod
    def eval(cls, *args):  # type: ignore[override]
        if any(isinstance(a, mm) for a in args):
            flat: list[sp.Expr] = []
            for a in args:
                flat.extend(a.args if isinstance(a, mm) else [a])
            return cls(*flat)
        if len(args) == 1:
            return args[0]
        return None


class tp(sp.Function):  # noqa: N801
    """Transpose (symmetric leaves and double transposes simplify)."""

    nargs = 1

    @classmethod
    def eval(cls, arg):  # type: ignore[override]
        if arg in SYMMETRIC or arg.is_Number or arg in (p, k):
            return arg
        if isinstance(arg, tp):
            return arg.args[0]
        return None


class dg(sp.Function):  # noqa: N801
    """Diagonal of a square matrix, as a column vector."""

    nargs = 1


class rowsum(sp.Function):  # noqa: N801
    """Row sums ``A @ 1``, as a column vector."""

    nargs = 1


class tr(sp.Function):  # noqa: N801
    """Trace, a scalar."""

    nargs = 1


class total(sp.Function):  # noqa: N801
    """Sum of all entries, a scalar."""

    nargs = 1

    @classmethod
    def eval(cls, arg):  # type: ignore[override]
        if isinstance(arg, dg):
            return tr(arg.args[0])
        if isinstance(arg, rowsum):
            return cls(arg.args[0])
        if isinstance(arg, tp):
            return cls(arg.args[0])
        if arg.has(tp):
            try:
                flipped = transpose(arg)
            except TypeError:
                # an operand without a known shape (a placeholder symbol that sympy.cse
                # substitutes while rebuilding the tree): the sum stays as it is
                return None
            if len(flipped.atoms(tp)) < len(arg.atoms(tp)):
                return cls(flipped)
        return None


class es(sp.Function):  # noqa: N801
    """Einsum fallback: ``es(Symbol(subscripts), Symbol(shape_code), *operands)``.

    ``subscripts`` is an einsum string without ellipses (the printer adds
    them); operands are 2-d with ``z`` standing for a unit axis. ``shape_code``
    is two characters from ``p``, ``k``, ``1``.
    """


SCALAR_FUNCTIONS = (tr, total)


def _size(code: str) -> sp.Expr:
    return {"p": p, "k": k, "1": ONE}[code]


#: Entries kept by the memoised :func:`shape` and :func:`transpose` (a degree-6 model asks for
#: about 10^5 distinct sub-expressions; sympy trees are immutable, so an answer never goes stale).
MEMO_SIZE = 1 << 18


@lru_cache(maxsize=MEMO_SIZE)
def shape(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """Shape of an expression as a pair from ``{p, k, 1}``.

    Memoised: planning a high-degree model asks for the shapes of the same sub-expressions
    many times over (each query would otherwise walk the whole subtree again).
    """
    if expr in LEAF_SHAPES:
        return LEAF_SHAPES[expr]
    if expr.is_Number or expr in (p, k) or isinstance(expr, SCALAR_FUNCTIONS):
        return (ONE, ONE)
    if isinstance(expr, tp):
        rows, cols = shape(expr.args[0])
        return (cols, rows)
    if isinstance(expr, mm):
        return (shape(expr.args[0])[0], shape(expr.args[-1])[1])
    if isinstance(expr, (dg, rowsum)):
        return (shape(expr.args[0])[0], ONE)
    if isinstance(expr, es):
        code = str(expr.args[1])
        return (_size(code[0]), _size(code[1]))
    if isinstance(expr, sp.Pow):
        return shape(expr.base)
    if isinstance(expr, (sp.Mul, sp.Add)):
        rows, cols = ONE, ONE
        for arg in expr.args:
            r, c = shape(arg)
            if r != ONE:
                if rows not in (ONE, r):
                    raise ValueError(f"incompatible row sizes in {expr}")
                rows = r
            if c != ONE:
                if cols not in (ONE, c):
                    raise ValueError(f"incompatible column sizes in {expr}")
                cols = c
        return (rows, cols)
    if not expr.free_symbols:
        return (ONE, ONE)
    raise TypeError(f"unknown matrix expression {expr!r}")


def is_scalar(expr: sp.Expr) -> bool:
    """True when ``expr`` is (1, 1)."""
    return shape(expr) == (ONE, ONE)


@lru_cache(maxsize=MEMO_SIZE)
def transpose(expr: sp.Expr) -> sp.Expr:
    """Transpose, pushed down to the leaves (memoised like :func:`shape`)."""
    if is_scalar(expr):
        return expr
    if expr in SYMMETRIC:
        return expr
    if isinstance(expr, tp):
        return expr.args[0]
    if isinstance(expr, mm):
        return mm(*[transpose(a) for a in reversed(expr.args)])
    if isinstance(expr, sp.Mul):
        return sp.Mul(*[transpose(a) for a in expr.args])
    if isinstance(expr, sp.Add):
        return sp.Add(*[transpose(a) for a in expr.args])
    if isinstance(expr, sp.Pow):
        return sp.Pow(transpose(expr.base), expr.exp)
    return tp(expr)


# --------------------------------------------------------------------------
# Evaluation on explicit sympy matrices (used by the explicit-index check).
# --------------------------------------------------------------------------


def broadcast(a: sp.Matrix, b: sp.Matrix, op) -> sp.Matrix:
    rows = max(a.rows, b.rows)
    cols = max(a.cols, b.cols)
    for m in (a, b):
        if m.rows not in (1, rows) or m.cols not in (1, cols):
            raise ValueError(f"cannot broadcast {a.shape} with {b.shape}")

    def entry(m: sp.Matrix, i: int, j: int) -> sp.Expr:
        return m[0 if m.rows == 1 else i, 0 if m.cols == 1 else j]

    return sp.Matrix(rows, cols, lambda i, j: op(entry(a, i, j), entry(b, i, j)))


def evaluate(expr: sp.Expr, Qm: sp.Matrix, Rm: sp.Matrix, Tm: sp.Matrix) -> sp.Matrix:
    """Evaluate a matrix expression on explicit sympy matrices.

    Returns a sympy ``Matrix`` (scalars as 1 x 1), entries expanded.
    """
    sizes = {p: Qm.rows, k: Tm.rows}

    def ev(e: sp.Expr) -> sp.Matrix:
        if e == Q:
            return Qm
        if e == R:
            return Rm
        if e == T:
            return Tm
        if e in sizes:
            return sp.Matrix([[sizes[e]]])
        if e.is_Number:
            return sp.Matrix([[e]])
        if isinstance(e, tp):
            return ev(e.args[0]).T
        if isinstance(e, mm):
            out = ev(e.args[0])
            for a in e.args[1:]:
                out = out * ev(a)
            return out
        if isinstance(e, dg):
            m = ev(e.args[0])
            return sp.Matrix(m.rows, 1, lambda i, _: m[i, i])
        if isinstance(e, rowsum):
            m = ev(e.args[0])
            return sp.Matrix(m.rows, 1, lambda i, _: sum(m[i, j] for j in range(m.cols)))
        if isinstance(e, tr):
            return sp.Matrix([[ev(e.args[0]).trace()]])
        if isinstance(e, total):
            return sp.Matrix([[sum(ev(e.args[0]))]])
        if isinstance(e, es):
            return _evaluate_einsum(e, ev)
        if isinstance(e, sp.Add):
            out = ev(e.args[0])
            for a in e.args[1:]:
                out = broadcast(out, ev(a), lambda u, v: u + v)
            return out
        if isinstance(e, sp.Mul):
            out = ev(e.args[0])
            for a in e.args[1:]:
                out = broadcast(out, ev(a), lambda u, v: u * v)
            return out
        if isinstance(e, sp.Pow):
            base = ev(e.base)
            exponent = e.exp.subs(sizes)
            return base.applyfunc(lambda u: u**exponent)
        raise TypeError(f"cannot evaluate {e!r}")

    return ev(expr).applyfunc(sp.expand)


def _evaluate_einsum(e: es, ev) -> sp.Matrix:
    import itertools

    subscripts = str(e.args[0])
    inputs, output = subscripts.split("->")
    operand_subs = inputs.split(",")
    operands = [ev(a) for a in e.args[2:]]
    sizes: dict[str, int] = {"z": 1}
    for subs, m in zip(operand_subs, operands):
        for letter, n in zip(subs, m.shape):
            sizes.setdefault(letter, n)
    letters = sorted({c for s in operand_subs for c in s} - {"z"} - set(output))
    out_shape = [sizes[c] for c in output] + [1] * (2 - len(output))
    result = sp.zeros(*out_shape)
    for out_index in itertools.product(*[range(sizes[c]) for c in output]):
        acc = sp.Integer(0)
        for summed in itertools.product(*[range(sizes[c]) for c in letters]):
            value = dict(zip(output, out_index)) | dict(zip(letters, summed)) | {"z": 0}
            term = sp.Integer(1)
            for subs, m in zip(operand_subs, operands):
                term *= m[tuple(value[c] for c in subs)]
            acc += term
        position = tuple(out_index) + (0,) * (2 - len(output))
        result[position] = acc
    return result


class _SharedReprPrinter(ReprPrinter):
    """``srepr`` that prints each distinct sub-expression once and reuses its text.

    The terms of a high-degree quantity share most of their factors (``mm(Q, R)``,
    ``dg(Q)``, ...); sympy's printer would walk and order them again in every term.
    The repr of a sub-expression does not depend on where it stands, so the text is
    the same as ``sympy.srepr``'s. Only for expressions without floats: two floats of
    different precision compare equal but print differently.
    """

    def __init__(self) -> None:
        super().__init__()
        self._texts: dict[sp.Basic, str] = {}
        self._sort_keys: dict[sp.Basic, tuple] = {}

    def _sort_key(self, factor: sp.Basic) -> tuple:
        key = self._sort_keys.get(factor)
        if key is None:
            key = self._sort_keys[factor] = factor.sort_key()
        return key

    def _print_Mul(self, expr, order=None):  # noqa: N802 - sympy printer protocol
        # ReprPrinter._print_Mul: the factors in Mul.as_ordered_factors' order (args_cnc, then
        # sorted), with each shared factor's sort key computed once. A commutative Mul has only
        # commutative factors, so args_cnc's assumption query per factor (most of srepr's time
        # on fresh factors) is skipped; a negative number coefficient is split off as -1 first.
        if self.order in ("old", "none") or not expr.is_commutative:
            return super()._print_Mul(expr, order)
        factors = list(expr.args)
        first = factors[0]
        # a fresh Rational's first assumption query runs sympy's whole fact deduction: ask its sign directly
        negative = first.p < 0 if first.is_Rational else first.is_Number and first.is_extended_negative
        if negative and first is not sp.S.NegativeOne:
            factors[:1] = [sp.S.NegativeOne, -first]
        factors.sort(key=self._sort_key)
        return f"{type(expr).__name__}({', '.join(self._print(a) for a in factors)})"

    def _print(self, expr, **kwargs) -> str:
        if kwargs or not isinstance(expr, sp.Basic):
            return super()._print(expr, **kwargs)
        text = self._texts.get(expr)
        if text is None:
            text = self._texts[expr] = super()._print(expr)
        return text


def canonical_text(expr: sp.Expr) -> str:
    """A printer-independent canonical text of a sum: the sorted ``srepr`` of its terms.

    ``srepr`` of a whole sum sorts thousands of terms with sympy's sort key (seconds for
    degree-6 models); sorting the terms' texts gives the same canonical content.
    """
    terms = sp.Add.make_args(expr)
    if expr.has(sp.Float):
        return " + ".join(sorted(sp.srepr(term) for term in terms))
    printer = _SharedReprPrinter()
    return " + ".join(sorted(printer.doprint(term) for term in terms))
