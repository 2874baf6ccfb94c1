"""Truncated Gaussian moments ``E[z_a1 ... z_an 1{z_s > 0, s in S}]`` (n <= 4, |S| <= 5): the averages of relu networks.

With ``relu(z) = z theta(z)`` every increment moment of a relu network
(:mod:`numerics.noise.tuple_fluctuations`, :mod:`numerics.noise.relu_higher_orders`) is a sum of
such moments: up to four linear factors times the indicator of an orthant of up to four units
(five for the ``eta**3`` and ``eta**4`` parts at ``p + k = 5``). Each unit is a row ``F_u``
of a factor ``C = F F^T`` (``z_u = F_u . g``, ``g`` standard normal), so a conditional
law is a set of projected rows, accurate to rounding relative to the distance between units
even where they nearly coincide.

**Stein's lemma** removes the linear factors one at a time:

    E[z_a G] = sum_{b linear} (F_a . F_b) E[G / z_b] + sum_{s in S} (F_a . F_s) p_s(0) E[G / theta_s | z_s = 0],

``p_s(0) = (2 pi |F_s|**2)**-1/2`` and the condition projects every row orthogonally to ``F_s``
(equal rows are one indicator, ``theta_s**n = theta_s``: one delta per group, and the group's
other rows are 1 given ``z_s = 0``; a row that becomes zero otherwise, a positive multiple of
``F_s``, counts ``theta(0) = 1/2``, what splitting ``theta(c z) theta(z) = theta(z)`` into two
equal halves gives). What is left are orthant
probabilities of centred Gaussians: ``1/2``, ``1/4 + arcsin(rho) / (2 pi)`` (Sheppard), the
trivariate ``1/8 + sum arcsin(rho_ab) / (4 pi)``, and the four-variate one, which has no
elementary form: Price's theorem along ``C(t) = (1 - t) C0 + t C`` (``C0`` keeps the diagonal
and the pairs ``(0, 1)``, ``(2, 3)``) gives

    P(C) = P2(0, 1) P2(2, 3) + int_0^1 sum_{a in {0, 1}, b in {2, 3}} c_ab p_ab(0) P2(c, d | z_a = z_b = 0) dt,

done as :mod:`numerics.kernels.relu_quadrature` does its path integral: in ``s`` with
``t = 1 - s**2`` (which makes the square-root singularities of collinear pairs at ``t = 1``
smooth) on panels graded geometrically towards ``s = 0`` (:data:`PANEL_EDGES`, a nearly
collinear pair puts a complex singularity at distance ``sqrt(1 - |rho|)``), rows
``F(t) = [s L0 | sqrt(t) F]``. Measured error below 1e-12 against twice the nodes on random,
singular and nearly singular blocks (tests/numerics/kernels/test_relu_moments.py). Five rows
need no new integral: for an odd number of centred variables inclusion-exclusion gives the
orthant probability from those of its subsets (:func:`orthant_probability`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from numerics.kernels.relu_quadrature import project_out

#: Gauss-Legendre nodes per panel of the four-variate orthant probability's path integral.
NODES = 20
#: Panel edges in s (t = 1 - s**2), graded towards s = 0.
PANEL_EDGES = np.array([0.0] + [10.0**-k for k in range(9, 0, -1)] + [1.0])

TWO_PI = 2 * math.pi


def _dot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...i->...", u, v)


def _angle_arcsin(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``arcsin`` of the correlation of ``u . g`` and ``v . g`` (0 when either is zero).

    As ``atan2(cos, sin)`` of the angle between the rows, the sine from the part of ``v`` orthogonal
    to ``u``: near collinear rows ``arcsin(rho)`` of a rounded ``rho`` would be off by ``sqrt(rounding)``.
    """
    u, v = np.broadcast_arrays(u, v)
    nu, nv = np.sqrt(_dot(u, u)), np.sqrt(_dot(v, v))
    (perpendicular,), _ = project_out([v], u)
    cosine = np.divide(_dot(u, v), nu * nv, out=np.zeros_like(nu), where=nu * nv > 0)
    sine = np.divide(np.sqrt(_dot(perpendicular, perpendicular)), nv, out=np.ones_like(nv), where=nv > 0)
    return np.where(nu * nv > 0, np.arctan2(cosine, np.where(nu > 0, sine, 1.0)), 0.0)


