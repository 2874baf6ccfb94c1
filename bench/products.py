"""Scalar multiplications of the matrix products a generated function performs.

Counted from the plan the printer follows (:func:`derive.codegen.plan.plan_function`) and the
size thresholds of the helpers the printed code calls (:mod:`numerics.kernels.helpers`), so it
lives above both packages.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive.codegen.functions import FUNCTIONS
from derive.codegen.plan import (
    PlannedGram,
    PlannedMatmul,
    PlannedThinGram,
    plan_function,
    planned_shape,
)
from derive.model.model import Model, k, p
from derive.quantities.ode import derive_quantities
from numerics.kernels import helpers


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
    # read at call time: the thresholds are those of the helpers the printed code calls now
    GRAM_MIN, SYM_MIN, SYM_BLOCKS = helpers.GRAM_MIN, helpers.SYM_MIN, helpers.SYM_BLOCKS  # noqa: N806
    spec = next(f for f in FUNCTIONS if f.name == function)
    plan = plan_function(spec, derive_quantities(model).as_dict())
    sizes = {p: p_value, k: k_value}
    counts = []
    for node in plan.products:
        rows, cols = (int(sp.sympify(d).subs(sizes)) for d in planned_shape(node))
        inner = int(sp.sympify(planned_shape(node.args[0])[1]).subs(sizes))
        full, half = rows * inner * cols, rows * (rows + 1) * inner // 2
        if isinstance(node, PlannedMatmul):
            counts.append(ProductCount("gemm", rows, inner, cols, full, full))
        elif isinstance(node, PlannedGram) and rows >= GRAM_MIN:
            counts.append(ProductCount("syrk", rows, inner, cols, half, half))
        elif isinstance(node, (PlannedGram, PlannedThinGram)):
            counts.append(ProductCount("gram (plain)", rows, inner, cols, full, half))
        elif min(rows, inner) >= SYM_MIN:
            edges = [rows * i // SYM_BLOCKS for i in range(SYM_BLOCKS + 1)]
            blocked = sum((hi - lo) * inner * (rows - lo) for lo, hi in zip(edges[:-1], edges[1:]))
            counts.append(ProductCount("symmetric (blocked)", rows, inner, cols, blocked, half))
        else:
            counts.append(ProductCount("symmetric (plain)", rows, inner, cols, full, half))
    return counts


__all__ = ["ProductCount", "multiply_counts"]
