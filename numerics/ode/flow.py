"""The overlap ODEs in the adaptive solver's coordinates: the state ``(S, R[, a])`` and its derivative.

The state of every start is ``R`` and the upper triangle of ``S = Q - R T^+ R^T`` (the Gram
matrix of the students' components orthogonal to the teacher), followed by the student readout
``a`` when it is trained. ``Q`` is rebuilt as ``S_+ + R T^+ R^T`` with ``S_+`` the projection
of ``S`` onto the positive semi-definite cone (:func:`psd_part`); see
:func:`numerics.ode.integrate.integrate`, Notes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numerics.core.validation import min_relative_eigenvalue
from numerics.kernels.unit_tuples import readout_vectors
from numerics.ode.overlaps import rhs_unchecked
from numerics.ode.readouts import readout_rhs, teacher_mixture
from numerics.ode.sam import sam_rates
from numerics.ode.sphere import project_rates
from numerics.results.settings import RunSettings
from numerics.runtime.registry import ResolvedModel, tuple_module

#: The state counts as blown up beyond this overlap magnitude.
BLOWUP = 1e8
#: Relative eigenvalue of S = Q - R T^+ R^T below which the state has left the PSD cone.
CONE_TOLERANCE = 1e-7


def psd_part(S: np.ndarray) -> np.ndarray:
    """``S`` with negative eigenvalues set to zero (``S`` itself when it is positive definite).

    The exact flow cannot push ``S`` out of the cone (on a null vector ``v`` of
    ``S``, ``v^T dS v = eta**2 <(v.E)**2> >= 0``), so negative eigenvalues are
    integration round-off; evaluating the right-hand side at the projection
    keeps that round-off from feeding back into the dynamics.
    """
    try:
        np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        eigenvalues, vectors = np.linalg.eigh(S)
        return (vectors * np.maximum(eigenvalues, 0.0)[..., None, :]) @ np.swapaxes(vectors, -1, -2)
    return S


def _teacher_part(R: np.ndarray, T_pinv: np.ndarray) -> np.ndarray:
    """``R T^+ R^T``: the part of ``Q`` the teacher directions explain (exactly symmetric)."""
    part = R @ T_pinv @ np.swapaxes(R, -1, -2)
    return (part + np.swapaxes(part, -1, -2)) / 2


class OverlapFlow:
    """Right-hand side, events and trajectory of the ODE for a batch of starts.

    Parameters
    ----------
    T : array, shape (k, k) or (..., k, k)
    settings : RunSettings
        With readout vectors already checked against ``p`` and ``k`` (``a``, ``b``).
    resolved : ResolvedModel
        ``resolve(settings.model, sizes=(p, k))``.
    batch : tuple of int
        Shape of the batch of starts.
    p, k : int
    """

    def __init__(
        self, T: np.ndarray, settings: RunSettings, resolved: ResolvedModel, batch: tuple, p: int, k: int
    ) -> None:
        self.T, self.settings, self.resolved, self.batch, self.p, self.k = T, settings, resolved, batch, p, k
        self.iu = np.triu_indices(p)
        self.n_main = len(self.iu[0]) + p * k
        self.T_pinv = np.linalg.pinv(T, hermitian=True)
        self.trained = settings.eta_a > 0
        # readout vectors or a trained readout: the per-tuple route, with a in the state when trained
        # label flips mix the teacher and its negative: the per-tuple route takes teacher readout vectors
        self.per_unit = settings.per_unit or resolved.label_flip > 0
        self.a_start = None
        if self.per_unit:
            self.module = tuple_module(settings.model)
            a_start = readout_vectors(self.module.readouts, p, k, settings.a, settings.b)[0]
            self.a_start = np.broadcast_to(a_start, batch + (p,))
        self.reached = 0.0

    # ---- packing -------------------------------------------------------------------------------

    def _pack(self, S: np.ndarray, R: np.ndarray) -> np.ndarray:
        iu, batch = self.iu, S.shape[:-2]
        return np.concatenate(
            [S[..., iu[0], iu[1]].reshape(batch + (-1,)), R.reshape(batch + (-1,))], axis=-1
        ).ravel()

    def _unpack(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        iu, batch, p = self.iu, self.batch, self.p
        y = y.reshape(batch + (-1,))
        n_upper = len(iu[0])
        S = np.empty(batch + (p, p))
        S[..., iu[0], iu[1]] = y[..., :n_upper]
        S[..., iu[1], iu[0]] = y[..., :n_upper]
        R = y[..., n_upper:].reshape(batch + (p, self.k))
        return S, R

    def start(self, Q0: np.ndarray, R0: np.ndarray) -> np.ndarray:
        """The packed state at ``(Q0, R0)`` (and the starting readout when it is trained)."""
        # S = Q - R T^+ R^T decays to zero at the solutions; as a difference of O(1)
        # entries of Q it would be lost to cancellation there
        y0 = self._pack(Q0 - _teacher_part(R0, self.T_pinv), R0)
        if self.trained:
            y0 = np.concatenate([y0.reshape(self.batch + (-1,)), self.a_start], axis=-1).ravel()
        return y0

    def split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(S, R)`` part and the readout (the fixed start when it is not trained)."""
        if not self.trained:
            return y, self.a_start
        y = y.reshape(self.batch + (-1,))
        return y[..., : self.n_main].ravel(), y[..., self.n_main :]

    def overlaps(self, main: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(Q, R)`` of the ``(S, R)`` part of a state."""
        S, R = self._unpack(main)
        return psd_part(S) + _teacher_part(R, self.T_pinv), R

    # ---- the solver's callbacks ----------------------------------------------------------------

    def __call__(self, alpha: float, y: np.ndarray) -> np.ndarray:
        """The derivative of the packed state (NaN where the generated code overflows)."""
        self.reached = max(self.reached, alpha)
        main, a_now = self.split(y)
        Q, R = self.overlaps(main)
        settings, resolved, T = self.settings, self.resolved, self.T
        try:
            if self.per_unit:
                dQ, dR, da = readout_rhs(
                    self.module, Q, R, T, settings.eta, a_now, settings.b, settings.eta_a,
                    noise_variance=resolved.noise_variance, weight_decay=resolved.weight_decay,
                    second_order=settings.second_order, batch_size=settings.batch_size,
                    readout_decay=settings.readout_decay, label_flip=resolved.label_flip,
                )
            elif settings.sam_radius:
                dQ, dR = sam_rates(Q, R, T, settings.eta, settings.sam_radius, resolved, settings.second_order,
                                   settings.batch_size)
            else:
                dQ, dR = rhs_unchecked(Q, R, T, settings.eta, resolved, settings.second_order, settings.batch_size)
        except OverflowError:
            # Python-float overflow in the generated code: a NaN derivative makes the solver
            # reject the step (a too-long trial step) or fail, like NumPy's overflow to inf does
            return np.full_like(y, np.nan)
        if self.settings.spherical:
            dQ, dR = project_rates(Q, R, dQ, dR)
        cross = dR @ self.T_pinv @ np.swapaxes(R, -1, -2)
        packed = self._pack(dQ - cross - np.swapaxes(cross, -1, -2), dR)
        if not self.trained:
            return packed
        return np.concatenate([packed.reshape(self.batch + (-1,)), da], axis=-1).ravel()

    def events(self) -> list:
        """Terminal events: the state left the PSD cone (by integration error), or blew up."""

        def left_cone(_alpha: float, y: np.ndarray) -> float:
            # negative eigenvalues of S beyond round-off: the integration error, not the flow, left the cone
            if not np.all(np.isfinite(y)):
                return -1.0
            S, _ = self._unpack(self.split(y)[0])
            return float(np.min(min_relative_eigenvalue(S))) + CONE_TOLERANCE

        def blew_up(_alpha: float, y: np.ndarray) -> float:
            return BLOWUP - float(np.max(np.abs(y))) if np.all(np.isfinite(y)) else -1.0

        left_cone.terminal = True  # type: ignore[attr-defined]
        blew_up.terminal = True  # type: ignore[attr-defined]
        return [left_cone, blew_up]

    # ---- the trajectory ------------------------------------------------------------------------

    def trajectory(self, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``Q`` (n, ..., p, p), ``R`` (n, ..., p, k) and ``a`` (n, ..., p) or None from states ``ys`` (n, state)."""
        n, batch, p, k = ys.shape[0], self.batch, self.p, self.k
        Q_traj = np.empty((n,) + batch + (p, p))
        R_traj = np.empty((n,) + batch + (p, k))
        a_traj = np.empty((n,) + batch + (p,)) if self.per_unit else None
        for i in range(n):
            main, a_now = self.split(ys[i])
            Q_traj[i], R_traj[i] = self.overlaps(main)
            if self.per_unit:
                a_traj[i] = a_now
        return Q_traj, R_traj, a_traj

    def risk(self, Q_traj: np.ndarray, R_traj: np.ndarray, a_traj: np.ndarray | None) -> Any:
        """Population risk along a trajectory (NaN when the generated code overflows)."""
        resolved = self.resolved
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                if self.per_unit:
                    module, b = self.module, self.settings.b
                    residual = teacher_mixture(lambda teacher: module.residual_risk(Q_traj, R_traj, self.T, a_traj,
                                                                                     teacher),
                                               module, R_traj, b, resolved.label_flip)
                else:
                    residual = resolved.module.residual_risk(Q_traj, R_traj, self.T)
                return residual + resolved.noise_variance / 2
        except OverflowError:
            return np.nan


__all__ = ["BLOWUP", "CONE_TOLERANCE", "OverlapFlow", "psd_part"]
