"""The result of a replica simulation: the one way the three simulators report what they recorded.

The weight simulator (:mod:`numerics.simulators.weights`), the exact overlap chain
(:mod:`numerics.simulators.overlap_chain`) and the diffusion approximation (:mod:`numerics.simulators.sde`)
record ``Q``, ``R`` (and ``T``) with a leading replica axis; :func:`replica_result`
adds the population risk of the recorded overlaps, drops the replica axis of a
single replica and builds the :class:`~numerics.ode.integrate.IntegrationResult`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from numerics.results.persist import IntegrationResult
from numerics.results.settings import RunSettings
from numerics.runtime.registry import ResolvedModel


def replica_result(
    *,
    alpha: np.ndarray,
    Q: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    resolved: ResolvedModel,
    settings: RunSettings,
    nfev: int,
    extra: dict,
    risk: np.ndarray | None = None,
    squeeze: Iterable[str] = (),
    **fields: Any,
) -> IntegrationResult:
    """An :class:`IntegrationResult` from per-replica records.

    Parameters
    ----------
    alpha : array, shape (n,)
        Recorded times.
    Q : array, shape (B, n, p, p)
    R : array, shape (B, n, p, k)
    T : array, shape (B, k, k)
        Teacher overlaps of each replica (fixed along the run).
    resolved : ResolvedModel
        The run's model as resolved by :func:`numerics.runtime.registry.resolve`.
    settings : RunSettings
        The run's settings (carried by the result, which also repeats ``eta``,
        ``second_order``, ``model``, ``batch_size`` and ``eta_a``).
    nfev
        As in :class:`IntegrationResult`.
    extra : dict
        ``extra`` of the result; entries named in ``squeeze`` lose their replica axis when ``B == 1``.
    risk : array, shape (B, n), optional
        The population risk, when the caller computes it (readout vectors); default
        the model's generated ``residual_risk`` plus ``Delta / 2``.
    squeeze : names
        Entries of ``extra`` and of ``fields`` with a leading replica axis.
    **fields
        Further :class:`IntegrationResult` fields (``a``, ``b``).

    Returns
    -------
    IntegrationResult
        ``Q`` (B, n, p, p), ``R`` (B, n, p, k), ``risk`` (B, n), ``T`` (B, k, k); the replica
        axis is dropped when ``B == 1``.
    """
    replicas, n_rec = Q.shape[:2]
    if risk is None:
        risk = resolved.module.residual_risk(Q, R, T[:, None]) + resolved.noise_variance / 2
    risk = np.broadcast_to(np.asarray(risk, dtype=float), (replicas, n_rec)).copy()
    if replicas == 1:
        Q, R, risk, T = Q[0], R[0], risk[0], T[0]
        names = set(squeeze)
        extra = {key: value[0] if key in names and value is not None else value for key, value in extra.items()}
        fields = {key: value[0] if key in names and value is not None else value for key, value in fields.items()}
    return IntegrationResult(
        alpha=alpha,
        Q=Q,
        R=R,
        risk=risk,
        T=T,
        eta=settings.eta,
        second_order=settings.second_order,
        model_name=resolved.name,
        nfev=nfev,
        extra=extra,
        model=settings.model,
        batch_size=settings.batch_size,
        eta_a=settings.eta_a,
        settings=settings,
        **fields,
    )


__all__ = ["replica_result"]
