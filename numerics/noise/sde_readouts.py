"""The SDE's noise and drift with per-unit readouts, fixed or trained (used by :func:`numerics.simulate_sde`).

With a trained student readout the state is ``(Q, R, a)`` and one step moves ``a`` by
``s / N``, ``s_j = eta_a (y - f) sigma(lambda_j)`` (docs/model.md). The packed noise vector
is then ``(q_jl (j <= l), r_jr, s_j)`` of length ``D + p`` with ``D = p (p + 1) / 2 + p k``,
and its covariance is :func:`numerics.increment_covariance` with ``eta_a`` arranged as

    [[Sigma_qr,            Cov(s, (q, r))^T],
     [Cov(s, (q, r)),      Cov(s, s)        ]].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numerics.noise.fluctuations import covariance_blocks
from numerics.noise.packing import pack_covariance
from numerics.ode.readouts import readout_rhs
from numerics.runtime.registry import ResolvedModel, tuple_module


def pack_readout_covariance(blocks: tuple[np.ndarray, ...]) -> np.ndarray:
    """The packed covariance from ``(QQ, QR, RR)`` or ``(QQ, QR, RR, AQ, AR, AA)``.

    Parameters
    ----------
    blocks : tuple of arrays
        :func:`numerics.increment_covariance`'s output (with or without ``eta_a``).

    Returns
    -------
    Sigma : array, shape (..., D, D) or (..., D + p, D + p)
        Rows in the order ``(q_jl for j <= l (numpy.triu_indices order), r_jr row-major, s_j)``.
    """
    Sigma = pack_covariance(*blocks[:3])
    if len(blocks) == 3:
        return Sigma
    AQ, AR, AA = blocks[3:]
    p = AA.shape[-1]
    iu = np.triu_indices(p)
    cross = np.concatenate([AQ[..., iu[0], iu[1]], AR.reshape(AR.shape[:-2] + (-1,))], axis=-1)  # (..., p, D)
    top = np.concatenate([Sigma, np.swapaxes(cross, -1, -2)], axis=-1)
    bottom = np.concatenate([cross, AA], axis=-1)
    return np.concatenate([top, bottom], axis=-2)


def readout_covariance(
    Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float, model: Any, resolved: ResolvedModel,
    second_order: bool, a: np.ndarray, b: np.ndarray, eta_a: float,
) -> np.ndarray:
    """The packed increment covariance with readout vectors ``a`` (B, p), ``b`` (B, k) (no validation).

    Shape (B, D, D) for a fixed readout (``eta_a == 0``), (B, D + p, D + p) for a trained one.
    """
    blocks = covariance_blocks(Q, R, T, eta, model, resolved, second_order, a, b, eta_a if eta_a else None)
    return pack_readout_covariance(blocks)


def readout_drift(
    Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float, model: Any, resolved: ResolvedModel,
    second_order: bool, a: np.ndarray, b: np.ndarray, eta_a: float = 0.0, readout_decay: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ODE drift ``(dQ, dR, da)`` with per-unit readouts (weight decays and label flips included; ``da = 0``
    when fixed)."""
    return readout_rhs(tuple_module(model), Q, R, T, eta, a, b, eta_a,
                       noise_variance=resolved.noise_variance, weight_decay=resolved.weight_decay,
                       second_order=second_order, readout_decay=readout_decay, label_flip=resolved.label_flip)


__all__ = ["pack_readout_covariance", "readout_covariance", "readout_drift"]
