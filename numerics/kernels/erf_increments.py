"""The increment moments of an erf network in closed form, for every student pair at once.

With ``sigma(z) = erf(z / sqrt(2))`` (students and teachers) and ``c = (-a, b)`` over the units
(students first), the moments ``<E_j z_x E_i z_y>`` of :mod:`numerics.noise.tuple_fluctuations`
are ``a_j a_i M_ji[x, y]`` with

    M_ji[x, y] = sum_{u, v} c_u c_v E[sigma'(z_j) sigma'(z_i) z_x z_y sigma(z_u) sigma(z_v)]
                 + Delta E[sigma'(z_j) sigma'(z_i) z_x z_y].

The per-tuple route evaluates the generated six-slot kernel on every tuple
``(j, i, x, y, u, v)``; here the same average is taken in three exact steps, once per
student pair:

1. ``sigma'(z) = sqrt(2 / pi) exp(-z**2 / 2)``: the two Gaussian factors tilt the measure
   (Woodbury), ``E[sigma'_j sigma'_i h(z)] = (2 / pi) det(I + C_GG)**-1/2 E'[h(z)]`` with
   ``z ~ N(0, C')``, ``C' = C - C_:G (I + C_GG)^-1 C_G:`` over all units (``G = {j, i}``).
2. Stein's lemma twice on the linear factors:
   ``E'[z_x z_y f(z_u, z_v)] = C'_xy E'[f] + sum_{s, t in {u, v}} C'_xs C'_yt E'[d_s d_t f]``.
3. Two erfs: ``E[sigma_u sigma_v]`` is the arcsine law, ``E[sigma'_u sigma'_v] = (2 / pi) / r_uv``,
   ``E[sigma''_u sigma_v] = -(2 / pi) C'_uv / ((1 + C'_uu) r_uv)`` (Price's theorem on the
   arcsine law), ``r_uv = sqrt((1 + C'_uu)(1 + C'_vv) - C'_uv**2)``.

Summed over the units with ``c_u c_v`` that is, per student pair,

    M = pre (W C' + 2 C' (diag(g) + H) C' + Delta C'),

``pre = (2 / pi) det(I + C_GG)**-1/2``, ``W = c^T S c`` with ``S`` the arcsine laws,
``g_u = c_u sum_v c_v E[sigma''_u sigma_v]``, ``H_uv = c_u c_v E[sigma'_u sigma'_v]``: matrix
products over ``p + k`` units, instead of ``(p + k)**4`` kernel evaluations per pair. Every
step holds for singular blocks (coinciding units), where ``r_uv >= 1``.
"""

from __future__ import annotations

import math

import numpy as np

TWO_OVER_PI = 2 / math.pi


def student_pairs(p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, columns, pair_of)``: the pairs ``j <= i`` (numpy.triu_indices order) and the pair of ``(j, i)``.

    Shapes (P,), (P,), (p, p) with ``P = p (p + 1) / 2``; ``pair_of`` is symmetric.
    """
    rows, columns = np.triu_indices(p)
    pair_of = np.empty((p, p), dtype=np.intp)
    pair_of[rows, columns] = pair_of[columns, rows] = np.arange(rows.size)
    return rows, columns, pair_of


def erf_pair_moments(
    C: np.ndarray, c: np.ndarray, delta: float, p: int, offsets: np.ndarray | None = None
) -> np.ndarray:
    """``M_ji[x, y]`` (module docstring) for every student pair ``j <= i``.

    Parameters
    ----------
    C : array, shape (B, n, n)
        The covariance ``[[Q, R], [R^T, T]]`` of the ``n = p + k`` units, students first.
    c : array, shape (B, n)
        ``(-a, b)``: the readouts with the students' sign flipped.
    delta : float
        Label-noise variance.
    p : int
        Number of students.
    offsets : array, shape (n,), optional
        ``1`` for a unit ``erf(z / sqrt(2))`` (the default on every unit), ``0`` for a teacher
        unit ``sign(z)``: the limit of ``erf(s z / sqrt(2))`` as ``s -> infinity``, where every
        ``1 + C'_uu`` of step 3 becomes ``C'_uu`` and the terms of ``sign(z_u)**2 = 1`` carry no
        derivative. Students are always erf units.

    Returns
    -------
    M : array, shape (B, P, n, n)
        Over the pairs of :func:`student_pairs` (``P = p (p + 1) / 2``); symmetric in ``x, y``.
    """
    rows, columns, _ = student_pairs(p)
    g_j, g_i = C[:, :, rows], C[:, :, columns]  # (B, n, P): C_xj, C_xi
    s_jj = 1 + C[:, rows, rows]
    s_ii = 1 + C[:, columns, columns]
    s_ji = C[:, rows, columns]
    det = s_jj * s_ii - s_ji * s_ji  # det(I + C_GG) >= 1, shape (B, P)
    # C' = C - C_:G (I + C_GG)^-1 C_G:, the inverse written out
    left_j = (s_ii[:, None, :] * g_j - s_ji[:, None, :] * g_i) / det[:, None, :]
    left_i = (s_jj[:, None, :] * g_i - s_ji[:, None, :] * g_j) / det[:, None, :]
    tilted = C[:, None] - (np.einsum("bxp,byp->bpxy", left_j, g_j) + np.einsum("bxp,byp->bpxy", left_i, g_i))
    n = C.shape[-1]
    offsets = np.ones(n) if offsets is None else np.asarray(offsets, dtype=float)
    shifted = offsets + np.einsum("bpxx->bpx", tilted)  # 1 + C'_uu (erf), C'_uu (sign), shape (B, P, n)
    product = shifted[..., :, None] * shifted[..., None, :]
    root = np.sqrt(np.maximum(product - tilted * tilted, 0.0))  # >= 1 for erf pairs and a PSD C'
    sign_units = offsets == 0
    # sign(z_u)**2 = 1: its pair (u, u) has no derivative terms (their two infinite parts cancel)
    constant_pairs = np.diag(sign_units)
    if sign_units.any():
        parallel = (root == 0) & ~constant_pairs
        if parallel.any():
            raise ValueError("the increment moments of sign teachers need teacher directions that are not parallel "
                             "(or a sign unit of zero variance): T has a singular block")
        root = np.where(constant_pairs, 1.0, root)
    arcsine = TWO_OVER_PI * np.arcsin(np.clip(tilted / np.sqrt(product), -1.0, 1.0))
    slopes = np.where(constant_pairs, 0.0, TWO_OVER_PI / root)  # E'[sigma'_u sigma'_v]
    curvatures = -slopes * tilted / shifted[..., :, None]  # E'[sigma''_u sigma_v]
    weights = c[:, :, None] * c[:, None, :]  # c_u c_v, shape (B, n, n)
    W = np.einsum("bpuv,buv->bp", arcsine, weights)
    g = c[:, None, :] * np.einsum("bpuv,bv->bpu", curvatures, c)
    H = weights[:, None] * slopes
    H[..., np.arange(n), np.arange(n)] += g
    inner = W[..., None, None] + delta if delta else W[..., None, None]
    M = inner * tilted + 2 * tilted @ H @ tilted
    return (TWO_OVER_PI / np.sqrt(det))[..., None, None] * M


__all__ = ["TWO_OVER_PI", "erf_pair_moments", "student_pairs"]
