r"""Human-readable renderings of index-free expressions: LaTeX and plain text.

Conventions in both: juxtaposition / ``@`` is the matrix product, ``∘`` / ``*``
between matrices the entry-wise (Hadamard) product, ``dg(A)`` the diagonal of
``A`` as a column vector, ``1`` the all-ones vector, ``sum(A)`` the sum of all
entries of ``A``.

Grouping in LaTeX (:data:`PRECEDENCE` states it for the documents): a superscript
(``^{\top}``, the entry-wise power ``^{\circ n}``, the matrix power ``^{n}``) binds to
the one symbol or function application it follows; any other base (a product, a sum, or
something that already carries a superscript) is put in parentheses, so
``(R R^T)^{∘2}`` prints ``\left(R R^{\top}\right)^{\circ 2}`` and never the double
superscript ``R R^{\top}^{\circ 2}``. A matrix product or a sum that is a factor of an
entry-wise product is parenthesised as well, so no reading depends on an order of
operations between ``∘`` and juxtaposition.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from derive.algebra.matrix_expr import dg, es, is_scalar, mm, rowsum, total, tp, tr
from derive.model.model import k, p


def _split(expr: sp.Mul) -> tuple[list[sp.Expr], list[sp.Expr]]:
    scalars, matrices = [], []
    for factor in expr.args:
        (scalars if is_scalar(factor) else matrices).append(factor)
    return scalars, matrices


#: The grouping rules of :func:`latex`, as stated at the top of ``docs/equations.md``.
PRECEDENCE = r"""Grouping: a superscript (the transpose $A^{\top}$, the entry-wise power $A^{\circ n}$,
the matrix power $A^{n}$) applies only to the symbol or the function application right before it;
anything larger carries parentheses, e.g. $\left(R R^{\top}\right)^{\circ 2}$ (square the
entries of $R R^{\top}$), $\left(R^{\top}\right)^{\circ 2}$, $\left(Q \mathbf{1}\right)^{\top}$.
The factors of an entry-wise product $\circ$ that are matrix products or sums are
parenthesised too, e.g. $R \circ \left(Q \mathbf{1}\right)$, so no formula relies on an
order of operations between $\circ$ and the matrix product. A coefficient written in front of
a term multiplies the whole term."""


def _is_atom(expr: sp.Expr) -> bool:
    """Whether the LaTeX of ``expr`` takes a superscript without parentheses.

    Atoms are the symbols and function applications (``dg``, ``tr``, ``sum``, ``einsum``):
    their text ends in a name or a closing ``\\right)``. Matrix products, ``A 1``,
    transposes, powers, sums and products are not.
    """
    return not isinstance(expr, (mm, rowsum, tp, sp.Add, sp.Mul, sp.Pow))


def _is_product_or_sum(expr: sp.Expr) -> bool:
    """Whether ``expr`` prints as several juxtaposed or added terms (a matrix product, ``A 1`` or a sum)."""
    return isinstance(expr, (mm, rowsum)) or isinstance(expr, sp.Add) and not is_scalar(expr)


class _Latex(LatexPrinter):
    def _print_Function(self, expr, exp=None):  # noqa: N802 - sympy printer protocol
        args = [self._print(a) for a in expr.args]
        if isinstance(expr, mm):
            runs: list[list] = []
            for a in expr.args:
                if runs and runs[-1][0] == a:
                    runs[-1][1] += 1
                else:
                    runs.append([a, 1])
            text = " ".join(self._base(a) + f"^{{{n}}}" if n > 1 else self._wrap(a) for a, n in runs)
        elif isinstance(expr, tp):
            text = rf"{self._base(expr.args[0])}^{{\top}}"
        elif isinstance(expr, dg):
            text = rf"\operatorname{{dg}}\left({args[0]}\right)"
        elif isinstance(expr, rowsum):
            text = rf"{self._wrap(expr.args[0])} \mathbf{{1}}"
        elif isinstance(expr, tr):
            text = rf"\operatorname{{tr}}\left({args[0]}\right)"
        elif isinstance(expr, total):
            text = rf"\operatorname{{sum}}\left({args[0]}\right)"
        elif isinstance(expr, es):
            text = rf"\operatorname{{einsum}}_{{\mathtt{{{expr.args[0]}}}}}\left({', '.join(args[2:])}\right)"
        else:
            return super()._print_Function(expr, exp)
        return f"\\left({text}\\right)^{{{exp}}}" if exp else text

    def _wrap(self, expr: sp.Expr) -> str:
        """A factor of a matrix product: entry-wise products and sums in parentheses."""
        text = self._print(expr)
        if isinstance(expr, (sp.Add, sp.Mul)) and not is_scalar(expr):
            return rf"\left({text}\right)"
        return text

    def _base(self, expr: sp.Expr) -> str:
        """The base of a superscript: in parentheses unless it is a symbol or a function application."""
        text = self._print(expr)
        return text if _is_atom(expr) else rf"\left({text}\right)"

    def _hadamard_factor(self, expr: sp.Expr) -> str:
        """A factor of an entry-wise product: matrix products and sums in parentheses."""
        text = self._print(expr)
        return rf"\left({text}\right)" if _is_product_or_sum(expr) else text

    def _print_Mul(self, expr):  # noqa: N802
        scalars, matrices = _split(expr)
        if not matrices or len(matrices) == 1 and not scalars:
            return super()._print_Mul(expr)
        if len(matrices) == 1:
            body = self._wrap(matrices[0])
        else:
            body = r" \circ ".join(self._hadamard_factor(m) for m in matrices)
        if not scalars:
            return body
        coefficient = sp.Mul(*scalars)
        if coefficient == -1:
            return "- " + body
        text = super()._print_Mul(coefficient) if isinstance(coefficient, sp.Mul) else self._print(coefficient)
        if isinstance(coefficient, sp.Add):
            text = rf"\left({text}\right)"
        return text + " " + body

    def _print_Pow(self, expr):  # noqa: N802
        if not is_scalar(expr.base):
            return rf"{self._base(expr.base)}^{{\circ {self._print(expr.exp)}}}"
        return super()._print_Pow(expr)


class _Text(StrPrinter):
    def _print_Function(self, expr):  # noqa: N802
        args = [self._print(a) for a in expr.args]
        if isinstance(expr, mm):
            return "(" + " @ ".join(args) + ")" if len(args) > 1 else args[0]
        if isinstance(expr, tp):
            return f"{args[0]}.T"
        if isinstance(expr, rowsum):
            return f"({args[0]} @ 1)"
        if isinstance(expr, total):
            return f"sum({args[0]})"
        if isinstance(expr, es):
            return f"einsum('{expr.args[0]}', {', '.join(args[2:])})"
        return super()._print_Function(expr)


def latex(expr: sp.Expr) -> str:
    """LaTeX of an index-free expression, terms grouped by their prefactor in p and k.

    Each group prints as ``prefactor term`` or ``prefactor (sum)``; a group of one
    negative term carries its sign in front of the prefactor
    (``- \\frac{1}{p^{2}} R^{\\top} \\mathbf{1}^{\\top}``), never between the prefactor
    and the term, where it would read as a subtraction.
    """
    printer = _Latex({"order": "none"})
    parts: list[tuple[bool, str]] = []
    for prefactor, body in _groups(expr):
        content, primitive = body.as_content_primitive()
        prefactor *= content
        several = len(sp.Add.make_args(primitive)) > 1
        if not several and primitive.could_extract_minus_sign():
            prefactor, primitive = -prefactor, -primitive
        negative = prefactor.could_extract_minus_sign()
        magnitude = -prefactor if negative else prefactor
        inner = printer.doprint(primitive)
        if several:
            inner = rf"\left({inner}\right)"
        parts.append((negative, inner if magnitude == 1 else printer.doprint(magnitude) + " " + inner))
    if not parts:
        return "0"
    first_negative, first = parts[0]
    return ("- " if first_negative else "") + first + "".join(
        (" - " if negative else " + ") + piece for negative, piece in parts[1:]
    )


def text(expr: sp.Expr) -> str:
    """Plain-text form, e.g. ``-2*R*tr(Q)/p**2 - 4*(Q @ R)/p**2 + ...``."""
    return _Text().doprint(expr)


def _groups(expr: sp.Expr) -> list[tuple[sp.Expr, sp.Expr]]:
    """Split into (prefactor in p and k, rest) groups sharing the prefactor."""
    groups: dict[sp.Expr, sp.Expr] = {}
    for term in sp.Add.make_args(sp.expand(expr)):
        prefactor = sp.Integer(1)
        rest = sp.Integer(1)
        for factor in sp.Mul.make_args(term):
            if factor.free_symbols and factor.free_symbols <= {p, k}:
                prefactor *= factor
            else:
                rest *= factor
        groups[prefactor] = groups.get(prefactor, sp.Integer(0)) + rest
    return list(groups.items())
