"""The increment moments of any degree as tables of tensor networks with numeric weights.

The six averages of :mod:`derive.quantities.increments` (``LL, LN, NN, LE, EN, EE``) are
``<F_1 F_2 F_3 F_4 (g + s xi)**n>`` with four *free* factors ``F`` (``a sigma'(lambda_j)``,
``lambda_l`` or ``nu_r``, each on one output axis) and the residual ``g = y0 - f``. Instead of
splitting every residual factor into its student and teacher sums (which makes the number
of networks explode for cubic activations), each factor of ``g`` is kept as ONE vertex
summed over all ``p + k`` units ``u`` of ``z = (lambda, nu) ~ N(0, C)``,
``C = [[Q, R], [R^T, T]]``, with the polynomial ``phi_u = -a sigma`` (students) or
``b sigma*`` (teachers). The multigraph form of Wick's theorem (:mod:`derive.gauss.vertex`) gives

    <prod_a f_a(z_a)> = sum_M prod_{a<b} C_ab**M_ab / M_ab!  prod_a E[f_a^(d_a)(u_a)],
    u_a ~ N(0, C_aa),  d_a = sum_b M_ab,

and the residual vertices are interchangeable, so multigraphs are collected up to
permutations of them. Free vertices with the same index kind and polynomial (the four
``sigma'`` vertices of ``EE``, say) are interchangeable up to a permutation of the output
axes, so multigraphs are also collected up to those *free symmetries* ``G``: with ``S`` the
sum over orbit representatives weighted by the number of labelled multigraphs in their
orbit, the average is ``(1/|G|) sum_{pi in G} S`` with its four axes permuted by ``pi``.
What is left for each network is numbers: an integer weight (the orbit size), the edge
multiplicities and, per vertex, the
degree ``d`` whose derivative moment ``E[f^(d)(u)]`` (a polynomial in the variance, with
numeric coefficients) is the vertex vector. :mod:`numerics.kernels.network_moments` contracts
them with ``einsum``; nothing symbolic is left for the numerics.

Vertices are numbered: 0-3 the free factors (output axes in order), 4.. the residual
factors. A vertex of degree ``d`` whose ``E[f^(d)]`` vanishes identically in the variance
(an odd derivative of an even polynomial, a derivative above its degree) is never
enumerated. Networks are grouped by their *support* (which vertex pairs carry edges);
within a group only the multiplicities differ, so a group is one batched contraction.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from functools import cache

import sympy as sp

from derive.gauss.orbits import Edges, canonical, residual_orbits
from derive.gauss.vertex import derivative_moments, polynomial_coefficients
from derive.model.model import Model, x

#: Index kinds of a vertex: a student axis (size p), a teacher axis (size k), or all units (p + k).
STUDENT, TEACHER, UNIT = "student", "teacher", "unit"
#: Polynomials of the vertices: ``sigma'`` (times ``a``), the identity, the residual ``phi``.
SLOPE, IDENTITY, RESIDUAL = "slope", "identity", "residual"

#: The free factors of each average (output axes in order) and the order n of ``(g + s xi)**n``.
MOMENT_LAYOUT: dict[str, tuple[tuple[tuple[str, str], ...], int]] = {
    "LL": (((STUDENT, SLOPE), (STUDENT, IDENTITY), (STUDENT, SLOPE), (STUDENT, IDENTITY)), 2),
    "LN": (((STUDENT, SLOPE), (STUDENT, IDENTITY), (STUDENT, SLOPE), (TEACHER, IDENTITY)), 2),
    "NN": (((STUDENT, SLOPE), (TEACHER, IDENTITY), (STUDENT, SLOPE), (TEACHER, IDENTITY)), 2),
    "LE": (((STUDENT, SLOPE), (STUDENT, IDENTITY), (STUDENT, SLOPE), (STUDENT, SLOPE)), 3),
    "EN": (((STUDENT, SLOPE), (STUDENT, SLOPE), (STUDENT, SLOPE), (TEACHER, IDENTITY)), 3),
    "EE": (((STUDENT, SLOPE), (STUDENT, SLOPE), (STUDENT, SLOPE), (STUDENT, SLOPE)), 4),
}

#: Polynomial names of the trained readout's free vertices: ``sigma(lambda_j)`` (no readout weight)
#: and the constant 1, which pads an average with fewer than four free factors to four axes
#: (a vertex of degree 0 only: it never carries an edge, and its axis is constant).
ACTIVATION, ONE = "student", "one"

#: The averages of a trained readout's increment ``s_j = eta_a sigma(lambda_j) (g + s xi)``
#: against ``q``, ``r`` and itself (first axis ``j``; padded axes of :data:`ONE` last):
#: ``AL = <sigma_j E_m lambda_n ...>``, ``AN = <sigma_j E_m nu_r ...>``, ``AE = <sigma_j E_m E_n ...>``,
#: ``AA = <sigma_j sigma_m (g + s xi)**2>``.
READOUT_MOMENT_LAYOUT: dict[str, tuple[tuple[tuple[str, str], ...], int]] = {
    "AL": (((STUDENT, ACTIVATION), (STUDENT, SLOPE), (STUDENT, IDENTITY), (STUDENT, ONE)), 2),
    "AN": (((STUDENT, ACTIVATION), (STUDENT, SLOPE), (TEACHER, IDENTITY), (STUDENT, ONE)), 2),
    "AE": (((STUDENT, ACTIVATION), (STUDENT, SLOPE), (STUDENT, SLOPE), (STUDENT, ONE)), 3),
    "AA": (((STUDENT, ACTIVATION), (STUDENT, ACTIVATION), (STUDENT, ONE), (STUDENT, ONE)), 2),
}

#: The layouts by name: the increment covariance of (q, r), and the trained readout's blocks.
INCREMENTS, READOUT = "increments", "readout"
LAYOUTS = {INCREMENTS: MOMENT_LAYOUT, READOUT: READOUT_MOMENT_LAYOUT}

#: ``<(g + s xi)**n>`` over ``xi ~ N(0, 1)``: ``{n: ((power of g, integer coefficient, power of Delta), ...)}``.
NOISE_EXPANSION: dict[int, tuple[tuple[int, int, int], ...]] = {
    2: ((2, 1, 0), (0, 1, 1)),
    3: ((3, 1, 0), (1, 3, 1)),
    4: ((4, 1, 0), (2, 6, 1), (0, 3, 2)),
}

#: Bump when the layout of the tables changes.
NETWORK_TABLE_VERSION = 1


@dataclass(frozen=True)
class Group:
    """Networks with one support: ``pairs`` carry the edges, ``networks`` the numbers.

    Each network is ``(weight, edge multiplicities)``: the weight is the number of labelled
    multigraphs in its orbit, then one multiplicity per pair of ``pairs`` (all >= 1); a
    vertex's degree is the sum of the multiplicities of its pairs.
    """

    pairs: tuple[tuple[int, int], ...]
    networks: tuple[tuple[int, tuple[int, ...]], ...]


@dataclass(frozen=True)
class Part:
    """``coefficient * Delta**delta_power * <F_1 F_2 F_3 F_4 g**residuals>`` as network groups."""

    coefficient: int
    delta_power: int
    residuals: int
    groups: tuple[Group, ...]


def vertex_polynomials(model: Model, layout: str = INCREMENTS) -> dict[str, sp.Expr]:
    """The polynomials whose derivative moments the vertices use (readouts applied numerically)."""
    polynomials = {
        SLOPE: sp.diff(model.student_activation, x),
        IDENTITY: x,
        "student": model.student_activation,
        "teacher": model.teacher_activation,
    }
    if layout == READOUT:
        polynomials[ONE] = sp.Integer(1)
    return polynomials


def _allowed_degrees(polynomial: sp.Expr) -> frozenset[int]:
    coefficients = polynomial_coefficients(sp.expand(polynomial))
    return frozenset(d for d in range(len(coefficients)) if derivative_moments(coefficients, d))


def derivative_moment_table(polynomial: sp.Expr) -> tuple[tuple[sp.Expr, ...], ...]:
    """``E[f^(d)(u)]``, ``u ~ N(0, v)``, for ``d = 0 .. deg f``: coefficients of ``v**0, v**1, ...``."""
    coefficients = polynomial_coefficients(sp.expand(polynomial))
    table = []
    for order in range(len(coefficients)):
        terms = dict(derivative_moments(coefficients, order))
        top = max(terms, default=-1)
        table.append(tuple(terms.get(t, sp.Integer(0)) for t in range(top + 1)))
    return tuple(table)


def free_symmetries(free: tuple[tuple[str, str], ...]) -> tuple[tuple[int, ...], ...]:
    """Permutations of the free vertices that keep every vertex's index kind and polynomial."""
    return tuple(
        permutation
        for permutation in itertools.permutations(range(len(free)))
        if all(free[permutation[a]] == free[a] for a in range(len(free)))
    )


