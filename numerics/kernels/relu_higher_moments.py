"""The ``eta**3`` and ``eta**4`` increment moments of a relu network, for every student multiset at once.

With ``relu(z) = z theta(z)`` on every unit, ``c = (-a, b)`` over the units (students first),
``r = sum_u c_u relu(z_u)`` and ``Delta`` the label-noise variance, the ``eta**2 E_j E_l`` part of
the ``Q`` increment (``E_j = a_j theta(z_j) (r + sqrt(Delta) xi)``) brings three averages into
the covariance of one step's increments (:mod:`numerics.noise.relu_higher_orders`); here they are
without the readout factors ``a``, as :mod:`numerics.kernels.erf_higher_moments` has them for erf:

    pair:      P[j, l]       = E[theta_j theta_l (r**2 + Delta)]
    triple:    T[j, m, n, x] = E[theta_j theta_m theta_n z_x (r**3 + 3 Delta r)]
    quadruple: F[j, l, m, n] = E[theta_j theta_l theta_m theta_n (r**4 + 6 Delta r**2 + 3 Delta**2)]

(odd moments of the label noise vanish). Expanding the powers of ``r`` makes every one a sum of
truncated moments

    M(S, L) = E[prod_{a in L} z_a prod_{s in S} theta(z_s)],

``L`` a multiset of at most four units (the linear factors: ``x`` and the units of ``r**3``, or
the four of ``r**4``) and ``S`` the *set* of units whose indicators appear: the students of the
multiset and the units of the expanded power, each once (``theta_s**n = theta_s``). With
``p + k <= 5`` units ``S`` has at most five rows, and
:func:`numerics.kernels.relu_moments.orthant_moment` is exact there (Stein's lemma down to
orthant probabilities: Sheppard, the trivariate closed form, the four-variate path integral, and
the five-variate one from its subsets by inclusion-exclusion).

Evaluation: the moments ``M(S, L)`` that occur are listed once per ``(p, k)`` (:func:`higher_plan`),
each evaluated once for all replicas, and the three outputs are sparse sums of them with weights
``c_u c_v ... Delta**d`` (times the number of orderings of each multiset). Moments with the same
``S`` of four or five units share their orthant rows and one cache of orthant probabilities
(``orthant_moment(..., cache=)``; a five-unit set takes its four-unit subsets from it too), so each
four-variate path integral runs once per replica and set, not per moment. All three outputs are
symmetric in their student slots and are evaluated once per multiset of students. Singular
covariances (coinciding units) need nothing special: exactly equal rows are one indicator.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

from numerics.kernels.erf_higher_moments import student_multisets
from numerics.kernels.relu_moments import orthant_moment, unit_rows

#: The most units ``p + k`` with exact moments: ``S`` then has at most five rows (module docstring).
MAX_UNITS = 5
#: Replicas-times-moments elements evaluated at once (bounds the temporaries of the Stein recursion).
CHUNK_ELEMENTS = 1 << 15


@dataclass(frozen=True)
class MomentGroup:
    """Moments ``M(S, L)`` evaluated in one call: the same ``|S|`` and ``|L|``, or the same ``S`` of four or five units.

    Attributes
    ----------
    orthant : int array, shape (K, |S|) or (1, |S|)
        The units of ``S`` per moment (one row when the set is shared).
    linear : int array, shape (K, |L|)
        The units of ``L`` per moment.
    positions : int array, shape (K,)
        Where the moments go in the table of all moments.
    """

    orthant: np.ndarray
    linear: np.ndarray
    positions: np.ndarray


@dataclass(frozen=True)
class TermList:
    """One output as a sparse sum ``out[o] = sum_t weight_t Delta**power_t prod_u c[units_t] M[key_t]``.

    Attributes
    ----------
    starts : int array, shape (O,)
        The first term of each output (terms sorted by output; every output has one).
    keys : int array, shape (T,)
        The moment of each term in the table.
    units : int array, shape (T, 4)
        The readouts multiplied in (``n``: none).
    weights : float array, shape (T,)
        The number of orderings of the expanded multiset times the binomial factor of the noise.
    powers : int array, shape (T,)
        The power of ``Delta``.
    """

    starts: np.ndarray
    keys: np.ndarray
    units: np.ndarray
    weights: np.ndarray
    powers: np.ndarray


@dataclass(frozen=True)
class HigherPlan:
    """The moments and the three outputs' terms at sizes ``(p, n)`` (:func:`higher_plan`)."""

    groups: tuple[MomentGroup, ...]
    size: int
    pair: TermList
    triple: TermList
    quadruple: TermList


