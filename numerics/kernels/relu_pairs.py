"""The eta**2 term of relu networks as one path integral per pair of theta units, shared by all unit pairs.

The term needs ``E[theta(z_j) theta(z_l) h(z)**2]`` with ``h = y - f = sum_u c_u relu(z_u)``
(``c = (-a, b)``), i.e. the 4-slot average of :mod:`numerics.kernels.relu_quadrature`
summed over the unit pairs ``(u, v)`` with weights ``c_u c_v``. That module integrates
along a path per block ``(j, l, u, v)``. Here one path per student pair ``(j, l)`` serves every
``(u, v)`` at once (:func:`_pair_integrand`): ``z_j`` stays itself and a copy ``x`` of ``z_l``
has its covariances with the units scaled by ``t`` (at ``t = 0`` the average is
``E[theta(z_j) h**2] / 2``, an integral of ``O(p + k)`` per node, :func:`_theta_relu_square`).
Every conditional covariance is then a static Schur complement given ``z_j`` (or ``z_l``) plus
terms in ``t``, and ``Cov(z | z_j = x = 0)`` is one rank-one update of the matrix given ``z_j``,
so a node costs about twenty elementwise passes over ``(p + k) x (p + k)`` matrices (two of
them arctangents) and five matrix-vector products, per student pair.

The nodes follow the integrand's closest singularity (:func:`_node_rules`): it lies at
``t = 1 / R`` with ``R`` the multiple correlation of ``z_l`` on ``z_j`` and two more units, so
pairs far from any dependence take one or two panels of Gauss-Legendre nodes in
``theta = arccos(t)`` (12 or 24 nodes), the others the three panels in ``s = sqrt(1 - t)`` of
:mod:`numerics.kernels.relu_quadrature` (36) or its graded ones (120).

Why the cost stays ``O(p**2 (p + k)**2)`` per node, not ``O(p**3)``: the value of a pair is
``sum_{u,v} c_u c_v E[theta_j theta_l relu_u relu_v]``, and each term holds a four-variate
orthant probability, which has no closed form. On any path of this kind its ``(u, v)``
dependence passes through the orthant probability of ``(z_u, z_v)`` given the two theta units,
``arcsin`` of their conditional correlation, and that correlation changes with the pair by a
rank-one update of the covariance given ``z_j`` (a different update for every ``l`` and node)
under a square root and an arcsine: neither a product of a factor in ``u`` and one in ``v``
(no ``O(p + k)`` sum over ``(u, v)``) nor a matrix product (the arcsine of a rank-one update is
not a low-rank update of the arcsine), so ``(p + k)**2`` elementary evaluations per pair and
node remain. What is shared is all the rest: the Schur complements, the start values, the
nodes, the readout sums (matrix-vector products).

:func:`is_relu_diffusion` recognises a generated module whose eta**2 kernels are exactly
that average (the generator prints them as one call), so that
:mod:`numerics.kernels.unit_tuples` can take this route.
"""

from __future__ import annotations

import dis
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from numerics.kernels import relu_quadrature
from numerics.kernels.relu_quadrature import (
    FAST_PANEL_EDGES,
    NEAR,
    NODES,
    PANEL_EDGES,
    TWO_PI,
    arccos_kernel,
    path_nodes,
)