def orthant_probability(rows: list[np.ndarray]) -> np.ndarray | float:
    """``P(F_s . g > 0 for every row)`` for up to five rows (a zero row counts ``theta(0) = 1/2``).

    Five rows: an odd number of centred variables has ``P(all > 0) = P(all <= 0)``, and
    inclusion-exclusion on the latter gives ``2 P5 = sum_{S proper} (-1)**|S| P(z_S > 0)``: the
    four-variate probabilities of the five subsets and closed forms (also with the conventions for
    zero and equal rows, which the smaller probabilities keep).
    """
    n = len(rows)
    if n > 5:
        raise ValueError(f"orthant_probability: at most five rows, got {n}")
    if n == 5:
        return _five_from_subsets(rows, orthant_probability)
    if n == 0:
        return 1.0
    if n == 1:
        return 0.5 + 0.0 * rows[0][..., 0]
    if n == 2:
        return 0.25 + _angle_arcsin(*rows) / TWO_PI
    if n == 3:
        pairs = ((0, 1), (0, 2), (1, 2))
        return 0.125 + sum(_angle_arcsin(rows[a], rows[b]) for a, b in pairs) / (2 * TWO_PI)
    value = _orthant4(rows)
    # exactly equal rows are one indicator: the three-variate form is exact there, the path integral is not
    for a in range(4):
        for b in range(a + 1, 4):
            same = np.all(rows[a] == rows[b], axis=-1)
            if np.any(same):
                value = np.where(same, orthant_probability([rows[c] for c in range(4) if c != b]), value)
    return value


def _five_from_subsets(rows: list[np.ndarray], probability: Callable) -> np.ndarray:
    """Five rows: ``2 P5 = sum_{S proper} (-1)**|S| P(z_S > 0)`` (:func:`orthant_probability`), ``probability`` of
    the subsets."""
    total = 1.0
    for size in range(1, 5):
        for subset in itertools.combinations(range(5), size):
            total = total + (-1) ** size * probability([rows[s] for s in subset])
    return total / 2


def _cached_probability(rows: list[np.ndarray], cache: dict) -> np.ndarray | float:
    """:func:`orthant_probability` through ``cache``, keyed by the identity of the rows (five rows: subsets too)."""
    key = ("rows",) + tuple(id(row) for row in rows)
    if key not in cache:
        value = (_five_from_subsets(rows, lambda subset: _cached_probability(subset, cache)) if len(rows) == 5
                 else orthant_probability(rows))
        cache[key] = (value, rows)  # keeps the ids alive
    return cache[key][0]