def _part_networks(
    free: tuple[tuple[str, str], ...], allowed: dict[str, frozenset[int]], residuals: int
) -> dict[Edges, int]:
    """Canonical multigraphs up to permutations of the residual vertices and the free symmetries.

    Returns ``{canonical edge list: number of labelled multigraphs in its orbit}``. Labelled
    multigraphs are first collected up to the residual permutations
    (:func:`derive.gauss.orbits.residual_orbits`), then those classes up to :func:`free_symmetries`.
    """
    allowed_free = [allowed[polynomial] for _, polynomial in free]
    classes = residual_orbits(allowed_free, allowed["student"] | allowed["teacher"], residuals)
    n_free = len(free)
    symmetries = free_symmetries(free)
    orbits: dict[Edges, int] = {}
    seen: set[Edges] = set()
    for edges in classes:
        if edges in seen:
            continue
        images = set()
        for permutation in symmetries:
            moved: dict[tuple[int, int], int] = {}
            for a, b, m in edges:
                a, b = (permutation[a] if a < n_free else a), (permutation[b] if b < n_free else b)
                moved[(min(a, b), max(a, b))] = m
            images.add(canonical(moved, n_free, residuals)[0])
        seen |= images
        # the orbit under both groups is the union of the residual orbits of the images
        orbits[min(images)] = sum(classes[image] for image in images)
    return orbits


