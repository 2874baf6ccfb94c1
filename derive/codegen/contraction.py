"""Planning the tensor networks that have no matrix-product form into BLAS products.

:mod:`derive.algebra.contract` finishes a network whose summed nodes all have
degree three or more with one ``es`` (einsum) node. With cubic and higher
activations the only such network of the overlap ODEs is the complete graph
on the free indices ``j, l`` and the summed ``m, n`` (the diffusion term's two
residuals):

    S[j, l] = A_jl w_j w'_l sum_{m, n} B_jm D_lm u_m C_jn E_ln v_n F_nm

NumPy evaluates that einsum pairwise without a matrix product (cost
``p**5``-like loops at p = 64). Written as matrix products it is one GEMM:
with ``Y[j, l, n] = C_jn E_ln`` (a stack of Hadamard products),
``G = Y @ F`` contracts ``n`` through BLAS and ``S = sum_m B_jm D_lm G[j, l, m]``
is one three-operand pass, cost ``p_j p_l p_n p_m`` in the product and
``p_j p_l (p_n + p_m)`` around it (:class:`GemmForm`). The vectors and the
``j, l`` edge are entry-wise factors outside the sum, ``u`` and ``v`` scale the
columns of ``B`` and ``C``.

Any other network that reaches the fallback (none does for the committed
models) is contracted along a pairwise path chosen here, once, at generation
time (greedy on the size of each intermediate, sizes ranked with ``p >> k``),
and printed as two-operand einsums (:class:`PairwiseContraction`).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations

import sympy as sp

from derive.algebra.matrix_expr import es, shape, tp
from derive.model.model import k, p

#: Sizes used only to rank contraction orders (p >> k) and to pick the index the GEMM contracts.
_RANK = {p: 1000, k: 10, sp.Integer(1): 1}


class _gemm_form(sp.Function):  # noqa: N801 - printed names are kept short on purpose
    """``sum_{m,n} B_jm D_lm C_jn E_ln F_nm`` from ``(B, D, C, E, F)``: (j, l), through one matrix product."""

    nargs = 5


class _pairwise(sp.Function):  # noqa: N801
    """One step of a planned contraction path: ``_pairwise(Symbol(subscripts), Symbol(shape code), A, B)``.

    ``subscripts`` is a two-operand einsum without ellipses (the printer adds them); the shape
    code is that of :class:`derive.algebra.matrix_expr.es` for a 2-d result, ``-`` for an
    intermediate of another rank.
    """

    nargs = 4


#: Public names of the planned contraction nodes, for the printer and the planner.
GemmForm = _gemm_form
PairwiseContraction = _pairwise
CONTRACTIONS = (_gemm_form, _pairwise)


def _letter_sizes(subscripts: list[str], operands: tuple[sp.Expr, ...]) -> dict[str, sp.Expr]:
    sizes: dict[str, sp.Expr] = {"z": sp.Integer(1)}
    for letters, operand in zip(subscripts, operands):
        for letter, size in zip(letters, shape(operand)):
            sizes.setdefault(letter, size)
    return sizes


def _oriented(expr: sp.Expr, letters: str, row: str) -> sp.Expr:
    """The edge ``expr`` (subscripts ``letters``) with ``row`` as its row index."""
    return expr if letters[0] == row else tp(expr)


def _complete_graph_parts(einsum: es, operands: list[sp.Expr]) -> tuple[sp.Expr, tuple[sp.Expr, ...]] | None:
    """``(outer, (B, D, C, E, F))`` when the network is the complete graph on two free and two summed
    nodes (plus edges between the free nodes and vectors on any node), else None."""
    inputs, output = str(einsum.args[0]).split("->")
    subscripts = inputs.split(",")
    summed = sorted(set("".join(subscripts)) - set(output) - {"z"})
    if len(output) != 2 or len(summed) != 2 or len(set(output)) != 2:
        return None
    sizes = _letter_sizes(subscripts, tuple(einsum.args[2:]))
    # the GEMM contracts the larger summed index; the three-operand pass runs over the smaller one
    small, large = sorted(summed, key=lambda letter: (_RANK[sizes[letter]], letter))
    row, col = output
    edges: dict[frozenset, tuple[sp.Expr, str]] = {}
    outer, vectors = sp.Integer(1), {letter: sp.Integer(1) for letter in (row, col, small, large)}
    for letters, operand in zip(subscripts, operands):
        if len(letters) != 2 or letters[0] == letters[1]:
            return None
        if "z" in letters:
            vectors[letters.replace("z", "")] *= operand if letters[1] == "z" else tp(operand)
        elif set(letters) == {row, col}:
            outer *= _oriented(operand, letters, row)
        elif frozenset(letters) in edges:
            return None
        else:
            edges[frozenset(letters)] = (operand, letters)
    wanted = [(row, small), (col, small), (row, large), (col, large), (large, small)]
    if set(edges) != {frozenset(pair) for pair in wanted}:
        return None
    B, D, C, E, F = (_oriented(*edges[frozenset(pair)], pair[0]) for pair in wanted)
    # u_m and v_n scale the columns of B and C; w_j and w'_l stay outside the sum
    B = B * tp(vectors[small])
    C = C * tp(vectors[large])
    outer = outer * vectors[row] * tp(vectors[col])
    return outer, (B, D, C, E, F)


def _greedy_path(subscripts: list[str], output: str, sizes: dict[str, sp.Expr]) -> list[tuple[int, int, str]]:
    """Pairwise steps ``(i, j, result letters)`` over a list that drops ``i``, ``j`` and appends the result."""
    remaining = list(subscripts)
    steps = []
    while len(remaining) > 1:
        options = []
        for i, j in combinations(range(len(remaining)), 2):
            others = "".join(s for index, s in enumerate(remaining) if index not in (i, j)) + output
            joined = "".join(dict.fromkeys(remaining[i] + remaining[j]))
            kept = output if len(remaining) == 2 else "".join(c for c in joined if c in others)
            cost = sp.Mul(*[sizes[c] for c in joined]).subs(_RANK)
            options.append((sp.Mul(*[sizes[c] for c in kept]).subs(_RANK), cost, i, j, kept))
        _, _, i, j, kept = min(options, key=lambda option: option[:4])
        steps.append((i, j, kept))
        remaining = [s for index, s in enumerate(remaining) if index not in (i, j)] + [kept]
    return steps


def _pairwise_path(einsum: es, operands: list[sp.Expr]) -> sp.Expr:
    inputs, output = str(einsum.args[0]).split("->")
    subscripts = inputs.split(",")
    sizes = _letter_sizes(subscripts, tuple(einsum.args[2:]))
    tensors = list(zip(subscripts, operands))
    for i, j, kept in _greedy_path(subscripts, output, sizes):
        (first, a), (second, b) = tensors[i], tensors[j]
        code = str(einsum.args[1]) if kept == output else "-"
        node = _pairwise(sp.Symbol(f"{first},{second}->{kept}"), sp.Symbol(code), a, b)
        tensors = [t for index, t in enumerate(tensors) if index not in (i, j)] + [(kept, node)]
    return tensors[0][1]


def plan_contraction(einsum: es, operands: list[sp.Expr]) -> sp.Expr:
    """The planned evaluation of one ``es`` node whose operands are already planned.

    Parameters
    ----------
    einsum
        The node as derived (its operands give the sizes of the indices).
    operands
        Its operands after planning, in the same order.

    Returns
    -------
    sympy.Expr
        A :class:`GemmForm` times entry-wise factors when the network is the complete graph of the
        diffusion term, else a path of :class:`PairwiseContraction` steps; same shape as ``einsum``.
    """
    if len(operands) != len(einsum.args) - 2:
        raise ValueError(f"plan_contraction: {len(operands)} operands for an einsum of {len(einsum.args) - 2}")
    parts = _complete_graph_parts(einsum, operands)
    if parts is None:
        return _pairwise_path(einsum, operands)
    outer, factors = parts
    return outer * _gemm_form(*factors)


def contraction_shape(node: sp.Expr, row_count: Callable[[sp.Expr], sp.Expr]) -> tuple[sp.Expr, sp.Expr]:
    """Shape ``(rows, columns)`` (from {p, k, 1}) of a planned contraction node.

    ``row_count(expr)`` gives the rows of a planned operand. Raises ``TypeError`` for an
    intermediate step of a pairwise path (not a matrix).
    """
    if isinstance(node, _gemm_form):
        return (row_count(node.args[0]), row_count(node.args[1]))
    code = str(node.args[1])
    if code == "-":
        raise TypeError(f"an intermediate of a contraction path is not a matrix: {node.args[0]}")
    sizes = {"p": p, "k": k, "1": sp.Integer(1)}
    return (sizes[code[0]], sizes[code[1]])