def _pair_rows(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows in two dimensions with the Gram matrix of ``u``, ``v`` (a zero ``u`` gives a zero first row)."""
    ru = np.sqrt(_dot(u, u))
    cross = np.divide(_dot(u, v), ru, out=np.zeros_like(ru), where=ru > 0)
    # the orthogonal part from the vectors (exactly zero for equal units), not sqrt(|v|**2 - cross**2), which
    # would leave sqrt(rounding) ~ 1e-8 between equal units
    (perpendicular,), _ = project_out([v], u)
    first = np.stack([ru, np.zeros_like(ru)], axis=-1)
    second = np.stack([cross, np.sqrt(_dot(perpendicular, perpendicular))], axis=-1)
    return first, second


def _orthant4(rows: list[np.ndarray]) -> np.ndarray:
    """The four-variate orthant probability by the path integral of the module docstring."""
    x, w = np.polynomial.legendre.leggauss(NODES)
    s_nodes, weights = [], []
    for lo, hi in zip(PANEL_EDGES[:-1], PANEL_EDGES[1:]):
        s = lo + (hi - lo) * (x + 1) / 2
        s_nodes.append(s)
        weights.append((hi - lo) / 2 * w * 2 * s)  # dt = 2 s ds
    s, weights = np.concatenate(s_nodes), np.concatenate(weights)
    rows = np.broadcast_arrays(*rows)
    zeros = np.zeros(rows[0].shape[:-1] + (2,))
    r0, r1 = _pair_rows(rows[0], rows[1])
    r2, r3 = _pair_rows(rows[2], rows[3])
    start = [np.concatenate(parts, axis=-1) for parts in ((r0, zeros), (r1, zeros), (zeros, r2), (zeros, r3))]
    # rows on the path, the node axis before the rows' own axes
    node_shape = (-1,) + (1,) * rows[0].ndim
    scale_0, scale_t = s.reshape(node_shape), np.sqrt((1 - s) * (1 + s)).reshape(node_shape)
    F = [np.concatenate([scale_0 * L[None], scale_t * row[None]], axis=-1) for L, row in zip(start, rows)]
    total = 0.0
    for a, b in ((0, 2), (0, 3), (1, 2), (1, 3)):
        c, d = (u for u in range(4) if u not in (a, b))
        (fb, fc, fd), na = project_out([F[b], F[c], F[d]], F[a])
        (gc, gd), nb = project_out([fc, fd], fb)
        area = np.sqrt(na * nb)
        density = np.divide(1.0, TWO_PI * area, out=np.zeros_like(area), where=area > 0)
        total = total + _dot(rows[a], rows[b])[None] * density * orthant_probability([gc, gd])
    return orthant_probability([rows[0], rows[1]]) * orthant_probability([rows[2], rows[3]]) + np.tensordot(
        weights, total, axes=(0, 0))


def orthant_moment(linear: list[np.ndarray], orthant: list[np.ndarray],
                   ones: list[np.ndarray] | None = None, cache: dict | None = None) -> np.ndarray | float:
    """``E[prod_{a in linear} (F_a . g) prod_{s in orthant} theta(F_s . g)]`` for rows broadcast together.

    Parameters
    ----------
    linear : list of arrays, shape (..., m)
        Rows of the linear factors (at most four).
    orthant : list of arrays, shape (..., m)
        Rows of the indicators (at most five). Exactly equal rows are one indicator
        (``theta**2 = theta``), wherever they are equal.
    ones : list of bool arrays, shape (...), optional
        One per orthant row: where true that indicator is 1 (a copy of a row the law is conditioned
        on, ``theta**n = theta``), not ``theta(0) = 1/2``. Default none.
    cache : dict, optional
        The orthant probabilities computed so far, by the identity of their rows: calls that pass
        the same dict and the same row objects (unchanged while the dict lives) share them (and
        five rows share their four-row subsets). Default a new one per call.

    Returns
    -------
    array, shape (...)
    """
    return _moment(list(linear), list(orthant), _start_ones(orthant, ones), {} if cache is None else cache)


def indicator_terms(linear: list[np.ndarray], orthant: list[np.ndarray],
                    ones: list[np.ndarray] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The indicators' part of Stein's lemma for one more linear factor: ``(row, coefficient)`` pairs.

    For every row ``w`` (module docstring)

        E[(w . g) prod linear prod theta] = sum_b (w . F_b) E[prod linear / z_b prod theta]
                                           + sum (w . row) coefficient

    over the returned pairs (one per orthant row; ``coefficient = p_s(0) E[... | z_s = 0]``, 0 for
    the copies of an equal row), so that a caller with many ``w`` evaluates the conditional
    moments once.

    Parameters
    ----------
    linear, orthant, ones :
        As :func:`orthant_moment`.

    Returns
    -------
    list of (array (..., m), array (...))
    """
    ones = _closure(list(orthant), _start_ones(orthant, ones))
    return _indicator_terms(list(linear), list(orthant), ones, {})


def repeated_rows(orthant: list[np.ndarray], ones: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Masks (shape (...) each) of the orthant rows that count as 1: ``ones``, and every row exactly equal to an
    earlier counted one (``theta**2 = theta``); the indicators whose deltas :func:`indicator_terms` leaves out."""
    return _closure(list(orthant), _start_ones(orthant, ones))


def same_rows(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Where two broadcast rows (..., m) are exactly equal (one indicator), shape (...)."""
    return np.all(u == v, axis=-1)


def _start_ones(orthant: list[np.ndarray], ones: list[np.ndarray] | None) -> list[np.ndarray]:
    if ones is None:
        return [np.zeros(row.shape[:-1], dtype=bool) for row in orthant]
    if len(ones) != len(orthant):
        raise ValueError(f"ones needs one mask per orthant row ({len(orthant)}), got {len(ones)}")
    return [np.asarray(mask, dtype=bool) for mask in ones]


def _masked_probability(orthant: list[np.ndarray], ones: list[np.ndarray]) -> np.ndarray | float:
    """:func:`orthant_probability` with the rows where ``ones`` is true left out (indicators equal to 1)."""
    if not any(np.any(mask) for mask in ones):
        return orthant_probability(orthant)
    shape = np.broadcast_shapes(*(mask.shape for mask in ones))
    masks = [np.broadcast_to(mask, shape) for mask in ones]
    value = np.zeros(shape)
    # one evaluation per pattern of kept rows that occurs (at most 2**4)
    for pattern in itertools.product((False, True), repeat=len(orthant)):
        where = np.ones(shape, dtype=bool)
        for mask, kept in zip(masks, pattern):
            where = where & (mask != kept)
        if np.any(where):
            kept_rows = [row for row, kept in zip(orthant, pattern) if kept]
            value = np.where(where, orthant_probability(kept_rows), value)
    return value


def _closure(orthant: list[np.ndarray], ones: list[np.ndarray]) -> list[np.ndarray]:
    """theta**n = theta: a row equal to an earlier kept one is that indicator again (also rows that became zero)."""
    ones = list(ones)
    for k in range(1, len(orthant)):
        for i in range(k):
            closed = ones[k] | (~ones[i] & same_rows(orthant[i], orthant[k]))
            # an unchanged mask stays the same object: the cache of orthant probabilities is keyed by identity
            if not np.array_equal(closed, ones[k]):
                ones[k] = closed
    return ones


def _moment(linear: list[np.ndarray], orthant: list[np.ndarray], ones: list[np.ndarray],
            probabilities: dict) -> np.ndarray | float:
    # ones: indicators known to be 1 (copies of a row conditioned to 0 through theta**n = theta);
    # probabilities: the orthant probabilities computed so far, by the identity of their rows (the pairings of
    # the linear factors reach the same unprojected orthant several times, and its four-variate probability is
    # the costly part)
    ones = _closure(orthant, ones)
    if not linear:
        if not any(np.any(mask) for mask in ones):
            return _cached_probability(orthant, probabilities)
        key = tuple(id(row) for row in orthant) + tuple(id(mask) for mask in ones)
        if key not in probabilities:
            probabilities[key] = (_masked_probability(orthant, ones), orthant, ones)  # keeps the ids alive
        return probabilities[key][0]
    first, rest = linear[0], linear[1:]
    total = 0.0
    for i, other in enumerate(rest):
        total = total + _dot(first, other) * _moment(rest[:i] + rest[i + 1 :], orthant, ones, probabilities)
    for row, coefficient in _indicator_terms(rest, orthant, ones, probabilities):
        total = total + _dot(first, row) * coefficient
    return total


def _indicator_terms(rest: list[np.ndarray], orthant: list[np.ndarray], ones: list[np.ndarray],
                     probabilities: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(row, p_s(0) E[rest... | z_s = 0])`` per orthant row (``ones`` already closed under equal rows)."""
    terms = []
    for i, row in enumerate(orthant):
        # one delta per group of equal rows (its first row; the others are marked as ones), and its copies become 1
        counted = ~ones[i]
        if not np.any(counted):
            continue
        others = [k for k in range(len(orthant)) if k != i]
        projected, norm2 = project_out(rest + [orthant[k] for k in others], row)
        new_ones = [ones[k] | same_rows(orthant[k], row) for k in others]
        density = np.divide(1.0, np.sqrt(TWO_PI * norm2), out=np.zeros_like(norm2), where=norm2 > 0)
        conditional = _moment(projected[: len(rest)], projected[len(rest) :], new_ones, probabilities)
        terms.append((row, np.where(counted, density * conditional, 0.0)))
    return terms


def unit_rows(C: np.ndarray) -> np.ndarray:
    """Rows ``F`` (..., n, n) with ``F F^T = C``; units with exactly equal entries get exactly equal rows."""
    w, V = np.linalg.eigh(C)
    F = V * np.sqrt(np.maximum(w, 0.0))[..., None, :]
    n = C.shape[-1]
    for a in range(n):
        for b in range(a + 1, n):
            same = (C[..., a, a] == C[..., b, b]) & (C[..., a, b] == C[..., a, a])
            F[..., b, :] = np.where(same[..., None], F[..., a, :], F[..., b, :])
    return F


__all__ = [
    "NODES",
    "PANEL_EDGES",
    "indicator_terms",
    "orthant_moment",
    "orthant_probability",
    "project_out",
    "repeated_rows",
    "same_rows",
    "unit_rows",
]
