"""Gaussian averages of products of one-variable polynomials, by multigraphs instead of monomials.

For jointly Gaussian ``z_1..z_n`` (zero mean, covariance ``C``) and polynomials
``f_1..f_n``,

    E[prod_a f_a(z_a)] = sum_M  prod_{a<b} C_ab**M_ab / M_ab!  *  prod_a  E[f_a^(d_a)(u_a)],

where ``M`` runs over symmetric non-negative integer matrices with zero diagonal,
``d_a = sum_b M_ab`` and ``u_a ~ N(0, C_aa)`` independently (expand
``exp(sum_{a<b} C_ab d_a d_b)`` acting on the product under independent marginals;
Wick's theorem gives the same polynomial identity in the entries of ``C``, so it
holds for singular ``C`` and for slots whose indices coincide). The vertex factor
``E[f^(d)(u)]`` is a polynomial in the variance ``C_aa``.

Compared with expanding every ``f_a`` into monomials and enumerating pair-count
matrices of the product (:func:`derive.gauss.indexed.average`), each slot here keeps its
whole polynomial: the number of terms grows with the number of multigraphs, not
with the product of the numbers of monomials. For the fourth moments of the
increments of a cubic network that is the difference between millions of pair-count
matrices and a few thousand multigraphs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from functools import cache
from math import factorial

import sympy as sp

from derive.gauss.indexed import Network, Slot, canonical_network, make_edge
from derive.gauss.orbits import orderly_multigraphs
from derive.model.model import x


@cache
def derivative_moments(coefficients: tuple[sp.Expr, ...], order: int) -> tuple[tuple[int, sp.Expr], ...]:
    """``E[f^(order)(u)]`` for ``u ~ N(0, v)`` as ``((power of v, coefficient), ...)``.

    ``coefficients[n]`` is the coefficient of ``x**n`` in ``f``.
    """
    out: dict[int, sp.Expr] = {}
    for n, c in enumerate(coefficients):
        if c == 0 or n < order:
            continue
        rest = n - order
        if rest % 2:
            continue
        # (n! / rest!) x**rest, and E[u**(2t)] = (2t - 1)!! v**t
        t = rest // 2
        value = c * sp.Integer(factorial(n) // factorial(rest)) * sp.Integer(factorial(rest) // (2**t * factorial(t)))
        out[t] = out.get(t, sp.Integer(0)) + value
    return tuple((t, c) for t, c in sorted(out.items()) if c != 0)


def polynomial_coefficients(polynomial: sp.Expr) -> tuple[sp.Expr, ...]:
    poly = sp.Poly(polynomial, x)
    return tuple(reversed(poly.all_coeffs()))


def multigraphs(allowed: Sequence[frozenset[int]]) -> Iterator[dict[tuple[int, int], int]]:
    """Symmetric zero-diagonal multiplicity matrices whose row sums lie in ``allowed[a]``.

    Rows are filled one vertex at a time, so a vertex whose degree cannot give a
    nonzero vertex factor (e.g. an odd derivative of an even polynomial) prunes the
    whole subtree at once. This is the orderly enumeration of :mod:`derive.gauss.orbits` with
    every vertex distinguishable (no profile order to keep).
    """
    return orderly_multigraphs(allowed, free=len(allowed))


def function_average(
    factors: Sequence[tuple[Slot, sp.Expr]],
    summed: Sequence[Slot],
    free: tuple[Slot, ...],
    coefficient: sp.Expr = sp.S.One,
) -> dict[Network, sp.Expr]:
    """``coefficient * E[prod f(slot)]`` as ``{network: coefficient}`` (self-loops carry the variances).

    Parameters
    ----------
    factors
        ``(slot, polynomial in x)``, one per slot; slots are distinct.
    summed
        The slots whose indices are summed over.
    free
        The output indices.
    """
    slots = [slot for slot, _ in factors]
    if len(set(slots)) != len(slots):
        raise ValueError("function_average needs distinct slots")
    coefficient_lists = [polynomial_coefficients(polynomial) for _, polynomial in factors]
    allowed = [
        frozenset(d for d in range(len(c)) if derivative_moments(c, d)) for c in coefficient_lists
    ]
    collected: dict[Network, sp.Expr] = defaultdict(lambda: sp.Integer(0))
    if any(not a for a in allowed):
        return {}
    for graph in multigraphs(allowed):
        degrees = [0] * len(slots)
        weight = coefficient
        for (a, b), m in graph.items():
            degrees[a] += m
            degrees[b] += m
            weight = weight / factorial(m)
        vertex_factors = [derivative_moments(coefficient_lists[a], degrees[a]) for a in range(len(slots))]
        if any(not factor for factor in vertex_factors):
            continue
        edges = [edge for (a, b), m in graph.items() for edge in [make_edge(slots[a], slots[b])] * m]
        # expand the product of the vertex polynomials in the variances: one network per choice
        choices: list[tuple[sp.Expr, list]] = [(weight, edges)]
        for a, factor in enumerate(vertex_factors):
            loop = make_edge(slots[a], slots[a])
            choices = [(w * c, e + [loop] * t) for w, e in choices for t, c in factor]
        for w, e in choices:
            network = canonical_network(list(e), list(summed), free)
            collected[network] += w
    return {network: sp.expand(c) for network, c in collected.items() if sp.expand(c) != 0}


__all__ = ["function_average"]
