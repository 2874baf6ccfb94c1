"""Fixed points of the overlap ODEs and their stability, for every model and setting.

:func:`fixed_point` is Newton's method on the drift ``x -> dx/dalpha`` over the independent
overlaps (:mod:`numerics.ode.jacobian`: the upper triangle of ``Q``, all of ``R``, and the
student readout when it is trained) with the exact Jacobian, from a start the caller gives.
:func:`stability` is the spectrum of that Jacobian at a point, each eigenvalue's direction
named by the overlaps it moves most: at a plateau the eigenvalues with a positive real part
say which overlaps escape first, and the largest of them is the plateau's linearised escape
rate ``g_R``; a finite-N run started on the plateau leaves it after about
``log(N) / (2 g_R)`` plus a constant, so ``1 / (2 g_R)`` is the predicted slope of the
escape time against ``log N`` (:attr:`Stability.log_slope`).

:func:`symmetric_fixed_point_of` relaxes the flow restricted to the permutation-symmetric
overlaps ``Q = q I + c (J - I)``, ``R = r J`` (``J`` all ones; invariant under the flow when
``T = I`` and the readouts are uniform) and polishes the result by Newton on the full
system: Saad and Solla's symmetric plateau of the soft committee machine, and that of every
model whose teacher has a linear part (information exponent 1), where ``R = 0`` is no fixed
point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import root

from numerics.core.validation import check_int, check_scalar, min_relative_eigenvalue
from numerics.ode.jacobian import Drift, Jacobian, coordinate_names, drift_at, drift_jacobian, pack_state, unpack_state
from numerics.ode.overlaps import risk
from numerics.results.settings import RunSettings
from numerics.runtime.registry import tuple_module

#: Default bound on ``max |dx/dalpha|`` at a fixed point.
NEWTON_TOLERANCE = 1e-13
#: Real parts above this (relative to the largest |eigenvalue|) count as unstable directions.
UNSTABLE_THRESHOLD = 1e-9
#: How many overlaps name an eigenvalue's direction (those with the largest weights).
NAMED_OVERLAPS = 4


@dataclass(frozen=True)
class Stability:
    """The linearised flow at a point (see :func:`stability`).

    Attributes
    ----------
    jacobian : Jacobian
        The exact Jacobian, matrix of shape (n, n) over ``jacobian.coordinates``.
    eigenvalues : array, shape (n,)
        Its eigenvalues (complex), by decreasing real part.
    eigenvectors : array, shape (n, n)
        Column ``i`` is the (unit) eigenvector of ``eigenvalues[i]``.
    """

    jacobian: Jacobian
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray

    @property
    def growth_rate(self) -> float:
        """``g_R``: the largest real part, the rate at which the fastest direction leaves the point."""
        return float(self.eigenvalues[0].real)

    @property
    def log_slope(self) -> float:
        """Predicted ``d <escape alpha> / d log N`` = ``1 / (2 g_R)`` (inf when no direction grows)."""
        rate = self.growth_rate
        return 1.0 / (2.0 * rate) if rate > 0 else np.inf

    @property
    def n_unstable(self) -> int:
        """Number of eigenvalues with a positive real part (:data:`UNSTABLE_THRESHOLD`)."""
        scale = max(float(np.max(np.abs(self.eigenvalues))), np.finfo(float).tiny)
        return int(np.sum(self.eigenvalues.real > UNSTABLE_THRESHOLD * scale))

    def direction(self, index: int = 0, count: int = NAMED_OVERLAPS) -> tuple[tuple[str, float], ...]:
        """The overlaps that eigenvector ``index`` moves most: ``((name, component), ...)``, largest first.

        Components of the unit eigenvector, its phase chosen to make the largest one real and
        positive (real parts given: exact for a real eigenvalue); their squares sum to at most 1.
        The signs say how the overlaps move together (Saad and Solla's symmetry breaking moves
        ``R[0,0]`` and ``R[1,1]`` up, ``R[0,1]`` and ``R[1,0]`` down).
        """
        index = check_int(index, "index", minimum=0)
        if index >= self.eigenvalues.size:
            raise ValueError(f"index must be below the number of eigenvalues {self.eigenvalues.size}, got {index}")
        vector = self.eigenvectors[:, index]
        largest = vector[np.argmax(np.abs(vector))]
        components = (vector * np.conj(largest) / np.abs(largest)).real
        # ties (equal moduli) are broken by the coordinates' order, not by round-off
        order = np.argsort(-np.round(np.abs(components), 12), kind="stable")[:count]
        return tuple((self.jacobian.coordinates[i], float(components[i])) for i in order)

    def unstable_directions(self) -> list[tuple[complex, tuple[tuple[str, float], ...]]]:
        """``[(eigenvalue, direction), ...]`` of every unstable eigenvalue, fastest first: what escapes first."""
        return [(complex(self.eigenvalues[i]), self.direction(i)) for i in range(self.n_unstable)]


def spectrum(result: Jacobian) -> Stability:
    """:class:`Stability` of an unbatched :class:`Jacobian` (matrix of shape (n, n))."""
    if result.matrix.ndim != 2:
        raise ValueError(f"the stability of one point at a time: the Jacobian has shape {result.matrix.shape}")
    eigenvalues, eigenvectors = np.linalg.eig(result.matrix)
    order = np.lexsort((-eigenvalues.imag, -eigenvalues.real))
    return Stability(result, eigenvalues[order], eigenvectors[:, order])


def stability(
    Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float | None = None, settings: RunSettings | None = None,
    **setting_overrides: Any,
) -> Stability:
    """The spectrum of the exact Jacobian at ``(Q, R[, a])``, each direction named.

    Parameters
    ----------
    Q : array, shape (p, p)
    R : array, shape (p, k)
    T : array, shape (k, k)
    eta : float
        Learning rate; default ``settings.eta``.
    settings : RunSettings, optional
        The dynamics, or the same names as keywords (as :func:`numerics.ode.jacobian.jacobian`;
        a trained readout's current value is ``a``).

    Returns
    -------
    Stability
    """
    drift, x = drift_at(Q, R, T, eta, settings, setting_overrides, "stability")
    if x.ndim != 1:
        raise ValueError(f"stability takes one point: Q must have shape (p, p), got {np.shape(Q)}")
    return _stability_at(drift, x)


def _stability_at(drift: Drift, x: np.ndarray) -> Stability:
    matrix, method = drift_jacobian(drift, x)
    return spectrum(Jacobian(matrix, coordinate_names(drift.p, drift.k, drift.trained), method))


@dataclass(frozen=True)
class FixedPoint:
    """A fixed point of the overlap ODEs (see :func:`fixed_point`).

    Attributes
    ----------
    Q : array, shape (p, p)
    R : array, shape (p, k)
    a : array, shape (p,) or None
        The trained readout at the point (None when the readout is not trained).
    T : array, shape (k, k)
    risk : float
        Population risk there (label-noise term included).
    residual : float
        ``max |dx/dalpha|`` at the point.
    iterations : int
        Newton steps taken.
    stability : Stability
    """

    Q: np.ndarray
    R: np.ndarray
    a: np.ndarray | None
    T: np.ndarray
    risk: float
    residual: float
    iterations: int
    stability: Stability


def fixed_point(
    Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float | None = None, settings: RunSettings | None = None,
    *, tolerance: float = NEWTON_TOLERANCE, max_iterations: int = 100, **setting_overrides: Any,
) -> FixedPoint:
    """The fixed point Newton's method reaches from ``(Q, R[, a])``, and its stability.

    Each step solves ``J dx = -f(x)`` (least squares: a singular ``J``, as at ``R = 0`` of a
    model whose ``R`` grows only at second order, gives the smallest step) and is halved until
    the residual ``max |f|`` falls and the covariance stays positive semi-definite.

    Parameters
    ----------
    Q : array, shape (p, p)
    R : array, shape (p, k)
    T : array, shape (k, k)
        The start and the teacher overlaps.
    eta : float
        Learning rate; default ``settings.eta``.
    settings : RunSettings, optional
        The dynamics, or the same names as keywords; with ``eta_a > 0`` the readout is part of
        the state and ``a`` its start.
    tolerance : float
        Stop when ``max |dx/dalpha| <= tolerance``.
    max_iterations : int

    Returns
    -------
    FixedPoint

    Raises
    ------
    ValueError
        Bad input (named), or no convergence: the message gives the residual reached.
    """
    tolerance = check_scalar(tolerance, "tolerance", positive=True)
    max_iterations = check_int(max_iterations, "max_iterations", minimum=1)
    drift, x = drift_at(Q, R, T, eta, settings, setting_overrides, "fixed_point")
    if x.ndim != 1:
        raise ValueError(f"fixed_point takes one start: Q must have shape (p, p), got {np.shape(Q)}")
    x, residual, iterations = newton(drift, x, tolerance, max_iterations)
    return _fixed_point_at(drift, x, residual, iterations)


def _fixed_point_at(drift: Drift, x: np.ndarray, residual: float, iterations: int) -> FixedPoint:
    Q, R, a = unpack_state(x, drift.p, drift.k, drift.trained)
    readout = a if drift.trained else drift.values["a"]
    level = float(risk(Q, R, drift.T, model=drift.values["model"], a=readout, b=drift.values["b"]))
    return FixedPoint(Q, R, a, drift.T, level, residual, iterations, _stability_at(drift, x))


def newton(drift: Drift, x: np.ndarray, tolerance: float, max_iterations: int) -> tuple[np.ndarray, float, int]:
    """``(x*, residual, iterations)``: damped Newton on ``drift`` from ``x`` (raises ``ValueError`` if it stalls)."""
    value = drift(x)
    residual = float(np.max(np.abs(value)))
    for iteration in range(max_iterations):
        if residual <= tolerance:
            return x, residual, iteration
        matrix = drift_jacobian(drift, x)[0]
        step = np.linalg.lstsq(matrix, -value, rcond=None)[0]
        for _ in range(40):
            trial = x + step
            trial_value = _value_inside_cone(drift, trial)
            if trial_value is not None and float(np.max(np.abs(trial_value))) < residual:
                break
            step = step / 2
        else:
            raise ValueError(f"Newton's method stalled at residual max |dx/dalpha| = {residual:.3g} "
                             f"after {iteration} steps: no fixed point near the start")
        x, value = trial, trial_value
        residual = float(np.max(np.abs(value)))
    if residual <= tolerance:
        return x, residual, max_iterations
    raise ValueError(f"Newton's method did not converge in {max_iterations} steps "
                     f"(residual max |dx/dalpha| = {residual:.3g} > {tolerance:g})")


def _value_inside_cone(drift: Drift, x: np.ndarray) -> np.ndarray | None:
    """The drift at ``x``, or None when ``x`` leaves the cone of covariances or the drift is not finite."""
    Q, R, _ = unpack_state(x, drift.p, drift.k, drift.trained)
    C = np.block([[Q, R], [R.T, drift.T]])
    if min_relative_eigenvalue(C) < -1e-12:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        value = drift(x)
    return value if np.all(np.isfinite(value)) else None


def symmetric_ansatz(drift: Drift) -> tuple[Any, Any]:
    """``(full, reduced)``: the permutation-symmetric overlaps and their flow.

    ``u = (q, c, r[, a])`` stands for ``Q = q I + c (J - I)``, ``R = r J`` (``J`` all ones) and a
    uniform trained readout ``a``; ``full(u)`` (..., m) -> packed state (..., n), and
    ``reduced(alpha, u)`` is the drift projected back onto ``u`` (the mean diagonal and
    off-diagonal of ``dQ``, the mean of ``dR`` and ``da``). The ansatz is invariant under the flow
    when ``T = I`` and the readouts are uniform.
    """
    p, k = drift.p, drift.k
    off = (1.0 - np.eye(p)) / max(p * (p - 1), 1)

    def full(u: np.ndarray) -> np.ndarray:
        q, c, r = u[..., 0:1, None], u[..., 1:2, None], u[..., 2:3, None]
        Q = q * np.eye(p) + c * (1.0 - np.eye(p))
        a = None if not drift.trained else np.broadcast_to(u[..., 3:4], u.shape[:-1] + (p,))
        return pack_state(Q, np.broadcast_to(r, u.shape[:-1] + (p, k)), a)

    def reduced(_alpha: float, u: np.ndarray) -> np.ndarray:
        dQ, dR, da = unpack_state(drift(full(u)), p, k, drift.trained)
        parts = [np.trace(dQ, axis1=-2, axis2=-1) / p, np.sum(dQ * off, axis=(-2, -1)), np.mean(dR, axis=(-2, -1))]
        if drift.trained:
            parts.append(np.mean(da, axis=-1))
        return np.stack(parts, axis=-1)

    return full, reduced


def symmetric_fixed_point_of(
    drift: Drift, q0: float, *, tolerance: float = NEWTON_TOLERANCE
) -> tuple[FixedPoint | None, str]:
    """The fixed point of the symmetric flow from ``Q = q0 I``, ``R = 0``, polished on the full system.

    Returns ``(point, "")``, or ``(None, reason)`` when the symmetric flow has no fixed point
    short of zero error or diverges. Needs ``T = I`` and uniform (or no) readout vectors.
    """
    eta = drift.eta
    full, reduced = symmetric_ansatz(drift)
    a0 = [] if not drift.trained else [float(np.mean(drift.values["a"] if drift.values["a"] is not None
                                                      else _default_readout(drift)))]
    u = np.array([q0, 0.0, 0.0] + a0)
    chunk = 20.0 / eta
    horizon, elapsed = chunk * (2**14 - 1), 0.0
    for _ in range(14):
        with np.errstate(over="ignore", invalid="ignore"):
            relaxed = solve_ivp(reduced, (0.0, chunk), u, method="LSODA", rtol=1e-8, atol=1e-12)
        if relaxed.status != 0 or not np.all(np.isfinite(relaxed.y)) or np.max(np.abs(relaxed.y)) > 1e8:
            return None, "the symmetric dynamics diverge (eta is too large)"
        u = relaxed.y[:, -1]
        candidate = _attracting_root(reduced, u)
        if candidate is not None:
            u = candidate
            break
        elapsed += chunk
        if drift.trained:
            slowest = _slowest_rate(reduced, u)
            if slowest * (horizon - elapsed) < 1.0:
                speed = abs(float(reduced(0.0, u)[3]))
                return None, readout_still_moving(drift.values["eta_a"], elapsed, u[3:4], speed, slowest,
                                                  horizon - elapsed)
        chunk *= 2
    else:
        return None, "the symmetric dynamics settle on no fixed point"
    x, residual, iterations = newton(drift, full(u), tolerance, 100)
    return _fixed_point_at(drift, x, residual, iterations), ""


def readout_still_moving(eta_a: float, alpha: float, readout: np.ndarray, speed: float, slowest: float,
                         remaining: float, earlier: float | None = None) -> str:
    """Why a plateau search with a trained readout stops: the readout relaxes slower than the search can follow.

    ``readout`` (p,) and its largest speed ``max |da/dalpha|`` at ``alpha``; ``slowest``: the smallest
    rate (modulus of the real part) of the linearised flow there; ``remaining``: the alpha the search had left;
    ``earlier``: the slowest rate one stretch of the flow before, when the flow slows down as it goes.
    """
    moving = (f"the trained readout is still moving at alpha = {alpha:.4g} (eta_a = {eta_a:g}, "
              f"a = {np.array2string(np.asarray(readout), precision=4)}, max |da/dalpha| = {speed:.3g}); the slowest "
              f"rate of the flow there is {slowest:.3g}")
    if earlier is not None:
        return (f"{moving}, down from {earlier:.3g} one stretch before: the flow slows down as it goes, with no fixed "
                "point of the full state ahead (the readout drifts on)")
    return (f"{moving}, so the state would need alpha ~ {1 / max(slowest, 1e-300):.3g} to settle, beyond the search's "
            f"remaining {remaining:.3g}: the dynamics linger on a slow manifold, not at a fixed point. Train the "
            "readout at an eta_a comparable to eta, or fix it (eta_a = 0)")


def _slowest_rate(reduced: Any, u: np.ndarray) -> float:
    """The smallest ``|Re lambda|`` of the symmetric flow's Jacobian at ``u`` (central differences)."""
    h = 1e-6 * max(1.0, float(np.max(np.abs(u))))
    columns = [(reduced(0.0, u + h * e) - reduced(0.0, u - h * e)) / (2 * h) for e in np.eye(u.size)]
    return float(np.min(np.abs(np.linalg.eigvals(np.stack(columns, axis=1)).real)))


def _attracting_root(reduced: Any, u: np.ndarray) -> np.ndarray | None:
    """The root of the symmetric flow near ``u`` if it attracts the symmetric flow, else None.

    The symmetric plateau attracts slowly (its slowest symmetric mode decays at a rate of order
    ``eta**2``), so the flow only brings the state into the root's basin; the root is taken when it
    is exact, within a tenth of the state's scale, and every eigenvalue of the symmetric flow's
    Jacobian there (central differences: signs only) has a negative real part.
    """
    solution = root(lambda v: reduced(0.0, v), u, method="hybr", options={"xtol": 1e-14})
    scale = max(1.0, float(np.max(np.abs(u))))
    if np.max(np.abs(reduced(0.0, solution.x))) > 1e-10 or np.max(np.abs(solution.x - u)) > 0.1 * scale:
        return None
    h = 1e-6 * scale
    columns = [(reduced(0.0, solution.x + h * e) - reduced(0.0, solution.x - h * e)) / (2 * h) for e in np.eye(u.size)]
    return solution.x if np.max(np.linalg.eigvals(np.stack(columns, axis=1)).real) < 0 else None


def _default_readout(drift: Drift) -> np.ndarray:
    return np.full(drift.p, tuple_module(drift.values["model"]).readouts(drift.p, drift.k)[0])


__all__ = [
    "FixedPoint",
    "NAMED_OVERLAPS",
    "NEWTON_TOLERANCE",
    "Stability",
    "UNSTABLE_THRESHOLD",
    "fixed_point",
    "newton",
    "readout_still_moving",
    "spectrum",
    "stability",
    "symmetric_ansatz",
    "symmetric_fixed_point_of",
]
