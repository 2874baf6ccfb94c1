"""The linear-noise approximation of a plateau: how much initial displacement the SGD noise is worth.

At finite N the overlaps are ``x = xbar(alpha) + N**-1/2 xi`` with ``xbar`` the ODE's path
and, to leading order,

    d xi = J(alpha) xi dalpha + dM,        d<M, M> = Sigma(alpha) dalpha,

``J`` the exact Jacobian of the drift (:mod:`numerics.ode.jacobian`) and ``Sigma`` the
covariance of one step's increments (:func:`numerics.packed_covariance`), both along
``xbar`` and over the same packed coordinates ``x``. At the plateau ``x*`` the left
eigenvector ``u`` of ``J(x*)`` for the escape rate ``g_R`` picks the growing part:
``u . xi(alpha) exp(-g_R alpha)`` converges to

    Y = b(0) . xi(0) + int_0^inf exp(-g_R s) b(s) . dM(s),

with the growth covector ``b(s)^T = lim exp(-g_R (alpha - s)) u^T Phi(alpha, s)`` (``Phi`` the
propagator of ``J``), the solution of ``-db/ds = (J(s) - g_R)^T b`` with ``b = u`` on the
plateau. The noise is therefore worth a displacement ``Z w`` of the start along the unit vector
``w = b(0) / |b(0)|``, ``Z`` Gaussian of variance ``S / N``:

    S = int_0^inf exp(-2 g_R s) b(s)^T Sigma(s) b(s) ds / |b(0)|^2.

For an ``R = 0`` plateau whose ``R`` block of ``J`` is ``g(alpha) I`` this is the scalar
formula of :mod:`numerics.analyses.finite_n` (``b = exp(Gamma(s) - g_R s) u`` up to a constant),
and the discretisation below reproduces it exactly: the propagator over a grid step is
``expm(h (J_i + J_{i+1}) / 2)``, which for a diagonal ``J`` is the trapezoid rule of ``Gamma``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from numerics.analyses.fixed_points import symmetric_ansatz
from numerics.ode.jacobian import Drift

#: Real eigenvalues of the plateau's Jacobian within this (relative to ``g_R``) count as ``g_R`` itself.
DEGENERACY_TOLERANCE = 1e-6
#: The most evaluations of the symmetric drift :func:`symmetric_path` spends before it gives up.
MAX_PATH_EVALUATIONS = 20000
#: The relative tolerance of :func:`symmetric_path` for a drift that is not smooth to 1e-11.
ROUGH_PATH_TOLERANCE = 1e-8
#: Second differences of the symmetric drift above this (relative to the drift) mark it as not smooth to 1e-11.
SMOOTHNESS_LEVEL = 1e-11
#: ``g_R alpha`` beyond which the noise integral's weight ``exp(-2 g_R alpha)`` is below ``exp(-40)``.
INTEGRAND_HORIZON = 20.0
#: Beyond :data:`INTEGRAND_HORIZON` a grid step grows while its length (in units of ``1 / g_R``) times the
#: path's move over it (relative to the state's largest coordinate) stays below this: only the backward
#: propagation of ``b`` needs the path there, and the error of a step's propagator in the growth of ``|b|``
#: (hence in ``Gamma``) is about that product.
SETTLED_MOVE_TOLERANCE = 1e-7
#: ``g_R`` times the grid's settled end that keeps every point: there ``Gamma`` grows at ``g_R`` (``b = u``),
#: which shows that the path has reached the plateau.
SETTLED_TAIL = 5.0


def left_growth_vector(matrix: np.ndarray, g_R: float, coordinates: tuple[str, ...]) -> tuple[np.ndarray, int]:
    """``(u, m)``: a unit left eigenvector of ``matrix`` (n, n) for ``g_R`` and the eigenvalue's multiplicity ``m``.

    For a repeated ``g_R`` (an isotropic ``R = 0`` plateau: every ``R`` entry grows alike) ``u``
    is the projection of the first ``R`` coordinate onto the left eigenspace, so that ``S`` is
    the noise of ``R[0,0]``.
    """
    eigenvalues, vectors = np.linalg.eig(matrix.T)
    close = np.abs(eigenvalues - g_R) <= DEGENERACY_TOLERANCE * abs(g_R)
    space = np.linalg.qr(vectors[:, close].real)[0]
    if space.shape[1] == 1:
        u = space[:, 0]
    else:
        first = np.zeros(matrix.shape[0])
        first[coordinates.index(next(name for name in coordinates if name.startswith("R[")))] = 1.0
        u = space @ (space.T @ first)
    return positive_first(u / np.linalg.norm(u)), int(np.sum(close))


def positive_first(vector: np.ndarray) -> np.ndarray:
    """``vector`` (n,) with the sign that makes its first largest component positive (ties: the first in order)."""
    # rounding first: equal moduli (the symmetric plateau's +-1/2) must not be told apart by round-off
    return vector * np.sign(vector[np.argmax(np.round(np.abs(vector), 12))])


def symmetric_path(drift: Drift, q0: float, alpha: np.ndarray, readout: float | None = None) -> np.ndarray:
    """The packed states (n_alpha, n) of the flow from ``Q = q0 I``, ``R = 0`` (and a trained readout) on ``alpha``.

    Integrated within the permutation-symmetric ansatz (:func:`numerics.analyses.fixed_points.symmetric_ansatz`):
    the path of the full flow from that start, without the round-off that would break the symmetry and grow at
    the rate ``g_R`` over the long relaxation onto the plateau. ``readout`` is the trained readout's uniform start
    (needed when ``drift.trained``). The tolerance is 1e-11 relative. A drift that is not smooth to that level
    (a sign teacher's ``eta**2`` term, evaluated to about 1e-9) would make the solver take tiny steps: the path
    is first integrated to :data:`ROUGH_PATH_TOLERANCE`, the drift's second differences are probed along it,
    and that path is kept when they show its error (or when the fine integration takes over
    :data:`MAX_PATH_EVALUATIONS` evaluations).

    Raises ``ValueError`` when the integration fails.
    """
    if drift.trained and readout is None:
        raise ValueError("symmetric_path: the readout is trained, give its start (readout=...)")
    full, reduced = symmetric_ansatz(drift)
    start = np.array([q0, 0.0, 0.0] + ([float(readout)] if drift.trained else []))
    rough = _capped_solve(reduced, start, alpha, ROUGH_PATH_TOLERANCE, 1e-3 * ROUGH_PATH_TOLERANCE)
    solution = rough
    if rough.status == 0 and _smooth_along(reduced, rough.y.T):
        try:
            solution = _capped_solve(reduced, start, alpha, 1e-11, 1e-13)
        except _TooManyEvaluations:
            solution = rough
    if solution.status != 0:
        raise ValueError(f"the symmetric flow from Q = {q0:g} I could not be integrated: {solution.message}")
    return full(solution.y.T)


def _smooth_along(reduced: Any, states: np.ndarray, probes: int = 5) -> bool:
    """Whether ``reduced`` is smooth to :data:`SMOOTHNESS_LEVEL` at ``probes`` of the ``states`` (n_alpha, m).

    Second differences with a step of 1e-7 of the state's scale, against the largest drift at the probes
    (the drift vanishes at the plateau): about ``h**2 f''`` (1e-14) for an analytic drift evaluated to
    round-off, the drift's own error where it is evaluated coarser.
    """
    points = states[np.linspace(0, len(states) - 1, probes).astype(int)]
    values = [reduced(0.0, u) for u in points]
    scale = max(max(float(np.max(np.abs(value))) for value in values), np.finfo(float).tiny)
    for u, value in zip(points, values):
        for e in np.eye(u.size) * 1e-7 * max(1.0, float(np.max(np.abs(u)))):
            second = reduced(0.0, u + e) - 2 * value + reduced(0.0, u - e)
            if np.max(np.abs(second)) > SMOOTHNESS_LEVEL * scale:
                return False
    return True


def _capped_solve(reduced: Any, start: np.ndarray, alpha: np.ndarray, rtol: float, atol: float) -> Any:
    """``solve_ivp`` (LSODA) of ``reduced`` on ``alpha``; :class:`_TooManyEvaluations` past the cap."""
    evaluations = [0]

    def counted(alpha_now: float, u: np.ndarray) -> np.ndarray:
        evaluations[0] += 1
        if evaluations[0] > MAX_PATH_EVALUATIONS:
            raise _TooManyEvaluations(alpha_now)
        return reduced(alpha_now, u)

    try:
        return solve_ivp(counted, (0.0, float(alpha[-1])), start, method="LSODA", t_eval=alpha, rtol=rtol, atol=atol)
    except _TooManyEvaluations:
        if rtol >= ROUGH_PATH_TOLERANCE:
            raise ValueError(f"the symmetric flow took over {MAX_PATH_EVALUATIONS} evaluations of the drift at "
                             f"relative tolerance {rtol:g}: the drift is not smooth enough to follow") from None
        raise


class _TooManyEvaluations(Exception):
    """Stops :func:`symmetric_path`'s integration; its argument is the alpha reached."""


def growth_covectors(jacobians: np.ndarray, alpha: np.ndarray, g_R: float, u: np.ndarray) -> np.ndarray:
    """``b(alpha_i)`` (n_alpha, n): the growth covector, integrated backwards from ``b = u`` at the grid's end.

    Parameters
    ----------
    jacobians : array, shape (n_alpha, n, n)
        ``J`` along the path.
    alpha : array, shape (n_alpha,)
        Increasing grid; its end lies on the plateau.
    g_R : float
    u : array, shape (n,)
        Left eigenvector of ``J`` at the plateau for ``g_R``.
    """
    steps = np.diff(alpha)
    shifted = (jacobians[1:] + jacobians[:-1]) / 2 - g_R * np.eye(u.size)
    propagators = batched_expm(steps[:, None, None] * shifted)
    b = np.empty((alpha.size, u.size))
    b[-1] = u
    for i in range(alpha.size - 2, -1, -1):
        b[i] = propagators[i].T @ b[i + 1]
    return b


def batched_expm(matrices: np.ndarray) -> np.ndarray:
    """``exp(A)`` of each matrix of ``matrices`` (B, n, n): scaling and squaring of a degree-16 Taylor sum.

    The matrices are scaled by ``2**-s`` to a norm of at most 1/2, where the Taylor remainder is below
    ``0.5**17 / 17! ~ 2e-20`` (relative), then squared back ``s`` times; vectorised over the batch
    (``scipy.linalg.expm`` goes matrix by matrix).
    """
    norms = np.max(np.sum(np.abs(matrices), axis=-1), axis=-1)
    squarings = np.maximum(0, np.ceil(np.log2(np.maximum(norms, 1e-300) / 0.5))).astype(int)
    scaled = matrices / (2.0 ** squarings)[:, None, None]
    identity = np.eye(matrices.shape[-1])
    result = identity + 0.0 * scaled
    term = result.copy()
    for order in range(1, 17):
        term = term @ scaled / order
        result = result + term
    for level in range(int(squarings.max(initial=0))):
        more = squarings > level
        result[more] = result[more] @ result[more]
    return result


def trapezoid_cumulative(values: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``int_0^alpha_i values`` (n_alpha,) by the trapezoid rule on the grid."""
    return np.concatenate([[0.0], np.cumsum(np.diff(alpha) * (values[1:] + values[:-1]) / 2)])


def escape_crossing(alpha: np.ndarray, risk: np.ndarray, level: float) -> np.ndarray:
    """First alpha (...,) at which ``risk`` (..., n_alpha) falls below ``level``; NaN where it never does.

    Linear interpolation of ``log(risk)`` between grid points, as :func:`numerics.escape_time`.
    """
    risks = np.asarray(risk, dtype=float).reshape(-1, alpha.size)
    out = np.full(risks.shape[0], np.nan)
    for index, curve in enumerate(risks):
        below = np.nonzero(curve < level)[0]
        if below.size == 0 or below[0] == 0:
            continue
        i = below[0]
        x0, x1 = np.log(curve[i - 1]), np.log(curve[i])
        out[index] = alpha[i - 1] + (np.log(level) - x0) / (x1 - x0) * (alpha[i] - alpha[i - 1])
    return out.reshape(np.shape(risk)[:-1])


def noise_grid(symmetric: bool, g_R: float, slowest: float, eta: float, points_per_unit: int) -> np.ndarray:
    """The candidate alpha grid of the noise integral (:func:`settled_thinning` thins its far end along the path).

    ``R = 0`` plateaus: ``points_per_unit`` points per unit alpha up to ``20 / g_R``. Symmetric
    plateaus, whose slowest stable mode (rate ``slowest`` < 0) can be far slower than the escape:
    the same density over ``[0, 20 / eta]`` (the fast relaxation), then steps of ``0.05 / g_R``
    up to ``20 / g_R + 12 / |slowest|``, where the path has settled to about ``exp(-12)``.
    """
    if not symmetric:
        horizon = INTEGRAND_HORIZON / g_R
        return np.linspace(0.0, horizon, int(points_per_unit * horizon) + 1)
    fine_end = 20.0 / eta
    horizon = max(INTEGRAND_HORIZON / g_R + 12.0 / abs(slowest), 2 * fine_end)
    fine = np.linspace(0.0, fine_end, int(points_per_unit * fine_end) + 1)
    coarse = np.linspace(fine_end, horizon, int((horizon - fine_end) * g_R / 0.05) + 2)[1:]
    return np.concatenate([fine, coarse])


def settled_thinning(alpha: np.ndarray, states: np.ndarray, g_R: float,
                     tolerance: float = SETTLED_MOVE_TOLERANCE) -> np.ndarray:
    """Indices (m,) of the grid ``alpha`` (n_alpha,) the noise integral needs along the path ``states`` (n_alpha, n).

    Every point up to ``20 / g_R`` (:data:`INTEGRAND_HORIZON`) and over the grid's last ``5 / g_R``
    (:data:`SETTLED_TAIL`); in between only as many as keep each step's length times ``g_R`` times the
    path's move over the step, relative to the state's largest coordinate, below ``tolerance`` (a single
    grid step beyond that is kept whole). There the weight ``exp(-2 g_R alpha)`` has killed the integrand
    and the path only carries the growth covector ``b`` back from the plateau. Its propagator over a step,
    ``expm(h (J_i + J_{i+1}) / 2)``, is exact while ``J`` is constant: the steps follow the path's change,
    not ``1 / g_R``, and where the path has stopped one step spans the rest. An error in the direction of
    ``b`` at ``20 / g_R`` reaches the start damped by ``exp(-20)`` at least (every other left eigenvector
    of ``J`` decays backwards faster than ``u``), so ``S`` and ``w`` do not see the thinning; ``Gamma``
    beyond ``20 / g_R`` carries each step's error in the growth of ``|b|``, about ``tolerance``.
    """
    kept = list(np.flatnonzero(alpha <= INTEGRAND_HORIZON / g_R))  # alpha[0] = 0 among them
    tail = int(np.searchsorted(alpha, alpha[-1] - SETTLED_TAIL / g_R))
    last = int(kept[-1])
    limit = tolerance * max(float(np.max(np.abs(states))), np.finfo(float).tiny)
    for index in range(last + 1, alpha.size):
        if index >= tail - 1 or (np.max(np.abs(states[index + 1] - states[last]))
                                 * g_R * (alpha[index + 1] - alpha[last]) > limit):
            kept.append(index)
            last = index
    return np.asarray(kept, dtype=int)


def check_affordable(seconds_per_point: float, points: int, limit: float, *, at_least: bool = False) -> None:
    """``ValueError`` when the covariance and the Jacobian along the path would take longer than ``limit`` seconds.

    ``at_least``: ``points`` is a lower bound of the grid's size (the path, not yet computed, decides the rest).
    """
    if seconds_per_point * points > limit:
        count = f"at least {points}" if at_least else f"the {points}"
        raise ValueError(
            f"plateau_noise: the increment covariance and the Jacobian of the drift of this model cost "
            f"{seconds_per_point:.3g} s per point, {seconds_per_point * points:.0f} s for {count} points of the "
            f"noise integral (limit {limit:g} s); pass max_seconds to allow it"
        )


__all__ = [
    "DEGENERACY_TOLERANCE",
    "INTEGRAND_HORIZON",
    "MAX_PATH_EVALUATIONS",
    "ROUGH_PATH_TOLERANCE",
    "SETTLED_MOVE_TOLERANCE",
    "SETTLED_TAIL",
    "SMOOTHNESS_LEVEL",
    "batched_expm",
    "check_affordable",
    "escape_crossing",
    "growth_covectors",
    "left_growth_vector",
    "noise_grid",
    "positive_first",
    "settled_thinning",
    "symmetric_path",
    "trapezoid_cumulative",
]
