"""Print the network tables of :mod:`derive.quantities.network_tables` as a generated NumPy module.

The module exposes the same functions as the printed modules of :mod:`derive.quantities.increments`,
``first_order_moments(Q, R, T, delta) -> (LL, LN, NN)`` and
``second_order_moments(Q, R, T, delta) -> (LE, EN, EE)``, evaluated by the hand-written
contraction of :mod:`numerics.kernels.network_moments` from the printed tables: per average its
free vertices, free symmetries and noise parts, per part its groups of networks (one line
each: the support pairs as a string of vertex digits, ``"0415"`` for the pairs (0, 4) and
(1, 5), then one ``(weight, "edge multiplicities as digits")`` per network), and the derivative
moments of the vertex polynomials as floats. Readouts are printed as expressions in
``p, k``, evaluated at call time.
"""

from __future__ import annotations

import sympy as sp

from derive.codegen.artefacts import generated_module_text
from derive.model.model import Model, k, p
from derive.quantities.network_tables import (
    INCREMENTS,
    LAYOUTS,
    READOUT,
    derivative_moment_table,
    free_symmetries,
    network_result_hash,
    network_tables,
    vertex_polynomials,
)

#: Module the generated code imports its evaluator from.
EVALUATOR_MODULE = "numerics.kernels.network_moments"


def _float_text(value: sp.Expr) -> str:
    number = float(sp.N(value, 30))
    return repr(number)


def _readout_source(model: Model) -> str:
    from derive.codegen.printer import NumpyPrinter

    printer = NumpyPrinter()
    a = printer.doprint(model.student_readout)
    b = printer.doprint(model.teacher_readout)
    lines = ["def readouts(p, k):", '    """Second-layer weights (a, b) at the widths p, k."""']
    if p not in (model.student_readout.free_symbols | model.teacher_readout.free_symbols):
        lines.append("    del p")
    if k not in (model.student_readout.free_symbols | model.teacher_readout.free_symbols):
        lines.append("    del k")
    lines.append(f"    return float({a}), float({b})")
    return "\n".join(lines) + "\n"


def _moments_source(model: Model, layout: str) -> str:
    lines = ["DERIVATIVE_MOMENTS = {"]
    for name, polynomial in vertex_polynomials(model, layout).items():
        rows = derivative_moment_table(polynomial)
        printed = ", ".join("(" + "".join(_float_text(c) + ", " for c in row).rstrip(" ") + ")" for row in rows)
        lines.append(f"    {name!r}: ({printed},),")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _tables_source(model: Model, layout: str) -> str:
    lines = ["TABLES = {"]
    for name, parts in network_tables(model, layout).items():
        free, _ = LAYOUTS[layout][name]
        lines.append(f"    {name!r}: (")
        lines.append(f"        {free!r},")
        lines.append(f"        {free_symmetries(free)!r},")
        lines.append("        (")
        for part in parts:
            lines.append(f"            ({part.coefficient}, {part.delta_power}, {part.residuals}, (")
            for group in part.groups:
                # one digit per vertex and per multiplicity: at most 8 vertices, multiplicities <= degree <= 6
                digits = [*(v for pair in group.pairs for v in pair), *(m for _, ms in group.networks for m in ms)]
                if max(digits, default=0) > 9:
                    raise ValueError(f"{name}: a vertex number or edge multiplicity above 9 cannot be printed")
                pairs = "".join(f"{a}{b}" for a, b in group.pairs)
                networks = ", ".join(f"({count}, {''.join(map(str, m))!r})" for count, m in group.networks)
                lines.append(f"                ({pairs!r}, ({networks},)),")
            lines.append("            )),")
        lines.append("        ),")
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


_FUNCTIONS = '''
_MOMENTS = NetworkMoments(TABLES, DERIVATIVE_MOMENTS, readouts)


def first_order_moments(Q, R, T, delta):
    """<E_j lambda_l E_i lambda_h>, <E_j lambda_l E_i nu_r>, <E_j nu_q E_i nu_r>:
    (LL, LN, NN), shapes (..., p, p, p, p), (..., p, p, p, k), (..., p, k, p, k)."""
    return _MOMENTS.evaluate(("LL", "LN", "NN"), Q, R, T, delta)


def second_order_moments(Q, R, T, delta):
    """<E_j lambda_l E_i E_h>, <E_j E_l E_i nu_r>, <E_j E_l E_i E_h>:
    (LE, EN, EE), shapes (..., p, p, p, p), (..., p, p, p, k), (..., p, p, p, p)."""
    return _MOMENTS.evaluate(("LE", "EN", "EE"), Q, R, T, delta)
'''

_READOUT_FUNCTIONS = '''
_MOMENTS = NetworkMoments(TABLES, DERIVATIVE_MOMENTS, readouts)


def readout_moments(Q, R, T, delta, a=None, b=None):
    """<sigma_j E_m lambda_n>, <sigma_j E_m nu_r>, <sigma_j E_m E_n>, <sigma_j sigma_m (y - f)**2>:
    (AL, AN, AE, AA), shapes (..., p, p, p, p), (..., p, p, k, p), (..., p, p, p, p), (..., p, p, p, p)
    (the padded last axes are constant)."""
    return _MOMENTS.evaluate(("AL", "AN", "AE", "AA"), Q, R, T, delta, a, b)
'''


def generate_network_module(model: Model, layout: str = INCREMENTS) -> str:
    """Source of the generated network-table module of ``model`` (header with hashes).

    ``layout`` is ``"increments"`` (the covariance of ``(q, r)``: ``first_order_moments``,
    ``second_order_moments``) or ``"readout"`` (a trained readout's blocks: ``readout_moments``).
    """
    res_hash = network_result_hash(model, layout)
    body = "\n\n".join(
        [
            "import math  # noqa: F401 - used by some readouts, e.g. 1/sqrt(p)\n\n"
            "import numpy as np  # noqa: F401\n\n"
            f"from {EVALUATOR_MODULE} import NetworkMoments\n",
            _readout_source(model),
            _moments_source(model, layout),
            _tables_source(model, layout),
            (_READOUT_FUNCTIONS if layout == READOUT else _FUNCTIONS).strip() + "\n",
            f"INPUT_HASH = {model.codegen_hash()!r}\nRESULT_HASH = {res_hash!r}\n",
        ]
    )
    text = generated_module_text(
        body,
        about=[
            "# Second moments of one SGD step's overlap increments as tensor-network tables,"
            + (" (a trained readout's blocks)" if layout == READOUT else ""),
            "# generated by derive/codegen/network_module.py for:",
        ],
        model=model,
        input_hash=model.codegen_hash(),
        result_hash=res_hash,
        docstring='Generated network tables for the covariance of the overlap increments (see header).',
    )
    return text


__all__ = ["EVALUATOR_MODULE", "generate_network_module"]
