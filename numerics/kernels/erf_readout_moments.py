"""A trained readout's ``eta**2`` increment moment of an erf network, for every student pair at once.

A trained readout moves by ``s_j = eta_a sigma(z_j) (r + sqrt(Delta) xi)`` (``sigma(z) = erf(z / sqrt(2))``,
``r = sum_u c_u sigma(z_u)``, ``c = (-a, b)`` over the units, students first). Its covariance with the
``eta**2 E_m E_n`` part of the ``Q`` increment (:mod:`numerics.noise.erf_higher_orders`) needs, without
the readout factors ``a_m a_n``,

    G[j, m, n] = E[sigma_j sigma'_m sigma'_n (r**3 + 3 Delta r)]

(odd moments of the label noise vanish), symmetric in ``m, n``. The steps, all exact, are those of
:mod:`numerics.kernels.erf_higher_moments`:

1. the Gaussian factors ``sigma'_m sigma'_n`` tilt the measure (:func:`~numerics.kernels.erf_higher_moments.tilt`);
2. the noise part ``E'[sigma_j r] = sum_u c_u E'[sigma_j sigma_u]`` is arcsine laws;
3. ``E'[sigma_j r**3]`` (four plain erfs) is a quarter of the gradient in ``c_j`` of ``E'[r**4]``,
   so Price's theorem along ``C(t) = D + t (C' - D)`` gives

       E'[sigma_j r**3] = E_D[sigma_j r**3] + int_0^1 sum_{u < v} C'_uv (6 c_u c_v E_t[sigma'_u sigma'_v sigma_j r]
                                                   + 3 [u = j] c_v E_t[sigma'_j sigma'_v r**2]
                                                   + 3 [v = j] c_u E_t[sigma'_j sigma'_u r**2]) dt,

   each ``E_t`` a tilt by the pair ``(u, v)`` and arcsine laws
   (:func:`~numerics.kernels.erf_higher_moments.downdated_arcsines`), with
   ``E_D[sigma_j r**3] = c_j**3 (m4_j - 3 m2_j**2) + 3 c_j m2_j sum_u c_u**2 m2_u``
   over independent units. The integrand is analytic on ``[0, 1]``, as for ``E'[r**4]``, and takes
   the same Gauss-Legendre nodes (:func:`~numerics.kernels.erf_higher_moments.path_nodes`).

Cost per replica: ``p (p + 1) / 2`` student pairs times ``nodes (p + k)**4 / 2`` arcsine laws, below the
quadruple's ``p**4 / 24`` multisets from ``p = 4`` on.
"""

from __future__ import annotations

import numpy as np

from numerics.kernels.erf_higher_moments import (
    CHUNK_ELEMENTS,
    TWO_OVER_PI,
    arcsine_laws,
    downdated_arcsines,
    path_nodes,
    student_multisets,
    tilt,
)
from numerics.kernels.tuple_moments import erf_erf_erf_erf


def _independent_cubic(variance: np.ndarray, c: np.ndarray, p: int) -> np.ndarray:
    """``E_D[sigma_j r**3]`` for the students ``j``: independent units of variances ``variance`` (K, n) -> (K, p)."""
    second = TWO_OVER_PI * np.arcsin(variance / (1 + variance))
    fourth = erf_erf_erf_erf(*(variance[:, :p],) * 10)
    total = np.sum(c * c * second, axis=-1, keepdims=True)
    own = c[:, :p]
    return own**3 * (fourth - 3 * second[:, :p] ** 2) + 3 * own * second[:, :p] * total


