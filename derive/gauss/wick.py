"""Gaussian moments by Isserlis' (Wick's) theorem, counting instead of enumerating.

For zero-mean jointly Gaussian ``z_1..z_n`` with covariance ``C``,

    E[prod_a z_a**n_a] = sum_M  prod_a n_a! / (prod_a 2**M_aa M_aa! prod_{a<b} M_ab!)
                                * prod_{a<=b} C_ab**M_ab,

where ``M`` runs over symmetric non-negative integer matrices with
``2 M_aa + sum_{b != a} M_ab = n_a`` (``M_ab`` counts the pairs joining a copy of
``z_a`` with a copy of ``z_b``). The number of such ``M`` is tiny compared with
the ``(2n-1)!!`` pairings of the naive theorem: ``E[z**10]`` is one term.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cache
from math import factorial

import sympy as sp

PairCounts = tuple[tuple[tuple[int, int], int], ...]


def compositions(total: int, capacities: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """All ways to write ``total`` as a sum of parts bounded by ``capacities``."""
    if not capacities:
        if total == 0:
            yield ()
        return
    first, rest = capacities[0], capacities[1:]
    rest_capacity = sum(rest)
    for part in range(max(0, total - rest_capacity), min(first, total) + 1):
        for tail in compositions(total - part, rest):
            yield (part, *tail)


@cache
def pairing_counts(exponents: tuple[int, ...]) -> tuple[tuple[int, PairCounts], ...]:
    """Weighted pair-count matrices of the moment ``E[prod_a z_a**exponents[a]]``.

    Parameters
    ----------
    exponents
        ``n_a >= 0`` for each variable ``a``.

    Returns
    -------
    tuple of (coefficient, pairs)
        ``pairs`` lists ``((a, b), M_ab)`` with ``a <= b`` and ``M_ab > 0``; the
        moment is ``sum coefficient * prod C_ab**M_ab``. Empty if the total
        degree is odd (the moment vanishes).
    """
    if any(n < 0 for n in exponents):
        raise ValueError(f"exponents must be non-negative, got {exponents}")
    if sum(exponents) % 2:
        return ()
    numerator = 1
    for n in exponents:
        numerator *= factorial(n)
    results: list[tuple[int, PairCounts]] = []

    def recurse(a: int, remaining: list[int], pairs: list[tuple[tuple[int, int], int]], denominator: int) -> None:
        if a == len(remaining):
            results.append((numerator // denominator, tuple(pairs)))
            return
        need = remaining[a]
        later = list(range(a + 1, len(remaining)))
        for self_pairs in range(need // 2 + 1):
            rest = need - 2 * self_pairs
            capacities = [remaining[b] for b in later]
            if rest > sum(capacities):
                continue
            self_den = (2**self_pairs) * factorial(self_pairs)
            for parts in compositions(rest, capacities):
                new_pairs = list(pairs)
                if self_pairs:
                    new_pairs.append(((a, a), self_pairs))
                den = denominator * self_den
                new_remaining = list(remaining)
                new_remaining[a] = 0
                for b, m in zip(later, parts):
                    if m:
                        new_pairs.append(((a, b), m))
                        den *= factorial(m)
                        new_remaining[b] -= m
                recurse(a + 1, new_remaining, new_pairs, den)

    recurse(0, list(exponents), [], 1)
    return tuple(results)


def moment(exponents: Sequence[int], covariance: Callable[[int, int], sp.Expr]) -> sp.Expr:
    """``E[prod_a z_a**n_a]`` for covariance entries ``covariance(a, b)`` (``a <= b``)."""
    total = sp.Integer(0)
    for coefficient, pairs in pairing_counts(tuple(exponents)):
        term = sp.Integer(coefficient)
        for (a, b), m in pairs:
            term *= covariance(a, b) ** m
        total += term
    return total


def expectation(
    polynomial: sp.Expr,
    variables: Sequence[sp.Symbol],
    covariance: sp.Matrix | Mapping[tuple[sp.Symbol, sp.Symbol], sp.Expr],
) -> sp.Expr:
    """Exact Gaussian expectation of a polynomial in zero-mean Gaussian variables.

    Parameters
    ----------
    polynomial
        A polynomial in ``variables`` (other symbols are treated as constants).
    variables
        The Gaussian variables ``z_1..z_n``.
    covariance
        Either an ``n x n`` sympy matrix (entries may be symbolic) or a mapping
        ``(z_a, z_b) -> C_ab`` (one of the two orders suffices).

    Returns
    -------
    sympy.Expr
        ``E[polynomial]``, expanded.

    Examples
    --------
    >>> Q = sp.Symbol("Q")
    >>> lam = sp.Symbol("lam")
    >>> expectation(lam**10, [lam], sp.Matrix([[Q]]))
    945*Q**5
    """
    variables = list(variables)
    if len(set(variables)) != len(variables):
        raise ValueError("variables must be distinct")
    n = len(variables)
    if isinstance(covariance, sp.MatrixBase):
        if covariance.shape != (n, n):
            raise ValueError(f"covariance must be {n} x {n}, got {covariance.shape}")

        def cov(a: int, b: int) -> sp.Expr:
            return covariance[a, b]
    else:

        def cov(a: int, b: int) -> sp.Expr:
            key = (variables[a], variables[b])
            if key in covariance:
                return covariance[key]
            flipped = (variables[b], variables[a])
            if flipped in covariance:
                return covariance[flipped]
            raise ValueError(f"covariance has no entry for {key}")

    poly = sp.Poly(sp.expand(polynomial), *variables)
    # accumulate coefficients per monomial in the covariance entries and build
    # the sympy expression once: adding thousands of sympy terms one by one is
    # what makes a naive implementation slow
    entries = {(a, b): cov(a, b) for a in range(n) for b in range(a, n)}
    collected: dict[frozenset, sp.Expr] = {}
    for exponents, coefficient in poly.terms():
        for count, pairs in pairing_counts(exponents):
            powers: dict[sp.Expr, int] = {}
            for pair, m in pairs:
                entry = entries[pair]
                powers[entry] = powers.get(entry, 0) + m
            key = frozenset(powers.items())
            collected[key] = collected.get(key, 0) + coefficient * count
    terms = [c * sp.Mul(*[e**m for e, m in key]) for key, c in collected.items() if c != 0]
    return sp.expand(sp.Add(*terms))


def naive_moment(exponents: Sequence[int], covariance: Callable[[int, int], sp.Expr]) -> sp.Expr:
    """Reference implementation: sum over all ``(2n-1)!!`` perfect pairings.

    Exponential in the degree; used only to cross-check :func:`moment` and as
    the baseline of the derivation benchmark.
    """
    slots = [a for a, n in enumerate(exponents) for _ in range(n)]
    if len(slots) % 2:
        return sp.Integer(0)

    def pairings(items: list[int]) -> Iterator[list[tuple[int, int]]]:
        if not items:
            yield []
            return
        first = items[0]
        for i in range(1, len(items)):
            rest = items[1:i] + items[i + 1 :]
            for tail in pairings(rest):
                yield [(first, items[i]), *tail]

    total = sp.Integer(0)
    for pairing in pairings(slots):
        term = sp.Integer(1)
        for a, b in pairing:
            term *= covariance(min(a, b), max(a, b))
        total += term
    return sp.expand(total)


def number_of_pair_count_matrices(exponents: Sequence[int]) -> int:
    """How many terms :func:`pairing_counts` sums (for benchmarks and docs)."""
    return len(pairing_counts(tuple(exponents)))


__all__ = [
    "expectation",
    "moment",
    "naive_moment",
    "number_of_pair_count_matrices",
    "pairing_counts",
]