def _group(networks: dict[Edges, int]) -> tuple[Group, ...]:
    by_support: dict[tuple[tuple[int, int], ...], list[tuple[int, tuple[int, ...]]]] = {}
    for edges, count in networks.items():
        support = tuple((a, b) for a, b, _ in edges)
        by_support.setdefault(support, []).append((count, tuple(m for _, _, m in edges)))
    return tuple(Group(support, tuple(sorted(entries))) for support, entries in sorted(by_support.items()))


@cache
def network_tables(model: Model, layout: str = INCREMENTS) -> dict[str, tuple[Part, ...]]:
    """Every average of the layout (:data:`LAYOUTS`) as its noise parts, each a tuple of network groups."""
    polynomials = vertex_polynomials(model, layout)
    allowed = {name: _allowed_degrees(polynomial) for name, polynomial in polynomials.items()}
    tables = {}
    for name, (free, order) in LAYOUTS[layout].items():
        parts = []
        for residuals, coefficient, delta_power in NOISE_EXPANSION[order]:
            networks = _part_networks(free, allowed, residuals)
            if networks:
                parts.append(Part(coefficient, delta_power, residuals, _group(networks)))
        tables[name] = tuple(parts)
    return tables


def network_count(model: Model) -> dict[str, int]:
    """Number of networks (up to permutations of the residual vertices and the free symmetries) per average."""
    return {
        name: sum(len(group.networks) for part in parts for group in part.groups)
        for name, parts in network_tables(model).items()
    }


def table_text(model: Model, layout: str = INCREMENTS) -> str:
    """Canonical text of the tables and the vertex polynomials' derivative moments (for the result hash)."""
    lines = [f"version={NETWORK_TABLE_VERSION}"]
    if layout != INCREMENTS:  # the increments' text (and so the committed hashes) stays as it was
        lines.append(f"layout={layout}")
    for name, (free, _) in LAYOUTS[layout].items():
        lines.append(f"{name}:{free}:{free_symmetries(free)}")
    for name, polynomial in vertex_polynomials(model, layout).items():
        table = derivative_moment_table(polynomial)
        lines.append(f"{name}=" + ";".join(",".join(sp.srepr(c) for c in row) for row in table))
    for name, parts in network_tables(model, layout).items():
        for part in parts:
            lines.append(f"{name}|{part.coefficient}|{part.delta_power}|{part.residuals}")
            for group in part.groups:
                lines.append(f"  {group.pairs}:{group.networks}")
    return "\n".join(lines)


def network_result_hash(model: Model, layout: str = INCREMENTS) -> str:
    """Hash of the canonical tables (printer independent)."""
    return hashlib.sha256(table_text(model, layout).encode()).hexdigest()[:16]


__all__ = [
    "ACTIVATION",
    "IDENTITY",
    "INCREMENTS",
    "LAYOUTS",
    "MOMENT_LAYOUT",
    "ONE",
    "READOUT",
    "READOUT_MOMENT_LAYOUT",
    "NETWORK_TABLE_VERSION",
    "NOISE_EXPANSION",
    "RESIDUAL",
    "SLOPE",
    "STUDENT",
    "TEACHER",
    "UNIT",
    "Group",
    "Part",
    "derivative_moment_table",
    "free_symmetries",
    "network_count",
    "network_result_hash",
    "network_tables",
    "table_text",
    "vertex_polynomials",
]
