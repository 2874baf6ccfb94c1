"""Print derived quantities into a plain NumPy module.

One joint ``sympy.cse`` runs over all outputs of a generated function, so a
product like ``Q @ Q`` is computed once and reused. Matrix products print as
``@``, entry-wise products as ``*`` (all operands are 2-d with unit axes, see
:mod:`derive.matrix_expr`), and leading batch axes pass through untouched, so
one call evaluates a whole batch of overlaps.

The header records two hashes: ``input-hash`` (the model and generator
version: what the module is keyed by) and ``result-hash`` (the canonical
``srepr`` of the symbolic result, independent of how sympy prints or
eliminates subexpressions), plus ``body-sha256`` of the printed code so a hand
edit is detected too.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from .matrix_expr import Q, R, T, dg, es, is_scalar, mm, rowsum, shape, total, tp, tr, transpose
from .model import Model, k, p
from .quantities import QUANTITY_NAMES, derive_quantities

HEADER_MARK = "# --- end of header ---"

#: (function name, outputs, docstring) of every generated function.
FUNCTIONS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "first_order_terms",
        ("drift_Q", "drift_R"),
        "Coefficients of eta in dQ/dalpha and dR/dalpha: (drift_Q, drift_R).",
    ),
    (
        "all_terms",
        ("drift_Q", "drift_R", "diffusion_Q", "noise_Q"),
        "Coefficients of eta, and of eta**2 (noiseless and per unit Delta):\n"
        "    (drift_Q, drift_R, diffusion_Q, noise_Q).",
    ),
    ("residual_risk", ("residual_risk",), "Population risk without label noise, shape (...)."),
)

_RUNTIME = '''
import math  # noqa: F401 - used by some readouts, e.g. 1/sqrt(p)

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


class _NumpyPrinter(PythonCodePrinter):
    def _print_Function(self, expr):  # noqa: N802 - sympy printer protocol
        args = [self._print(a) for a in expr.args]
        if isinstance(expr, mm):
            return "(" + " @ ".join(args) + ")"
        if isinstance(expr, _matmul):
            return f"({args[0]} @ {args[1]})"
        if isinstance(expr, _gram):
            return f"({args[0]} @ _tp({args[0]}))"
        if isinstance(expr, tp):
            return f"_tp({args[0]})"
        if isinstance(expr, dg):
            return f"_dg({args[0]})"
        if isinstance(expr, rowsum):
            return f"_rowsum({args[0]})"
        if isinstance(expr, tr):
            return f"_tr({args[0]})"
        if isinstance(expr, total):
            inner = expr.args[0]
            if isinstance(inner, sp.Pow) and inner.exp == 2 and not isinstance(inner.base, sp.Pow):
                return f"_sumsq({self._print(inner.base)})"
            return f"_total({args[0]})"
        if isinstance(expr, es):
            inputs, output = str(expr.args[0]).split("->")
            subscripts = ",".join("..." + s for s in inputs.split(",")) + "->..." + output
            call = f"_einsum({subscripts!r}, {', '.join(args[2:])})"
            return call + ("[..., None, None]" if not output else "")
        return super()._print_Function(expr)

    def _print_Symbol(self, expr):  # noqa: N802
        return expr.name


def result_hash(model: Model) -> str:
    """Hash of the canonical symbolic result (not of its printed form)."""
    derived = derive_quantities(model).as_dict()
    text = "\n".join(f"{name}={sp.srepr(derived[name])}" for name in QUANTITY_NAMES)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _matmul(sp.Function):  # noqa: N801
    """Binary matrix product as planned for printing (never flattened, unlike ``mm``)."""

    nargs = 2


class _gram(sp.Function):  # noqa: N801
    """``A @ A^T``, printed with a transposed view of ``A`` so BLAS can use syrk (half the flops)."""

    nargs = 1


# sizes used only to rank the association orders of a product chain: the
# order that is best for p >> k is also no worse at small p
_RANK_SIZES = {p: 1000, k: 10}


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
    view); a symmetric chain ``A A^T`` becomes a Gram product; otherwise the
    association order minimises the multiply count, counting sub-chains built
    earlier as free, so ``Q @ Q @ Q`` reuses ``Q @ Q``.
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
        if right == _flip(left):
            product = _gram(self.build(left))
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


def _print_sum(printer: _NumpyPrinter, terms: list[tuple[sp.Expr, sp.Expr]]) -> str:
    pieces = []
    for coefficient, monomial in terms:
        if coefficient == 0:
            continue
        negative = coefficient.could_extract_minus_sign()
        magnitude = -coefficient if negative else coefficient
        factor = printer.doprint(monomial)
        if monomial == 1:
            factor = printer.doprint(magnitude)
        elif magnitude != 1:
            scalar = printer.doprint(magnitude)
            # scalars first, so the matrix is multiplied once
            scalar = scalar if magnitude.is_Atom else f"({scalar})"
            factor = factor if monomial.is_Atom or monomial.is_Function else f"({factor})"
            factor = f"{scalar}*{factor}"
        pieces.append((" - " if negative else " + ") + factor)
    if not pieces:
        return "0"
    text = "".join(pieces)
    return text[3:] if text.startswith(" + ") else "-" + text[3:]


def _function_source(name: str, outputs: tuple[str, ...], doc: str, derived: dict) -> str:
    printer = _NumpyPrinter()
    planner = _ChainPlanner()
    collected = [_collect(derived[o]) for o in outputs]
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
    replacements, reduced = sp.cse(flat, symbols=sp.numbered_symbols("x"), order="canonical")
    used = set().union(*[e.free_symbols for e in reduced], *[e.free_symbols for _, e in replacements])
    lines = [f"def {name}(Q, R, T):", f'    """{doc}"""']
    if p in used:
        lines.append("    p = Q.shape[-1]")
    if k in used:
        lines.append("    k = T.shape[-1]")
    for symbol, expr in replacements:
        lines.append(f"    {symbol} = {printer.doprint(expr)}")
    tails = {
        "drift_Q": "Q.shape[-2:]",
        "diffusion_Q": "Q.shape[-2:]",
        "noise_Q": "Q.shape[-2:]",
        "drift_R": "R.shape[-2:]",
        "residual_risk": "(1, 1)",
    }
    position = 0
    for output, terms in zip(outputs, collected):
        pairs = [(reduced[position + 2 * i], reduced[position + 2 * i + 1]) for i in range(len(terms))]
        position += 2 * len(terms)
        lines.append(f"    {output} = _fill({_print_sum(printer, pairs)}, {tails[output]}, Q, R, T)")
    if outputs == ("residual_risk",):
        lines.append("    return residual_risk[..., 0, 0]")
    else:
        lines.append(f"    return {', '.join(outputs)}")
    return "\n".join(lines) + "\n"


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
    body_parts = [_RUNTIME.strip() + "\n"]
    for name, outputs, doc in FUNCTIONS:
        body_parts.append(_function_source(name, outputs, doc, derived))
    body_parts.append(_model_constants(model))
    body_parts.append(
        "MODEL_DESCRIPTION = " + repr(model.describe()) + "\n"
        f"INPUT_HASH = {model.codegen_hash()!r}\n"
        f"RESULT_HASH = {result_hash(model)!r}\n"
    )
    body = "\n\n".join(body_parts)
    res_hash = result_hash(model)
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


def read_header(path: Path) -> dict[str, str]:
    """The ``key: value`` fields of a generated file's header."""
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line == HEADER_MARK:
            break
        if line.startswith("# ") and ": " in line:
            key, value = line[2:].split(": ", 1)
            fields[key.strip()] = value.strip()
    return fields


def body_is_intact(path: Path) -> bool:
    """True when the code below the header matches the digest the header records."""
    text = path.read_text()
    header, _, rest = text.partition(HEADER_MARK + "\n")
    body = rest[1:] if rest.startswith("\n") else rest
    recorded = read_header(path).get("body-sha256")
    return recorded == hashlib.sha256(body.encode()).hexdigest()


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


__all__ = [
    "FUNCTIONS",
    "GeneratedModule",
    "body_is_intact",
    "generate_module",
    "read_header",
    "result_hash",
    "write_atomically",
    "Q",
    "R",
    "T",
]