def _cubic_power(tilted: np.ndarray, c: np.ndarray, nodes: int, p: int) -> np.ndarray:
    """``E'[sigma_j r**3]`` under ``N(0, C')`` by the path of step 3; ``tilted`` (K, n, n), ``c`` (K, n) -> (K, p)."""
    n = tilted.shape[-1]
    u, v = np.triu_indices(n, 1)
    pairs = np.arange(u.size)
    x, w = np.polynomial.legendre.leggauss(nodes)
    diagonal = np.diagonal(tilted, axis1=-2, axis2=-1)  # (K, n), the same all along the path
    off = tilted[..., u, v]  # C'_uv (u < v), shape (K, P)
    moved = tilted - np.einsum("...u,uv->...uv", diagonal, np.eye(n))  # C' - D
    # the pairs (u, v) as one-hot rows over the units, to sum the [u = j] and [v = j] terms
    first_unit, second_unit = np.eye(n)[u], np.eye(n)[v]  # (P, n)
    squares = (c * c)[:, None, :]
    products = (2 * c[:, u] * c[:, v])[:, None, :]
    total = _independent_cubic(diagonal, c, p)
    for t, weight in zip((x + 1) / 2, w / 2):
        rows_u, rows_v = t * moved[:, u, :], t * moved[:, v, :]  # (K, P, n), off the diagonal
        rows_u[:, pairs, u] = diagonal[:, u]
        rows_v[:, pairs, v] = diagonal[:, v]
        guu, gvv, guv = 1 + diagonal[:, u], 1 + diagonal[:, v], t * off
        det = guu * gvv - guv * guv  # det(I + C_GG) >= 1 for the pair G = {u, v}
        left_u = (gvv[..., None] * rows_u - guv[..., None] * rows_v) / det[..., None]
        left_v = (guu[..., None] * rows_v - guv[..., None] * rows_u) / det[..., None]
        own, crossed = downdated_arcsines(diagonal[:, None, :], t * off[:, None, :],
                                          [(left_u, rows_u), (left_v, rows_v)], n)  # (K, P, n), (K, P, P)
        square = TWO_OVER_PI * (np.sum(own * squares, axis=-1) + np.sum(crossed * products, axis=-1))  # E''[r**2]
        # E''[sigma_j r] = c_j E''[sigma_j**2] + sum_{x != j} c_x E''[sigma_j sigma_x], for the students j
        laws = np.zeros(own.shape[:2] + (p, n))
        laws[..., np.arange(p), np.arange(p)] = own[..., :p]
        upper = u < p
        laws[..., u[upper], v[upper]] = crossed[..., upper]
        lower = v < p
        laws[..., v[lower], u[lower]] = crossed[..., lower]
        linear = TWO_OVER_PI * np.einsum("kPjx,kx->kPj", laws, c)
        tilt_factor = TWO_OVER_PI / np.sqrt(det)  # the pair's two Gaussian factors
        coupling = off * tilt_factor
        pair_terms = 6 * np.einsum("kP,kPj->kj", coupling * c[:, u] * c[:, v], linear)
        edge = 3 * coupling * square  # (K, P)
        own_terms = (edge * c[:, v]) @ first_unit + (edge * c[:, u]) @ second_unit  # (K, n)
        total = total + weight * (pair_terms + own_terms[:, :p])
    return total


def erf_readout_moments(C: np.ndarray, c: np.ndarray, delta: float, p: int, nodes: int | None = None) -> np.ndarray:
    """``G[j, m, n] = E[sigma_j sigma'_m sigma'_n (r**3 + 3 Delta r)]`` (module docstring).

    Parameters
    ----------
    C : array, shape (B, n, n)
        The covariance of the ``n = p + k`` units, students first (erf units ``erf(z / sqrt(2))``).
    c : array, shape (B, n)
        ``(-a, b)``.
    delta : float
        Label-noise variance.
    p : int
        Number of students.
    nodes : int, optional
        Gauss-Legendre nodes of the path integral (default :func:`numerics.kernels.erf_higher_moments.path_nodes`
        of the largest tilted variance, chunk by chunk).

    Returns
    -------
    array, shape (B, p, p, p)
        ``[j, m, n]``, symmetric in ``m, n``.
    """
    G, index_of = student_multisets(p, 2)
    nb, n = C.shape[0], C.shape[-1]
    root, tilted = tilt(C, G)  # (B, M), (B, M, n, n)
    linear = np.einsum("bmjv,bv->bmj", arcsine_laws(tilted)[..., :p, :], c)  # E'[sigma_j r]
    tilted = tilted.reshape(-1, n, n)
    rows = np.repeat(c, G.shape[0], axis=0)  # c of every (replica, multiset)
    largest = np.max(np.diagonal(tilted, axis1=-2, axis2=-1), axis=-1, initial=0.0)
    order = np.argsort(largest)
    cubic = np.empty((tilted.shape[0], p))
    step = max(1, CHUNK_ELEMENTS // max(1, n**4 // 2))  # the pairs' arcsine laws, (n (n - 1) / 2)**2 per item
    for start in range(0, tilted.shape[0], step):
        items = order[start : start + step]
        count = path_nodes(float(largest[items[-1]])) if nodes is None else nodes
        cubic[items] = _cubic_power(tilted[items], rows[items], count, p)
    out = TWO_OVER_PI / root[..., None] * (cubic.reshape(nb, -1, p) + 3 * delta * linear)  # (B, M, j)
    return np.moveaxis(out[:, index_of], -1, 1)


__all__ = ["erf_readout_moments"]
