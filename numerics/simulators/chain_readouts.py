"""Readouts and risk of the exact overlap chain (:func:`numerics.simulators.overlap_chain.simulate_overlaps`)."""

from __future__ import annotations

import numpy as np

from numerics.kernels.unit_tuples import readout_vectors
from numerics.ode.readouts import check_readout_batch, check_readouts, teacher_mixture
from numerics.results.settings import RunSettings
from numerics.runtime.registry import ResolvedModel, tuple_module


def chain_risk(
    settings: RunSettings, resolved: ResolvedModel, readouts: tuple[np.ndarray, np.ndarray] | None,
    Q_rec: np.ndarray, R_rec: np.ndarray, T: np.ndarray,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The chain's risk with readout vectors or label flips, and the recorded student readout.

    Parameters
    ----------
    settings : RunSettings
    resolved : ResolvedModel
    readouts : tuple of arrays (B, p) and (B, k), or None
        Per-unit readout vectors (:func:`chain_readouts`).
    Q_rec : array, shape (B, n, p, p)
    R_rec : array, shape (B, n, p, k)
    T : array, shape (B, k, k)

    Returns
    -------
    risk : array, shape (B, n), or None
        The mean-square risk plus ``Delta / 2``, mixed over flipped labels; ``None`` without readout
        vectors or flips (the model's generated risk applies).
    a : array, shape (B, n, p), or None
        The (fixed) student readout at the recorded steps, with readout vectors.
    """
    if readouts is None and not resolved.label_flip:
        return None, None
    replicas, n_rec, p, k = R_rec.shape
    if readouts is None:
        a, b = (np.broadcast_to(v, (replicas, v.size)) for v in readout_vectors(resolved.module.readouts, p, k,
                                                                                 None, None))
    else:
        a, b = readouts
    a_rec = np.broadcast_to(a[:, None], (replicas, n_rec, p)).copy()
    module = tuple_module(settings.model)
    risk = teacher_mixture(lambda teacher: module.residual_risk(Q_rec, R_rec, T[:, None], a_rec, teacher),
                           module, R_rec, b[:, None], resolved.label_flip)
    return risk + resolved.noise_variance / 2, a_rec if readouts is not None else None


def chain_readouts(
    settings: RunSettings, resolved: ResolvedModel, p: int, k: int, replicas: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-unit readout vectors, one row per replica: ``a`` (replicas, p), ``b`` (replicas, k); ``None`` without them.

    Raises
    ------
    ValueError
        Bad readout vectors (shapes, a trained readout).
    """
    if not settings.per_unit:
        return None
    check_readouts(settings.a, settings.b, settings.eta_a, p, k)
    check_readout_batch(settings.a, settings.b, (replicas,), "the replicas")
    a, b = readout_vectors(resolved.module.readouts, p, k, settings.a, settings.b)
    return (np.array(np.broadcast_to(a, (replicas, p)), dtype=float),
            np.array(np.broadcast_to(b, (replicas, k)), dtype=float))


__all__ = ["chain_readouts", "chain_risk"]
