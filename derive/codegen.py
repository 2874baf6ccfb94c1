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

from .matrix_expr import Q, R, T, dg, es, mm, rowsum, total, tp, tr
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
    return np.trace(a, axis1=-2, axis2=-1)[..., None, None]


def _total(a):
    return a.sum(axis=(-2, -1), keepdims=True)


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
'''


class _NumpyPrinter(PythonCodePrinter):
    def _print_Function(self, expr):  # noqa: N802 - sympy printer protocol
        args = [self._print(a) for a in expr.args]
        if isinstance(expr, mm):
            return "(" + " @ ".join(args) + ")"
        if isinstance(expr, tp):
            return f"_tp({args[0]})"
        if isinstance(expr, dg):
            return f"_dg({args[0]})"
        if isinstance(expr, rowsum):
            return f"_rowsum({args[0]})"
        if isinstance(expr, tr):
            return f"_tr({args[0]})"
        if isinstance(expr, total):
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


def _function_source(name: str, outputs: tuple[str, ...], doc: str, derived: dict) -> str:
    printer = _NumpyPrinter()
    exprs = [derived[o] for o in outputs]
    replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("x"), order="canonical")
    used = set().union(*[e.free_symbols for e in reduced], *[e.free_symbols for _, e in replacements])
    lines = [f"def {name}(Q, R, T):", f'    """{doc}"""']
    if p in used:
        lines.append("    p = Q.shape[-1]")
    if k in used:
        lines.append("    k = T.shape[-1]")
    lines.append("    batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])")
    for symbol, expr in replacements:
        lines.append(f"    {symbol} = {printer.doprint(expr)}")
    shapes = {
        "drift_Q": "batch + Q.shape[-2:]",
        "diffusion_Q": "batch + Q.shape[-2:]",
        "noise_Q": "batch + Q.shape[-2:]",
        "drift_R": "batch + R.shape[-2:]",
        "residual_risk": "batch + (1, 1)",
    }
    for output, expr in zip(outputs, reduced):
        lines.append(f"    {output} = _full({printer.doprint(expr)}, {shapes[output]})")
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
