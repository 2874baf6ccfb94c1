"""What the noise integral of :func:`numerics.plateau_noise` evaluates along the path, and what that costs.

At every point of its grid the linear-noise approximation (:mod:`numerics.analyses.linear_noise`) needs
the packed increment covariance of one step (:func:`step_covariance`) and the exact Jacobian of the drift
(:mod:`numerics.ode.jacobian`); :func:`cost_check` estimates their time for a grid before they are
evaluated, so that a model whose covariance or Jacobian is slow (a relu committee) is refused with an
estimate instead of running for minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from numerics.analyses.linear_noise import check_affordable
from numerics.noise.diffusion import packed_covariance
from numerics.noise.fluctuations import increment_covariance
from numerics.noise.packing import pack_covariance
from numerics.noise.sde_readouts import pack_readout_covariance
from numerics.ode.jacobian import jacobian
from numerics.results.settings import RunSettings

#: Points at which plateau_noise times the covariance and the Jacobian a second time, for their marginal cost.
COST_PROBE_POINTS = 16


def step_covariance(Q: np.ndarray, R: np.ndarray, T: np.ndarray, run: RunSettings,
                    a: np.ndarray | None = None) -> np.ndarray:
    """The packed increment covariance ``Sigma`` (n_alpha, D, D) of one step of ``run`` at ``Q`` (n_alpha, p, p),
    ``R`` (n_alpha, p, k), ``T`` (k, k); (n_alpha, D + p, D + p) with a trained readout, at its values ``a``
    (n_alpha, p).

    The fast :func:`numerics.packed_covariance` for single-sample scalar readouts; with a mini-batch or
    readout vectors the blocks of :func:`numerics.increment_covariance`, packed; with a trained readout
    its blocks too (``AQ``, ``AR``, ``AA``, in the order of the SDE: :mod:`numerics.noise.sde_readouts`).
    """
    if run.eta_a > 0:
        if a is None:
            raise ValueError("step_covariance: the readout is trained, give its values a along the path")
        return pack_readout_covariance(increment_covariance(Q, R, T, settings=run, a=a))
    if run.batch_size == 1 and not run.per_unit:
        return packed_covariance(Q, R, T, settings=run)
    return pack_covariance(*increment_covariance(Q, R, T, settings=run))


def cost_check(Q: np.ndarray, R: np.ndarray, T: np.ndarray, run: RunSettings, max_seconds: float,
               a: np.ndarray | None = None) -> Callable[..., None]:
    """A check of the time ``Sigma`` and the Jacobian take along a grid, timed at the path's start.

    Both are evaluated for the whole path in one batched call each, so the estimate is the time at two
    points plus, only if that alone says no, the marginal cost per point (timed at
    :data:`COST_PROBE_POINTS`) times the rest: a call with a large fixed part (a mini-batch's covariance)
    must not be refused for it. The timings are taken once, by the first check that needs them.

    Parameters
    ----------
    Q : array, shape (p, p)
    R : array, shape (p, k)
    T : array, shape (k, k)
        The point the evaluations are timed at (the path's start).
    run : RunSettings
    max_seconds : float
        The limit.
    a : array, shape (p,), optional
        A trained readout's value, part of the state.

    Returns
    -------
    callable
        ``check(points, at_least=False)``: raises ``ValueError`` (with the estimate) when ``points``
        points would take over ``max_seconds``; ``at_least`` words ``points`` as a lower bound.
    """
    timings: dict[int, float] = {}

    def evaluate(size: int) -> None:
        Qs, Rs = np.stack([Q] * size), np.stack([R] * size)
        readouts = None if a is None else np.stack([a] * size)
        step_covariance(Qs, Rs, T, run, readouts)
        jacobian(Qs, Rs, T, settings=run if a is None else replace(run, a=readouts))

    def seconds_at(size: int) -> float:
        if size not in timings:
            if not timings:
                evaluate(2)  # the first calls lay out the evaluation
            best = np.inf
            # best of three: a busy machine that pauses this process for a moment must not refuse a cheap model
            for _ in range(3):
                begin = time.perf_counter()
                evaluate(size)
                best = min(best, time.perf_counter() - begin)
            timings[size] = best
        return timings[size]

    def check(points: int, at_least: bool = False) -> None:
        two = seconds_at(2)
        estimate = two / 2 * points
        if estimate > max_seconds and points > 2:
            marginal = max(seconds_at(COST_PROBE_POINTS) - two, 0.0) / (COST_PROBE_POINTS - 2)
            estimate = min(estimate, two + marginal * (points - 2))
        check_affordable(estimate / points, points, max_seconds, at_least=at_least)

    return check


__all__ = ["COST_PROBE_POINTS", "cost_check", "step_covariance"]
