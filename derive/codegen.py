"""Print derived quantities into a plain NumPy module.

One joint ``sympy.cse`` runs over all outputs of a generated function, so a
product like ``Q @ Q`` is computed once and reused. Matrix products print as
``@``, entry-wise products as ``*`` (all operands are 2-d with unit axes, see
:mod:`derive.matrix_expr`), and leading batch axes pass through untouched, so
one call evaluates a whole batch of overlaps.

Speed. Every matrix-product chain is planned once per function (each distinct
product once, sub-chains reused, association by multiply count; ``A A^T``
with a wide inner dimension as a Gram product, i.e. BLAS syrk; other products
known to be symmetric, like ``Q (Q Q)``, by block rows of their upper
triangle). The ODE functions also get an unbatched branch for 2-d inputs that
calls array methods (``a.dot(b)``, ``a.T``) and keeps traces and totals as
Python floats: at small ``p`` the cost is the number of NumPy calls, not the
arithmetic. ``rhs_terms`` folds the learning-rate coefficients into the scalar
coefficient of every matrix monomial, so ``dQ`` is one sum of distinct
products, each scaled once.

The header records two hashes: ``input-hash`` (the model and generator
version: what the module is keyed by) and ``result-hash`` (the canonical
``srepr`` of the symbolic result, independent of how sympy prints or
eliminates subexpressions), plus ``body-sha256`` of the printed code so a hand
edit is detected too.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from .matrix_expr import SYMMETRIC, Q, R, T, dg, es, is_scalar, mm, rowsum, shape, total, tp, tr, transpose
from .model import Model, k, p
from .quantities import QUANTITY_NAMES, derive_quantities

HEADER_MARK = "# --- end of header ---"

#: Scalar parameters of ``rhs_terms``: the coefficients of the drift, diffusion and noise terms.
C_DRIFT, C_DIFFUSION, C_NOISE = sp.symbols("c_drift c_diffusion c_noise")


@dataclass(frozen=True)
class FunctionSpec:
    """A generated function: its extra scalar parameters and outputs.

    Each output is ``(name, ((coefficient, quantity), ...))``: the sum of the
    derived quantities times their (scalar) coefficients. ``fast_path`` adds the
    unbatched branch for 2-d inputs.
    """

    name: str
    parameters: tuple[str, ...]
    outputs: tuple[tuple[str, tuple[tuple[sp.Expr, str], ...]], ...]
    doc: str
    fast_path: bool = True


def _plain(*names: str) -> tuple[tuple[str, tuple[tuple[sp.Expr, str], ...]], ...]:
    return tuple((name, ((sp.Integer(1), name),)) for name in names)


#: Every generated function, in the order they are printed.
FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        "first_order_terms",
        (),
        _plain("drift_Q", "drift_R"),
        "Coefficients of eta in dQ/dalpha and dR/dalpha: (drift_Q, drift_R).",
    ),
    FunctionSpec(
        "all_terms",
        (),
        _plain("drift_Q", "drift_R", "diffusion_Q", "noise_Q"),
        "Coefficients of eta, and of eta**2 (noiseless and per unit Delta):\n"
        "    (drift_Q, drift_R, diffusion_Q, noise_Q).",
    ),
    FunctionSpec(
        "rhs_terms",
        ("c_drift", "c_diffusion", "c_noise"),
        (
            ("dQ", ((C_DRIFT, "drift_Q"), (C_DIFFUSION, "diffusion_Q"), (C_NOISE, "noise_Q"))),
            ("dR", ((C_DRIFT, "drift_R"),)),
        ),
        "c_drift * drift + c_diffusion * diffusion_Q + c_noise * noise_Q, as (dQ, dR):\n"
        "    the ODE right-hand side without weight decay for c_drift = eta,\n"
        "    c_diffusion = eta**2 and c_noise = eta**2 Delta.",
    ),
    FunctionSpec(
        "residual_risk", (), _plain("residual_risk"), "Population risk without label noise, shape (...).", False
    ),
)

#: Shape of every output, as a pair from {p, k, 1}.
_OUTPUT_SHAPES = {
    "drift_Q": (p, p),
    "diffusion_Q": (p, p),
    "noise_Q": (p, p),
    "dQ": (p, p),
    "drift_R": (p, k),
    "dR": (p, k),
    "residual_risk": (sp.Integer(1), sp.Integer(1)),
}
_BATCHED_TAILS = {(p, p): "Q.shape[-2:]", (p, k): "R.shape[-2:]", (sp.Integer(1), sp.Integer(1)): "(1, 1)"}
_UNBATCHED_SHAPES = {(p, p): "Q.shape", (p, k): "R.shape", (sp.Integer(1), sp.Integer(1)): "(1, 1)"}

_RUNTIME = '''
import math

import numpy as np

_PATHS: dict = {}


def _tp(a):
    return np.swapaxes(a, -1, -2)


def _dg(a):
    return np.diagonal(a, axis1=-2, axis2=-1)[..., :, None]


def _rowsum(a):
    return a.sum(axis=-1, keepdims=True)


def _tr(a):
    # unbatched: a NumPy scalar, so coefficient arithmetic costs no array calls
    if a.ndim == 2:
        return a.trace()
    return np.trace(a, axis1=-2, axis2=-1)[..., None, None]


def _total(a):
    if a.ndim == 2:
        return a.sum()
    return a.sum(axis=(-2, -1), keepdims=True)


def _sumsq(a):
    # sum of squared entries without the squared temporary
    if a.ndim == 2:
        return np.vdot(a, a)
    return np.einsum("...ij,...ij->...", a, a)[..., None, None]


def _einsum(subscripts, *operands):
    # the contraction path depends only on the shapes: choose it once per shape
    key = (subscripts,) + tuple(np.shape(o) for o in operands)
    path = _PATHS.get(key)
    if path is None:
        path = np.einsum_path(subscripts, *operands, optimize="greedy")[0]
        _PATHS[key] = path
    return np.einsum(subscripts, *operands, optimize=path)


def _tr1(a):
    # unbatched trace as a Python float (exactly rounded; float arithmetic on the
    # scalar coefficients is cheaper than NumPy scalar arithmetic)
    return math.fsum(a.diagonal().tolist())


def _total1(a):
    return float(a.sum())


def _sumsq1(a):
    return float(np.vdot(a, a))


# syrk (half the multiplies of a Gram product) is slower than a plain product
# in OpenBLAS below about this size
_GRAM_MIN = @GRAM_MIN@


def _gram1(a):
    # unbatched a @ a.T; the copy keeps NumPy from choosing syrk
    return a.dot(a.T) if a.shape[0] >= _GRAM_MIN else a.dot(a.T.copy())


def _gram1s(a):
    # unbatched a @ a.T for a symmetric a
    return a.dot(a.T) if a.shape[0] >= _GRAM_MIN else a.dot(a)


# a product known to be symmetric (e.g. Q @ (Q @ Q)) with all sizes at least this
# large is computed by block rows of its upper triangle
_SYM_MIN = @SYM_MIN@
_SYM_BLOCKS = @SYM_BLOCKS@


def _sym1(a, b, y=None):
    # unbatched _sym
    if a.shape[0] < _SYM_MIN or a.shape[1] < _SYM_MIN:
        return a.dot(b) if y is None else a.dot(b) + y + y.T
    return _sym(a, b, y)


def _sym(a, b, y=None):
    # a @ b (+ y + y^T) for a symmetric result: block row i needs only the
    # columns from its diagonal block on, about 5/8 of the multiplies with four
    # block rows, and y is added on those blocks only; the blocks below the
    # diagonal are mirrored from those above it
    n = a.shape[-2]
    if a.ndim != 2 or b.ndim != 2 or np.ndim(y) > 2 or min(n, a.shape[1]) < _SYM_MIN:
        return a @ b if y is None else a @ b + y + _tp(y)
    out = np.empty((n, n), dtype=np.result_type(a, b))
    edges = [n * i // _SYM_BLOCKS for i in range(_SYM_BLOCKS + 1)]
    for lo, hi in zip(edges[:-1], edges[1:]):
        block = out[lo:hi, lo:]
        np.matmul(a[lo:hi], b[:, lo:], out=block)
        if y is not None:
            block += y[lo:hi, lo:]
            block += y[lo:, lo:hi].T
        out[hi:, lo:hi] = out[lo:hi, hi:].T
    return out


def _shift(a, c):
    # a + c I, broadcasting the batch axes of a and c
    return a + np.asarray(c) * np.eye(a.shape[-1])


def _shift1(a, c):
    # unbatched a + c I, in place on the temporary a
    a.flat[:: a.shape[-1] + 1] += c
    return a


def _cat(axis, *arrays):
    # concatenate along a matrix axis, broadcasting the batch axes first
    batch = np.broadcast_shapes(*(np.shape(a)[:-2] for a in arrays))
    return np.concatenate([np.broadcast_to(a, batch + np.shape(a)[-2:]) for a in arrays], axis=axis)


def _full(value, shape):
    # a constant or broadcast entry must still come out with the full shape
    value = np.asarray(value)
    if value.shape == shape:
        return value
    return np.broadcast_to(value, shape).copy()


def _fill(value, tail, Q, R, T):
    # like _full, but the batch shape is only worked out when inputs are batched
    if Q.ndim == 2 and R.ndim == 2 and T.ndim == 2 and getattr(value, "shape", None) == tail:
        return value
    batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])
    return _full(value, batch + tail)
'''


# the size thresholds of the runtime helpers (also used by the multiply count)
GRAM_MIN, SYM_MIN, SYM_BLOCKS = 128, 256, 4
_RUNTIME = (
    _RUNTIME.replace("@GRAM_MIN@", str(GRAM_MIN))
    .replace("@SYM_MIN@", str(SYM_MIN))
    .replace("@SYM_BLOCKS@", str(SYM_BLOCKS))
)

#: The module every generated module imports its helpers from (absolute, so that
#: cached modules loaded by path find it too).
RUNTIME_MODULE = "numerics._generated._runtime"


def runtime_source() -> str:
    """Source of the runtime helpers shared by all generated modules (one copy, not one per module)."""
    return (
        "# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.\n"
        '"""Array helpers called by the generated modules (printed by derive/codegen.py)."""\n'
        + _RUNTIME
    )


def runtime_import() -> str:
    """The import block at the top of a generated module: NumPy, math and the runtime helpers."""
    names = re.findall(r"^def (\w+)", _RUNTIME, flags=re.MULTILINE)
    return (
        "import math  # noqa: F401 - used by some readouts, e.g. 1/sqrt(p)\n\n"
        "import numpy as np  # noqa: F401\n\n"
        f"from {RUNTIME_MODULE} import (  # noqa: F401\n"
        + "".join(f"    {name},\n" for name in names)
        + ")\n"
    )


class _NumpyPrinter(PythonCodePrinter):
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
        if isinstance(expr, (mm, _matmul, _gram, _thin_gram)):
            # `@` binds like `*` and associates to the left: `A @ B*C` would be `(A @ B)*C`,
            # so every operand that is not a name or a call is parenthesised
            operands = [self._operand(a) for a in expr.args]
            if isinstance(expr, (mm, _matmul)):
                return "(" + " @ ".join(operands) + ")"
            suffix = ".copy()" if isinstance(expr, _thin_gram) else ""
            return f"({operands[0]} @ _tp({args[0]}){suffix})"
        if isinstance(expr, _symmetric):
            return f"_sym({', '.join(args)})"
        if isinstance(expr, _lincomb):
            pairs = list(zip(expr.args[::2], expr.args[1::2]))
            return f"({_print_sum(self, pairs)})"
        if isinstance(expr, _shift):
            inner, shift = expr.args
            text = self._print(inner)
            if not self.unbatched:
                return f"_shift({text}, {self._print(shift)})"
            # the unbatched helper adds in place: only on a temporary, never on a named array
            single = isinstance(inner, _lincomb) and len(inner.args) == 2 and inner.args[0] == 1
            if not isinstance(inner, _lincomb) or single:
                text = f"{text}.copy()"
            return f"_shift1({text}, {self._print(shift)})"
        if isinstance(expr, (_hcat, _vcat)):
            axis = -1 if isinstance(expr, _hcat) else -2
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
        if isinstance(expr, es):
            inputs, output = str(expr.args[0]).split("->")
            subscripts = ",".join("..." + s for s in inputs.split(",")) + "->..." + output
            call = f"_einsum({subscripts!r}, {', '.join(args[2:])})"
            return call + ("[..., None, None]" if not output else "")
        return super()._print_Function(expr)

    def _print_unbatched(self, expr: sp.Expr) -> str | None:
        # 2-d arrays: ndarray.dot and .T cost a fraction of the @ and swapaxes calls at small p
        if isinstance(expr, (mm, _matmul)):
            first, *rest = expr.args
            return self._operand(first) + "".join(f".dot({self._print(a)})" for a in rest)
        if isinstance(expr, _gram):
            # Q Q^T of a symmetric leaf is Q Q, for which small sizes skip syrk without a copy
            helper = "_gram1s" if expr.args[0] in SYMMETRIC else "_gram1"
            return f"{helper}({self._print(expr.args[0])})"
        if isinstance(expr, _symmetric):
            return f"_sym1({', '.join(self._print(a) for a in expr.args)})"
        if isinstance(expr, _thin_gram):
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


def canonical_text(expr: sp.Expr) -> str:
    """A printer-independent canonical text of a sum: the sorted ``srepr`` of its terms.

    ``srepr`` of a whole sum sorts thousands of terms with sympy's sort key (seconds for
    degree-6 models); sorting the terms' texts gives the same canonical content.
    """
    return " + ".join(sorted(sp.srepr(term) for term in sp.Add.make_args(expr)))


def result_hash(model: Model) -> str:
    """Hash of the canonical symbolic result (not of its printed form)."""
    derived = derive_quantities(model).as_dict()
    text = "\n".join(f"{name}={canonical_text(derived[name])}" for name in QUANTITY_NAMES)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
    view); a symmetric chain ``A A^T`` becomes a Gram product, another chain
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
        grouped.setdefault(sp.Mul(*matrices), []).append(sp.Mul(*scalars))
    return [(sp.Add(*coefficients), monomial) for monomial, coefficients in grouped.items()]


def _pair_transposes(terms: list[tuple[sp.Expr, sp.Expr]]) -> list[tuple[sp.Expr, sp.Expr]]:
    """Merge ``c X + c X^T`` into ``c (X + X^T)``: one scaling instead of two."""
    # a lookup by (coefficient, monomial): the sums of high-degree models have thousands of terms
    position = {(coefficient, monomial): i for i, (coefficient, monomial) in enumerate(terms)}
    merged: list[tuple[sp.Expr, sp.Expr]] = []
    used: set[int] = set()
    for i, (coefficient, monomial) in enumerate(terms):
        if i in used:
            continue
        if coefficient != 0:
            candidates = [tp(monomial, evaluate=False)]
            if isinstance(monomial, tp):
                candidates.append(monomial.args[0])
            partners = [position.get((coefficient, c)) for c in candidates]
            partners = [j for j in partners if j is not None and j > i and j not in used]
            if partners:
                j = min(partners)
                monomial = sp.Add(monomial, terms[j][1], evaluate=False)
                used.add(j)
        merged.append((coefficient, monomial))
    return merged


def _print_sum(printer: _NumpyPrinter, terms: list[tuple[sp.Expr, sp.Expr]]) -> str:
    return _join(_sum_pieces(printer, terms))


def _join(pieces: list[str]) -> str:
    """Signed pieces ``" + a"``, ``" - b"`` as one expression."""
    if not pieces:
        return "0"
    text = "".join(pieces)
    return text[3:] if text.startswith(" + ") else "-" + text[3:]


#: Terms per printed statement. CPython's compiler recurses once per binary operator
#: and fails near 2,500 terms in one expression; high-degree models have sums of thousands.
SUM_CHUNK = 200


def _assignment(name: str, pieces: list[str]) -> list[str]:
    """``name = sum of pieces``, split into statements of at most :data:`SUM_CHUNK` terms."""
    if len(pieces) <= SUM_CHUNK:
        return [f"{name} = {_join(pieces)}"]
    chunks = [pieces[i : i + SUM_CHUNK] for i in range(0, len(pieces), SUM_CHUNK)]
    # never in place: the first chunk may broadcast to a smaller shape than the sum
    return [f"{name} = {_join(chunks[0])}"] + [f"{name} = {name} + ({_join(chunk)})" for chunk in chunks[1:]]


def _sum_pieces(printer: _NumpyPrinter, terms: list[tuple[sp.Expr, sp.Expr]]) -> list[str]:
    """The signed printed terms ``" + c*M"`` of a sum of (scalar coefficient, matrix monomial) pairs."""
    pieces = []
    for coefficient, monomial in _pair_transposes(terms):
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


def _horner(terms: list[tuple[sp.Expr, sp.Expr]]) -> list[tuple[sp.Expr, sp.Expr]]:
    """``c_3 Q^3 + c_2 Q^2 + c_1 Q`` (any degree >= 3) as the symmetric product ``Q (c_3 Q^2 + c_2 Q + c_1 I)``.

    The powers below the top one are then scaled and added inside the product's
    operand, and the p x p result is written once (``Q^2`` is still a Gram
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
class _Plan:
    """A function's outputs after product planning and one joint ``cse``."""

    collected: list[list[tuple[sp.Expr, sp.Expr]]]
    full: list[bool]
    replacements: list[tuple[sp.Symbol, sp.Expr]]
    reduced: list[sp.Expr]
    products: list[sp.Expr]


def _plan(spec: FunctionSpec, derived: dict) -> _Plan:
    planner = _ChainPlanner()
    collected = [_combine(derived, combination) for _, combination in spec.outputs]
    # a term of the output's full shape makes the sum full-shaped (no broadcast needed)
    full = [
        any(coefficient != 0 and shape(monomial) == _OUTPUT_SHAPES[output] for coefficient, monomial in terms)
        for (output, _), terms in zip(spec.outputs, collected)
    ]
    collected = [
        _merge_symmetric(_factor_thin(_horner(terms))) if _OUTPUT_SHAPES[output] == (p, p) else terms
        for (output, _), terms in zip(spec.outputs, collected)
    ]
    parts = [part for terms in collected for pair in terms for part in pair]
    chains = {node for part in parts for node in sp.preorder_traversal(part) if isinstance(node, mm)}
    # shorter chains first, so longer ones can reuse them
    chains = sorted(chains, key=lambda chain: (len(chain.args), sp.default_sort_key(chain)))
    for chain in chains:
        planner.build(chain.args)

    def planned(expr: sp.Expr) -> sp.Expr:
        if not expr.args:
            return expr
        args = [planned(a) for a in expr.args]
        if isinstance(expr, mm):
            return planner.build(tuple(args))
        if isinstance(expr, sp.Function):
            # no re-evaluation: the simplifying evals of matrix_expr do not know planned products
            return expr.func(*args, evaluate=False)
        return expr.func(*args)

    flat = [planned(part) for part in parts]
    # the products the printed code computes: those of terms with a nonzero coefficient
    live = [part for i in range(0, len(flat), 2) if parts[i] != 0 for part in flat[i : i + 2]]
    nodes = (node for part in live for node in sp.preorder_traversal(part) if isinstance(node, PRODUCTS))
    products = list(dict.fromkeys(nodes))
    replacements, reduced = sp.cse(flat, symbols=sp.numbered_symbols("x"), order="canonical")
    return _Plan(collected, full, replacements, reduced, products)


def _body(spec: FunctionSpec, plan: _Plan, *, unbatched: bool) -> list[str]:
    """Statements computing and returning the outputs (unindented)."""
    printer = _NumpyPrinter(unbatched=unbatched)
    used = set().union(*[e.free_symbols for e in plan.reduced], *[e.free_symbols for _, e in plan.replacements])
    lines = []
    if p in used:
        lines.append("p = Q.shape[-1]")
    if k in used:
        lines.append("k = T.shape[-1]")
    for symbol, expr in plan.replacements:
        if isinstance(expr, sp.Add) and len(expr.args) > SUM_CHUNK:
            lines.extend(_assignment(str(symbol), [" + " + printer.doprint(term) for term in expr.args]))
        else:
            lines.append(f"{symbol} = {printer.doprint(expr)}")
    position = 0
    for (output, _), terms, full in zip(spec.outputs, plan.collected, plan.full):
        pairs = [(plan.reduced[position + 2 * i], plan.reduced[position + 2 * i + 1]) for i in range(len(terms))]
        position += 2 * len(terms)
        pieces = _sum_pieces(printer, pairs)
        if len(pieces) > SUM_CHUNK:
            lines.extend(_assignment(output, pieces))
            value = output
        else:
            value = _join(pieces)
        out_shape = _OUTPUT_SHAPES[output]
        if not unbatched:
            lines.append(f"{output} = _fill({value}, {_BATCHED_TAILS[out_shape]}, Q, R, T)")
        elif full:
            lines.append(f"{output} = {value}")
        else:
            lines.append(f"{output} = _full({value}, {_UNBATCHED_SHAPES[out_shape]})")
    names = [output for output, _ in spec.outputs]
    if names == ["residual_risk"]:
        lines.append("return residual_risk[..., 0, 0]")
    else:
        lines.append(f"return {', '.join(names)}")
    return lines


def _function_source(spec: FunctionSpec, derived: dict) -> str:
    plan = _plan(spec, derived)
    signature = ", ".join(("Q", "R", "T") + spec.parameters)
    lines = [f"def {spec.name}({signature}):", f'    """{spec.doc}"""']
    if spec.fast_path:
        lines.append("    if Q.ndim == 2 and R.ndim == 2 and T.ndim == 2:")
        lines.extend("        " + line for line in _body(spec, plan, unbatched=True))
    lines.extend("    " + line for line in _body(spec, plan, unbatched=False))
    return "\n".join(lines) + "\n"


def _planned_shape(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """Shape (from {p, k, 1}) of an expression that may contain planned products."""
    if not any(isinstance(node, (*PRODUCTS, _lincomb, _shift, _hcat, _vcat)) for node in sp.preorder_traversal(expr)):
        return shape(expr)
    if isinstance(expr, (_matmul, _symmetric)):
        return (_planned_shape(expr.args[0])[0], _planned_shape(expr.args[1])[1])
    if isinstance(expr, (_gram, _thin_gram)):
        rows = _planned_shape(expr.args[0])[0]
        return (rows, rows)
    if isinstance(expr, _lincomb):
        return _planned_shape(expr.args[1])
    if isinstance(expr, (_shift, sp.Pow)):
        return _planned_shape(expr.args[0])
    if isinstance(expr, tp):
        rows, cols = _planned_shape(expr.args[0])
        return (cols, rows)
    if isinstance(expr, _hcat):
        shapes = [_planned_shape(a) for a in expr.args]
        return (shapes[0][0], sp.Add(*[c for _, c in shapes]))
    if isinstance(expr, _vcat):
        shapes = [_planned_shape(a) for a in expr.args]
        return (sp.Add(*[r for r, _ in shapes]), shapes[0][1])
    if isinstance(expr, (sp.Add, sp.Mul)):
        rows, cols = sp.Integer(1), sp.Integer(1)
        for arg in expr.args:
            r, c = _planned_shape(arg)
            rows, cols = (r if r != 1 else rows), (c if c != 1 else cols)
        return (rows, cols)
    raise TypeError(f"no shape for {expr!r}")


@dataclass(frozen=True)
class ProductCount:
    """Scalar multiplications of one matrix product of a generated function."""

    kind: str  #: gemm, syrk, gram (plain), symmetric (blocked) or symmetric (plain)
    rows: int
    inner: int
    cols: int
    generated: int  #: what the called kernel does
    minimum: int  #: each distinct entry once (a symmetric result: its upper triangle)


def multiply_counts(model: Model, function: str, p_value: int, k_value: int) -> list[ProductCount]:
    """The matrix products of a generated function's unbatched branch at ``p``, ``k``, with multiply counts.

    ``generated`` follows the kernel the printed code calls at these sizes:
    ``m l n`` for a plain product, ``m (m + 1) l / 2`` for syrk (Gram products
    with a wide inner dimension, ``m >= GRAM_MIN``), the block rows' upper
    parts for the blocked symmetric product (``m, l >= SYM_MIN``). ``minimum``
    counts every distinct entry once: ``m (m + 1) l / 2`` for any product whose
    result is symmetric, ``m l n`` otherwise. Entry-wise work (O(p**2)) and
    einsum fallbacks (none in the paper model) are not counted.
    """
    spec = next(f for f in FUNCTIONS if f.name == function)
    plan = _plan(spec, derive_quantities(model).as_dict())
    sizes = {p: p_value, k: k_value}
    counts = []
    for node in plan.products:
        rows, cols = (int(sp.sympify(d).subs(sizes)) for d in _planned_shape(node))
        inner = int(sp.sympify(_planned_shape(node.args[0])[1]).subs(sizes))
        full, half = rows * inner * cols, rows * (rows + 1) * inner // 2
        if isinstance(node, _matmul):
            counts.append(ProductCount("gemm", rows, inner, cols, full, full))
        elif isinstance(node, _gram) and rows >= GRAM_MIN:
            counts.append(ProductCount("syrk", rows, inner, cols, half, half))
        elif isinstance(node, (_gram, _thin_gram)):
            counts.append(ProductCount("gram (plain)", rows, inner, cols, full, half))
        elif min(rows, inner) >= SYM_MIN:
            edges = [rows * i // SYM_BLOCKS for i in range(SYM_BLOCKS + 1)]
            blocked = sum((hi - lo) * inner * (rows - lo) for lo, hi in zip(edges[:-1], edges[1:]))
            counts.append(ProductCount("symmetric (blocked)", rows, inner, cols, blocked, half))
        else:
            counts.append(ProductCount("symmetric (plain)", rows, inner, cols, full, half))
    return counts


def _coefficients(polynomial: sp.Expr) -> tuple[float, ...]:
    from .model import x

    return tuple(float(c) for c in reversed(sp.Poly(polynomial, x).all_coeffs()))


def _model_constants(model: Model) -> str:
    """Activation coefficients and readouts, so simulators need no sympy."""
    printer = _NumpyPrinter()
    return "\n".join(
        [
            "# activation polynomials, coefficients of x**0, x**1, ...",
            f"STUDENT_ACTIVATION = {_coefficients(model.student_activation)!r}",
            f"TEACHER_ACTIVATION = {_coefficients(model.teacher_activation)!r}",
            "",
            "",
            "def readouts(p, k):",
            '    """Second-layer weights (a, b) shared by all student / teacher units."""',
            f"    return float({printer.doprint(model.student_readout)}), "
            f"float({printer.doprint(model.teacher_readout)})",
            "",
        ]
    )


@dataclass(frozen=True)
class GeneratedModule:
    """Source text of a generated module and the hashes in its header."""

    source: str
    input_hash: str
    result_hash: str


def generate_module(model: Model) -> GeneratedModule:
    """Derive and print the NumPy module for ``model``."""
    derived = derive_quantities(model).as_dict()
    res_hash = result_hash(model)
    body_parts = [runtime_import()]
    for spec in FUNCTIONS:
        body_parts.append(_function_source(spec, derived))
    body_parts.append(_model_constants(model))
    body_parts.append(
        "MODEL_DESCRIPTION = " + repr(model.describe()) + "\n"
        f"INPUT_HASH = {model.codegen_hash()!r}\n"
        f"RESULT_HASH = {res_hash!r}\n"
    )
    body = "\n\n".join(body_parts)
    header = "\n".join(
        [
            "# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.",
            "# Generated by wickode's derive package from the model:",
            f"#   name: {model.name}",
            f"#   student activation: {model.student_activation}",
            f"#   teacher activation: {model.teacher_activation}",
            f"#   student readout: {model.student_readout}",
            f"#   teacher readout: {model.teacher_readout}",
            f"# input-hash: {model.codegen_hash()}",
            f"# result-hash: {res_hash}",
            f"# body-sha256: {hashlib.sha256(body.encode()).hexdigest()}",
            f"# sympy: {sp.__version__}",
            '"""Generated overlap-ODE terms and population risk (see header)."""',
            HEADER_MARK,
            "",
        ]
    )
    return GeneratedModule(header + "\n" + body, model.codegen_hash(), res_hash)


# The file-level helpers live in derive/artefacts.py (sympy-free, shared with the
# numerics cache loader); re-exported here for existing imports.
from .artefacts import body_is_intact, read_header, write_atomically  # noqa: E402

__all__ = [
    "FUNCTIONS",
    "FunctionSpec",
    "GeneratedModule",
    "ProductCount",
    "body_is_intact",
    "generate_module",
    "multiply_counts",
    "read_header",
    "result_hash",
    "write_atomically",
    "Q",
    "R",
    "T",
]
