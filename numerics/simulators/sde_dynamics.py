"""The diffusion approximation's dynamics: its drift, noise covariance and risk, and the bounds on its step.

See :mod:`numerics.simulators.sde` (module docstring, "Scheme" and "Step size").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numerics.kernels.unit_tuples import readout_vectors
from numerics.noise.diffusion import packed_evaluator
from numerics.noise.packing import packed_size
from numerics.noise.sde_readouts import readout_covariance, readout_drift
from numerics.noise.tuple_packing import tuple_packed_covariance
from numerics.ode.overlaps import rhs_unchecked
from numerics.ode.readouts import check_readout_batch, teacher_mixture
from numerics.ode.sphere import project_rates, sphere_map
from numerics.results.settings import RunSettings
from numerics.runtime.registry import ResolvedModel, is_per_tuple, tuple_module

#: ``rate * dalpha`` of the default step (see the module docstring).
DRIFT_STEP = 0.02
#: The adaptive step moves every block of the state (Q, R, a) by at most this fraction of its size by the drift.
BLOCK_STEP = 0.05
#: One step's noise at most this fraction of the state's scale (default step).
NOISE_STEP = 0.05
#: The default step makes at least this many steps.
MIN_STEPS = 100

def _pack_state(Q: np.ndarray, R: np.ndarray, iu: tuple) -> np.ndarray:
    return np.concatenate([Q[..., iu[0], iu[1]], R.reshape(R.shape[:-2] + (-1,))], axis=-1)


def _unpack_state(y: np.ndarray, p: int, k: int, iu: tuple) -> tuple[np.ndarray, np.ndarray]:
    n_upper = iu[0].size
    Q = np.empty(y.shape[:-1] + (p, p))
    Q[..., iu[0], iu[1]] = y[..., :n_upper]
    Q[..., iu[1], iu[0]] = y[..., :n_upper]
    return Q, y[..., n_upper:].reshape(y.shape[:-1] + (p, k))

def drift_rate(
    Q: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    settings: RunSettings,
    resolved: ResolvedModel,
    a: np.ndarray | None = None,
    b: np.ndarray | None = None,
) -> np.ndarray:
    """Spectral radius of the drift's Jacobian in the packed coordinates ``(Q_jl (j <= l), R_jr)``.

    Central differences, every replica and direction in one batched call of the
    generated right-hand side (exact up to rounding for the polynomial models).

    Parameters
    ----------
    Q : array, shape (B, p, p)
    R : array, shape (B, p, k)
    T : array, shape (k, k) or (B, k, k)
    settings : RunSettings
        ``eta``, ``second_order`` and ``model`` (single-sample: ``batch_size`` is not read).
    resolved : ResolvedModel
        ``resolve(settings.model)``.
    a : array, shape (B, p), optional
    b : array, shape (B, k), optional
        Per-unit readouts (the drift of :func:`numerics.rhs` with ``a``, ``b``).

    Returns
    -------
    array, shape (B,)
    """
    B, p, k = R.shape
    iu = np.triu_indices(p)
    y = _pack_state(Q, R, iu)  # (B, D)
    D = y.shape[-1]
    step = 1e-6 * np.maximum(1.0, np.max(np.abs(y), axis=-1))  # (B,)
    shifts = np.eye(D)[None] * step[:, None, None]  # (B, D, D): row i moves coordinate i
    points = np.concatenate([y[:, None] + shifts, y[:, None] - shifts], axis=1)  # (B, 2D, D)
    Qs, Rs = _unpack_state(points, p, k, iu)
    Tb = T[:, None] if T.ndim == 3 else T
    if a is None and b is None:
        dQ, dR = rhs_unchecked(Qs, Rs, Tb, settings.eta, resolved, settings.second_order)
    else:
        dQ, dR, _ = readout_drift(Qs, Rs, Tb, settings.eta, settings.model, resolved, settings.second_order,
                                  a[:, None], b[:, None])
    values = _pack_state(dQ, dR, iu)  # (B, 2D, D)
    jacobian = np.swapaxes(values[:, :D] - values[:, D:], 1, 2) / (2 * step[:, None, None])
    return np.max(np.abs(np.linalg.eigvals(jacobian)), axis=-1)

def default_step(
    Q: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    Sigma: np.ndarray,
    *,
    N: float,
    alpha_max: float,
    settings: RunSettings,
    resolved: ResolvedModel,
    a: np.ndarray | None = None,
    b: np.ndarray | None = None,
) -> float:
    """One step for a whole batch from its starts: the rate, noise and ``alpha_max / MIN_STEPS`` bounds.

    The smallest over the replicas of ``DRIFT_STEP / rate``, the noise bound and ``alpha_max /
    MIN_STEPS`` at the start. :func:`numerics.simulators.sde.simulate_sde` adapts its step along
    the path instead (:func:`step_bounds`); this is a quick estimate of its first step.

    Parameters
    ----------
    Q : array, shape (B, p, p)
    R : array, shape (B, p, k)
    T : array, shape (k, k) or (B, k, k)
    Sigma : array, shape (B, D, D)
        The packed increment covariance at the start.
    N, alpha_max : float
    settings : RunSettings
    resolved : ResolvedModel
    a : array, shape (B, p), optional
    b : array, shape (B, k), optional
        Per-unit readouts.

    Returns
    -------
    float
    """
    rate = float(np.max(drift_rate(Q, R, T, settings, resolved, a, b)))
    candidates = [alpha_max / MIN_STEPS]
    if rate > 0 and np.isfinite(rate):
        candidates.append(DRIFT_STEP / rate)
    noise = np.trace(Sigma, axis1=-2, axis2=-1)  # (B,)
    scale = np.maximum(np.linalg.norm(Q, axis=(-2, -1)), np.linalg.norm(T, axis=(-2, -1)))
    positive = noise > 0
    if np.any(positive):
        candidates.append(float(np.min(N * (NOISE_STEP * scale[positive]) ** 2 / noise[positive])))
    return float(min(candidates))

class SdeDynamics:
    """Drift and packed increment covariance of the SDE for a batch of replicas (single-sample settings).

    Parameters
    ----------
    settings : RunSettings
        With ``batch_size == 1`` (:func:`numerics.simulators.sde.simulate_sde` maps a mini-batch
        onto the single-sample process) and readout vectors checked against ``p``, ``k``.
    resolved : ResolvedModel
    replicas, p, k : int

    Attributes
    ----------
    a, b : arrays, shapes (replicas, p) and (replicas, k), or None
        The readouts of every replica with readout vectors or a trained readout (``a`` is the
        start of a trained one), else ``None`` (the scalar path's fast packed evaluator).

    Raises
    ------
    ValueError
        A model without a generated increment covariance, or readout vectors whose leading
        axis is not the replicas'.
    """

    def __init__(self, settings: RunSettings, resolved: ResolvedModel, replicas: int, p: int, k: int) -> None:
        self.settings, self.resolved = settings, resolved
        # per-tuple models (erf, relu) have no traced evaluator: their covariance is packed by tuple_packing.py
        per_tuple = is_per_tuple(resolved.module)
        if per_tuple and resolved.module.TEACHER_KIND == "sign" and settings.eta_a:
            raise ValueError("simulate_sde: the increment covariance of a sign teacher with a trained readout is not "
                             "derived (the readout's noise needs averages with a sign slot the closed form lacks); "
                             "simulate it with simulate(method='overlaps') or method='weights'")
        self.packed = None if per_tuple else packed_evaluator(settings.model)  # ValueError: no increment moments
        self.a = self.b = None
        # label flips mix the teacher readout b and -b: they take the readout-vector path
        self.per_unit = settings.per_unit or resolved.label_flip > 0
        if self.per_unit:
            # readout vectors (numerics/noise/sde_readouts.py); a trained readout joins the state and the noise
            check_readout_batch(settings.a, settings.b, (replicas,), "the replicas")
            readouts = readout_vectors(tuple_module(settings.model).readouts, p, k, settings.a, settings.b)
            self.a, self.b = (np.broadcast_to(v, (replicas,) + v.shape[-1:]).copy() for v in readouts)

    def teacher_readout(self, rows: np.ndarray | None) -> np.ndarray | None:
        """``b`` of the replicas ``rows`` (all when ``None``), shape (n, k), or ``None`` without readout vectors."""
        return self.b if self.b is None or rows is None else self.b[rows]

    def covariance(
        self, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: np.ndarray | None, rows: np.ndarray | None = None
    ) -> Any:
        """The packed covariance (n, D, D), or (n, D + p, D + p) with a trained readout ``a`` (n, p).

        ``rows``: the replicas the n states belong to (all when ``None``).
        """
        Sigma = self._free_covariance(Q, R, T, a, rows)
        if not self.settings.spherical:
            return Sigma
        # the renormalised increments are J v of the free ones v (numerics/ode/sphere.py)
        J = sphere_map(Q, R, trained=Sigma.shape[-1] - packed_size(*R.shape[-2:]))
        return J @ Sigma @ np.swapaxes(J, -1, -2)

    def _free_covariance(
        self, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: np.ndarray | None, rows: np.ndarray | None
    ) -> np.ndarray:
        settings, resolved = self.settings, self.resolved
        # the covariance's own order (RunSettings.leading_order_noise drops its eta**3, eta**4 parts)
        second_order = settings.second_order and not settings.leading_order_noise
        if self.packed is None and not settings.eta_a:
            # erf and relu networks (sign teachers, label flips): straight into the packed layout
            # (numerics/noise/tuple_packing.py)
            b = self.teacher_readout(rows) if self.per_unit else None
            return tuple_packed_covariance(resolved.module, Q, R, T, settings.eta, resolved.noise_variance, a, b,
                                           label_flip=resolved.label_flip, second_order=second_order)
        if not self.per_unit:
            return self.packed(Q, R, T, settings.eta, resolved, second_order)
        return readout_covariance(Q, R, T, settings.eta, settings.model, resolved, second_order, a,
                                  self.teacher_readout(rows), settings.eta_a)

    def drift(
        self, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: np.ndarray | None, rows: np.ndarray | None = None
    ) -> tuple:
        """``(b_Q, b_R, b_a)`` of the replicas ``rows`` (all when ``None``); ``b_a`` is 0.0 without readout vectors."""
        settings, resolved = self.settings, self.resolved
        if not self.per_unit:
            drift = (*rhs_unchecked(Q, R, T, settings.eta, resolved, settings.second_order), 0.0)
        else:
            drift = readout_drift(Q, R, T, settings.eta, settings.model, resolved, settings.second_order, a,
                                  self.teacher_readout(rows), settings.eta_a, settings.readout_decay)
        if settings.spherical:
            drift = (*project_rates(Q, R, drift[0], drift[1]), drift[2])
        return drift

    def rate(self, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
        """:func:`drift_rate` of the replicas ``rows`` at their states, shape (n,)."""
        b = self.teacher_readout(rows)
        return drift_rate(Q, R, T, self.settings, self.resolved, a, b)

    def risk(self, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: np.ndarray | None, rows: np.ndarray) -> Any:
        """The population risk of the replicas ``rows`` at their states, shape (n,)."""
        resolved = self.resolved
        if not self.per_unit:
            return resolved.module.residual_risk(Q, R, T) + resolved.noise_variance / 2
        module = tuple_module(self.settings.model)
        risk = teacher_mixture(lambda teacher: module.residual_risk(Q, R, T, a, teacher), module, R,
                               self.teacher_readout(rows), resolved.label_flip)
        return risk + resolved.noise_variance / 2


def step_bounds(
    Q: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    drift: tuple,
    Sigma: np.ndarray,
    rate: np.ndarray,
    *,
    N: float,
    a: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The drift's and the noise's bounds on the step of every replica at its state (module "Step size").

    Parameters
    ----------
    Q : array, shape (n, p, p)
    R : array, shape (n, p, k)
    T : array, shape (k, k) or (n, k, k)
    drift : tuple
        ``(b_Q (n, p, p), b_R (n, p, k), b_a (n, p) or 0.0)`` at the states.
    Sigma : array, shape (n, D, D)
        The packed increment covariance at the states.
    rate : array, shape (n,)
        The spectral radius of the drift's Jacobian (:func:`drift_rate`), possibly from a few steps back.
    N : float
    a : array, shape (n, p), optional
        A trained readout (its drift is then bounded against its own scale).

    Returns
    -------
    drift_bound : array, shape (n,)
        The smaller of ``DRIFT_STEP / rate`` and, for every block ``x`` of the state (``Q``, ``R``, a
        trained ``a``), ``BLOCK_STEP scale(x) / |b_x|`` (``scale(x) / |b_x|`` is the time the drift
        takes to move the block by its own size). The scale of ``R`` is at least its size at a random
        start, ``sqrt(tr Q tr T / N)``, so that from ``R ~ 0`` the bound is the escape's time scale
        ``|R| / |b_R|`` (for a drift ``b_R ~ R**(k* - 1)``, information exponent ``k* >= 2``), which a
        linearisation at ``R = 0`` (zero rate when ``k* >= 3``) cannot see.
    noise_bound : array, shape (n,)
        ``N (NOISE_STEP s)**2 / tr Sigma`` with ``s = max(|Q|, |T|)`` (``inf`` without noise).
    """
    drift_Q, drift_R, drift_a = drift
    scale_Q = np.maximum(np.linalg.norm(Q, axis=(-2, -1)), np.linalg.norm(T, axis=(-2, -1)))
    trace_T = np.trace(T, axis1=-2, axis2=-1)
    scale_R = np.maximum(np.linalg.norm(R, axis=(-2, -1)),
                         np.sqrt(np.abs(np.trace(Q, axis1=-2, axis2=-1) * trace_T) / N))
    times = [_time_scale(scale_Q, np.linalg.norm(drift_Q, axis=(-2, -1))),
             _time_scale(scale_R, np.linalg.norm(drift_R, axis=(-2, -1)))]
    if a is not None and np.ndim(drift_a):
        scale_a = np.maximum(np.linalg.norm(a, axis=-1), 1.0 / np.sqrt(N))
        times.append(_time_scale(scale_a, np.linalg.norm(drift_a, axis=-1)))
    rate_bound = np.where(rate > 0, DRIFT_STEP / np.where(rate > 0, rate, 1.0), np.inf)
    drift_bound = np.minimum(rate_bound, BLOCK_STEP * np.min(times, axis=0))
    noise = np.trace(Sigma, axis1=-2, axis2=-1)
    positive = noise > 0
    noise_bound = np.full(noise.shape, np.inf)
    noise_bound[positive] = N * (NOISE_STEP * scale_Q[positive]) ** 2 / noise[positive]
    return drift_bound, noise_bound


def _time_scale(scale: np.ndarray, speed: np.ndarray) -> np.ndarray:
    # scale / speed, infinite where the block does not move
    return np.where(speed > 0, scale / np.where(speed > 0, speed, 1.0), np.inf)


__all__ = ["BLOCK_STEP", "DRIFT_STEP", "MIN_STEPS", "NOISE_STEP", "SdeDynamics", "default_step", "drift_rate",
           "step_bounds"]