def theta_pairs_relu_square(C: np.ndarray, weights: np.ndarray, count: int, nodes: int = NODES) -> np.ndarray:
    """``E[theta(z_j) theta(z_l) h(z)**2]``, ``h = sum_u weights_u relu(z_u)``, for all ``j, l < count``.

    The sum over the unit pairs ``(u, v)`` of ``weights_u weights_v theta_theta_relu_relu`` (the
    4-slot average of :mod:`numerics.kernels.relu_quadrature`; the eta**2 term of relu networks
    with ``h = y - f``), by one path integral per pair ``(j, l)`` shared by every ``(u, v)``.

    Parameters
    ----------
    C : array, shape (..., n, n)
        Covariances of the units (positive semi-definite, positive diagonal); batch axes broadcast
        against those of ``weights``.
    weights : array, shape (..., n)
        The readout of every unit in ``h``.
    count : int
        The pairs ``(j, l)`` run over the first ``count`` units (the students).
    nodes : int
        Gauss-Legendre nodes per panel of the path integral (module docstring).

    Returns
    -------
    array, shape (..., count, count)
        The averages, symmetric in ``(j, l)``.

    Raises
    ------
    ValueError
        When ``C`` is not a stack of square matrices, ``weights`` does not have one entry per unit,
        ``count`` is not between 1 and n, or a diagonal entry is not positive.
    """
    C = np.asarray(C, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if C.ndim < 2 or C.shape[-1] != C.shape[-2]:
        raise ValueError(f"C must have shape (..., n, n), got {C.shape}")
    n = C.shape[-1]
    if weights.ndim < 1 or weights.shape[-1] != n:
        raise ValueError(f"weights must have shape (..., n) with n = {n} units, got {weights.shape}")
    if not 1 <= count <= n:
        raise ValueError(f"count must lie between 1 and the number of units {n}, got {count}")
    if not np.all(np.diagonal(C, axis1=-2, axis2=-1) > 0):
        raise ValueError("every diagonal entry of C must be positive (a unit of zero norm has no defined theta)")
    batch = np.broadcast_shapes(C.shape[:-2], weights.shape[:-1])
    C = np.broadcast_to(C, batch + (n, n)).reshape(-1, n, n)
    weights = np.broadcast_to(weights, batch + (n,)).reshape(-1, n)
    first, second = np.triu_indices(count)
    values = _pair_values(C, weights, count, first, second, nodes)
    out = np.empty((C.shape[0], count, count))
    out[:, first, second] = values
    out[:, second, first] = values
    return out.reshape(batch + (count, count))


#: The arguments of a 4-slot kernel, in the order the generator prints them (derive/codegen/tuples.py).
BLOCK_ARGUMENTS = ("c00", "c01", "c02", "c03", "c11", "c12", "c13", "c22", "c23", "c33")
#: The kernels of the eta**2 term (student-student, student-teacher, teacher-teacher unit pairs).
DIFFUSION_KERNELS = ("diffusion_ss", "diffusion_st", "diffusion_tt")
#: Bytecode steps that differ between Python versions and compilation contexts, not between programs.
_NEUTRAL_STEPS = {"RESUME", "PRECALL", "CACHE", "PUSH_NULL", "NOP", "COPY_FREE_VARS", "MAKE_CELL"}
#: Spellings of the same step in different Python versions.
_SAME_STEP = {"LOAD_METHOD": "LOAD_ATTR", "CALL_METHOD": "CALL", "CALL_FUNCTION": "CALL"}


def _steps(code) -> list[tuple[str, Any]]:
    return [
        (_SAME_STEP.get(step.opname, step.opname), step.argval)
        for step in dis.get_instructions(code)
        if step.opname not in _NEUTRAL_STEPS
    ]


# the body the generator prints for a kernel that is exactly theta_theta_relu_relu of its block
_GENERATED_CALL = _steps(
    compile(
        f"def kernel({', '.join(BLOCK_ARGUMENTS)}):\n"
        f"    return _relu.theta_theta_relu_relu({', '.join(BLOCK_ARGUMENTS)})\n",
        "<generated kernel>",
        "exec",
    ).co_consts[0]
)


def is_quadrature_kernel(kernel: Callable[..., Any]) -> bool:
    """Whether ``kernel`` is a generated kernel that returns ``theta_theta_relu_relu`` of its block, unchanged.

    Its code must be the generator's plain call (the same steps on the same names, the arguments in
    the same order) and its ``_relu`` must be :mod:`numerics.kernels.relu_quadrature`: anything else
    (a scaled or reordered call, another average) is not.
    """
    code = getattr(kernel, "__code__", None)
    return (
        code is not None
        and code.co_varnames == BLOCK_ARGUMENTS
        and getattr(kernel, "__globals__", {}).get("_relu") is relu_quadrature
        and _is_generated_call(code)
    )


@functools.lru_cache(maxsize=256)
def _is_generated_call(code) -> bool:
    # cached: the right-hand side asks on every call, and reading the bytecode costs tens of microseconds
    return _steps(code) == _GENERATED_CALL


def is_relu_diffusion(kernels: Mapping[str, Callable[..., Any]]) -> bool:
    """Whether every eta**2 kernel of a generated module is the relu average (then :func:`diffusion_term` applies)."""
    return all(is_quadrature_kernel(kernels.get(name)) for name in DIFFUSION_KERNELS)


def diffusion_term(C: np.ndarray, a: np.ndarray, b: np.ndarray, nodes: int = NODES) -> np.ndarray:
    """The eta**2 term of dQ of a relu network, ``a_j a_l E[theta(lambda_j) theta(lambda_l) (y - f)**2]``.

    Parameters
    ----------
    C : array, shape (..., p + k, p + k)
        Covariance of ``(lambda, nu)``, students first.
    a, b : arrays, shapes (..., p) and (..., k)
        Student and teacher readouts (``y - f = sum_r b_r relu(nu_r) - sum_j a_j relu(lambda_j)``).
    nodes : int
        Gauss-Legendre nodes per panel of the path integral.

    Returns
    -------
    array, shape (..., p, p)
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    p, k = a.shape[-1], b.shape[-1]
    batch = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    readout = np.concatenate([np.broadcast_to(-a, batch + (p,)), np.broadcast_to(b, batch + (k,))], axis=-1)
    return theta_pairs_relu_square(C, readout, p, nodes) * a[..., :, None] * a[..., None, :]


#: 1 - |rho| at or below which two units count as parallel (no residual of one given the other).
PARALLEL = 1e-15
#: Floor of the determinants of 2 x 2 blocks (their square roots divide; a zero one means a parallel pair).
TINY = 1e-300
#: Elements per (pairs, nodes, n, n) temporary array of the shared route.
PAIR_CHUNK_ELEMENTS = 1 << 14


def _pair_values(C, weights, count, first, second, nodes):
    """``(batch, pairs)`` values for the pairs ``(first[i], second[i])``; ``first`` is the real unit of the path."""
    size, n, _ = C.shape
    diag = np.diagonal(C, axis1=-2, axis2=-1)
    rho = np.abs(C) / np.sqrt(diag[:, :, None] * diag[:, None, :])
    parallel = 1 - rho <= PARALLEL
    near = ~parallel & (1 - rho < NEAR)
    near_unit = near[:, :count].any(axis=-1)
    rows = C[:, :count]
    variance = diag[:, :count]
    # Cov(z | z_J = 0) for every student J; units parallel to J keep no residual at all
    schur = C[:, None] - rows[:, :, :, None] * rows[:, :, None, :] / variance[:, :, None, None]
    cut = parallel[:, :count]
    schur[cut[:, :, :, None] | cut[:, :, None, :]] = 0.0
    residual = np.maximum(np.diagonal(schur, axis1=-2, axis2=-1), 0.0)
    statics = {"C": C, "weights": weights, "schur": schur, "regress": rows / variance[:, :, None], "residual": residual,
               "parallel": parallel, "mask": parallel if np.any(parallel & ~_identical(C)) else None}
    # t = 0: the copy of z_l independent of everything, E[theta(z_j) h**2] / 2
    start = _theta_relu_square(statics, count, nodes) / 2
    batch_index = np.repeat(np.arange(size), first.size)
    j, l = np.tile(first, size), np.tile(second, size)
    near_item = near[batch_index, j, l] | near_unit[batch_index, j] | near_unit[batch_index, l]
    rule = np.where(near_item, GRADED, _node_rules(statics, batch_index, j, l))
    out = start[batch_index, j]
    for chosen_rule in np.unique(rule):
        chosen = np.flatnonzero(rule == chosen_rule)
        s, weight = _node_set(nodes, int(chosen_rule))
        # chunks small enough for the temporaries to stay in cache: items, and nodes when one item is too big
        per_node = max(1, min(s.size, PAIR_CHUNK_ELEMENTS // (n * n)))
        step = max(1, PAIR_CHUNK_ELEMENTS // (s.size * n * n))
        for begin in range(0, chosen.size, step):
            items = chosen[begin : begin + step]
            for first_node in range(0, s.size, per_node):
                part = slice(first_node, first_node + per_node)
                with np.errstate(over="ignore"):  # a correlation of a parallel pair: arctan(+-inf) = +-pi/2
                    integrand = _pair_integrand(statics, batch_index[items], j[items], l[items], s[part])
                out[items] += integrand @ weight[part]
    return out.reshape(size, first.size)


#: The node rules of a pair, from the closest singularity of its integrand (:func:`_node_rules`): one or two
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
def _node_set(nodes: int, rule: int) -> tuple[np.ndarray, np.ndarray]:
    """The path nodes ``s`` and weights of a node rule (:data:`ONE_PANEL`, ...), made once per node count."""
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


def _node_rules(statics: dict, b: np.ndarray, j: np.ndarray, l: np.ndarray) -> np.ndarray:
    """``(items,)``: the node rule of every pair ``(j, l)`` from the largest ``R**2`` of ``z_l`` on ``z_j, z_m, z_u``.

    The integrand of :func:`_pair_integrand` is analytic in ``t`` except where the variance of the
    copy ``x`` of ``z_l`` given ``z_j`` and up to two more units vanishes: ``t = 1 / R`` with ``R`` the
    multiple correlation of ``z_l`` on them (units parallel to ``z_l`` put it at ``t = 1``, where the
    substitutions make the integrand smooth). In ``theta`` (``t = cos(theta)``) that singularity lies
    ``arccosh(1 / R)`` from the real axis, so a pair whose ``R`` stays small needs few nodes.
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


def _theta_relu_square(statics: dict, count: int, nodes: int) -> np.ndarray:
    """``(batch, count)``: ``E[theta(z_J) h**2]`` for every student ``J``, by a path integral of ``O(n)`` per node.

    A copy ``y`` of ``z_J`` whose covariances with the units grow as ``tau C_J``: at ``tau = 0`` the
    average is ``E[h**2] / 2`` (arc-cosine kernel), and by Price's theorem its derivative is
    ``2 sum_m C_Jm c_m E[delta(y) theta(z_m) h]``, where ``E[theta(z_m) relu(z_u) | y = 0]`` is
    ``(Cov(z_m, z_u) / sqrt(Var z_m) + sqrt(Var z_u)) / (2 sqrt(2 pi))``: its sum over ``u`` needs only
    ``Cov(z | y = 0) c``, a static Schur complement times ``c`` plus a multiple of ``C_J``. Always on
    the graded panels (the cost is negligible).
    """
    C, c = statics["C"], statics["weights"]
    size, n, _ = C.shape
    s, weight = _node_set(nodes, GRADED)
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


def _pair_integrand(statics: dict, b: np.ndarray, j: np.ndarray, l: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The t-integrand ``(items, nodes)`` of ``E[theta(z_j) theta(x) h**2]`` for the pairs ``(j, l)``.

    The path keeps ``Cov(z)`` and ``Var(x)`` of a copy ``x`` of ``z_l`` and scales by ``t`` its
    covariances with every unit: at ``t = 1`` ``x = z_l``, at ``t = 0`` it is independent. Price's
    theorem gives

        C_lj p(z_j = x = 0) E[h**2 | z_j = x = 0]
        + 2 sum_{m,u} C_lm c_m c_u E[delta(x) theta(z_j) theta(z_m) relu(z_u)],

    the first term by the arc-cosine kernel, the second by Tallis' formula (units ``m`` parallel to
    ``j`` by the two-unit one, ``theta(z_m) theta(z_j)`` being ``theta(z_j)`` or 0). Given ``z_j = 0``
    (a static Schur complement ``S``), ``Cov(z | z_j = x = 0) = S - t**2 S_l S_l^T / Var(x | z_j)``:
    one rank-one update of a shared matrix per pair and node, whose ``(p + k)**2`` orthant terms are
    the only work not linear in ``p + k``; the conditional correlations are formed by ``arctan``
    against ``sqrt`` of a determinant shared by the terms of both kinds.
    """
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
    sigma = schur[b, j][:, None] - along[..., :, None] * along[..., None, :]  # Cov(z | z_j = x = 0)
    var = np.maximum(np.diagonal(sigma, axis1=-2, axis2=-1), 0.0)
    det = var[..., :, None] * var[..., None, :]
    det -= sigma * sigma
    # a floor instead of 0: the arctangents below then need no division by zero (a pair with det = 0 and
    # covariance 0 gets correlation 0, the convention for a unit without residual)
    np.maximum(det, TINY, out=det)
    mask = statics["mask"]
    if mask is not None:
        det[np.broadcast_to(mask[b][:, None], det.shape)] = TINY
    root = np.sqrt(det)
    inverse_root = np.divide(1.0, root, out=det)
    arcsin = np.multiply(sigma, inverse_root)
    np.arctan(arcsin, out=arcsin)  # arcsin of the correlations given z_j = x = 0
    c_nodes = np.broadcast_to(c[:, None, :], var.shape)
    sigma_c = np.matmul(sigma, c_nodes[..., None])[..., 0]
    # c^T K c with the arc-cosine kernel K = root + sigma (arcsin + pi / 2): the pi / 2 part is c . sigma c
    kernel = np.multiply(arcsin, sigma)
    kernel += root
    kernel_c = np.matmul(kernel, c_nodes[..., None])[..., 0]
    mean_square = ((kernel_c + math.pi / 2 * sigma_c) * c[:, None, :]).sum(-1) / TWO_PI
    total = c_jl[:, None] * mean_square / (TWO_PI * np.sqrt(a_j[:, None] * var_x))
    # given x = 0: Var(z), and Cov(z, z_j) / sqrt(Var(z_j)), each a static Schur complement given z_l plus shrink terms
    r_l = regress[b, l]
    var_a = residual[b, l][:, None, :] + shrink[:, None] * (a_l[:, None] * r_l * r_l)[:, None, :]
    cov_j = schur[b, l, j][:, None, :] + shrink[:, None] * (a_l * r_l[item, j])[:, None, None] * r_l[:, None, :]
    gamma = cov_j / np.sqrt(var_a[item, :, j])[..., None]
    q = C[item, l] * c
    with_j = statics["parallel"][b, j]
    # theta(z_m) theta(z_j) is theta(z_j) for m parallel to j with the same sign, 0 with the other
    same = (q * (with_j & (C[item, j] > 0))).sum(-1)
    q = np.where(with_j, 0.0, q)
    tallis = _tallis_sum(sigma, sigma_c, var, var_a, inverse_root, arcsin, gamma, q[:, None, :], c[:, None, :], mask, b)
    total += tallis / np.sqrt(TWO_PI * a_l[:, None])
    total += same[:, None] * ((gamma * c[:, None, :]).sum(-1) + (c[:, None, :] * np.sqrt(var_a)).sum(-1)) / (
        TWO_PI * np.sqrt(a_l[:, None])
    )
    return total


def _tallis_sum(sigma, sigma_c, var, var_a, inverse_root, arcsin, beta, q, c, mask, b):
    """``2 sqrt(2 pi a) sum_{w,u} q_w c_u E[delta(x_a) theta(x_a') theta(z_w) relu(z_u)]`` (Tallis, three terms).

    Given ``x_a = 0``: ``beta`` is ``Cov(z, x_a') / sqrt(Var(x_a'))`` and ``var_a`` is ``Var(z | x_a)``'s diagonal;
    the term of ``x_a'`` uses the orthant probabilities given ``x0 = x1 = 0`` (``arcsin``), those of ``z_w``
    and ``z_u`` the correlation of ``x_a'`` and ``z_u`` given ``(x_a, z_w)``, whose ``sqrt(1 - rho**2)`` is
    ``sqrt(det)`` of ``sigma``'s ``(w, u)`` block times ``sqrt(Var(x_a'))`` / ``sqrt(Var(z_w | x_a))``.
    """
    # the numerator first, exactly 0 for u = w and for repeated units
    X = beta[..., None, :] * var[..., :, None]
    X -= beta[..., :, None] * sigma
    if mask is not None:
        X[np.broadcast_to(mask[b][:, None], X.shape)] = 0.0
    X *= inverse_root
    X *= (1 / np.sqrt(var_a))[..., :, None]
    np.arctan(X, out=X)  # X[w, u]: arcsin rho(x_a', z_u | x_a, z_w)
    g = q / np.sqrt(TWO_PI * var_a)
    h = c * np.sqrt(var_a / TWO_PI)
    beta_c = beta * c
    with_x = np.matmul(X, np.stack([beta_c, np.broadcast_to(q, beta_c.shape)], axis=-1))
    sigma_x = np.matmul(sigma * X, np.broadcast_to(c, beta_c.shape)[..., None])[..., 0]
    # k = x_a': density of x_a' at 0 given x_a, times P(z_w > 0, z_u > 0 | x0 = x1 = 0)
    arcsin_bc = np.matmul(arcsin, beta_c[..., None])[..., 0]
    first = q.sum(-1) * beta_c.sum(-1) / 4 + (q * arcsin_bc).sum(-1) / TWO_PI
    # k = z_w and k = z_u
    second = ((g * sigma_c).sum(-1) + (g * beta).sum(-1) * beta_c.sum(-1)) / 4
    second += ((g * sigma_x).sum(-1) + (g * beta * with_x[..., 0]).sum(-1)) / TWO_PI
    second += q.sum(-1) * h.sum(-1) / 4 + (h * with_x[..., 1]).sum(-1) / TWO_PI
    return 2 * (first / math.sqrt(TWO_PI) + second)


__all__ = [
    "BLOCK_ARGUMENTS",
    "DIFFUSION_KERNELS",
    "PAIR_CHUNK_ELEMENTS",
    "PARALLEL",
    "diffusion_term",
    "is_quadrature_kernel",
    "is_relu_diffusion",
    "theta_pairs_relu_square",
]
