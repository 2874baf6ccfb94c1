"""Adaptive integration of the overlap ODEs (``scipy.integrate.solve_ivp``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from numerics.core.blas import with_blas_threads
from numerics.core.validation import (
    check_alpha_grid,
    check_flag,
    check_int,
    check_overlaps,
    check_scalar,
    min_relative_eigenvalue,
)
from numerics.kernels.unit_tuples import readout_vectors
from numerics.ode.overlaps import rhs_unchecked
from numerics.ode.readouts import check_readout_batch, check_readouts, readout_rhs
from numerics.results.persist import IntegrationResult
from numerics.runtime.registry import resolve, tuple_module

#: The state counts as blown up beyond this overlap magnitude.
BLOWUP = 1e8
#: Relative eigenvalue of S = Q - R T^+ R^T below which the state has left the PSD cone.
CONE_TOLERANCE = 1e-7


class IntegrationError(RuntimeError):
    """The ODE solution became unphysical or diverged; the message says at which alpha.

    ``kind`` names the failure for callers that react to it: ``"blew up"``,
    ``"left the PSD cone"`` or ``"solver stopped"``.
    """

    def __init__(self, message: str, kind: str = "solver stopped") -> None:
        super().__init__(message)
        self.kind = kind




def _pack(S: np.ndarray, R: np.ndarray, iu: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    batch = S.shape[:-2]
    return np.concatenate([S[..., iu[0], iu[1]].reshape(batch + (-1,)), R.reshape(batch + (-1,))], axis=-1).ravel()


def _unpack(y: np.ndarray, batch: tuple, p: int, k: int, iu) -> tuple[np.ndarray, np.ndarray]:
    y = y.reshape(batch + (-1,))
    n_upper = len(iu[0])
    S = np.empty(batch + (p, p))
    S[..., iu[0], iu[1]] = y[..., :n_upper]
    S[..., iu[1], iu[0]] = y[..., :n_upper]
    R = y[..., n_upper:].reshape(batch + (p, k))
    return S, R


def _teacher_part(R: np.ndarray, T_pinv: np.ndarray) -> np.ndarray:
    """``R T^+ R^T``: the part of ``Q`` the teacher directions explain (exactly symmetric)."""
    part = R @ T_pinv @ np.swapaxes(R, -1, -2)
    return (part + np.swapaxes(part, -1, -2)) / 2


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


def default_grid(alpha_max: float, n_points: int, grid: str) -> np.ndarray:
    """Output times: 0 then log-spaced (``"log"``), or evenly spaced (``"linear"``)."""
    if grid == "linear":
        return np.linspace(0.0, alpha_max, n_points)
    if grid == "log":
        start = min(1e-3, alpha_max / 10)
        if not start > 0:  # alpha_max <= 0, or so small that alpha_max / 10 underflows
            raise ValueError(f"the log grid needs alpha_max > 0 well above the smallest float, got {alpha_max!r}")
        return np.concatenate([[0.0], np.geomspace(start, alpha_max, n_points - 1)])
    raise ValueError(f"grid must be 'log' or 'linear', got {grid!r}")


@with_blas_threads(lambda bound: np.shape(bound.arguments["Q0"])[-1] + np.shape(bound.arguments["T"])[-1])
def integrate(
    Q0: np.ndarray,
    R0: np.ndarray,
    T: np.ndarray,
    *,
    eta: float,
    alpha_max: float,
    model: Any = None,
    second_order: bool = True,
    batch_size: int = 1,
    n_points: int = 400,
    grid: str = "log",
    alpha_eval: np.ndarray | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-11,
    method: str = "DOP853",
    a: np.ndarray | None = None,
    b: np.ndarray | None = None,
    eta_a: float = 0.0,
) -> IntegrationResult:
    """Integrate the overlap ODEs from ``(Q0, R0)`` up to ``alpha_max``.

    Example: the plateau of Saad and Solla's soft committee machine (erf
    units, unit readouts, p = k = 2)::

        model = Model(student_activation="erf(x/sqrt(2))", teacher_activation="erf(x/sqrt(2))",
                      student_readout=1, teacher_readout=1)          # derive.model.model.SCM
        result = integrate(0.5 * np.eye(2), 1e-3 * rng.standard_normal((2, 2)), np.eye(2),
                           eta=0.5, alpha_max=400, model=model)
        result.risk  # plateau near 0.0147, then escape to zero error

    With ``eta_a > 0`` the second layer is trained too (``a`` is then its start)
    and ``result.a`` holds its trajectory.

    Parameters
    ----------
    Q0 : array, shape (p, p) or (B, p, p)
        Initial student-student overlaps (a leading axis integrates a batch of
        starts together, in one vectorised solve).
    R0 : array, shape (p, k) or (B, p, k)
    T : array, shape (k, k) or (B, k, k)
    eta : float
        Learning rate (> 0).
    alpha_max : float
        Final time.
    model : derive.Model, optional
        ``None`` is the paper's model. Polynomial activations, ``erf(x/sqrt(2))``
        (erf networks; any ``erf(c*x)``) and ``relu(x)`` (first-order terms and
        risk; its eta**2 term has no closed form here, so use
        ``second_order=False``), for the student and the teacher independently.
    second_order : bool
        Keep the ``eta**2`` term (default) or integrate the gradient-flow limit.
    batch_size : int
        Mini-batch size ``B >= 1``: the ``eta**2`` term (label noise included)
        is divided by ``B``; ``alpha`` counts SGD steps / N (docs/model.md).
    a : array, shape (p,) or (B, p), optional
        Per-unit student readouts (default: the model's scalar readout on every
        unit); the starting value when ``eta_a > 0``.
    b : array, shape (k,) or (B, k), optional
        Per-unit teacher readouts (default: the model's).
    eta_a : float
        Learning rate of the student readout (>= 0; default 0, fixed):
        ``da_j/dalpha = eta_a <(y - f) sigma(lambda_j)>`` (docs/model.md).
    n_points, grid, alpha_eval
        Output times: ``alpha_eval`` if given (strictly increasing, within
        ``[0, alpha_max]``; the integration then stops at its last time),
        else ``n_points`` (>= 2) points on a ``"log"`` (default) or
        ``"linear"`` grid.
    rtol, atol, method
        Passed to ``scipy.integrate.solve_ivp``; ``0 < rtol < 1``, ``atol >= 0``.
    blas_threads : "auto", int or None
        BLAS threads during the integration (see :mod:`numerics.core.blas`):
        ``"auto"`` (default) pins BLAS to one thread when ``p + k <= 2048``,
        where threads cost more than they gain; an integer sets the limit;
        ``None`` leaves BLAS as configured.

    Returns
    -------
    IntegrationResult

    Raises
    ------
    ValueError
        Bad arguments, each named (see :mod:`numerics.core.validation`).
    IntegrationError
        If the overlaps blow up or the solver cannot proceed (typically:
        learning rate too large), if the start is so large that the
        right-hand side overflows, or if integration error (not the flow)
        pushes the state out of the cone of positive semi-definite
        covariances; the message names the alpha.

    Notes
    -----
    The solver's state is ``R`` and the upper triangle of
    ``S = Q - R T^+ R^T``, the Gram matrix of the students' components
    orthogonal to the teacher, and ``Q`` is rebuilt as ``S_+ + R T^+ R^T``
    with ``S_+`` the projection of ``S`` onto the positive semi-definite
    cone. ``S`` goes to zero at every zero-error point; carried as a state it
    keeps its relative precision there (as ``Q - R R^T`` it would be lost to
    cancellation), and the projection, active only at round-off level, keeps
    round-off from feeding back into the flow, which itself cannot leave the
    cone. So every returned ``C = [[Q, R], [R^T, T]]`` is positive
    semi-definite by construction, on arbitrarily long runs.
    """
    Q0, R0, T = check_overlaps(Q0, R0, T, names=("Q0", "R0", "T"))
    eta = check_scalar(eta, "eta", positive=True)
    alpha_max = check_scalar(alpha_max, "alpha_max", positive=True)
    n_points = check_int(n_points, "n_points", minimum=2)
    second_order = check_flag(second_order, "second_order")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    # a NaN tolerance makes every error comparison false: the solver would never finish
    rtol = check_scalar(rtol, "rtol", positive=True, below=1.0)
    atol = check_scalar(atol, "atol", nonnegative=True)
    batch = np.broadcast_shapes(Q0.shape[:-2], R0.shape[:-2], T.shape[:-2])
    if 0 in batch:
        raise ValueError(f"the batch of starts is empty (batch shape {batch})")
    p, k = R0.shape[-2:]
    resolved = resolve(model, sizes=(p, k))
    a, b, eta_a = check_readouts(a, b, eta_a, p, k)
    check_readout_batch(a, b, batch, "the batch of starts")
    # readout vectors or a trained readout: the per-tuple route, with a in the state when trained
    per_unit = a is not None or b is not None or eta_a > 0
    if per_unit:
        module = tuple_module(model)
        a_start = np.broadcast_to(readout_vectors(module.readouts, p, k, a, b)[0], batch + (p,))
    Q0 = np.broadcast_to(Q0, batch + (p, p))
    R0 = np.broadcast_to(R0, batch + (p, k))
    iu = np.triu_indices(p)
    n_main = len(iu[0]) + p * k

    def split(y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        # the state is (S, R) per start, followed by a when the readout is trained
        if eta_a == 0:
            return y, (a_start if per_unit else None)
        y = y.reshape(batch + (-1,))
        return y[..., :n_main].ravel(), y[..., n_main:]
    if alpha_eval is None:
        alpha_eval = default_grid(alpha_max, n_points, grid)
    else:
        # solve_ivp needs strictly increasing output times inside the integration span
        alpha_eval = check_alpha_grid(alpha_eval, "alpha_eval", alpha_max=alpha_max, strict=True)
        if not alpha_eval[-1] > 0:
            raise ValueError("alpha_eval must end at an alpha > 0")
        alpha_max = float(alpha_eval[-1])

    # The state is (S, R) with S = Q - R T^+ R^T, the Gram matrix of the students'
    # components orthogonal to the teacher: it decays to zero at the solutions, and
    # as a difference of O(1) entries of Q it would be lost to cancellation there.
    T_pinv = np.linalg.pinv(T, hermitian=True)
    S0 = Q0 - _teacher_part(R0, T_pinv)
    reached = [0.0]

    def overlaps(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        S, R = _unpack(y, batch, p, k, iu)
        return psd_part(S) + _teacher_part(R, T_pinv), R

    def fun(alpha: float, y: np.ndarray) -> np.ndarray:
        reached[0] = max(reached[0], alpha)
        main, a_now = split(y)
        Q, R = overlaps(main)
        try:
            if per_unit:
                dQ, dR, da = readout_rhs(
                    module, Q, R, T, eta, a_now, b, eta_a, noise_variance=resolved.noise_variance,
                    weight_decay=resolved.weight_decay, second_order=second_order, batch_size=batch_size,
                )
            else:
                dQ, dR = rhs_unchecked(Q, R, T, eta, resolved, second_order, batch_size)
        except OverflowError:
            # Python-float overflow in the generated code: a NaN derivative makes the solver
            # reject the step (a too-long trial step) or fail, like NumPy's overflow to inf does
            return np.full_like(y, np.nan)
        cross = dR @ T_pinv @ np.swapaxes(R, -1, -2)
        packed = _pack(dQ - cross - np.swapaxes(cross, -1, -2), dR, iu)
        if eta_a == 0:
            return packed
        return np.concatenate([packed.reshape(batch + (-1,)), da], axis=-1).ravel()

    def left_cone(_alpha: float, y: np.ndarray) -> float:
        # negative eigenvalues of S beyond round-off: the integration error, not the flow, left the cone
        if not np.all(np.isfinite(y)):
            return -1.0
        S, _ = _unpack(split(y)[0], batch, p, k, iu)
        return float(np.min(min_relative_eigenvalue(S))) + CONE_TOLERANCE

    def blew_up(_alpha: float, y: np.ndarray) -> float:
        return BLOWUP - float(np.max(np.abs(y))) if np.all(np.isfinite(y)) else -1.0

    left_cone.terminal = True  # type: ignore[attr-defined]
    blew_up.terminal = True  # type: ignore[attr-defined]
    y0 = _pack(S0, R0, iu)
    if eta_a > 0:
        y0 = np.concatenate([y0.reshape(batch + (-1,)), a_start], axis=-1).ravel()
    with np.errstate(over="ignore", invalid="ignore"):
        # a start whose derivative overflows would otherwise surface as a step-size failure at alpha ~ 1e-323
        if not np.all(np.isfinite(fun(0.0, y0))):
            raise IntegrationError(
                "the right-hand side is not finite at the start, alpha = 0 (floating-point overflow): "
                f"the starting overlaps are too large (largest |entry| {float(np.max(np.abs(y0))):.3g})"
            )
        solution = solve_ivp(
            fun,
            (0.0, alpha_max),
            y0,
            method=method,
            t_eval=alpha_eval,
            rtol=rtol,
            atol=atol,
            events=[left_cone, blew_up],
        )
    if solution.status == 1:
        if solution.t_events[1].size:
            where = solution.t_events[1][0]
            raise IntegrationError(
                f"the overlaps blew up (|Q| or |R| > {BLOWUP:g}) at alpha = {where:.6g}: "
                f"the learning rate eta = {eta:g} is too large for this start",
                kind="blew up",
            )
        where = solution.t_events[0][0]
        raise IntegrationError(
            f"the integration error pushed the state out of the cone of positive semi-definite covariances "
            f"at alpha = {where:.6g} (eta = {eta:g}); tighten rtol/atol",
            kind="left the PSD cone",
        )
    if solution.status != 0:
        raise IntegrationError(
            f"the solver stopped at alpha = {reached[0]:.6g} ({solution.message}); with eta = {eta:g} "
            "the dynamics are most likely unstable: try a smaller learning rate"
        )
    n = solution.t.size
    ys = solution.y.T  # (n, state)
    Q_traj = np.empty((n,) + batch + (p, p))
    R_traj = np.empty((n,) + batch + (p, k))
    a_traj = np.empty((n,) + batch + (p,)) if per_unit else None
    for i in range(n):
        main, a_now = split(ys[i])
        Q_traj[i], R_traj[i] = overlaps(main)
        if per_unit:
            a_traj[i] = a_now
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            if per_unit:
                risk = module.residual_risk(Q_traj, R_traj, T, a_traj, b) + resolved.noise_variance / 2
            else:
                risk = resolved.module.residual_risk(Q_traj, R_traj, T) + resolved.noise_variance / 2
    except OverflowError:
        risk = np.nan
    if not np.all(np.isfinite(risk)):
        raise IntegrationError(f"the risk along the trajectory overflows (by alpha = {solution.t[-1]:.6g})")
    # trajectory axis after the batch axes
    Q_traj = np.moveaxis(Q_traj, 0, len(batch))
    R_traj = np.moveaxis(R_traj, 0, len(batch))
    risk = np.moveaxis(np.asarray(risk), 0, len(batch)) if batch else np.asarray(risk)
    if per_unit:
        a_traj = np.moveaxis(a_traj, 0, len(batch))
    return IntegrationResult(
        alpha=solution.t,
        Q=Q_traj,
        R=R_traj,
        risk=risk,
        T=T,
        eta=eta,
        second_order=second_order,
        model_name=resolved.name,
        nfev=int(solution.nfev),
        model=model,
        batch_size=batch_size,
        a=a_traj,
        b=b,
        eta_a=eta_a,
    )
