"""The path integral of the relu eta**2 term per student pair: statics, node rules, integrand.

:mod:`numerics.kernels.relu_pairs` needs ``E[theta(z_j) theta(z_l) h(z)**2]``, ``h = sum_u c_u relu(z_u)``,
for every student pair ``(j, l)``. Along the path of :func:`pair_integrals` ``z_j`` stays itself and a
copy ``x`` of ``z_l`` has its covariances with the units scaled by ``t``: at ``t = 1`` ``x = z_l``, at
``t = 0`` ``x`` is independent and the average is ``E[theta(z_j) h**2] / 2`` (:func:`theta_relu_square`,
an integral of ``O(p + k)`` per node). Price's theorem turns the average into

    start + int_0^1 [ C_lj p(z_j = x = 0) E[h**2 | z_j = x = 0]
                      + 2 sum_{m,u} C_lm c_m c_u E[delta(x) theta(z_j) theta(z_m) relu(z_u)] ] dt,

the first term by the arc-cosine kernel, the second by Tallis' formula (a unit ``m`` parallel to ``j``
by the two-unit one: ``theta(z_m) theta(z_j)`` is ``theta(z_j)`` or 0). Every conditional covariance is
a static Schur complement given ``z_j`` (or ``z_l``) plus terms in ``t``; ``Cov(z | z_j = x = 0)`` is one
rank-one update of the matrix given ``z_j``. Per pair and node, the work on ``(p + k) x (p + k)``
matrices is that update, the determinants of the 2 x 2 blocks, two arctangents (the correlations of
``(z_m, z_u)`` given ``(z_j, x)`` and of ``(z_j, z_u)`` given ``(x, z_m)``, sharing the square root of the
determinant) and five matrix-vector products; all the rest is ``O(p + k)`` per node and done for all
nodes at once.

The nodes follow the integrand's closest singularity (:func:`node_rules`).

Why the cost stays ``O(p**2 (p + k)**2)`` per node, not ``O(p**3)``: the value of a pair is
``sum_{u,v} c_u c_v E[theta_j theta_l relu_u relu_v]``, and each term holds a four-variate orthant
probability, which has no closed form. On any path of this kind its ``(u, v)`` dependence passes
through the orthant probability of ``(z_u, z_v)`` given the two theta units, ``arcsin`` of their
conditional correlation, and that correlation changes with the pair by a rank-one update of the
covariance given ``z_j`` (a different update for every ``l`` and node) under a square root and an
arcsine: neither a product of a factor in ``u`` and one in ``v`` (no ``O(p + k)`` sum over ``(u, v)``)
nor a matrix product (the arcsine of a rank-one update is not a low-rank update of the arcsine), so
``(p + k)**2`` elementary evaluations per pair and node remain. What is shared is all the rest: the
Schur complements, the start values, the nodes, the readout sums.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from numerics.kernels.relu_quadrature import FAST_PANEL_EDGES, NEAR, PANEL_EDGES, TWO_PI, arccos_kernel, path_nodes

#: 1 - |rho| at or below which two units count as parallel (no residual of one given the other).
PARALLEL = 1e-15
#: Floor of the determinants of 2 x 2 blocks (their square roots divide; a zero one means a parallel pair).
TINY = 1e-300
#: Elements per (pairs, nodes, n, n) temporary array of the path integrals (they stay in cache).
PAIR_CHUNK_ELEMENTS = 1 << 14


def pair_statics(C: np.ndarray, weights: np.ndarray, count: int) -> dict:
    """What every pair's path shares: Schur complements given each student, parallel and nearly parallel units.

    Parameters
    ----------
    C : array, shape (batch, n, n)
        Covariances of the units (positive diagonal).
    weights : array, shape (batch, n)
        The readout ``c`` of every unit in ``h``.
    count : int
        The students are the first ``count`` units.

    Returns
    -------
    dict
        ``schur`` (batch, count, n, n): ``Cov(z | z_J = 0)``, rows and columns of units parallel to ``J``
        exactly 0; ``residual`` (batch, count, n) its diagonal; ``regress`` (batch, count, n):
        ``C_J / C_JJ``; ``parallel`` and ``near`` (batch, n, n) masks; ``mask``: ``parallel`` when some
        parallel units are not identical, else None; ``C`` and ``weights``.
    """
    diag = np.diagonal(C, axis1=-2, axis2=-1)
    rho = np.abs(C) / np.sqrt(diag[:, :, None] * diag[:, None, :])
    parallel = 1 - rho <= PARALLEL
    rows = C[:, :count]
    variance = diag[:, :count]
    schur = C[:, None] - rows[:, :, :, None] * rows[:, :, None, :] / variance[:, :, None, None]
    cut = parallel[:, :count]
    schur[cut[:, :, :, None] | cut[:, :, None, :]] = 0.0
    return {"C": C, "weights": weights, "schur": schur, "regress": rows / variance[:, :, None],
            "residual": np.maximum(np.diagonal(schur, axis1=-2, axis2=-1), 0.0), "parallel": parallel,
            "near": ~parallel & (1 - rho < NEAR), "mask": parallel if np.any(parallel & ~_identical(C)) else None}


#: The node rules of a pair, from the closest singularity of its integrand (:func:`node_rules`): one or two
#: panels in the angle ``theta`` (``t = cos(theta)``), three panels in ``s``, panels graded towards ``s = 0``.
ONE_PANEL, TWO_PANELS, THREE_PANELS, GRADED = range(4)
#: Panel edges in ``theta`` of the first two rules.
ANGLE_EDGES = {ONE_PANEL: np.array([0.0, math.pi / 2]), TWO_PANELS: np.array([0.0, 0.3, math.pi / 2])}
#: Largest squared multiple correlation ``R**2`` of a pair's copied unit on three others for one and for two
#: panels in ``theta``; up to ``1 - 2 NEAR`` three panels in ``s``, beyond it graded panels.
ONE_PANEL_EXPLAINED, TWO_PANEL_EXPLAINED = 0.5, 0.95
#: ``1 - R**2`` at or below which the units are exactly dependent (rounding): the singularity is at ``s = 0``.
DEPENDENT = 1e-13


@functools.lru_cache(maxsize=16)
def node_set(nodes: int, rule: int) -> tuple[np.ndarray, np.ndarray]:
    """The path nodes ``s = sqrt(1 - t)`` and their weights in ``t``, arrays of shape (panels * nodes,), of a rule.

    ``rule`` is :data:`ONE_PANEL`, :data:`TWO_PANELS` (Gauss-Legendre in ``theta = arccos(t)`` on
    :data:`ANGLE_EDGES`), :data:`THREE_PANELS` or :data:`GRADED` (Gauss-Legendre in ``s`` on the panels of
    :mod:`numerics.kernels.relu_quadrature`); ``nodes`` per panel. Made once per rule and node count.
    """
    if rule in ANGLE_EDGES:
        x, w = np.polynomial.legendre.leggauss(nodes)
        edges = ANGLE_EDGES[rule]
        angle = np.concatenate([lo + (hi - lo) * (x + 1) / 2 for lo, hi in zip(edges[:-1], edges[1:])])
        # t = cos(angle): s = sqrt(1 - t) = sqrt(2) sin(angle / 2) exactly, dt = sin(angle) d(angle)
        s = math.sqrt(2) * np.sin(angle / 2)
        weight = np.concatenate([(hi - lo) / 2 * w for lo, hi in zip(edges[:-1], edges[1:])]) * np.sin(angle)
    else:
        s, weight = path_nodes(nodes, PANEL_EDGES if rule == GRADED else FAST_PANEL_EDGES)
    s.flags.writeable = weight.flags.writeable = False
    return s, weight


def node_rules(statics: dict, b: np.ndarray, j: np.ndarray, l: np.ndarray) -> np.ndarray:
    """``(items,)``: the node rule of every pair ``(j, l)`` from the largest ``R**2`` of ``z_l`` on ``z_j, z_m, z_u``.

    The integrand of :func:`pair_integrals` is analytic in ``t`` except where the variance of the
    copy ``x`` of ``z_l`` given ``z_j`` and up to two more units vanishes: ``t = 1 / R`` with ``R`` the
    multiple correlation of ``z_l`` on them (units parallel to ``z_l`` put it at ``t = 1``, where the
    substitutions make the integrand smooth). In ``theta`` (``t = cos(theta)``) that singularity lies
    ``arccosh(1 / R)`` from the real axis, so a pair whose ``R`` stays small needs few nodes.

    Parameters
    ----------
    statics : dict
        From :func:`pair_statics`.
    b, j, l : int arrays, shape (items,)
        Batch index, real unit ``j`` and copied unit ``l`` of every pair.
    """
    C, schur, parallel = statics["C"], statics["schur"], statics["parallel"]
    n = C.shape[-1]
    explained = np.empty(b.size)
    step = max(1, PAIR_CHUNK_ELEMENTS // (n * n))
    for begin in range(0, b.size, step):
        part = slice(begin, begin + step)
        bb, jj, ll = b[part], j[part], l[part]
        item = np.arange(bb.size)
        # Cov(z | z_j = 0); for l parallel to j only subsets without z_j are left: Cov(z)
        S = np.where(parallel[bb, jj, ll][:, None, None], C[bb], schur[bb, jj])
        S_l = S[item, ll]
        diag = np.diagonal(S, axis1=-2, axis2=-1)
        keep = ~parallel[bb, ll]
        # a unit without residual given z_j (or parallel to z_l) explains nothing more
        inverse = np.divide(1.0, diag, out=np.zeros_like(diag), where=(diag > 0) & keep)
        # given z_j and z_m (rows): Var(z_l), Cov(z_l, z_u) and Var(z_u) (columns u)
        var_l = S_l[item, ll][:, None] - S_l * S_l * inverse
        cov = S_l[:, None, :] - (S_l * inverse)[:, :, None] * S
        var_u = diag[:, None, :] - S * S * inverse[:, :, None]
        usable = (var_u > DEPENDENT * diag[:, None, :]) & keep[:, None, :]
        gain = np.divide(cov * cov, var_u, out=np.zeros_like(var_u), where=usable)
        remaining = (var_l[:, :, None] - gain).min(axis=(-2, -1))
        explained[part] = 1 - remaining / C[bb, ll, ll]
    rule = np.full(b.size, THREE_PANELS)
    rule[explained <= TWO_PANEL_EXPLAINED] = TWO_PANELS
    rule[explained <= ONE_PANEL_EXPLAINED] = ONE_PANEL
    rule[(1 - explained < 2 * NEAR) & (1 - explained > DEPENDENT)] = GRADED
    return rule


def _identical(C: np.ndarray) -> np.ndarray:
    """``(batch, n, n)``: units that are the same variable (equal variances and covariance)."""
    diag = np.diagonal(C, axis1=-2, axis2=-1)
    return (diag[:, :, None] == diag[:, None, :]) & (C == diag[:, :, None])


def theta_relu_square(statics: dict, count: int, nodes: int) -> np.ndarray:
    """``(batch, count)``: ``E[theta(z_J) h**2]`` for every student ``J``, by a path integral of ``O(n)`` per node.

    A copy ``y`` of ``z_J`` whose covariances with the units grow as ``tau C_J``: at ``tau = 0`` the
    average is ``E[h**2] / 2`` (arc-cosine kernel), and by Price's theorem its derivative is
    ``2 sum_m C_Jm c_m E[delta(y) theta(z_m) h]``, where ``E[theta(z_m) relu(z_u) | y = 0]`` is
    ``(Cov(z_m, z_u) / sqrt(Var z_m) + sqrt(Var z_u)) / (2 sqrt(2 pi))``: its sum over ``u`` needs only
    ``Cov(z | y = 0) c``, a static Schur complement times ``c`` plus a multiple of ``C_J``. Always on
    the graded panels (the cost is negligible).

    Parameters
    ----------
    statics : dict
        From :func:`pair_statics`.
    count : int
        The students are the first ``count`` units.
    nodes : int
        Gauss-Legendre nodes per panel.
    """
    C, c = statics["C"], statics["weights"]
    size, n, _ = C.shape
    s, weight = node_set(nodes, GRADED)
    shrink = s * s * (2 - s * s)
    rows, regress, residual = C[:, :count], statics["regress"], statics["residual"]
    variance = np.diagonal(C, axis1=-2, axis2=-1)[:, :count]
    q = rows * c[:, None, :]
    schur_c = np.matmul(statics["schur"], c[:, None, :, None])[..., 0]
    regress_c = regress * np.einsum("bjn,bn->bj", rows, c)[..., None]
    out = np.einsum("bu,buv,bv->b", c, arccos_kernel(np.diagonal(C, axis1=-2, axis2=-1)[:, :, None], C,
                                                     np.diagonal(C, axis1=-2, axis2=-1)[:, None, :]), c)[:, None] / 2
    out = np.repeat(out, count, axis=1)
    flat = (size * count, n)
    q, schur_c, regress_c = q.reshape(flat), schur_c.reshape(flat), regress_c.reshape(flat)
    spread = (variance[..., None] * regress**2).reshape(flat)
    residual, c_rows = residual.reshape(flat), np.repeat(c, count, axis=0)
    integral = np.empty(size * count)
    step = max(1, PAIR_CHUNK_ELEMENTS // (s.size * n))
    for begin in range(0, size * count, step):
        part = slice(begin, begin + step)
        # Var(z | y = 0) from its non-negative parts, and Cov(z | y = 0) c
        var = residual[part, None, :] + shrink[:, None] * spread[part, None, :]
        cov_c = schur_c[part, None, :] + shrink[:, None] * regress_c[part, None, :]
        root = np.sqrt(var)
        bracket = (q[part, None, :] / root * cov_c).sum(-1)
        bracket += q[part].sum(-1)[:, None] * (c_rows[part, None, :] * root).sum(-1)
        integral[part] = bracket @ weight
    return out + integral.reshape(size, count) / (TWO_PI * np.sqrt(variance))


def pair_integrals(statics: dict, b: np.ndarray, j: np.ndarray, l: np.ndarray, nodes: int, rule: int) -> np.ndarray:
    """``(items,)``: the path integral (without its start value) of the pairs ``(j[i], l[i])`` of batch ``b[i]``.

    Parameters
    ----------
    statics : dict
        From :func:`pair_statics`.
    b, j, l : int arrays, shape (items,)
        Batch index, real unit ``j`` and copied unit ``l`` (students) of every pair.
    nodes, rule : int
        Gauss-Legendre nodes per panel and the node rule (:func:`node_set`).
    """
    s, weight = node_set(nodes, rule)
    n = statics["C"].shape[-1]
    out = np.empty(b.size)
    # chunks small enough for the temporaries to stay in cache: items, and nodes when one item is too big
    per_node = max(1, min(s.size, PAIR_CHUNK_ELEMENTS // (n * n)))
    step = max(1, PAIR_CHUNK_ELEMENTS // (s.size * n * n))
    for begin in range(0, b.size, step):
        items = slice(begin, begin + step)
        vectors = _pair_vectors(statics, b[items], j[items], l[items], s)
        products = np.empty(vectors["var"].shape + (6,))
        schur_j = statics["schur"][b[items], j[items]]
        mask = None if statics["mask"] is None else statics["mask"][b[items]][:, None]
        for first_node in range(0, s.size, per_node):
            part = slice(first_node, first_node + per_node)
            with np.errstate(over="ignore"):  # a correlation of a parallel pair: arctan(+-inf) = +-pi/2
                _orthant_products(schur_j, {name: value[:, part] for name, value in vectors.items()
                                            if value.ndim >= 3}, vectors["c"], mask, products[:, part])
        out[items] = _integrand(vectors, products) @ weight
    return out


def _pair_vectors(statics: dict, b: np.ndarray, j: np.ndarray, l: np.ndarray, s: np.ndarray) -> dict:
    """The ``O(p + k)`` quantities of every node: ``(items, nodes, n)`` vectors, ``(items, nodes)`` scalars."""
    C, c = statics["C"][b], statics["weights"][b]
    schur, regress, residual = statics["schur"], statics["regress"], statics["residual"]
    item = np.arange(b.size)
    a_j, a_l, c_jl = C[item, j, j], C[item, l, l], C[item, j, l]
    s2 = s * s
    shrink = s2 * (2 - s2)  # 1 - t**2, exact in s
    t = 1 - s2
    # Var(x | z_j = 0) from its non-negative parts; exactly shrink c_jl**2 / a_j for l parallel to j
    var_x = schur[b, j, l, l][:, None] + shrink * (c_jl * c_jl / a_j)[:, None]
    along = (t / np.sqrt(var_x))[..., None] * schur[b, j, l][:, None, :]  # Cov(z, x | z_j) / sqrt(Var(x | z_j))
    # the diagonal of Cov(z | z_j = x = 0), the same operations as on the matrix (equal units, equal bits)
    var = np.maximum(np.diagonal(schur[b, j], axis1=-2, axis2=-1)[:, None, :] - along * along, 0.0)
    # given x = 0: Var(z), and Cov(z, z_j) / sqrt(Var(z_j)), static Schur complements given z_l plus shrink terms
    r_l = regress[b, l]
    var_a = residual[b, l][:, None, :] + shrink[:, None] * (a_l[:, None] * r_l * r_l)[:, None, :]
    cov_j = schur[b, l, j][:, None, :] + shrink[:, None] * (a_l * r_l[item, j])[:, None, None] * r_l[:, None, :]
    gamma = cov_j / np.sqrt(var_a[item, :, j])[..., None]
    q = C[item, l] * c
    with_j = statics["parallel"][b, j]
    # theta(z_m) theta(z_j) is theta(z_j) for m parallel to j with the same sign, 0 with the other
    same = (q * (with_j & (C[item, j] > 0))).sum(-1)
    q = np.where(with_j, 0.0, q)
    gamma_c = gamma * c[:, None, :]
    both = np.stack([gamma_c, np.broadcast_to(q[:, None, :], gamma_c.shape)], axis=-2)
    return {"along": along, "var": var, "var_a": var_a, "gamma": gamma, "gamma_c": gamma_c, "both": both,
            "scale": 1 / np.sqrt(var_a), "q": q, "same": same, "c": c,
            "a_j": a_j, "a_l": a_l, "c_jl": c_jl, "var_x": var_x}


def _orthant_products(schur_j, vectors, c, mask, out):
    """The matrix work of some nodes: ``out[..., :]`` = ``K c``, ``sigma c``, ``A gamma_c``, ``X gamma_c``, ``X q``,
    ``(sigma * X) c``.

    ``sigma = Cov(z | z_j = x = 0)``; ``A[m, u]`` = arcsin of the correlation of ``(z_m, z_u)`` given ``(z_j, x)``
    and ``K = root + sigma (A + pi / 2)`` the arc-cosine kernel times ``2 pi``; ``X[m, u]`` = arcsin of the
    correlation of ``(z_j, z_u)`` given ``(x, z_m)``, whose ``sqrt(1 - rho**2)`` is ``root[m, u]`` times
    ``sqrt(Var(z_j | x))`` / ``sqrt(Var(z_m | x))``. ``X`` is formed transposed, so that its row factors are
    column factors (contiguous); its diagonal is exactly 0 (a unit given itself).
    """
    along, var, gamma, gamma_c = vectors["along"], vectors["var"], vectors["gamma"], vectors["gamma_c"]
    sigma = np.einsum("...i,...j->...ij", along, along)
    np.subtract(schur_j[:, None], sigma, out=sigma)
    det = np.einsum("...i,...j->...ij", var, var)
    det -= sigma * sigma
    # a floor instead of 0: the arctangents below then need no division by zero (a pair with det = 0 and
    # covariance 0 gets correlation 0, the convention for a unit without residual)
    np.maximum(det, TINY, out=det)
    if mask is not None:
        det[np.broadcast_to(mask, det.shape)] = TINY
    root = np.sqrt(det)
    inverse_root = np.divide(1.0, root, out=det)
    arcsin = np.multiply(sigma, inverse_root)
    np.arctan(arcsin, out=arcsin)
    kernel = np.multiply(arcsin, sigma)
    kernel += root
    rows = c[:, None, None, :]  # broadcast over the nodes by matmul
    out[..., 0] = np.matmul(rows, kernel)[..., 0, :]  # symmetric: c^T K = (K c)^T
    out[..., 1] = np.matmul(rows, sigma)[..., 0, :]
    out[..., 2] = np.matmul(gamma_c[..., None, :], arcsin)[..., 0, :]
    # transposed[u, m] = X[m, u], numerator exactly 0 for u = m and for equal units
    transposed = np.einsum("...i,...j->...ij", gamma, var)
    transposed -= sigma * gamma[..., None, :]
    if mask is not None:
        transposed[np.broadcast_to(mask, transposed.shape)] = 0.0
    transposed *= inverse_root
    transposed *= vectors["scale"][..., None, :]
    n = var.shape[-1]
    transposed.reshape(transposed.shape[:-2] + (n * n,))[..., :: n + 1] = 0.0  # a rounded diagonal: keep it 0
    np.arctan(transposed, out=transposed)
    out[..., 3:5] = np.matmul(vectors["both"], transposed).swapaxes(-1, -2)
    transposed *= sigma
    out[..., 5] = np.matmul(rows, transposed)[..., 0, :]


def _integrand(vectors: dict, products: np.ndarray) -> np.ndarray:
    """``(items, nodes)``: the integrand from the matrix products, ``O(p + k)`` per node."""
    c, q, gamma, gamma_c, var_a = vectors["c"][:, None, :], vectors["q"][:, None, :], vectors["gamma"], \
        vectors["gamma_c"], vectors["var_a"]
    kernel_c, sigma_c, arcsin_gc, x_gc, x_q, sigma_x = np.moveaxis(products, -1, 0)
    a_j, a_l, c_jl = vectors["a_j"][:, None], vectors["a_l"][:, None], vectors["c_jl"][:, None]
    # C_lj p(z_j = x = 0) E[h**2 | z_j = x = 0], the pi / 2 part of the kernel from sigma c
    mean_square = ((kernel_c + math.pi / 2 * sigma_c) * c).sum(-1) / TWO_PI
    total = c_jl * mean_square / (TWO_PI * np.sqrt(a_j * vectors["var_x"]))
    # Tallis: k = z_j (density of z_j at 0 given x, times the orthant of (z_m, z_u) given z_j = x = 0)
    q_sum, gamma_c_sum = q.sum(-1), gamma_c.sum(-1)
    first = q_sum * gamma_c_sum / 4 + (q * arcsin_gc).sum(-1) / TWO_PI
    # k = z_m and k = z_u
    g = q / np.sqrt(TWO_PI * var_a)
    h = c * np.sqrt(var_a / TWO_PI)
    second = ((g * sigma_c).sum(-1) + (g * gamma).sum(-1) * gamma_c_sum) / 4
    second += ((g * sigma_x).sum(-1) + (g * gamma * x_gc).sum(-1)) / TWO_PI
    second += q_sum * h.sum(-1) / 4 + (h * x_q).sum(-1) / TWO_PI
    total += 2 * (first / math.sqrt(TWO_PI) + second) / np.sqrt(TWO_PI * a_l)
    # units parallel to j: the two-unit Tallis formula E[theta(z_j) relu(z_u) | x = 0]
    total += vectors["same"][:, None] * ((gamma_c + c * np.sqrt(var_a)).sum(-1)) / (TWO_PI * np.sqrt(a_l))
    return total


__all__ = [
    "ANGLE_EDGES",
    "DEPENDENT",
    "GRADED",
    "ONE_PANEL",
    "ONE_PANEL_EXPLAINED",
    "PAIR_CHUNK_ELEMENTS",
    "PARALLEL",
    "THREE_PANELS",
    "TINY",
    "TWO_PANELS",
    "TWO_PANEL_EXPLAINED",
    "node_rules",
    "node_set",
    "pair_integrals",
    "pair_statics",
    "theta_relu_square",
]