def _orderings(units: tuple[int, ...]) -> int:
    """The number of distinct orderings of a multiset."""
    count = math.factorial(len(units))
    for repeat in (units.count(u) for u in set(units)):
        count //= math.factorial(repeat)
    return count


def _power_terms(degree: int, n: int) -> list[tuple[tuple[int, ...], int, int, float]]:
    """The expansion of ``E[r**degree (+ noise)]``: ``(units, noise power, linear degree, weight)`` per term.

    ``(r + sqrt(Delta) xi)**degree`` averaged over ``xi``: ``r**2 + Delta``, ``r**3 + 3 Delta r``,
    ``r**4 + 6 Delta r**2 + 3 Delta**2``; each ``r**d`` as multisets of units with their orderings.
    """
    noise = {2: ((2, 0, 1.0), (0, 1, 1.0)), 3: ((3, 0, 1.0), (1, 1, 3.0)),
             4: ((4, 0, 1.0), (2, 1, 6.0), (0, 2, 3.0))}[degree]
    terms = []
    for d, power, factor in noise:
        for units in itertools.combinations_with_replacement(range(n), d):
            terms.append((units, power, d, factor * _orderings(units)))
    return terms


@functools.cache
def higher_plan(p: int, n: int) -> HigherPlan:
    """The moments ``M(S, L)`` of the pair, triple and quadruple at ``p`` students and ``n`` units, and their terms.

    Parameters
    ----------
    p, n : int
        Students and units (``p <= n <= MAX_UNITS``).

    Returns
    -------
    HigherPlan
        The groups of moments evaluated together, and per output its terms, outputs in the order of
        :func:`numerics.kernels.erf_higher_moments.student_multisets` (the triple's output ``(G, x)``
        is ``G * n + x``).
    """
    if not 1 <= p <= n <= MAX_UNITS:
        raise ValueError(f"higher_plan: needs 1 <= p <= n <= {MAX_UNITS} (p = {p}, n = {n}): more units need "
                         "orthant probabilities of more than five rows")
    keys: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}

    def key(orthant: set[int], linear: tuple[int, ...]) -> int:
        return keys.setdefault((tuple(sorted(orthant)), tuple(sorted(linear))), len(keys))

    def terms(size: int, degree: int, free: bool) -> TermList:
        G, _ = student_multisets(p, size)
        rows = []  # (output, key, units, weight, power)
        for g, students in enumerate(G):
            for x in range(n) if free else (None,):
                output = g * n + x if free else g
                for units, power, _, weight in _power_terms(degree, n):
                    linear = units + ((x,) if free else ())
                    rows.append((output, key(set(students.tolist()) | set(units), linear),
                                 units + (n,) * (4 - len(units)), weight, power))
        output = np.array([row[0] for row in rows])
        return TermList(np.searchsorted(output, np.arange(output[-1] + 1)), np.array([row[1] for row in rows]),
                        np.array([row[2] for row in rows], dtype=np.intp).reshape(-1, 4),
                        np.array([row[3] for row in rows]), np.array([row[4] for row in rows]))

    pair, triple, quadruple = terms(2, 2, False), terms(3, 3, True), terms(4, 4, False)
    # groups: a set of four or five units by itself (its orthant rows shared), smaller sets by their sizes
    grouped: dict[tuple, list[tuple[tuple[int, ...], tuple[int, ...], int]]] = {}
    for (orthant, linear), position in keys.items():
        label = (orthant, len(linear)) if len(orthant) >= 4 else (len(orthant), len(linear))
        grouped.setdefault(label, []).append((orthant, linear, position))
    groups = []
    for label, members in grouped.items():
        shared = isinstance(label[0], tuple)
        orthant = np.array([members[0][0]] if shared else [m[0] for m in members], dtype=np.intp)
        linear = np.array([m[1] for m in members], dtype=np.intp).reshape(len(members), -1)
        groups.append(MomentGroup(orthant, linear, np.array([m[2] for m in members])))
    return HigherPlan(tuple(groups), len(keys), pair, triple, quadruple)


