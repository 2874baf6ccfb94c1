"""The NumPy printer of generated code, and the sums and assignments it prints.

Matrix products print as ``@``, entry-wise products as ``*`` (all operands are
2-d with unit axes, see :mod:`derive.algebra.matrix_expr`), and leading batch axes pass
through untouched, so one call evaluates a whole batch of overlaps. The
unbatched branch (``unbatched=True``, for 2-d inputs) calls array methods
(``a.dot(b)``, ``a.T``) and keeps traces and totals as Python floats: at small
``p`` the cost is the number of NumPy calls, not the arithmetic.

Printed code calls the hand-written helpers of :mod:`numerics.kernels.helpers`
(:data:`RUNTIME_HELPERS`, imported by :func:`runtime_import`).
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from derive.algebra.matrix_expr import SYMMETRIC, dg, es, mm, rowsum, total, tp, tr
from derive.codegen.contraction import GemmForm, PairwiseContraction
from derive.codegen.plan import (
    PlannedGram,
    PlannedHcat,
    PlannedLincomb,
    PlannedMatmul,
    PlannedShift,
    PlannedSymmetric,
    PlannedThinGram,
    PlannedVcat,
    pair_transposes,
)

#: The module every generated module imports its helpers from (absolute, so that
#: cached modules loaded by path find it too).
RUNTIME_MODULE = "numerics.kernels.helpers"

#: The helpers of :mod:`numerics.kernels.helpers` (its ``__all__``), in the order they are imported;
#: printed code calls each under a leading underscore (``tp as _tp``) so no helper can shadow a printed variable.
RUNTIME_HELPERS = (
    "tp",
    "dg",
    "rowsum",
    "tr",
    "total",
    "sumsq",
    "einsum",
    "tr1",
    "total1",
    "sumsq1",
    "gram1",
    "gram1s",
    "sym1",
    "sym",
    "shift",
    "shift1",
    "cat",
    "full",
    "fill",
)


def runtime_import() -> str:
    """The import block at the top of a generated module: NumPy, math and the runtime helpers."""
    return (
        "import math  # noqa: F401 - used by some readouts, e.g. 1/sqrt(p)\n\n"
        "import numpy as np  # noqa: F401\n\n"
        f"from {RUNTIME_MODULE} import (  # noqa: F401\n"
        + "".join(f"    {name} as _{name},\n" for name in RUNTIME_HELPERS)
        + ")\n"
    )


class NumpyPrinter(PythonCodePrinter):
    """NumPy printer; ``unbatched`` prints the branch for 2-d inputs (array methods, float scalars)."""

    def __init__(self, settings: dict | None = None, *, unbatched: bool = False) -> None:
        super().__init__(settings)
        self.unbatched = unbatched

    def _operand(self, expr: sp.Expr) -> str:
        """``expr`` printed so that a method call or attribute can follow it."""
        text = self._print(expr)
        if expr.is_Symbol or isinstance(expr, sp.Function):
            return text
        return f"({text})"

    def _print_Function(self, expr):  # noqa: N802 - sympy printer protocol
        if self.unbatched:
            method = self._print_unbatched(expr)
            if method is not None:
                return method
        args = [self._print(a) for a in expr.args]
        if isinstance(expr, (mm, PlannedMatmul, PlannedGram, PlannedThinGram)):
            # `@` binds like `*` and associates to the left: `A @ B*C` would be `(A @ B)*C`,
            # so every operand that is not a name or a call is parenthesised
            operands = [self._operand(a) for a in expr.args]
            if isinstance(expr, (mm, PlannedMatmul)):
                return "(" + " @ ".join(operands) + ")"
            suffix = ".copy()" if isinstance(expr, PlannedThinGram) else ""
            return f"({operands[0]} @ _tp({args[0]}){suffix})"
        if isinstance(expr, PlannedSymmetric):
            return f"_sym({', '.join(args)})"
        if isinstance(expr, PlannedLincomb):
            pairs = list(zip(expr.args[::2], expr.args[1::2]))
            return f"({_print_sum(self, pairs)})"
        if isinstance(expr, PlannedShift):
            inner, shift = expr.args
            text = self._print(inner)
            if not self.unbatched:
                return f"_shift({text}, {self._print(shift)})"
            # the unbatched helper adds in place: only on a temporary, never on a named array
            single = isinstance(inner, PlannedLincomb) and len(inner.args) == 2 and inner.args[0] == 1
            if not isinstance(inner, PlannedLincomb) or single:
                text = f"{text}.copy()"
            return f"_shift1({text}, {self._print(shift)})"
        if isinstance(expr, (PlannedHcat, PlannedVcat)):
            axis = -1 if isinstance(expr, PlannedHcat) else -2
            if self.unbatched:
                return f"np.concatenate(({', '.join(args)}), axis={axis + 2})"
            return f"_cat({axis}, {', '.join(args)})"
        if isinstance(expr, tp):
            return f"_tp({args[0]})"
        if isinstance(expr, dg):
            return f"_dg({args[0]})"
        if isinstance(expr, rowsum):
            return f"_rowsum({args[0]})"
        if isinstance(expr, tr):
            return f"_tr({args[0]})"
        if isinstance(expr, total):
            return self._total_call(expr, "")
        if isinstance(expr, (es, PairwiseContraction)):
            inputs, output = str(expr.args[0]).split("->")
            subscripts = ",".join("..." + s for s in inputs.split(",")) + "->..." + output
            call = f"_einsum({subscripts!r}, {', '.join(args[2:])})"
            return call + ("[..., None, None]" if not output else "")
        if isinstance(expr, GemmForm):
            return self._gemm_form(expr)
        return super()._print_Function(expr)

    def _gemm_form(self, expr: sp.Expr) -> str:
        """``sum_{m,n} B_jm D_lm C_jn E_ln F_nm`` (B (..., j, m), D (..., l, m), C (..., j, n), E (..., l, n),
        F (..., n, m); result (..., j, l)): the stack ``C_jn E_ln`` (..., j, l, n) times ``F`` in one matmul,
        then one three-operand pass over ``m`` (no optimize: a single loop, no temporary)."""
        B, D = (self._print(a) for a in expr.args[:2])
        C, E, F = (self._operand(a) for a in expr.args[2:])
        stack = f"({C}[..., :, None, :] * {E}[..., None, :, :]) @ {F}[..., None, :, :]"
        return f"np.einsum('...jm,...lm,...jlm->...jl', {B}, {D}, {stack})"

    def _print_unbatched(self, expr: sp.Expr) -> str | None:
        # 2-d arrays: ndarray.dot and .T cost a fraction of the @ and swapaxes calls at small p
        if isinstance(expr, (mm, PlannedMatmul)):
            first, *rest = expr.args
            return self._operand(first) + "".join(f".dot({self._print(a)})" for a in rest)
        if isinstance(expr, PlannedGram):
            # Q Q^T of a symmetric leaf is Q Q, for which small sizes skip syrk without a copy
            helper = "_gram1s" if expr.args[0] in SYMMETRIC else "_gram1"
            return f"{helper}({self._print(expr.args[0])})"
        if isinstance(expr, PlannedSymmetric):
            return f"_sym1({', '.join(self._print(a) for a in expr.args)})"
        if isinstance(expr, PlannedThinGram):
            operand = self._operand(expr.args[0])
            return f"{operand}.dot({operand}.T.copy())"
        if isinstance(expr, tp):
            return f"{self._operand(expr.args[0])}.T"
        if isinstance(expr, tr):
            return f"_tr1({self._print(expr.args[0])})"
        if isinstance(expr, total):
            return self._total_call(expr, "1")
        return None

    def _total_call(self, expr: sp.Expr, suffix: str) -> str:
        # not _print_total: sympy would dispatch the class `total` to that name. sum(A**2) is a
        # sum of squares, computed without the squared temporary
        inner = expr.args[0]
        if isinstance(inner, sp.Pow) and inner.exp == 2 and not isinstance(inner.base, sp.Pow):
            return f"_sumsq{suffix}({self._print(inner.base)})"
        return f"_total{suffix}({self._print(inner)})"

    def _print_Symbol(self, expr):  # noqa: N802
        return expr.name


def _print_sum(printer: NumpyPrinter, terms: list[tuple[sp.Expr, sp.Expr]]) -> str:
    return join_lines(sum_pieces(printer, terms))


def join_lines(pieces: list[str]) -> str:
    """Signed pieces ``" + a"``, ``" - b"`` as one expression."""
    if not pieces:
        return "0"
    text = "".join(pieces)
    return text[3:] if text.startswith(" + ") else "-" + text[3:]


#: Terms per printed statement. CPython's compiler recurses once per binary operator
#: and fails near 2,500 terms in one expression; high-degree models have sums of thousands.
SUM_CHUNK = 200


def assignment(name: str, pieces: list[str]) -> list[str]:
    """``name = sum of pieces``, split into statements of at most :data:`SUM_CHUNK` terms."""
    if len(pieces) <= SUM_CHUNK:
        return [f"{name} = {join_lines(pieces)}"]
    chunks = [pieces[i : i + SUM_CHUNK] for i in range(0, len(pieces), SUM_CHUNK)]
    # never in place: the first chunk may broadcast to a smaller shape than the sum
    return [f"{name} = {join_lines(chunks[0])}"] + [f"{name} = {name} + ({join_lines(chunk)})" for chunk in chunks[1:]]


def sum_pieces(printer: NumpyPrinter, terms: list[tuple[sp.Expr, sp.Expr]], *, paired: bool = False) -> list[str]:
    """The signed printed terms ``" + c*M"`` of a sum of (scalar coefficient, matrix monomial) pairs.

    ``paired=True``: ``terms`` already went through :func:`derive.codegen.plan.pair_transposes`
    (a sum printed in two branches is paired once).
    """
    pieces = []
    for coefficient, monomial in terms if paired else pair_transposes(terms):
        if coefficient == 0:
            continue
        negative = coefficient.could_extract_minus_sign()
        magnitude = -coefficient if negative else coefficient
        factor = printer.doprint(monomial)
        if monomial == 1:
            factor = printer.doprint(magnitude)
        elif magnitude == 1 and isinstance(monomial, sp.Add) and not negative:
            # "... + Y + Y^T": added one after the other into the running sum, no temporary
            pieces.extend(" + " + printer.doprint(term) for term in monomial.args)
            continue
        elif magnitude != 1:
            scalar = printer.doprint(magnitude)
            # scalars first, so the matrix is multiplied once
            scalar = scalar if magnitude.is_Atom else f"({scalar})"
            factor = factor if monomial.is_Atom or monomial.is_Function else f"({factor})"
            factor = f"{scalar}*{factor}"
        pieces.append((" - " if negative else " + ") + factor)
    return pieces
