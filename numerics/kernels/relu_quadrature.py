"""The one relu average without a closed form, ``E[theta(z0) theta(z1) relu(z2) relu(z3)]``, by a 1-d quadrature.

It enters the eta**2 term of relu networks. With ``f = theta_0 theta_1 relu_2 relu_3``
it contains the orthant probability of four correlated Gaussians, which has no
elementary closed form. Price's theorem (``dE[f]/dc_ab = E[d_a d_b f]`` for ``a != b``)
along the path ``C(t) = (1 - t) C0 + t C``, where ``C0`` keeps the diagonal and the
``(2, 3)`` entry of ``C`` and zeroes the other off-diagonal entries, gives

    E_C[f] = E_C0[f] + int_0^1 sum_{(a, b) != (2, 3)} c_ab E_C(t)[d_a d_b f] dt,

with ``E_C0[f] = K_relu(c22, c23, c33) / 4`` and every ``E[d_a d_b f]`` elementary
(the pair ``(2, 3)``, whose derivative would bring back the orthant probability, is not
moved): ``E[delta_0 delta_1 relu_2 relu_3]`` is the density of ``(z0, z1)`` at 0 times the
arc-cosine kernel of the conditional block of ``(z2, z3)``, and
``E[delta_a theta_b theta_c relu_d]`` the density of ``z_a`` at 0 times the orthant first
moment of the conditional ``(z_b, z_c, z_d)`` (Tallis 1961:
``E[y_d 1{y > 0}] = sum_k s_dk p_k(0) P(others > 0 | y_k = 0)``, with bivariate orthant
probabilities ``1/4 + arcsin(rho) / (2 pi)``). Every ``C(t)``, ``t < 1``, is a valid
covariance, and the path is PSD throughout.

The t-integral is done in ``s`` with ``t = 1 - s**2``: at ``t = 1`` the integrand can
have square-root singularities (a pair of units that are collinear, e.g. a repeated
index ``j = l``, or a student equal to a teacher), which the substitution makes smooth;
a pair that is nearly collinear (``1 - |rho| = eps``) leaves a complex singularity at
distance ``sqrt(eps)`` from ``s = 0``, so the s-axis is cut into panels graded
geometrically towards 0 (:data:`PANEL_EDGES`, 120 evaluations with :data:`NODES`
Gauss-Legendre nodes per panel) for the blocks that have such a pair, and into three
panels (:data:`FAST_PANEL_EDGES`, 36 evaluations) for the others. Stated error: below 1e-10 for blocks whose diagonal
entries lie within a factor 100 of each other; measured below 2e-11 against 40 nodes
per panel on random, singular (every pattern of repeated units) and near-singular
blocks (``1 - rho`` from 1e-2 to 1e-14), and below 1e-10 against an independent
adaptive quadrature (tests/numerics/kernels/test_relu_quadrature.py). Diagonal entries must be positive
(a unit of zero norm has no defined ``theta``).

This evaluates single blocks. The right-hand side needs the blocks only summed over the unit
pairs with readout weights, and :mod:`numerics.kernels.relu_pairs` does that sum with one path
per pair of theta units (:mod:`numerics.kernels.relu_pair_integrand`: these panels in ``s`` where
units are nearly dependent, fewer nodes in ``arccos(t)`` where they are not).
"""

from __future__ import annotations

import math

import numpy as np

#: Gauss-Legendre nodes per panel in s (t = 1 - s**2).
NODES = 12
#: Panel edges in s for blocks with a nearly collinear moved pair (0 < 1 - |rho| = eps < NEAR): geometric
#: towards s = 0, where such a pair puts a complex singularity at distance sqrt(eps); resolves every eps > 1e-18.
PANEL_EDGES = np.array([0.0] + [10.0**-k for k in range(9, 0, -1)] + [1.0])
#: Panel edges for the other blocks (exactly repeated units are smooth in s: the substitution removes them).
FAST_PANEL_EDGES = np.array([0.0, 0.1, 0.4, 1.0])
#: 1 - |rho| below which a moved pair counts as nearly collinear.
NEAR = 1e-3
#: Blocks evaluated at once (times NODES elements per temporary array).
CHUNK = 1 << 10

