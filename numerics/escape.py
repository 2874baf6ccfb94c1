"""The plateau and the escape from it (paper Sec. 4.1, Eqs. 9-13, App. 7.3).

The plateau is the isotropic fixed point ``Q = q* I``, ``R = 0`` of the ODEs
(``R = 0`` is invariant for even activations). Its linearisation is evaluated
here from the generated right-hand sides by exact low-order differences (the
right-hand sides are polynomials), so no sympy is needed; ``derive/plateau.py``
holds the same quantities in closed form and the tests compare the two.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq

from .initial import initial_conditions
from .integrate import IntegrationError, integrate
from .overlaps import rhs, risk
from .validation import as_real_array, check_alphas, check_int, check_scalar

_STEP = 1e-4


def _width(value: object, name: str) -> int:
    return check_int(value, name, minimum=1)


def fixed_point_norm(p: int, k: int, eta: float, *, model: Any = None, second_order: bool = True) -> float:
    """Plateau norm ``q*`` (Eq. 10): attractive root of ``dq/dalpha`` at ``Q = q I``, ``R = 0``, ``T = I``.

    Returns the smallest positive root where the isotropic norm rate turns from
    growing to shrinking; raises ``ValueError`` if there is none (eta too large).
    """
    p, k = _width(p, "p"), _width(k, "k")
    eta = check_scalar(eta, "eta", positive=True)
    T, R0 = np.eye(k), np.zeros((p, k))

    def rate(qv: float) -> float:
        return float(rhs(qv * np.eye(p), R0, T, eta, model=model, second_order=second_order)[0][0, 0]) / qv

    grid = np.geomspace(1e-4, 50.0, 400)
    values = np.array([rate(v) for v in grid])
    crossings = np.nonzero((values[:-1] > 0) & (values[1:] <= 0))[0]
    if crossings.size == 0:
        raise ValueError(f"no attractive isotropic fixed point for p={p}, k={k}, eta={eta:g}: eta is too large")
    i = crossings[0]
    return float(brentq(rate, grid[i], grid[i + 1], xtol=1e-14, rtol=1e-13))


@dataclass(frozen=True)
class PlateauCoefficients:
    """Linearisation at the plateau (paper Eqs. 11-12), numbers for given p, k, eta.

    ``risk = risk_plateau + risk_R * sum(R**2) + risk_D * tr(D)`` with
    ``R(alpha) = exp(growth_R alpha) R(0)`` and
    ``d tr(D)/dalpha = norm_rate * tr(D) + norm_source * sum(R**2)``.
    """

    p: int
    k: int
    eta: float
    q_star: float
    risk_plateau: float
    growth_R: float
    risk_R: float
    risk_D: float
    norm_rate: float
    norm_source: float


def plateau_coefficients(
    p: int, k: int, eta: float, *, model: Any = None, second_order: bool = True
) -> PlateauCoefficients:
    """Numbers of the linearised plateau dynamics (see :class:`PlateauCoefficients`)."""
    q_star = fixed_point_norm(p, k, eta, model=model, second_order=second_order)
    T, I = np.eye(k), np.eye(p)
    zero = np.zeros((p, k))
    unit = zero.copy()
    unit[0, 0] = 1.0

    def drift(Qm: np.ndarray, Rm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return rhs(Qm, Rm, T, eta, model=model, second_order=second_order)

    level = float(risk(q_star * I, zero, T, model=model))
    # R enters dR linearly and dQ, risk quadratically at fixed Q: central
    # differences in R are exact up to rounding for the polynomial models.
    h = _STEP
    growth = float((drift(q_star * I, h * unit)[1][0, 0] - drift(q_star * I, -h * unit)[1][0, 0]) / (2 * h))
    risk_R = float((risk(q_star * I, h * unit, T, model=model) - level) / h**2)
    source = float(np.trace(drift(q_star * I, h * unit)[0] - drift(q_star * I, zero)[0]) / h**2)
    up, down = (q_star + h) * I, (q_star - h) * I
    norm_rate = float((drift(up, zero)[0][0, 0] - drift(down, zero)[0][0, 0]) / (2 * h))
    risk_D = float((risk(up, zero, T, model=model) - risk(down, zero, T, model=model)) / (2 * h * p))
    return PlateauCoefficients(p, k, float(eta), q_star, level, growth, risk_R, risk_D, norm_rate, norm_source=source)


def _norm_deviation(coefficients: PlateauCoefficients, alpha: np.ndarray, rr0: np.ndarray) -> np.ndarray:
    c = coefficients
    grow = 2 * c.growth_R
    return c.norm_source * rr0 * (np.exp(grow * alpha) - np.exp(c.norm_rate * alpha)) / (grow - c.norm_rate)


def linearised_risk(
    alpha: np.ndarray, R0: np.ndarray, *, eta: float, model: Any = None, second_order: bool = True
) -> np.ndarray:
    """Risk predicted by the linearised plateau dynamics from ``Q(0) = q* I`` and ``R(0) = R0``.

    Parameters
    ----------
    alpha : array, shape (n,)
    R0 : array, shape (p, k) or (B, p, k)
        Initial teacher-student overlaps (small).
    eta : float

    Returns
    -------
    array, shape (n,) or (B, n)
    """
    R0 = as_real_array(R0, "R0")
    if R0.ndim not in (2, 3):
        raise ValueError(f"R0 must have shape (p, k) or (B, p, k), got {R0.shape}")
    alpha = check_alphas(alpha, "alpha")
    p, k = R0.shape[-2:]
    c = plateau_coefficients(p, k, eta, model=model, second_order=second_order)
    rr0 = np.sum(R0**2, axis=(-2, -1))[..., None]
    with np.errstate(over="ignore", invalid="ignore"):
        rr = rr0 * np.exp(2 * c.growth_R * alpha)
        out = c.risk_plateau + c.risk_R * rr + c.risk_D * _norm_deviation(c, alpha, rr0)
    _check_linearised("linearised_risk", out)
    return out


def _check_linearised(function: str, values: np.ndarray) -> None:
    # the linearised solution grows exponentially: far beyond the plateau it overflows (and 0 * inf gives NaN)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{function}: the result is not finite (overflow): alpha is too large for the linearisation")


def average_risk_reduction(
    alpha: np.ndarray, p: int, k: int, *, eta: float, N: float, model: Any = None, second_order: bool = False
) -> np.ndarray:
    """Eq. 13: mean relative risk reduction ``<(eps(0) - eps(alpha)) / eps_pl>`` in the plateau.

    Start ``Q(0) = q* I``, ``R_jr(0) ~ N(0, q*/N)`` i.i.d. In gradient flow
    (default) this is ``2 p k (exp(8 eta alpha / (k p)) - 1) / (N (p + k + 2))``.

    Returns an array shaped like ``alpha``.
    """
    N = check_scalar(N, "N", positive=True)
    alpha = check_alphas(alpha, "alpha")
    c = plateau_coefficients(p, k, eta, model=model, second_order=second_order)
    mean_rr0 = p * k * c.q_star / N
    with np.errstate(over="ignore", invalid="ignore"):
        change = c.risk_R * mean_rr0 * (np.exp(2 * c.growth_R * alpha) - 1) + c.risk_D * _norm_deviation(
            c, alpha, np.asarray(mean_rr0)
        )
        out = -change / c.risk_plateau
    _check_linearised("average_risk_reduction", out)
    return out


def escape_time(trajectory: Any, *, threshold: float = 0.75, model: Any = None) -> np.ndarray | float:
    """First alpha at which the risk falls below ``threshold`` times the plateau risk.

    The plateau risk is the risk at the fixed point ``Q = q* I``, ``R = 0`` for the
    trajectory's p, k, eta (and ``second_order`` flag). The crossing is located
    by linear interpolation of ``log(risk)`` between output times.

    Parameters
    ----------
    trajectory : IntegrationResult
        Possibly batched (risk of shape (..., n)).
    threshold : float
        Fraction in (0, 1); the default 3/4 also marks the escape when p < k,
        where the final risk stays above half the plateau risk.

    Returns
    -------
    float or array of shape (...)
        NaN where the risk never falls below the threshold.
    """
    threshold = check_scalar(threshold, "threshold", positive=True)
    if threshold >= 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    c = plateau_coefficients(
        trajectory.p, trajectory.k, trajectory.eta, model=model, second_order=trajectory.second_order
    )
    level = threshold * c.risk_plateau
    alpha = np.asarray(trajectory.alpha)
    risks = np.asarray(trajectory.risk).reshape(-1, alpha.size)
    out = np.full(risks.shape[0], np.nan)
    for b, curve in enumerate(risks):
        below = np.nonzero(curve < level)[0]
        if below.size == 0 or below[0] == 0:
            out[b] = np.nan if below.size == 0 else alpha[0]
            continue
        i = below[0]
        x0, x1 = np.log(curve[i - 1]), np.log(curve[i])
        out[b] = alpha[i - 1] + (np.log(level) - x0) / (x1 - x0) * (alpha[i] - alpha[i - 1])
    shape = np.asarray(trajectory.risk).shape[:-1]
    return float(out[0]) if shape == () else out.reshape(shape)


@dataclass(frozen=True)
class LearningRateScan:
    """Result of :func:`optimal_learning_rate`.

    ``etas`` scanned (increasing), ``mean_escape`` (alpha to escape averaged
    over the starts; NaN where the dynamics failed), ``standard_error``,
    ``failed`` (the dynamics blew up, left the PSD cone or did not escape),
    ``best_eta`` (minimiser of ``mean_escape``), ``resolution`` (ratio of
    consecutive scanned etas).
    """

    p: int
    k: int
    etas: np.ndarray
    mean_escape: np.ndarray
    standard_error: np.ndarray
    failed: np.ndarray
    best_eta: float
    resolution: float


def _escape_times_for(
    p: int, k: int, eta: float, seeds: tuple[int, ...], N: float, q0: float, alpha_max: float,
    threshold: float, model: Any,
) -> np.ndarray | None:
    starts = [initial_conditions(p, k, N=N, q0=q0, seed=s) for s in seeds]
    Q0 = np.stack([s[0] for s in starts])
    R0 = np.stack([s[1] for s in starts])
    try:
        result = integrate(Q0, R0, np.eye(k), eta=eta, alpha_max=alpha_max, model=model, n_points=300, rtol=1e-6,
                           atol=1e-9)
        times = escape_time(result, threshold=threshold, model=model)
    except (IntegrationError, ValueError):
        return None
    times = np.asarray(times)
    # diverging too slowly to trip the solver still counts as failure when
    # the final risk is not small
    level = threshold * plateau_coefficients(p, k, eta, model=model).risk_plateau
    if np.any(np.isnan(times)) or np.any(result.risk[..., -1] > level):
        return None
    return times


def optimal_learning_rate(
    p: int,
    k: int,
    *,
    seeds: int | tuple[int, ...] = 4,
    etas: np.ndarray | None = None,
    N: float = 1000.0,
    q0: float = 1.0,
    alpha_max: float | None = None,
    threshold: float = 0.75,
    executor: Executor | None = None,
    model: Any = None,
) -> LearningRateScan:
    """Procedure of Sec. 4.1: the learning rate minimising the data needed to escape.

    For each eta (increasing) the ODE is integrated from the same random Eq. 8
    starts (batched, one solve per eta) and the escape times are averaged; the
    scan stops at the first eta where the dynamics fails (blow-up, leaving the
    PSD cone, no escape or no convergence by ``alpha_max``).

    Parameters
    ----------
    p, k : int
    seeds : int or tuple of int
        Number of starts (seeds 0..n-1) or explicit seeds.
    etas : array, optional
        Increasing learning rates; default a geometric grid ``p * 2**(j/2)``
        from ``p/64`` to ``p`` (resolution sqrt(2)).
    N, q0 : float
        Eq. 8 start: ``Q0 = q0 I``, ``R0 ~ N(0, q0/N)``.
    alpha_max : float, optional
        Horizon; default ``40 * k * p / eta``-independent bound ``40 k / min(eta/p)``.
    executor : concurrent.futures.Executor, optional
        Spread the etas over it (all submitted at once, then the curve is cut
        at the first failure); default serial with early stop.

    Returns
    -------
    LearningRateScan
    """
    p, k = _width(p, "p"), _width(k, "k")
    if np.ndim(seeds) == 0:  # a count (booleans and non-integers are refused by _width)
        seed_tuple = tuple(range(_width(seeds, "seeds")))
    else:
        seed_tuple = tuple(check_int(s, f"seeds[{i}]", minimum=0) for i, s in enumerate(seeds))
    if not seed_tuple:
        raise ValueError("seeds must not be empty")
    # checked here, not left to the solves: a ValueError there counts as a failed eta
    N = check_scalar(N, "N", positive=True)
    if N <= 1:
        raise ValueError(f"N (the input dimension) must be > 1, got {N}")
    q0 = check_scalar(q0, "q0", positive=True)
    threshold = check_scalar(threshold, "threshold", positive=True, below=1.0)
    if alpha_max is not None:
        alpha_max = check_scalar(alpha_max, "alpha_max", positive=True)
    if etas is None:
        etas = p * 2.0 ** (np.arange(-12, 1) / 2)
    etas = as_real_array(etas, "etas", ndim_min=1)
    if etas.ndim != 1 or etas.size < 2 or np.any(np.diff(etas) <= 0) or np.any(etas <= 0):
        raise ValueError("etas must be an increasing 1-d array of at least two positive learning rates")
    horizon = alpha_max if alpha_max is not None else 8.0 * k * p * np.log(N) / etas[0]
    args = (p, k)
    extra = (seed_tuple, N, q0, horizon, threshold, model)
    results: list[np.ndarray | None] = []
    if executor is None:
        for eta in etas:
            results.append(_escape_times_for(*args, float(eta), *extra))
            if results[-1] is None:
                break
    else:
        futures = [executor.submit(_escape_times_for, *args, float(eta), *extra) for eta in etas]
        for future in futures:
            results.append(future.result())
    failed = np.ones(etas.size, dtype=bool)
    mean = np.full(etas.size, np.nan)
    error = np.full(etas.size, np.nan)
    for i, times in enumerate(results):
        if times is None:
            break
        failed[i] = False
        mean[i] = times.mean()
        error[i] = times.std(ddof=1) / np.sqrt(times.size) if times.size > 1 else np.nan
    if np.all(failed):
        raise ValueError(f"the dynamics failed for every eta (smallest {etas[0]:g}); scan smaller learning rates")
    best = float(etas[np.nanargmin(mean)])
    resolution = float(np.max(etas[1:] / etas[:-1]))
    return LearningRateScan(p, k, etas, mean, error, failed, best, resolution)
