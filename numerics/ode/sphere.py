"""Spherical (projected) one-pass SGD: every student vector renormalised to its norm after each step.

One step moves ``w_j`` to ``w'_j = w_j + delta_j`` and renormalises, ``w_j <- w'_j |w_j| / |w'_j|``.
With ``u_j = (|w'_j|^2 - |w_j|^2) / |w_j|^2 = (2 w_j . delta_j + |delta_j|^2) / (N Q_jj)``, of order
``1/N``, the factor is ``(1 + u_j)^(-1/2) = 1 - u_j / 2 + O(1/N^2)``, so to the order the ODE
and the diffusion need (docs/model.md, "Spherical SGD"):

* the increments of the free dynamics, ``q_jl`` and ``r_jr``, become
  ``q_jl - Q_jl (q_jj / (2 Q_jj) + q_ll / (2 Q_ll))`` and ``r_jr - R_jr q_jj / (2 Q_jj)``,
  because ``u_j`` is ``q_jj / Q_jj`` (``|w'_j|^2 / N - Q_jj`` is the free increment of ``Q_jj``);
* hence the drift ``dQ_jl - Q_jl (c_j + c_l)``, ``dR_jr - R_jr c_j`` with
  ``c_j = dQ_jj / (2 Q_jj)``: the projection's first-order term (``eta <E_j lambda_j> / Q_jj``)
  and the Ito term of the normalisation (``eta**2 <E_j^2> / (2 Q_jj)``) both come from the
  free ``dQ_jj``, which every model's generated right-hand side already holds;
* and the increment covariance ``J Sigma J^T``, ``J`` the same linear map on the packed
  increment vector (:func:`sphere_map`).

``dQ_jj`` is then zero: the norms stay at their start. Weight decay of the first layer has no
effect on the sphere (the renormalisation undoes it), and the trained readout is not projected.
"""

from __future__ import annotations

import numpy as np


def check_on_sphere(Q: np.ndarray) -> None:
    """Refuse a start with a zero-norm student: it has no sphere to stay on.

    Raises
    ------
    ValueError
        Naming the unit whose ``Q_jj`` is not positive.
    """
    diagonal = np.diagonal(Q, axis1=-2, axis2=-1)
    bad = np.argwhere(~(diagonal > 0))
    if bad.size:
        unit = int(bad[0][-1])
        raise ValueError(
            f"spherical SGD keeps every student at its start norm, but Q[{unit}, {unit}] = "
            f"{float(diagonal[tuple(bad[0])])!r}: every Q_jj must be positive"
        )


def project_rates(Q: np.ndarray, R: np.ndarray, dQ: np.ndarray, dR: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The drift on the sphere from the free drift (module docstring).

    Parameters
    ----------
    Q, R : arrays, shapes (..., p, p), (..., p, k)
        The overlaps (``Q_jj > 0``).
    dQ, dR : arrays, shapes (..., p, p), (..., p, k)
        The free right-hand side (the step without the renormalisation), batch axes broadcast.

    Returns
    -------
    dQ, dR : arrays
        ``dQ - Q (c_j + c_l)`` (zero diagonal) and ``dR - R c_j``, ``c_j = dQ_jj / (2 Q_jj)``.
    """
    rate = np.diagonal(dQ, axis1=-2, axis2=-1) / (2 * np.diagonal(Q, axis1=-2, axis2=-1))
    projected_Q = dQ - Q * (rate[..., :, None] + rate[..., None, :])
    # exactly zero on the diagonal (the subtraction leaves rounding)
    p = Q.shape[-1]
    projected_Q[..., np.arange(p), np.arange(p)] = 0.0
    return projected_Q, dR - R * rate[..., :, None]


def sphere_map(Q: np.ndarray, R: np.ndarray, trained: int = 0) -> np.ndarray:
    """``J``: the packed increments on the sphere are ``J v`` of the free ones ``v``.

    Parameters
    ----------
    Q, R : arrays, shapes (..., p, p), (..., p, k)
    trained : int
        Number of trailing readout entries of the packed vector (``p`` for a trained readout,
        else 0): they pass unchanged.

    Returns
    -------
    J : array, shape (..., D + trained, D + trained)
        In the order of :mod:`numerics.noise.packing` (``q_jl`` for ``j <= l`` in
        ``numpy.triu_indices`` order, then ``r_jr`` row-major, then the readout).
    """
    p, k = R.shape[-2:]
    rows, cols = np.triu_indices(p)
    n_upper = rows.size
    size = n_upper + p * k + trained
    batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2])
    J = np.broadcast_to(np.eye(size), batch + (size, size)).copy()
    diagonal = np.diagonal(Q, axis1=-2, axis2=-1)
    # where q_jj sits in the packed vector
    position = {int(j): i for i, (j, l) in enumerate(zip(rows, cols)) if j == l}
    for i, (j, l) in enumerate(zip(rows.tolist(), cols.tolist())):
        J[..., i, position[j]] -= Q[..., j, l] / (2 * diagonal[..., j])
        J[..., i, position[l]] -= Q[..., j, l] / (2 * diagonal[..., l])
    for j in range(p):
        for r in range(k):
            J[..., n_upper + j * k + r, position[j]] -= R[..., j, r] / (2 * diagonal[..., j])
    return J


def renormalise(W: np.ndarray, norms_squared: np.ndarray) -> np.ndarray:
    """Rows of ``W`` (..., p, N) scaled in place to squared norms ``norms_squared`` (..., p); returns ``W``."""
    W *= np.sqrt(norms_squared / np.einsum("...jn,...jn->...j", W, W))[..., None]
    return W


__all__ = ["check_on_sphere", "project_rates", "renormalise", "sphere_map"]
