"""Spherical SGD in the exact overlap chain: every student renormalised to its start norm after each step.

On the overlaps the renormalisation is exact: with ``Q'``, ``R'`` the overlaps after a free step,
``Q'_jl -> Q'_jl sqrt(n_j n_l / (Q'_jj Q'_ll))`` and ``R'_jr -> R'_jr sqrt(n_j / Q'_jj)`` (``n_j`` the
start ``Q_jj``). Inside a block of steps it is done as the weight simulator does it
(:mod:`numerics.simulators.weight_steps`): the weights of step ``t`` are
``W_t = C_t (W_0 + sum_{tau < t} e~_tau x_tau^T / sqrt(N))`` with ``C_t`` the product of the
steps' per-row scales and ``e~_tau = e_tau / C_tau``. The per-row scales commute with the block
update, so the block's ``Q``, ``R`` are those of the unscaled sum, renormalised at its end
(:func:`renormalise_overlaps`), and inside the block only the pre-activations carry ``C_t``
(:func:`sphere_update_vectors`). Weight decay only rescales a step on the sphere
(``d w + e x`` points where ``w + (e / d) x`` does).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def sphere_update_vectors(
    kernel: Any, lam0: np.ndarray, y: np.ndarray, gram: np.ndarray, norms: np.ndarray
) -> np.ndarray:
    """The update vectors ``e~`` of a block of renormalised steps.

    Parameters
    ----------
    kernel : numerics.simulators.overlap_chain.StepKernel
        The block kernel (activations, readouts, ``eta``, ``N``, ``batch``, ``sphere_scale``).
    lam0 : array, shape (B, n, p)
        Student pre-activations of the block's ``n`` inputs at the block-start weights.
    y : array, shape (B, n)
        The labels of the inputs.
    gram : array, shape (B, n, n)
        ``x_tau . x_t / N``.
    norms : array, shape (B, p)
        The squared norms ``Q_jj`` the students keep.

    Returns
    -------
    e : array, shape (B, p, n)
        ``e~_tau = e_tau / C_tau`` (column per input): the block's overlaps are those of
        ``W_0 + sum_tau e~_tau x_tau^T / sqrt(N)``, renormalised.
    """
    batch, N = kernel.batch, kernel.N
    replicas, n_inputs, p = lam0.shape
    e = np.empty((replicas, p, n_inputs))
    coefficient = kernel.eta * kernel.sphere_scale * kernel.student_readout(2) / batch  # scalar or (B, 1, p)
    scale = np.ones((replicas, p))  # C_t
    for t in range(n_inputs // batch):
        first, last = t * batch, (t + 1) * batch  # the inputs of step t
        lam = lam0[:, first:last]  # (B, batch, p)
        if t:
            lam = lam + np.swapaxes(e[:, :, :first] @ gram[:, :first, first:last], 1, 2)
        lam = lam * scale[:, None, :]  # at the renormalised weights W_t
        residual = y[:, first:last] - kernel.student_output(lam, 2)
        step = np.swapaxes(coefficient * residual[..., None] * kernel.sigma_prime(lam), 1, 2)  # (B, p, batch)
        # |w_j + sum_b e_j^b x^b / sqrt(N)|^2 / N with |w_j|^2 / N = n_j
        grown = (norms + (2 / N) * np.einsum("bps,bsp->bp", step, lam)
                 + np.einsum("bps,bst,bpt->bp", step, gram[:, first:last, first:last], step) / N)
        e[:, :, first:last] = step / scale[:, :, None]
        scale = scale * np.sqrt(norms / grown)
    return e


def renormalise_overlaps(Q: np.ndarray, R: np.ndarray, norms: np.ndarray) -> None:
    """Scale the students of ``Q`` (B, p, p) and ``R`` (B, p, k) in place to squared norms ``norms`` (B, p)."""
    scale = np.sqrt(norms / np.diagonal(Q, axis1=1, axis2=2))
    Q *= scale[:, :, None] * scale[:, None, :]
    R *= scale[:, :, None]


__all__ = ["renormalise_overlaps", "sphere_update_vectors"]
