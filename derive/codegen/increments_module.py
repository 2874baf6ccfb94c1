"""Print the increment moments of :mod:`derive.quantities.increments` as a generated NumPy module.

Up to degree :data:`~derive.quantities.increments.MAX_PRINTED_DEGREE` the moments are printed
einsums after one joint ``sympy.cse``; above it the network tables of
:mod:`derive.codegen.network_module`. Both expose ``first_order_moments`` and
``second_order_moments``.
"""

from __future__ import annotations

import sympy as sp

from derive.codegen.artefacts import generated_module_text
from derive.codegen.network_module import generate_network_module
from derive.codegen.printer import NumpyPrinter, assignment, runtime_import
from derive.gauss.indexed import STUDENT
from derive.model.model import Model
from derive.quantities.increments import (
    FIRST_ORDER_NAMES,
    FREE,
    SECOND_ORDER_NAMES,
    Term,
    check_fluctuations_supported,
    derive_moments,
    fluctuation_result_hash,
    uses_network_tables,
)


def _size_code(kind: str) -> str:
    return "p" if kind == STUDENT else "k"



def _function_source(model: Model, names: tuple[str, ...], function: str, doc: str) -> str:
    printer = NumpyPrinter()
    moments = derive_moments(model)
    # one joint cse over every operand and coefficient of the function
    flat: list[sp.Expr] = []
    layout: list[tuple[str, Term, int]] = []
    for name in names:
        for term, coefficient in moments[name].items():
            layout.append((name, term, len(flat)))
            flat.append(coefficient)
            flat.extend(term.operands)
    replacements, reduced = sp.cse(flat, symbols=sp.numbered_symbols("x"), order="canonical")

    lines = [f"def {function}(Q, R, T, delta):", f'    """{doc}"""']
    # the widths size every output (``_full(..., batch + (p, ...))``), whatever the coefficients use
    lines.append("    p = Q.shape[-1]")
    lines.append("    k = T.shape[-1]")
    lines.append("    batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])")
    lines.append("    ones_p, ones_k = np.ones((p, 1)), np.ones((k, 1))" if any(t.ones for _, t, _ in layout) else "")
    for symbol, expr in replacements:
        lines.append(f"    {symbol} = {printer.doprint(expr)}")
    for name in names:
        pieces = []
        for term_name, term, position in layout:
            if term_name != name:
                continue
            coefficient = printer.doprint(reduced[position])
            operands = [printer.doprint(e) for e in reduced[position + 1 : position + 1 + len(term.operands)]]
            subscripts = list(term.subscripts)
            for free in term.ones:
                kind = dict((n, kd) for kd, n in FREE[name])[free]
                subscripts.append(free + "z")
                operands.append(f"ones_{_size_code(kind)}")
            spec = ",".join("..." + s for s in subscripts) + "->..." + term.output
            pieces.append(f" + _c4({coefficient})*_einsum({spec!r}, {', '.join(operands)})")
        sizes = ", ".join(_size_code(kind) for kind, _ in FREE[name])
        if not pieces:
            lines.append(f"    {name} = np.zeros(batch + ({sizes},))")
            continue
        lines.extend("    " + statement for statement in assignment(name, pieces))
        # a term constant along the batch axes still comes out with the full shape
        lines.append(f"    {name} = _full({name}, batch + ({sizes},))")
    lines = [line for line in lines if line]
    lines.append(f"    return {', '.join(names)}")
    return "\n".join(lines) + "\n"



_C4 = '''
def _c4(c):
    # a scalar coefficient, batched as (..., 1, 1), broadcast against (..., a, b, c, d)
    c = np.asarray(c)
    return c[..., None, None] if c.ndim >= 2 else c
'''



def generate_fluctuation_module(model: Model) -> str:
    """Source of the generated increment-moment module of ``model`` (header with hashes).

    Printed einsums up to degree :data:`MAX_PRINTED_DEGREE`, network tables above
    (:mod:`derive.codegen.network_module`); both expose ``first_order_moments`` and
    ``second_order_moments``.
    """
    check_fluctuations_supported(model)
    if uses_network_tables(model):
        return generate_network_module(model)
    res_hash = fluctuation_result_hash(model)
    body = "\n\n".join(
        [
            runtime_import(),
            _C4.strip() + "\n",
            _function_source(
                model,
                FIRST_ORDER_NAMES,
                "first_order_moments",
                "<E_j lambda_l E_i lambda_h>, <E_j lambda_l E_i nu_r>, <E_j nu_q E_i nu_r>:\n"
                "    (LL, LN, NN), shapes (..., p, p, p, p), (..., p, p, p, k), (..., p, k, p, k).",
            ),
            _function_source(
                model,
                SECOND_ORDER_NAMES,
                "second_order_moments",
                "<E_j lambda_l E_i E_h>, <E_j E_l E_i nu_r>, <E_j E_l E_i E_h>:\n"
                "    (LE, EN, EE), shapes (..., p, p, p, p), (..., p, p, p, k), (..., p, p, p, p).",
            ),
            f"INPUT_HASH = {model.codegen_hash()!r}\nRESULT_HASH = {res_hash!r}\n",
        ]
    )
    text = generated_module_text(
        body,
        about=["# Second moments of one SGD step's overlap increments, generated by derive/quantities/increments.py for:"],  # noqa: E501 - the printed header line
        model=model,
        input_hash=model.codegen_hash(),
        result_hash=res_hash,
        docstring='Generated Gaussian averages for the covariance of the overlap increments (see header).',
    )
    return text


__all__ = ["generate_fluctuation_module"]
