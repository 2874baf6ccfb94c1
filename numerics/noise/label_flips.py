"""The increment covariance under label flips: a mixture of the teacher and its negative.

A label flipped with probability ``epsilon`` is the teacher's readout ``b`` with probability
``1 - epsilon`` and ``-b`` with probability ``epsilon`` (docs/model.md), independently of the input.
With ``m_b``, ``Cov_b`` the mean and covariance of one step's increments under the teacher ``b``,
the law of total covariance gives

    Cov_mix = (1 - epsilon) Cov_b + epsilon Cov_{-b} + epsilon (1 - epsilon) (m_b - m_{-b}) (m_b - m_{-b})^T,

the same as ``(1 - epsilon)(Cov_b + m_b m_b^T) + epsilon (Cov_{-b} + m_{-b} m_{-b}^T) - m_mix m_mix^T``
with ``m_mix = (1 - epsilon) m_b + epsilon m_{-b}``. Only the mean difference enters, so the
deterministic parts of the means (weight decay, the label noise's part of ``<E_j E_l>``) drop out.
The means are the ODE's increments (:func:`numerics.ode.readouts.readout_rhs`) to the order the
covariance has: with ``eta**2 E_j E_l`` for polynomial models, erf and relu networks when ``second_order``
(and the network small enough to have those parts, :mod:`numerics.noise.tuple_fluctuations`), without it
otherwise; the readout's ``AQ`` takes the same mean of ``q`` (its ``eta_a eta**2`` part included alike), except
for relu networks, whose readout blocks stay at leading order and take the leading mean.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from numerics.kernels.unit_tuples import readout_vectors
from numerics.noise.erf_higher_orders import includes_higher_orders
from numerics.noise.relu_higher_orders import includes_relu_higher_orders, is_relu_network
from numerics.ode.readouts import readout_rhs
from numerics.runtime.registry import ResolvedModel, is_per_tuple, tuple_module


def flip_mixture_blocks(
    blocks_of: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, ...]],
    Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float, model: Any, resolved: ResolvedModel,
    second_order: bool, a: np.ndarray | None, b: np.ndarray | None, eta_a: float | None,
) -> tuple[np.ndarray, ...]:
    """The covariance blocks of one step's increments with labels flipped with probability ``resolved.label_flip``.

    Parameters
    ----------
    blocks_of : callable
        ``blocks_of(a, b)``: the blocks without flips for readout vectors ``a`` (..., p), ``b`` (..., k)
        (:func:`numerics.noise.fluctuations.covariance_blocks` of the same arguments).
    Q, R, T : arrays, shapes (..., p, p), (..., p, k), (..., k, k)
    eta : float
    model : derive.Model
    resolved : ResolvedModel
        ``resolve(model, sizes=(p, k))``; its ``label_flip`` is ``epsilon``.
    second_order : bool
    a, b : arrays, shapes (..., p) and (..., k), or None
        Readout vectors (``None``: the model's scalar readout on every unit).
    eta_a : float or None
        A trained readout's learning rate: its blocks ``AQ``, ``AR``, ``AA`` follow.

    Returns
    -------
    tuple of arrays
        ``QQ`` (..., p, p, p, p), ``QR`` (..., p, p, p, k), ``RR`` (..., p, k, p, k), then with ``eta_a``
        ``AQ`` (..., p, p, p), ``AR`` (..., p, p, k), ``AA`` (..., p, p), as
        :func:`numerics.increment_covariance`.
    """
    module = tuple_module(model)
    p, k = R.shape[-2:]
    a, b = readout_vectors(module.readouts, p, k, a, b)
    epsilon = resolved.label_flip
    kept, flipped = blocks_of(a, b), blocks_of(a, -b)
    mixed = [(1 - epsilon) * x + epsilon * y for x, y in zip(kept, flipped)]
    # the mean difference m_b - m_{-b} of (q, r, s), to the order of the covariance
    per_tuple = is_per_tuple(resolved.module)
    with_square = second_order and (not per_tuple or includes_higher_orders(resolved.module, p, k, True, warn=False)
                                    or includes_relu_higher_orders(resolved.module, p, k, True, warn=False))

    def means(teacher: np.ndarray, square: bool = with_square) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return readout_rhs(module, Q, R, T, eta, a, teacher, eta_a or 0.0, noise_variance=resolved.noise_variance,
                           weight_decay=0.0, second_order=square)

    dq, dr, ds = (x - y for x, y in zip(means(b), means(-b)))
    # a relu network's readout blocks are at leading order: their mean difference of q is too
    relu_readout = per_tuple and with_square and is_relu_network(resolved.module)
    dq_readout = means(b, False)[0] - means(-b, False)[0] if relu_readout else dq
    weight = epsilon * (1 - epsilon)
    mixed[0] = mixed[0] + weight * dq[..., :, :, None, None] * dq[..., None, None, :, :]
    mixed[1] = mixed[1] + weight * dq[..., :, :, None, None] * dr[..., None, None, :, :]
    mixed[2] = mixed[2] + weight * dr[..., :, :, None, None] * dr[..., None, None, :, :]
    if eta_a is not None:
        mixed[3] = mixed[3] + weight * ds[..., :, None, None] * dq_readout[..., None, :, :]
        mixed[4] = mixed[4] + weight * ds[..., :, None, None] * dr[..., None, :, :]
        mixed[5] = mixed[5] + weight * ds[..., :, None] * ds[..., None, :]
    return tuple(mixed)


__all__ = ["flip_mixture_blocks"]