def moment_table(F: np.ndarray, plan: HigherPlan) -> np.ndarray:
    """Every moment ``M(S, L)`` of ``plan`` for the rows ``F`` (B, n, m) of the units; shape (B, plan.size)."""
    nb, n = F.shape[:2]
    table = np.empty((nb, plan.size))
    largest = max(group.positions.size for group in plan.groups)
    step = max(1, CHUNK_ELEMENTS // largest)
    for start in range(0, nb, step):
        rows = F[start : start + step]
        # one object per unit for the shared orthants, and one cache of orthant probabilities: the groups of one
        # set of units (and the four-unit subsets of a five-unit set) evaluate each probability once
        units = [rows[:, None, u] for u in range(n)]
        cache: dict = {}
        for group in plan.groups:
            linear = [rows[:, group.linear[:, i]] for i in range(group.linear.shape[1])]
            if group.orthant.shape[0] == 1:
                orthant = [units[u] for u in group.orthant[0]]
            else:
                orthant = [rows[:, group.orthant[:, i]] for i in range(group.orthant.shape[1])]
            values = orthant_moment(linear, orthant, cache=cache)
            table[start : start + step, group.positions] = np.broadcast_to(values, (rows.shape[0],
                                                                                    group.positions.size))
    return table


def _sum_terms(table: np.ndarray, c: np.ndarray, delta: float, terms: TermList) -> np.ndarray:
    """``out[b, o]`` of a :class:`TermList` for the moments ``table`` (B, K), readouts ``c`` (B, n)."""
    extended = np.concatenate([c, np.ones(c.shape[:1] + (1,))], axis=1)
    noise = np.asarray(delta, dtype=float) ** terms.powers
    values = table[:, terms.keys] * np.prod(extended[:, terms.units], axis=-1) * (terms.weights * noise)
    return np.add.reduceat(values, terms.starts, axis=1)


def relu_higher_moments(C: np.ndarray, c: np.ndarray, delta: float, p: int) -> tuple[np.ndarray, np.ndarray,
                                                                                         np.ndarray]:
    """``(P, T, F)`` of the module docstring for a relu network.

    Parameters
    ----------
    C : array, shape (B, n, n)
        The covariance of the ``n = p + k <= MAX_UNITS`` units, students first (positive semi-definite).
    c : array, shape (B, n)
        ``(-a, b)``.
    delta : float
        Label-noise variance.
    p : int
        Number of students.

    Returns
    -------
    P : array, shape (B, p, p)
    T : array, shape (B, p, p, p, n)
        Symmetric in ``j, m, n``; ``x`` over all units.
    F : array, shape (B, p, p, p, p)
        Symmetric in all four slots.

    Raises
    ------
    ValueError
        More than :data:`MAX_UNITS` units, or ``p`` not between 1 and ``n``.
    """
    nb, n = C.shape[0], C.shape[-1]
    plan = higher_plan(p, n)
    table = moment_table(unit_rows(C), plan)
    _, pair_of = student_multisets(p, 2)
    _, triple_of = student_multisets(p, 3)
    _, quadruple_of = student_multisets(p, 4)
    P = _sum_terms(table, c, delta, plan.pair)[:, pair_of]
    T = _sum_terms(table, c, delta, plan.triple).reshape(nb, -1, n)[:, triple_of]
    F = _sum_terms(table, c, delta, plan.quadruple)[:, quadruple_of]
    return P, T, F


__all__ = [
    "CHUNK_ELEMENTS",
    "MAX_UNITS",
    "HigherPlan",
    "MomentGroup",
    "TermList",
    "higher_plan",
    "moment_table",
    "relu_higher_moments",
]
