"""Multigraphs up to permutations of interchangeable vertices, with the sizes of their orbits.

The vertices are ``free`` distinguishable ones (numbered first) and ``residuals``
interchangeable ones. :func:`residual_orbits` lists one canonical edge list per orbit of
the symmetric group of the interchangeable vertices, with the number of labelled
multigraphs in the orbit, for the symmetric zero-diagonal multiplicity matrices whose row
sums (vertex degrees) lie in given sets (the multigraphs of :mod:`derive.gauss.vertex`).

Enumeration is orderly in the edges to the free vertices: a labelled multigraph is only
generated when the *profiles* of the interchangeable vertices (their multiplicities to
the free vertices) are in non-increasing lexicographic order. Every orbit has such a
member (sort the interchangeable vertices by profile), so nothing is lost, and up to a
factor ``residuals!`` fewer labelled multigraphs are visited; the profile order is checked
after each free vertex's row, so whole subtrees are pruned. Generated members of one orbit
are identified by :func:`canonical` and the orbit size is ``residuals! / |stabiliser|``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from math import factorial

from derive.gauss.wick import compositions

Edges = tuple[tuple[int, int, int], ...]


def canonical(graph: dict[tuple[int, int], int], free: int, residuals: int) -> tuple[Edges, int]:
    """The edge list minimal over permutations of the interchangeable vertices, and its stabiliser order.

    Parameters
    ----------
    graph
        ``{(a, b): multiplicity}`` with ``a < b``.
    free, residuals
        Vertices ``0 .. free - 1`` are distinguishable, ``free .. free + residuals - 1``
        interchangeable.

    Returns
    -------
    edges, stabiliser
        Sorted ``(a, b, multiplicity)`` triples, and the number of permutations of the
        interchangeable vertices that leave the multigraph unchanged.

    Notes
    -----
    Interchangeable vertices are first ordered by an invariant (profile to the free
    vertices, degree); only vertices with equal invariants are permuted. A permutation
    mapping the multigraph to its canonical form keeps the invariants in order, so the
    permutations reaching the minimum are exactly one coset of the stabiliser.
    """
    n = free + residuals
    # invariants straight from the edge list (this runs once per labelled multigraph: ~10^6
    # times for the quartic tables, so no n x n matrix and no dictionaries per permutation)
    profiles = {r: [0] * free for r in range(free, n)}
    degrees = dict.fromkeys(range(free, n), 0)
    edges = list(graph.items())
    for (a, b), m in edges:
        if b >= free:
            degrees[b] += m
            if a < free:
                profiles[b][a] = m
            else:
                degrees[a] += m
    invariant = {r: (tuple(profiles[r]), degrees[r]) for r in range(free, n)}
    ordered = sorted(range(free, n), key=invariant.__getitem__)
    blocks = [list(group) for _, group in itertools.groupby(ordered, key=invariant.__getitem__)]
    position = list(range(n))
    best, reached = None, 0
    for choice in itertools.product(*(itertools.permutations(block) for block in blocks)):
        index = free
        for block in choice:
            for vertex in block:
                position[vertex] = index
                index += 1
        key = []
        for (a, b), m in edges:
            first, second = position[a], position[b]
            key.append((first, second, m) if first < second else (second, first, m))
        key.sort()
        key = tuple(key)
        if best is None or key < best:
            best, reached = key, 1
        elif key == best:
            reached += 1
    return best, reached


def orderly_multigraphs(allowed: Sequence[frozenset[int]], free: int) -> Iterator[dict[tuple[int, int], int]]:
    """Multigraphs with vertex degrees in ``allowed``, interchangeable profiles non-increasing."""
    n = len(allowed)
    top = [max(a, default=0) for a in allowed]
    profiles: list[list[int]] = [[] for _ in range(n)]

    def ordered_profiles(parts: dict[int, int]) -> bool:
        # the interchangeable vertices' profiles, extended by this free row, stay non-increasing
        previous = None
        for r in range(free, n):
            current = (*profiles[r], parts.get(r, 0))
            if previous is not None and current > previous:
                return False
            previous = current
        return True

    def recurse(a: int, degrees: list[int], chosen: dict[tuple[int, int], int]):
        if a == n:
            yield dict(chosen)
            return
        later = list(range(a + 1, n))
        for total in sorted(allowed[a]):
            rest = total - degrees[a]
            if rest < 0:
                continue
            capacities = [top[b] - degrees[b] for b in later]
            if rest > sum(capacities):
                continue
            for parts in compositions(rest, capacities):
                if a < free and not ordered_profiles(dict(zip(later, parts))):
                    continue
                for b, m in zip(later, parts):
                    if m:
                        chosen[(a, b)] = m
                        degrees[b] += m
                if a < free:
                    for r in range(free, n):
                        profiles[r].append(chosen.get((a, r), 0))
                degrees[a] += rest
                yield from recurse(a + 1, degrees, chosen)
                degrees[a] -= rest
                if a < free:
                    for r in range(free, n):
                        profiles[r].pop()
                for b, m in zip(later, parts):
                    if m:
                        del chosen[(a, b)]
                        degrees[b] -= m

    yield from recurse(0, [0] * n, {})


def residual_orbits(
    allowed_free: Sequence[frozenset[int]], allowed_residual: frozenset[int], residuals: int
) -> dict[Edges, int]:
    """``{canonical edge list: number of labelled multigraphs in the orbit}``.

    Parameters
    ----------
    allowed_free
        Allowed degrees of each distinguishable vertex.
    allowed_residual
        Allowed degrees of every interchangeable vertex.
    residuals
        Number of interchangeable vertices.
    """
    free = len(allowed_free)
    orbits: dict[Edges, int] = {}
    for graph in orderly_multigraphs(list(allowed_free) + [allowed_residual] * residuals, free):
        key, stabiliser = canonical(graph, free, residuals)
        if key not in orbits:
            orbits[key] = factorial(residuals) // stabiliser
    return orbits


__all__ = ["Edges", "canonical", "residual_orbits"]
