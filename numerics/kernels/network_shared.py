"""Evaluate a :class:`numerics.kernels.network_plan.SharedPlan`: shared nodes once, each split by BLAS.

Per call: every node of the plan is evaluated once, in order (one ``einsum`` summing its
index out, or pairwise matrix products for large operands, :mod:`numerics.kernels.pairwise`);
then per average and split ``(H, S, S')`` the distinct products ``X_x`` (axes ``H + S``) and
``Y_y`` (axes ``H + S'``) are stacked and summed as

    out[h, s, s'] = sum_{x, y} M[x, y] X_x[h, s] Y_y[h, s'],      M = sum_t Delta**t M_t,

two batched matrix products (``M`` applied to the smaller side first); an open residual index
``z`` (:data:`numerics.kernels.network_plan.OPEN`) joins the inner dimension of the second
one. The batch axes are flattened to one while evaluating.
"""

from __future__ import annotations

from math import prod

import numpy as np

from numerics.kernels.network_operands import UNIT, NetworkOperands
from numerics.kernels.network_plan import OPEN, SUMMED, Node, SharedPlan, SplitTerms
from numerics.kernels.pairwise import fold_plan, run_plan

#: Letters of the output axes 0-3 and the open residual index (position 4).
OUTPUT_LETTERS = "jlihz"
#: Letters of a node's axes and of its summed index.
NODE_LETTERS, NODE_SUMMED = "abcdefg", "z"
#: Nodes with more operands than two and more multiply-adds than this (batch included) are
#: contracted pairwise by matrix products; below, one ``einsum`` (fewer calls).
NODE_MATMUL_THRESHOLD = 200_000


class SharedEvaluator:
    """Evaluates a shared plan's averages (before the free symmetrisation), flat batch axis first.

    Parameters
    ----------
    plan : SharedPlan
    """

    def __init__(self, plan: SharedPlan) -> None:
        self.plan = plan
        self._node_subscripts = [_node_subscripts(node) for node in plan.nodes]
        self._node_folds: dict[tuple[int, int, int], list] = {}  # (node, p, k) -> pairwise plan
        self._weights: dict[tuple[int, float], list[np.ndarray]] = {}  # (id of split terms, Delta) -> M

    def evaluate(self, names, operands: NetworkOperands, delta: float) -> dict[str, np.ndarray]:
        """``{name: sum of the orbit representatives}``, each of shape (B, sizes of the output axes).

        ``operands`` hold a flat batch: ``C`` of shape (B, p + k, p + k).
        """
        values = self._evaluate_nodes(operands)
        out = {}
        for name in names:
            average = self.plan.averages[name]
            sizes = tuple(operands.sizes[kind] for kind in average.kinds)
            batch = operands.C.shape[0]
            total = np.zeros((batch,) + sizes)
            for terms in average.splits:
                total += self._split_sum(terms, average.kinds, operands, values, delta)
            out[name] = total
        return out

    def _evaluate_nodes(self, operands: NetworkOperands) -> list[np.ndarray]:
        values: list[np.ndarray] = []
        p, k = operands.p, operands.k
        for index, node in enumerate(self.plan.nodes):
            arrays = [_operand_array(key, operands, values) for key, _ in node.operands]
            subscripts, terms, output = self._node_subscripts[index]
            work = operands.C.shape[0] * (p + k) * prod(operands.sizes[kind] for kind in node.kinds)
            if len(arrays) > 2 and work * len(arrays) > NODE_MATMUL_THRESHOLD:
                folds = self._node_folds.get((index, p, k))
                if folds is None:
                    sizes = {NODE_SUMMED: p + k, **{NODE_LETTERS[n]: operands.sizes[kind]
                                                    for n, kind in enumerate(node.kinds)}}
                    folds = self._node_folds[(index, p, k)] = fold_plan(terms, output, sizes)
                values.append(run_plan(arrays, terms, folds, output, 1))
            else:
                values.append(np.einsum(subscripts, *arrays))
        return values

    def _split_sum(self, terms: SplitTerms, kinds: tuple[str, ...], operands: NetworkOperands,
                   values: list[np.ndarray], delta: float) -> np.ndarray:
        """``sum_{x, y} M_xy X_x Y_y`` over one split, axes in output order: shape (B, output sizes)."""
        shared, left, right = terms.split
        size_of = {axis: operands.sizes[kind] for axis, kind in enumerate(kinds)}
        size_of[OPEN] = operands.sizes[UNIT]
        batch = operands.C.shape[0]
        inner = (OPEN,) if terms.open else ()
        X = _stack(terms.x_keys, shared, left + inner, size_of, operands, values, batch)
        Y = _stack(terms.y_keys, shared, right + inner, size_of, operands, values, batch)
        M = self._coupling(terms, delta)
        h = prod(size_of[a] for a in shared)
        s, t, z = (prod(size_of[a] for a in axes) for axes in (left, right, inner))
        n_x, n_y = len(terms.x_keys), len(terms.y_keys)
        X = X.reshape(batch, h, n_x, s, z)
        Y = Y.reshape(batch, h, n_y, t, z)
        if t <= s:  # M on the smaller side first
            Y = (M @ Y.reshape(batch, h, n_y, t * z)).reshape(batch, h, n_x, t, z)
        else:
            X = (M.T @ X.reshape(batch, h, n_x, s * z)).reshape(batch, h, n_y, s, z)
        left_matrix = np.moveaxis(X, 2, 3).reshape(batch, h, s, -1)  # (B, h, s, n * z)
        right_matrix = np.swapaxes(np.moveaxis(Y, 2, 3).reshape(batch, h, t, -1), -1, -2)
        out = left_matrix @ right_matrix  # (B, h, s, t)
        axes = shared + left + right
        out = out.reshape((batch,) + tuple(size_of[a] for a in axes))
        return np.transpose(out, (0,) + tuple(1 + axes.index(a) for a in range(len(kinds))))

    def _coupling(self, terms: SplitTerms, delta: float) -> np.ndarray:
        """``M = sum_t Delta**t M_t`` (n_x, n_y), cached per split and Delta."""
        key = (id(terms), float(delta))
        M = self._weights.get(key)
        if M is None:
            M = np.zeros((len(terms.x_keys), len(terms.y_keys)))
            for (x, y), weights in terms.entries.items():
                M[x, y] = sum(weight * delta**power for power, weight in weights.items())
            if len(self._weights) > 256:
                self._weights.clear()
            self._weights[key] = M
        return M


