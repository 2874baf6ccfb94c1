"""The ``eta**3`` and ``eta**4`` parts of the increment covariance of a relu network.

The bookkeeping is that of the erf networks (:mod:`numerics.noise.erf_higher_orders`) and the
polynomial models (:func:`numerics.noise.packing.covariance_contributions`): with
``second_order`` the ``Q`` increment is ``q_jl = eta A_jl + eta**2 B_jl``,
``A_jl = E_j z_l + E_l z_j`` and ``B_jl = E_j E_l`` (``|x|**2 / N -> 1``, docs/model.md), so next to
the leading ``eta**2`` covariance (:mod:`numerics.noise.tuple_fluctuations`) come

    Cov(q_jl, q_mn) += eta**3 (Cov(A_jl, B_mn) + Cov(B_jl, A_mn)) + eta**4 Cov(B_jl, B_mn),
    Cov(q_jl, r_ms) += eta**3 Cov(B_jl, E_m nu_s).

With ``E_j = a_j theta(z_j) (r + sqrt(Delta) xi)`` their raw moments are, with the readouts ``a``,

    <B_jl>          = a_j a_l P[j, l]
    <E_j z_x B_mn>  = a_j a_m a_n T[j, m, n, x]
    <B_jl B_mn>     = a_j a_l a_m a_n F[j, l, m, n]

(``P``, ``T``, ``F``: truncated Gaussian moments with up to four linear factors and an orthant of
the distinct units, exact: :mod:`numerics.kernels.relu_higher_moments`).

Up to :data:`MAX_HIGHER_ORDER_UNITS` units (``p + k <= 5``: an orthant of at most five distinct
rows) the parts are included (when ``second_order``); above, the covariance is the leading order
and a ``RuntimeWarning`` says so. Both parts or neither: the leading order plus the ``eta**3``
part alone need not be positive semi-definite. Cost against the leading order: see
``python -m bench --only relu_higher`` (bench/README.md).
"""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np

from numerics.core.validation import covariance
from numerics.kernels.relu_higher_moments import MAX_UNITS, relu_higher_moments
from numerics.noise.higher_orders import higher_blocks, raw_moments

#: The most units ``p + k`` for which the ``eta**3`` and ``eta**4`` parts are included (module docstring).
MAX_HIGHER_ORDER_UNITS = MAX_UNITS


def is_relu_network(module: ModuleType) -> bool:
    """Whether a per-tuple model has relu units on both sides (the ones with these parts)."""
    return module.STUDENT_KIND == "relu" and module.TEACHER_KIND == "relu"


def includes_relu_higher_orders(module: ModuleType, p: int, k: int, second_order: bool, warn: bool = True) -> bool:
    """Whether the covariance of this per-tuple model at sizes ``(p, k)`` gets the relu ``eta**3``, ``eta**4`` parts.

    Yes for a relu network with ``second_order`` and ``p + k <= MAX_HIGHER_ORDER_UNITS``; a relu
    network above that size gets the leading order, with a ``RuntimeWarning`` (when ``warn``).
    """
    if not (second_order and is_relu_network(module)):
        return False
    if p + k > MAX_HIGHER_ORDER_UNITS:
        if warn:
            warnings.warn(f"the increment covariance of this relu network (p + k = {p + k} units) is the leading order "
                          f"in eta: its eta**3 and eta**4 parts are included up to p + k = {MAX_HIGHER_ORDER_UNITS} "
                          "(numerics.noise.relu_higher_orders.MAX_HIGHER_ORDER_UNITS; more units need orthant "
                          "probabilities of more than five rows)", RuntimeWarning, stacklevel=3)
        return False
    return True


def relu_network_higher_moments(
    Q: np.ndarray, R: np.ndarray, T: np.ndarray, delta: float, a: np.ndarray, b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The raw moments ``(<B>, <A B>, <B E nu>, <B B>)`` of a relu network (module docstring).

    Parameters
    ----------
    Q, R, T : arrays, shapes (B, p, p), (B, p, k), (B, k, k)
    delta : float
        Label-noise variance.
    a, b : arrays, shapes (B, p), (B, k)
        Readout vectors.

    Returns
    -------
    mean : array, shape (B, p, p)
        ``<B_jl> = <E_j E_l>``.
    AB : array, shape (B, p, p, p, p)
        ``AB[j, l, m, n] = <A_jl B_mn>``.
    BN : array, shape (B, p, p, p, k)
        ``BN[j, l, m, s] = <B_jl E_m nu_s>``.
    BB : array, shape (B, p, p, p, p)
        ``BB[j, l, m, n] = <B_jl B_mn>``.
    """
    p = R.shape[-2]
    c = np.concatenate([-a, b], axis=-1)
    pair, triple, quadruple = relu_higher_moments(covariance(Q, R, T), c, delta, p)
    return raw_moments(pair, triple, quadruple, a, p)


def relu_higher_blocks(
    Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float, delta: float,
    a: np.ndarray, b: np.ndarray, drift_Q: np.ndarray, drift_R: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``eta**3 + eta**4`` parts of ``QQ`` and the ``eta**3`` part of ``QR`` of a relu network (module docstring).

    Parameters
    ----------
    Q, R, T : arrays, shapes (..., p, p), (..., p, k), (..., k, k)
    eta, delta : float
    a, b : arrays, shapes (..., p) and (..., k)
        Readout vectors, broadcast against the overlaps' batch.
    drift_Q, drift_R : arrays, shapes (..., p, p), (..., p, k)
        The first-order drifts ``<A_jl>``, ``<E_j nu_r>``.

    Returns
    -------
    QQ : array, shape (..., p, p, p, p)
    QR : array, shape (..., p, p, p, k)
    """
    def moments(*flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return relu_network_higher_moments(*flat[:3], delta, *flat[3:])

    return higher_blocks(moments, Q, R, T, eta, a, b, drift_Q, drift_R)


__all__ = [
    "MAX_HIGHER_ORDER_UNITS",
    "includes_relu_higher_orders",
    "is_relu_network",
    "relu_higher_blocks",
    "relu_network_higher_moments",
]