TWO_PI = 2 * math.pi
#: Squared relative size below which a projected row is rounding left by a parallel one.
RELATIVE_ZERO = 1e-26


def path_nodes(per_panel: int, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``s = sqrt(1 - t)`` and weights of the t-integral: Gauss-Legendre on panels graded towards s = 0.

    The nodes are returned as ``s``, not ``t``: ``1 - t`` rounded from ``t`` would lose all
    digits of ``s`` below 1e-8, exactly where the grading puts nodes.
    """
    x, w = np.polynomial.legendre.leggauss(per_panel)
    nodes, weights = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        s = lo + (hi - lo) * (x + 1) / 2
        nodes.append(s)
        # dt = 2 s ds (t = 1 - s**2 runs from 1 down to 0 as s goes up: the sign is absorbed)
        weights.append((hi - lo) / 2 * w * 2 * s)
    return np.concatenate(nodes), np.concatenate(weights)


def arccos_kernel(a: np.ndarray, c: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``E[relu(u) relu(v)]`` for ``(u, v)`` with variances ``a``, ``b`` and covariance ``c`` (any PSD block)."""
    root = np.sqrt(np.maximum(a * b - c * c, 0.0))
    norm = np.sqrt(np.maximum(a * b, 0.0))
    cosine = np.clip(np.divide(c, norm, out=np.zeros_like(norm), where=norm > 0), -1.0, 1.0)
    return (root + c * (math.pi - np.arccos(cosine))) / TWO_PI


def _dot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...i->...", u, v)


def project_out(rows: list[np.ndarray], direction: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """``rows`` with their component along ``direction`` removed, and ``|direction|**2``.

    Conditioning ``z = F g`` on ``z_a = F_a . g = 0`` leaves ``z_x = G_x . g`` with ``G_x`` the
    projection of ``F_x`` orthogonal to ``F_a``: differences of vectors, first order in the
    distance between units, where differences of squared covariances would be second order
    (and lose half the digits near collinear pairs).
    """
    norm2 = _dot(direction, direction)
    safe = np.where(norm2 > 0, norm2, 1.0)
    projected = []
    for row in rows:
        rest = row - (_dot(row, direction) / safe)[..., None] * direction
        # a row parallel to the direction leaves rounding (relative 1e-16), not a direction: zero it, so that
        # the conventions for a vanishing variable apply (the smallest genuine remainder here is ~1e-9)
        tiny = _dot(rest, rest) <= RELATIVE_ZERO * _dot(row, row)
        projected.append(np.where(tiny[..., None], 0.0, rest))
    return projected, norm2


def _orthant2(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``P(u . g > 0, v . g > 0)``; a zero vector counts as ``theta(0) = 1/2`` (the split of Tallis' terms)."""
    norm = np.sqrt(_dot(u, u) * _dot(v, v))
    rho = np.clip(np.divide(_dot(u, v), norm, out=np.zeros_like(norm), where=norm > 0), -1.0, 1.0)
    return 0.25 + np.arcsin(rho) / TWO_PI


def _theta_theta_relu(rows: list[np.ndarray]) -> np.ndarray:
    """``E[theta(y0) theta(y1) relu(y2)]``, ``y_i = rows[i] . g``.

    Tallis: ``sum_k s_2k p_k(0) P(others > 0 | y_k = 0)``.
    """
    total = 0.0
    for k in range(3):
        others, norm2 = project_out([rows[m] for m in range(3) if m != k], rows[k])
        density = np.divide(1.0, np.sqrt(TWO_PI * norm2), out=np.zeros_like(norm2), where=norm2 > 0)
        total = total + _dot(rows[2], rows[k]) * density * _orthant2(*others)
    return total


def _integrand(F: list[np.ndarray], velocity: dict) -> np.ndarray:
    """``sum_{(a, b) != (2, 3)} v_ab E[d_a d_b f]`` for ``z_a = F[a] . g`` on the path, ``v = dC/dt`` (keys i <= j)."""
    # (0, 1): density of (z0, z1) at 0 times the arc-cosine kernel of (z2, z3) given z0 = z1 = 0
    (f1, f2, f3), n0 = project_out([F[1], F[2], F[3]], F[0])
    (g2, g3), n1 = project_out([f2, f3], f1)
    area = np.sqrt(n0 * n1)  # sqrt(det) of the (z0, z1) block
    density = np.divide(1.0, TWO_PI * area, out=np.zeros_like(area), where=area > 0)
    total = velocity[(0, 1)] * density * arccos_kernel(_dot(g2, g2), _dot(g2, g3), _dot(g3, g3))
    # (a, b) with a in {0, 1} and b in {2, 3}: density of z_a at 0 times E[theta theta relu | z_a = 0]
    for a in (0, 1):
        other = 1 - a
        rows, norm2 = project_out([F[other], F[2], F[3]], F[a])
        density = 1 / np.sqrt(TWO_PI * norm2)
        for b, d in ((2, 3), (3, 2)):
            # d_a d_b f = delta_a theta_other theta_b relu_d
            ordered = [rows[0], rows[b - 1], rows[d - 1]]
            total = total + velocity[(a, b)] * density * _theta_theta_relu(ordered)
    return total


def _factor_2x2(a, c, b):
    """Rows ``(sqrt(a), 0)``, ``(c / sqrt(a), sqrt(b - c**2 / a))``: a factor of a PSD 2 x 2 block (a > 0)."""
    ra = np.sqrt(a)
    return (ra, np.zeros_like(ra)), (c / ra, np.sqrt(np.maximum(b - c * c / a, 0.0)))


def theta_theta_relu_relu(c00, c01, c02, c03, c11, c12, c13, c22, c23, c33, nodes: int = NODES):
    """``E[theta(z0) theta(z1) relu(z2) relu(z3)]`` for ``z ~ N(0, c)``, element-wise over broadcast blocks.

    Parameters
    ----------
    c00, ..., c33 : arrays
        The entries ``c_ab`` (``a <= b``) of the 4 x 4 blocks (positive semi-definite,
        positive diagonal), broadcast against each other.
    nodes : int
        Gauss-Legendre nodes per panel of the path integral (module docstring; the default
        meets the stated 1e-10).

    Returns
    -------
    array
        The averages, of the broadcast shape.

    Notes
    -----
    On the path ``C(t) = (1 - t) C0 + t C = F F^T`` with ``F = [s L0 | sqrt(t) L]``
    (``s = sqrt(1 - t)``, ``L0 L0^T = C0``, ``L L^T = C`` from an eigen-decomposition), so
    every conditional covariance is a Gram matrix of projected rows of ``F``, accurate to
    rounding relative to the distance between units even where they nearly coincide.
    """
    entries = np.broadcast_arrays(
        *(np.asarray(c, dtype=float) for c in (c00, c01, c02, c03, c11, c12, c13, c22, c23, c33))
    )
    shape = entries[0].shape
    flat = [e.reshape(-1) for e in entries]
    keys = [(0, 0), (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3)]
    flat, inverse = _distinct_blocks(flat)
    entry = dict(zip(keys, flat))
    near = np.zeros(flat[0].size, dtype=bool)
    for a, b in ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3)):
        rho = np.abs(entry[(a, b)]) / np.sqrt(entry[(a, a)] * entry[(b, b)])
        near |= (1 - rho > 1e-15) & (1 - rho < NEAR)
    out = np.empty(flat[0].size)
    for mask, edges in ((~near, FAST_PANEL_EDGES), (near, PANEL_EDGES)):
        if np.any(mask):
            out[mask] = _path_integral([value[mask] for value in flat], keys, nodes, edges)
    return out[inverse].reshape(shape)


def _distinct_blocks(flat: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct blocks up to the symmetries of the average, and the map back to all of them.

    The average is symmetric under swapping slots 0 and 1 (the thetas) and slots 2 and 3
    (the relus); in the eta**2 term the pairs (j, l) and (u, v) run over both orders, so
    the blocks come in up to four copies. Each block is put in a canonical slot order
    (lexicographic on the variances and their cross entries) and evaluated once.
    """
    c00, c01, c02, c03, c11, c12, c13, c22, c23, c33 = flat
    # relus: order slots 2, 3 by (c22, c02, c12)
    swap = (c33 < c22) | ((c33 == c22) & ((c03 < c02) | ((c03 == c02) & (c13 < c12))))
    c02, c03 = np.where(swap, c03, c02), np.where(swap, c02, c03)
    c12, c13 = np.where(swap, c13, c12), np.where(swap, c12, c13)
    c22, c33 = np.where(swap, c33, c22), np.where(swap, c22, c33)
    # thetas: order slots 0, 1 by (c00, c02, c03)
    swap = (c11 < c00) | ((c11 == c00) & ((c12 < c02) | ((c12 == c02) & (c13 < c03))))
    c00, c11 = np.where(swap, c11, c00), np.where(swap, c00, c11)
    c02, c12 = np.where(swap, c12, c02), np.where(swap, c02, c12)
    c03, c13 = np.where(swap, c13, c03), np.where(swap, c03, c13)
    stacked = np.stack([c00, c01, c02, c03, c11, c12, c13, c22, c23, c33], axis=1)
    distinct, inverse = np.unique(stacked, axis=0, return_inverse=True)
    return list(distinct.T), inverse.reshape(-1)


def _path_integral(flat: list[np.ndarray], keys: list[tuple[int, int]], nodes: int, edges: np.ndarray) -> np.ndarray:
    s_nodes, weights = path_nodes(nodes, edges)
    s = s_nodes[None, :, None]
    root_t = np.sqrt((1 - s_nodes) * (1 + s_nodes))[None, :, None]
    out = np.empty(flat[0].size)
    for start in range(0, out.size, CHUNK):
        block = {key: value[start : start + CHUNK] for key, value in zip(keys, flat)}
        size = block[(0, 0)].size
        C = np.empty((size, 4, 4))
        for (a, b), value in block.items():
            C[:, a, b] = C[:, b, a] = value
        w, V = np.linalg.eigh(C)
        L = V * np.sqrt(np.maximum(w, 0.0))[:, None, :]  # (size, 4, 4), rows are the units
        # a repeated unit (c_aa = c_bb = c_ab exactly, e.g. j = l) gets exactly the same row: the
        # eigen-decomposition of the singular block would leave rows differing by sqrt(rounding)
        # ~ 1e-8, and the average depends on that difference like its square root
        for a in range(4):
            for b in range(a + 1, 4):
                same = (C[:, a, a] == C[:, b, b]) & (C[:, a, b] == C[:, a, a])
                L[same, b] = L[same, a]
        L0 = np.zeros((size, 4, 4))
        L0[:, 0, 0] = np.sqrt(block[(0, 0)])
        L0[:, 1, 1] = np.sqrt(block[(1, 1)])
        (r2a, r2b), (r3a, r3b) = _factor_2x2(block[(2, 2)], block[(2, 3)], block[(3, 3)])
        L0[:, 2, 2], L0[:, 2, 3], L0[:, 3, 2], L0[:, 3, 3] = r2a, r2b, r3a, r3b
        # F for every node: (size, nodes, 8) per unit
        F = [np.concatenate([s * L0[:, None, a, :], root_t * L[:, None, a, :]], axis=-1) for a in range(4)]
        velocity = {key: block[key][:, None] for key in ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3))}
        start_value = arccos_kernel(block[(2, 2)], block[(2, 3)], block[(3, 3)]) / 4
        out[start : start + CHUNK] = start_value + _integrand(F, velocity) @ weights
    return out


__all__ = [
    "FAST_PANEL_EDGES",
    "NEAR",
    "NODES",
    "PANEL_EDGES",
    "TWO_PI",
    "arccos_kernel",
    "path_nodes",
    "project_out",
    "theta_theta_relu_relu",
]
