"""The bookkeeping shared by the ``eta**3`` and ``eta**4`` parts of erf and relu networks' covariance.

With ``second_order`` the ``Q`` increment is ``q_jl = eta A_jl + eta**2 B_jl``,
``A_jl = E_j z_l + E_l z_j``, ``B_jl = E_j E_l`` (docs/model.md), so next to the leading
``eta**2`` covariance come

    Cov(q_jl, q_mn) += eta**3 (Cov(A_jl, B_mn) + Cov(B_jl, A_mn)) + eta**4 Cov(B_jl, B_mn),
    Cov(q_jl, r_ms) += eta**3 Cov(B_jl, E_m nu_s).

An activation's kernels give the averages without the readouts (pair, triple and quadruple
moments, :mod:`numerics.noise.erf_higher_orders`, :mod:`numerics.noise.relu_higher_orders`);
:func:`raw_moments` puts the readouts on and reorders them, :func:`higher_blocks` subtracts the
means and assembles the two blocks for any batch shape.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: ``(Q, R, T, a, b)`` on one flat batch axis -> ``(<B>, <A B>, <B E nu>, <B B>)``, as :func:`raw_moments` returns.
RawMoments = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                      tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def raw_moments(
    pair: np.ndarray, triple: np.ndarray, quadruple: np.ndarray, a: np.ndarray, p: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The raw moments ``(<B>, <A B>, <B E nu>, <B B>)`` from the readout-free averages.

    Parameters
    ----------
    pair : array, shape (B, p, p)
        ``<E_j E_l> / (a_j a_l)``.
    triple : array, shape (B, p, p, p, p + k)
        ``triple[j, m, n, x] = <E_j E_m E_n z_x> / (a_j a_m a_n)``, ``x`` over students then teachers.
    quadruple : array, shape (B, p, p, p, p)
        ``<E_j E_l E_m E_n> / (a_j a_l a_m a_n)``.
    a : array, shape (B, p)
        Student readouts.
    p : int

    Returns
    -------
    mean : array, shape (B, p, p)
        ``<B_jl>``.
    AB : array, shape (B, p, p, p, p)
        ``AB[j, l, m, n] = <A_jl B_mn>``.
    BN : array, shape (B, p, p, p, k)
        ``BN[j, l, m, s] = <B_jl E_m nu_s>``.
    BB : array, shape (B, p, p, p, p)
        ``BB[j, l, m, n] = <B_jl B_mn>``.
    """
    mean = pair * (a[:, :, None] * a[:, None, :])
    triple = triple * (a[:, :, None, None, None] * a[:, None, :, None, None] * a[:, None, None, :, None])
    # <E_j z_l B_mn> = triple[j, m, n, l]; A_jl = E_j z_l + E_l z_j
    LE = np.moveaxis(triple[..., :p], -1, 2)  # (B, j, l, m, n)
    AB = LE + np.swapaxes(LE, 1, 2)
    BN = triple[..., p:]  # <E_j E_l E_m nu_s> = triple[j, l, m, p + s] (symmetric in j, l, m)
    BB = quadruple * (a[:, :, None, None, None] * a[:, None, :, None, None] * a[:, None, None, :, None]
                      * a[:, None, None, None, :])
    return mean, AB, BN, BB


def higher_blocks(
    moments: RawMoments, Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float,
    a: np.ndarray, b: np.ndarray, drift_Q: np.ndarray, drift_R: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``eta**3 + eta**4`` parts of ``QQ`` and the ``eta**3`` part of ``QR`` (module docstring).

    Parameters
    ----------
    moments : callable
        The network's raw moments on one flat batch axis (:data:`RawMoments`).
    Q, R, T : arrays, shapes (..., p, p), (..., p, k), (..., k, k)
    eta : float
    a, b : arrays, shapes (..., p) and (..., k)
        Readout vectors, broadcast against the overlaps' batch.
    drift_Q, drift_R : arrays, shapes (..., p, p), (..., p, k)
        The first-order drifts ``<A_jl>``, ``<E_j nu_r>``.

    Returns
    -------
    QQ : array, shape (..., p, p, p, p)
    QR : array, shape (..., p, p, p, k)
    """
    p, k = R.shape[-2:]
    batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2], a.shape[:-1], b.shape[:-1])
    flat = int(np.prod(batch, dtype=int))

    def flattened(x: np.ndarray, tail: tuple[int, ...]) -> np.ndarray:
        return np.broadcast_to(x, batch + tail).reshape((flat,) + tail)

    mean, AB, BN, BB = moments(flattened(Q, (p, p)), flattened(R, (p, k)), flattened(T, (k, k)),
                               flattened(a, (p,)), flattened(b, (k,)))
    mean = mean.reshape(batch + (p, p))
    cross = AB.reshape(batch + (p,) * 4) - drift_Q[..., :, :, None, None] * mean[..., None, None, :, :]
    QQ = eta**3 * (cross + np.moveaxis(cross, (-4, -3), (-2, -1))) + eta**4 * (
        BB.reshape(batch + (p,) * 4) - mean[..., :, :, None, None] * mean[..., None, None, :, :])
    QR = eta**3 * (BN.reshape(batch + (p, p, p, k)) - mean[..., :, :, None, None] * drift_R[..., None, None, :, :])
    return QQ, QR


__all__ = ["RawMoments", "higher_blocks", "raw_moments"]
