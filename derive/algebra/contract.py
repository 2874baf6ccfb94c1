"""Turn a tensor network of overlap entries into an index-free matrix expression.

Summed indices are eliminated one at a time by rules whose cost is at most a
matrix product:

* a self-loop ``M[a, a]`` becomes the vector ``dg(M)`` attached to node ``a``;
* parallel edges between two nodes merge into one Hadamard product;
* a summed node with no edges becomes a scalar (``total`` of its vector, or
  the width p or k);
* a summed leaf ``sum_m M[b, m] w_m`` becomes the vector ``M @ w`` on ``b``;
* a summed node of degree two ``sum_m A[a, m] w_m B[m, b]`` becomes the edge
  ``(A * w^T) @ B``.

Networks that still have summed nodes of degree three or more (they appear
with cubic and higher activations) are finished by one ``einsum`` over what is
left; its contraction path is chosen at run time once per shape.
"""

from __future__ import annotations

import sympy as sp

from derive.algebra.matrix_expr import ONE, R, es, mm, rowsum, total, transpose
from derive.algebra.matrix_expr import Q as Q_SYMBOL
from derive.algebra.matrix_expr import T as T_SYMBOL
from derive.algebra.matrix_expr import dg as diagonal
from derive.gauss.indexed import STUDENT, Network
from derive.model.model import k, p

_LEAF = {"Q": Q_SYMBOL, "R": R, "T": T_SYMBOL}


class Graph:
    def __init__(self, network: Network) -> None:
        self.kind = {name: kind for kind, name in network.summed + network.free}
        self.summed = [name for _, name in network.summed]
        self.free = [name for _, name in network.free]
        # each edge: [expression, row node, column node]
        self.edges: list[list] = [[_LEAF[m], a, b] for m, a, b in network.edges]
        self.weights: dict[str, sp.Expr] = {}
        self.scalar: sp.Expr = ONE

    def size(self, node: str) -> sp.Expr:
        return p if self.kind[node] == STUDENT else k

    def attach(self, node: str, vector: sp.Expr) -> None:
        self.weights[node] = self.weights[node] * vector if node in self.weights else vector

    def incident(self, node: str) -> list[list]:
        return [e for e in self.edges if node in (e[1], e[2])]

    @staticmethod
    def oriented(edge: list, row: str) -> sp.Expr:
        """The edge's matrix with ``row`` as its row index."""
        expr, a, _ = edge
        return expr if a == row else transpose(expr)

    def remove_loops(self) -> bool:
        changed = False
        for edge in [e for e in self.edges if e[1] == e[2]]:
            self.edges.remove(edge)
            self.attach(edge[1], diagonal(edge[0]))
            changed = True
        return changed

    def merge_parallel(self) -> bool:
        ends = [(a, b) if a <= b else (b, a) for _, a, b in self.edges]
        if len(set(ends)) == len(ends):  # the common case, checked without grouping
            return False
        groups: dict[tuple[str, str], list[list]] = {}
        for edge, pair in zip(self.edges, ends):
            groups.setdefault(pair, []).append(edge)
        changed = False
        for (a, b), group in groups.items():
            if len(group) > 1:
                product = sp.Mul(*[self.oriented(e, a) for e in group])
                for e in group:
                    self.edges.remove(e)
                self.edges.append([product, a, b])
                changed = True
        return changed

    def eliminate_one(self) -> bool:
        for node in sorted(self.summed):
            incident = self.incident(node)
            weight = self.weights.get(node)
            if not incident:
                self.scalar *= total(weight) if weight is not None else self.size(node)
            elif len(incident) == 1:
                edge = incident[0]
                other = edge[2] if edge[1] == node else edge[1]
                matrix = self.oriented(edge, other)
                self.edges.remove(edge)
                self.attach(other, mm(matrix, weight) if weight is not None else rowsum(matrix))
            elif len(incident) == 2:
                first, second = incident
                a = first[2] if first[1] == node else first[1]
                b = second[2] if second[1] == node else second[1]
                left = self.oriented(first, a)
                if weight is not None:
                    left = left * transpose(weight)
                right = self.oriented(second, node)
                for e in incident:
                    self.edges.remove(e)
                self.edges.append([mm(left, right), a, b])
            else:
                continue
            self.summed.remove(node)
            self.weights.pop(node, None)
            return True
        return False

    def reduce(self) -> None:
        while True:
            if self.remove_loops() or self.merge_parallel():
                continue
            if not self.eliminate_one():
                return

    def einsum_rest(self) -> None:
        """Contract all that is left (summed nodes of degree >= 3) in one einsum."""
        operands: list[sp.Expr] = []
        subscripts: list[str] = []
        for expr, a, b in self.edges:
            operands.append(expr)
            subscripts.append(a + b)
        for node, vector in sorted(self.weights.items()):
            operands.append(vector)
            subscripts.append(node + "z")
        output = "".join(self.free)
        code = "".join("p" if self.kind[f] == STUDENT else "k" for f in self.free).ljust(2, "1")
        self.scalar *= es(sp.Symbol(",".join(subscripts) + "->" + output), sp.Symbol(code), *operands)
        self.edges, self.weights, self.summed = [], {}, []

    def result(self) -> sp.Expr:
        return sp.Mul(*self.result_factors())

    def result_factors(self) -> list[sp.Expr]:
        """The factors whose product is the network's value (multiplied once, by the caller)."""
        if self.summed:
            self.einsum_rest()
            return [self.scalar]
        factors = [self.scalar]
        if len(self.free) == 2:
            row, col = self.free
            factors.extend(self.oriented(edge, row) for edge in self.edges)
            if row in self.weights:
                factors.append(self.weights[row])
            if col in self.weights:
                factors.append(transpose(self.weights[col]))
            return factors
        if not self.free:
            return factors
        raise NotImplementedError("networks with one or more than two free indices")


def _network_factors(network: Network) -> list[sp.Expr]:
    if len(network.free) not in (0, 2):
        raise NotImplementedError("only scalar and matrix-valued networks are supported")
    graph = Graph(network)
    graph.reduce()
    return graph.result_factors()


def network_to_expression(network: Network) -> sp.Expr:
    """Index-free matrix expression of one network (shape set by its free indices)."""
    return sp.Mul(*_network_factors(network))


def networks_to_expression(networks: dict[Network, sp.Expr]) -> sp.Expr:
    """Sum of ``coefficient * network`` over a collected average."""
    # each term is multiplied out once: a product built factor by factor re-sorts its factors every time
    return sp.Add(*[sp.Mul(c, *_network_factors(n)) for n, c in networks.items()])
