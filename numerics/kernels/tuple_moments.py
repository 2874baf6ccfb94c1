"""The one erf average without a closed form, ``E[sigma(w0) sigma(w1) sigma(w2) sigma(w3)]``, by a 1-d quadrature.

With ``sigma(w) = erf(w / sqrt(2))`` and ``w ~ N(0, K)`` it enters the covariance of a trained
readout's increment (:mod:`numerics.noise.tuple_fluctuations`, the kernels ``readout_square_*`` of
:mod:`derive.codegen.tuples`). Four plain erfs have no elementary closed form, but Price's theorem
(``dE[f]/dK_ab = E[d_a d_b f]`` for ``a != b``) along the path ``K(t) = K0 + t (K - K0)``, where
``K0`` keeps the diagonal and the pairs ``(0, 1)``, ``(2, 3)`` and zeroes the rest, gives

    E_K[f] = E_K0[f] + int_0^1 sum_{a in {0, 1}, b in {2, 3}} K_ab E_K(t)[sigma'_a sigma'_b sigma_c sigma_d] dt

(``{c, d}`` the other two slots). ``E_K0[f]`` is the product of two arcsine laws, and
``sigma'(w) = sqrt(2/pi) exp(-w**2 / 2)`` makes the integrand elementary: its two Gaussian
factors tilt the measure (``det(I + K_GG)**-1/2``, ``K' = K_HH - K_HG (I + K_GG)^-1 K_GH``) and
leave the arcsine law of ``(w_c, w_d)`` under ``K'``. Every ``K(t)`` is positive semi-definite,
so ``det(I + K_GG) >= 1`` and the arcsine's argument stays strictly inside ``(-1, 1)`` (the ``+1``
of the erf's own variance): the integrand is analytic on ``[0, 1]`` and Gauss-Legendre with
:data:`NODES` nodes converges geometrically (below 1e-13 against 64 nodes on random, singular
and nearly singular blocks; tests/numerics/kernels/test_tuple_moments.py).
"""

from __future__ import annotations

import math

import numpy as np

#: Gauss-Legendre nodes of the path integral.
NODES = 24
#: Blocks evaluated at once (times NODES elements per temporary array).
CHUNK = 1 << 12

TWO_OVER_PI = 2 / math.pi


def arcsine_law(k00: np.ndarray, k01: np.ndarray, k11: np.ndarray) -> np.ndarray:
    """``E[sigma(w0) sigma(w1)]`` for ``(w0, w1)`` with variances ``k00``, ``k11`` and covariance ``k01``."""
    return TWO_OVER_PI * np.arcsin(np.clip(k01 / np.sqrt((1 + k00) * (1 + k11)), -1.0, 1.0))


def tilted_pair(K: dict, a: int, b: int, c: int, d: int) -> np.ndarray:
    """``E[sigma'(w_a) sigma'(w_b) sigma(w_c) sigma(w_d)]``; ``K[(x, y)]`` the entries (both orders present)."""
    gaa, gab, gbb = 1 + K[(a, a)], K[(a, b)], 1 + K[(b, b)]
    det = gaa * gbb - gab * gab  # det(I + K_GG) >= 1
    # K' = K_HH - K_HG (I + K_GG)^-1 K_GH, the inverse written out
    def corrected(x: int, y: int) -> np.ndarray:
        xa, xb, ya, yb = K[(x, a)], K[(x, b)], K[(y, a)], K[(y, b)]
        return K[(x, y)] - (xa * (gbb * ya - gab * yb) + xb * (gaa * yb - gab * ya)) / det

    return TWO_OVER_PI / np.sqrt(det) * arcsine_law(corrected(c, c), corrected(c, d), corrected(d, d))


def erf_erf_erf_erf(k00, k01, k02, k03, k11, k12, k13, k22, k23, k33, nodes: int = NODES):
    """``E[sigma(w0) sigma(w1) sigma(w2) sigma(w3)]``, ``sigma = erf(. / sqrt(2))``, element-wise over broadcast blocks.

    Parameters
    ----------
    k00, ..., k33 : arrays
        The entries ``K_ab`` (``a <= b``) of positive semi-definite 4 x 4 blocks, broadcast
        against each other.
    nodes : int
        Gauss-Legendre nodes of the path integral (module docstring; the default meets 1e-13).

    Returns
    -------
    array
        The averages, of the broadcast shape.
    """
    entries = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (k00, k01, k02, k03, k11, k12, k13, k22,
                                                                          k23, k33)))
    shape = entries[0].shape
    keys = [(0, 0), (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3)]
    flat = [e.reshape(-1) for e in entries]
    x, w = np.polynomial.legendre.leggauss(nodes)
    t, weights = (x + 1) / 2, w / 2
    out = np.empty(flat[0].size)
    moved = ((0, 2), (0, 3), (1, 2), (1, 3))
    for start in range(0, out.size, CHUNK):
        block = {key: value[start : start + CHUNK, None] for key, value in zip(keys, flat)}
        path = dict(block)
        for key in moved:
            path[key] = t * block[key]  # K(t); the diagonal and the pairs (0, 1), (2, 3) stay
        path.update({(b, a): value for (a, b), value in list(path.items())})
        integrand = sum(block[(a, b)] * tilted_pair(path, a, b, *(c for c in range(4) if c not in (a, b)))
                        for a, b in moved)
        start_value = arcsine_law(block[(0, 0)], block[(0, 1)], block[(1, 1)]) * arcsine_law(
            block[(2, 2)], block[(2, 3)], block[(3, 3)])
        out[start : start + CHUNK] = start_value[:, 0] + integrand @ weights
    return out.reshape(shape)


__all__ = ["NODES", "arcsine_law", "erf_erf_erf_erf", "tilted_pair"]