def _operand_array(key: tuple, operands: NetworkOperands, values: list[np.ndarray]) -> np.ndarray:
    if key[0] == "E":
        return operands.edge(key[2][0], key[2][1], key[1])
    if key[0] == "V":
        return operands.vector(key[1], key[2], key[3])
    return values[key[1]]


def _node_subscripts(node: Node) -> tuple[str, list[str], str]:
    """The node's einsum subscripts (batch axes ``...``), its operands' letters and its output letters."""
    terms = ["".join(NODE_SUMMED if p == SUMMED else NODE_LETTERS[p] for p in positions)
             for _, positions in node.operands]
    output = NODE_LETTERS[: len(node.kinds)]
    return ",".join("..." + t for t in terms) + "->..." + output, terms, output


def _stack(keys: list, shared: tuple, axes: tuple, size_of: dict, operands: NetworkOperands,
           values: list[np.ndarray], batch: int) -> np.ndarray:
    """The products of ``keys`` on the axes ``shared + axes``: shape (B, shared sizes, len(keys), axes sizes)."""
    order = shared + axes
    letters = "".join(OUTPUT_LETTERS[a] for a in order)
    stack = np.empty((batch,) + tuple(size_of[a] for a in shared) + (len(keys),) + tuple(size_of[a] for a in axes))
    lead = (slice(None),) * (1 + len(shared))
    for index, factors in enumerate(keys):
        target = stack[lead + (index,)]
        if not factors:
            target[...] = 1.0
            continue
        arrays = [_operand_array(key, operands, values) for key, _ in factors]
        terms = ["".join(OUTPUT_LETTERS[p] for p in positions) for _, positions in factors]
        covered = set("".join(terms))
        # axes no factor touches are constant: a vector of ones keeps them in the einsum
        for a in order:
            if OUTPUT_LETTERS[a] not in covered:
                arrays.append(np.ones(size_of[a]))
                terms.append(OUTPUT_LETTERS[a])
        subscripts = ",".join(("..." if np.ndim(array) > len(term) else "") + term
                              for array, term in zip(arrays, terms)) + "->..." + letters
        np.einsum(subscripts, *arrays, out=target)
    return stack


__all__ = ["NODE_MATMUL_THRESHOLD", "SharedEvaluator"]
