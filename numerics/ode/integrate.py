"""Adaptive integration of the overlap ODEs (``scipy.integrate.solve_ivp``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from numerics.core.blas import with_blas_threads
from numerics.core.validation import check_alpha_grid, check_int, check_overlaps, check_scalar
from numerics.ode.flow import BLOWUP, CONE_TOLERANCE, OverlapFlow, psd_part
from numerics.ode.jacobian import flow_jacobian
from numerics.ode.readouts import check_readout_batch, check_readouts
from numerics.ode.sam import check_sam_model
from numerics.ode.sphere import check_on_sphere
from numerics.results.persist import IntegrationResult
from numerics.results.settings import RunSettings
from numerics.runtime.registry import resolve

#: The solvers of ``solve_ivp`` that use a Jacobian: they get the exact one (:mod:`numerics.ode.jacobian`).
IMPLICIT_METHODS = ("Radau", "BDF", "LSODA")


class IntegrationError(RuntimeError):
    """The ODE solution became unphysical or diverged; the message says at which alpha.

    ``kind`` names the failure for callers that react to it: ``"blew up"``,
    ``"left the PSD cone"`` or ``"solver stopped"``; ``alpha`` is where the solution
    stopped (the event's alpha, or the solver's last accepted step), ``None`` when unknown.
    """

    def __init__(self, message: str, kind: str = "solver stopped", alpha: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.alpha = alpha


class AcceptedSteps:
    """The alpha of the solver's last accepted step, read off its event calls.

    ``solve_ivp`` evaluates the events once at the start and once after every accepted
    step (and, while locating a sign change, inside the last one), never at rejected
    trial points; the largest alpha they see is therefore where the solution stopped.
    The right-hand side is also called at rejected trial steps, which can lie far beyond it.
    """

    def __init__(self) -> None:
        self.last = 0.0

    def watch(self, events: list) -> list:
        """``events`` with the first one recording the alpha of each call."""
        first = events[0]

        def recorded(alpha: float, y: np.ndarray) -> float:
            self.last = max(self.last, float(alpha))
            return first(alpha, y)

        recorded.terminal = getattr(first, "terminal", False)  # type: ignore[attr-defined]
        recorded.direction = getattr(first, "direction", 0)  # type: ignore[attr-defined]
        return [recorded, *events[1:]]




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


def output_times(
    alpha_max: float, n_points: int, grid: str, alpha_eval: np.ndarray | None
) -> tuple[np.ndarray, float]:
    """``(alpha_eval, alpha_max)`` of a run: the grid, or the times given (the run then ends at the last)."""
    if alpha_eval is None:
        return default_grid(alpha_max, n_points, grid), alpha_max
    # solve_ivp needs strictly increasing output times inside the integration span
    alpha_eval = check_alpha_grid(alpha_eval, "alpha_eval", alpha_max=alpha_max, strict=True)
    if not alpha_eval[-1] > 0:
        raise ValueError("alpha_eval must end at an alpha > 0")
    return alpha_eval, float(alpha_eval[-1])


@with_blas_threads(lambda bound: np.shape(bound.arguments["Q0"])[-1] + np.shape(bound.arguments["T"])[-1])
def integrate(
    Q0: np.ndarray,
    R0: np.ndarray,
    T: np.ndarray,
    settings: RunSettings | None = None,
    *,
    alpha_max: float,
    n_points: int = 400,
    grid: str = "log",
    alpha_eval: np.ndarray | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-11,
    method: str = "DOP853",
    **setting_overrides: Any,
) -> IntegrationResult:
    """Integrate the overlap ODEs from ``(Q0, R0)`` up to ``alpha_max``.

    Example: the plateau of Saad and Solla's soft committee machine (erf
    units, unit readouts, p = k = 2)::

        model = Model(student_activation="erf(x/sqrt(2))", teacher_activation="erf(x/sqrt(2))",
                      student_readout=1, teacher_readout=1)          # derive.model.model.SCM
        result = integrate(0.5 * np.eye(2), 1e-3 * rng.standard_normal((2, 2)), np.eye(2),
                           eta=0.5, alpha_max=400, model=model)
        result.risk  # plateau near 0.0147, then escape to zero error

    The same run with the settings as one object: ``integrate(Q0, R0, T,
    RunSettings(eta=0.5, model=model), alpha_max=400)``. With ``eta_a > 0`` the
    second layer is trained too (``a`` is then its start) and ``result.a`` holds
    its trajectory.

    Parameters
    ----------
    Q0 : array, shape (p, p) or (B, p, p)
        Initial student-student overlaps (a leading axis integrates a batch of
        starts together, in one vectorised solve).
    R0 : array, shape (p, k) or (B, p, k)
    T : array, shape (k, k) or (B, k, k)
    settings : RunSettings, optional
        The dynamics: ``eta`` (> 0), ``model`` (``None``: the paper's),
        ``second_order``, ``batch_size`` (the ``eta**2`` term, label noise included,
        is divided by it), readout vectors ``a`` (shape (p,) or (B, p)), ``b``
        ((k,) or (B, k)) and the readout's learning rate ``eta_a``
        (:class:`~numerics.results.settings.RunSettings`; ``sam_radius`` for sharpness-aware
        steps of polynomial models, :mod:`numerics.ode.sam`). Polynomial activations,
        ``erf(c*x)`` and ``relu(x)`` (first-order terms and risk only: use
        ``second_order=False``), for the student and the teacher independently.
    **setting_overrides
        The same settings as keywords (``eta=0.5, model=...``): they build the
        settings, or replace entries of ``settings``. Other names raise ``TypeError``.
    alpha_max : float
        Final time.
    n_points, grid, alpha_eval
        Output times: ``alpha_eval`` if given (strictly increasing, within
        ``[0, alpha_max]``; the integration then stops at its last time),
        else ``n_points`` (>= 2) points on a ``"log"`` (default) or
        ``"linear"`` grid.
    rtol, atol, method
        Passed to ``scipy.integrate.solve_ivp``; ``0 < rtol < 1``, ``atol >= 0``. The implicit
        methods ``"Radau"``, ``"BDF"`` and ``"LSODA"`` (which switches to an implicit method by
        itself when the explicit one stalls) get the exact Jacobian of the drift
        (:func:`numerics.ode.jacobian.flow_jacobian`): for stiff runs, e.g. a trained readout
        with a large ``eta_a``, whose fast readout mode limits the explicit default ``"DOP853"``
        to steps of order ``1 / eta_a``.
    blas_threads : "auto", int or None
        BLAS threads during the integration (see :mod:`numerics.core.blas`):
        ``"auto"`` (default) pins BLAS to one thread when ``p + k <= 2048``,
        where threads cost more than they gain; an integer sets the limit;
        ``None`` leaves BLAS as configured.

    Returns
    -------
    IntegrationResult
        With ``settings`` the settings of the run.

    Raises
    ------
    TypeError
        A keyword that is not a setting, or no learning rate.
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
    cone (:mod:`numerics.ode.flow`). ``S`` goes to zero at every zero-error
    point; carried as a state it keeps its relative precision there (as
    ``Q - R R^T`` it would be lost to cancellation), and the projection,
    active only at round-off level, keeps round-off from feeding back into
    the flow, which itself cannot leave the cone. So every returned
    ``C = [[Q, R], [R^T, T]]`` is positive semi-definite by construction, on
    arbitrarily long runs.
    """
    Q0, R0, T = check_overlaps(Q0, R0, T, names=("Q0", "R0", "T"))
    settings = RunSettings.merged(settings, setting_overrides, "integrate")
    alpha_max = check_scalar(alpha_max, "alpha_max", positive=True)
    n_points = check_int(n_points, "n_points", minimum=2)
    # a NaN tolerance makes every error comparison false: the solver would never finish
    rtol = check_scalar(rtol, "rtol", positive=True, below=1.0)
    atol = check_scalar(atol, "atol", nonnegative=True)
    batch = np.broadcast_shapes(Q0.shape[:-2], R0.shape[:-2], T.shape[:-2])
    if 0 in batch:
        raise ValueError(f"the batch of starts is empty (batch shape {batch})")
    p, k = R0.shape[-2:]
    resolved = resolve(settings.model, sizes=(p, k))
    check_readouts(settings.a, settings.b, settings.eta_a, p, k)
    check_readout_batch(settings.a, settings.b, batch, "the batch of starts")
    if settings.spherical:
        check_on_sphere(Q0)
    if settings.sam_radius:
        check_sam_model(resolved, p, k, settings.second_order)
    alpha_eval, alpha_max = output_times(alpha_max, n_points, grid, alpha_eval)
    flow = OverlapFlow(T, settings, resolved, batch, p, k)
    accepted = AcceptedSteps()
    y0 = flow.start(np.broadcast_to(Q0, batch + (p, p)), np.broadcast_to(R0, batch + (p, k)))
    with np.errstate(over="ignore", invalid="ignore"):
        # a start whose derivative overflows would otherwise surface as a step-size failure at alpha ~ 1e-323
        if not np.all(np.isfinite(flow(0.0, y0))):
            raise IntegrationError(
                "the right-hand side is not finite at the start, alpha = 0 (floating-point overflow): "
                f"the starting overlaps are too large (largest |entry| {float(np.max(np.abs(y0))):.3g})"
            )
        # the implicit solvers get the exact Jacobian instead of estimating it by differences
        # (sharpness-aware steps have no exact Jacobian: the implicit solvers then estimate it)
        jacobian = {"jac": flow_jacobian(flow)} if method in IMPLICIT_METHODS and not settings.sam_radius else {}
        solution = solve_ivp(
            flow, (0.0, alpha_max), y0, method=method, t_eval=alpha_eval, rtol=rtol, atol=atol,
            events=accepted.watch(flow.events()), **jacobian,
        )
    check_solution(solution, settings.eta, accepted.last)
    Q_traj, R_traj, a_traj = flow.trajectory(solution.y.T)
    risk = flow.risk(Q_traj, R_traj, a_traj)
    if not np.all(np.isfinite(risk)):
        raise IntegrationError(f"the risk along the trajectory overflows (by alpha = {solution.t[-1]:.6g})")
    # trajectory axis after the batch axes
    Q_traj, R_traj = np.moveaxis(Q_traj, 0, len(batch)), np.moveaxis(R_traj, 0, len(batch))
    risk = np.moveaxis(np.asarray(risk), 0, len(batch)) if batch else np.asarray(risk)
    if a_traj is not None:
        a_traj = np.moveaxis(a_traj, 0, len(batch))
    return IntegrationResult(
        alpha=solution.t, Q=Q_traj, R=R_traj, risk=risk, T=T, eta=settings.eta, second_order=settings.second_order,
        model_name=resolved.name, nfev=int(solution.nfev), model=settings.model, batch_size=settings.batch_size,
        a=a_traj, b=settings.b, eta_a=settings.eta_a, settings=settings,
    )


def check_solution(solution: Any, eta: float, reached: float) -> None:
    """Raise :class:`IntegrationError` unless ``solve_ivp`` reached the end (the message names the alpha).

    ``reached`` is the alpha of the solver's last accepted step (:class:`AcceptedSteps`).
    """
    if solution.status == 1:
        if solution.t_events[1].size:
            where = solution.t_events[1][0]
            raise IntegrationError(
                f"the overlaps blew up (|Q| or |R| > {BLOWUP:g}) at alpha = {where:.6g}: "
                f"the learning rate eta = {eta:g} is too large for this start",
                kind="blew up", alpha=float(where),
            )
        where = solution.t_events[0][0]
        raise IntegrationError(
            f"the integration error pushed the state out of the cone of positive semi-definite covariances "
            f"at alpha = {where:.6g} (eta = {eta:g}); tighten rtol/atol",
            kind="left the PSD cone", alpha=float(where),
        )
    if solution.status != 0:
        raise IntegrationError(
            f"the solver stopped at alpha = {reached:.6g} ({solution.message}); with eta = {eta:g} "
            "the dynamics are most likely unstable: try a smaller learning rate",
            alpha=float(reached),
        )


__all__ = [
    "AcceptedSteps",
    "BLOWUP",
    "CONE_TOLERANCE",
    "IMPLICIT_METHODS",
    "IntegrationError",
    "check_solution",
    "default_grid",
    "integrate",
    "output_times",
    "psd_part",
]
