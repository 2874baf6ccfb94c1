"""The learning rate that minimises the data needed to escape (paper Sec. 4.1, Fig. 2).

For each eta the ODE is integrated from the same random Eq. 8 starts and the escape times
(:func:`numerics.escape_time`) are averaged; serially (stopping at the first eta that fails)
or as one :func:`numerics.sweep` over ``eta`` on an executor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from numerics.analyses.plateau import escape_time, run_plateaus
from numerics.core.validation import as_real_array, check_flag, check_int, check_scalar
from numerics.ode.initial import initial_conditions
from numerics.ode.integrate import IntegrationError, integrate
from numerics.simulators.common import progress_bar
from numerics.sweeps.api import sweep

logger = logging.getLogger(__name__)


def _width(value: object, name: str) -> int:
    return check_int(value, name, minimum=1)


#: Why a learning rate of a scan failed (``LearningRateScan.reasons``).
FAILURES = ("blew up", "left the PSD cone", "solver stopped", "no plateau", "did not escape", "did not learn")



@dataclass(frozen=True)
class LearningRateScan:
    """Result of :func:`optimal_learning_rate`.

    Attributes
    ----------
    p, k : int
    etas : array, shape (n,)
        Scanned learning rates (increasing).
    mean_escape, standard_error : array, shape (n,)
        Alpha to escape averaged over the starts and its standard error; NaN
        where the dynamics failed.
    failed : array of bool, shape (n,)
        The eta failed, or lies beyond the first failure.
    best_eta : float
        Minimiser of ``mean_escape``.
    resolution : float
        Largest ratio of consecutive scanned etas.
    reasons : tuple of str
        Per eta: ``""`` (escaped and learned), one of :data:`FAILURES`, or
        ``"not run"`` (beyond the first failure of a serial scan) /
        ``"beyond the first failure"`` (computed by an executor, but cut).
    stop_reason : str
        What ended the scan: the reason of the first failure, or
        ``"end of the grid"`` if no eta failed.
    boundary : bool
        ``best_eta`` is the smallest or the largest stable eta of the scan, so
        the true optimum may lie outside the scanned stable range (for the
        paper model it is typically the largest eta that still learns: the
        escape gets faster with eta until the dynamics fails).
    learned_fraction : float
        The criterion the runs had to meet (see :func:`optimal_learning_rate`).
    """

    p: int
    k: int
    etas: np.ndarray
    mean_escape: np.ndarray
    standard_error: np.ndarray
    failed: np.ndarray
    best_eta: float
    resolution: float
    reasons: tuple[str, ...] = ()
    stop_reason: str = ""
    boundary: bool = False
    learned_fraction: float = 0.1

    def summary(self) -> str:
        """A few lines: the optimum, what stopped the scan, and a note on a boundary optimum."""
        stable = np.nonzero(~self.failed)[0]
        i = int(np.nanargmin(self.mean_escape))
        lines = [
            f"p={self.p}, k={self.k}: best eta = {self.best_eta:.4g} (eta/p = {self.best_eta / self.p:.4g}), "
            f"mean escape alpha = {self.mean_escape[i]:.4g} +- {self.standard_error[i]:.2g}; "
            f"scan resolution {self.resolution:.3g}",
            f"stable etas {self.etas[stable[0]]:.4g} .. {self.etas[stable[-1]]:.4g}; scan stopped: {self.stop_reason}",
        ]
        if self.boundary:
            edge = "largest" if i == stable[-1] else "smallest"
            lines.append(
                f"note: the best eta is the {edge} stable eta of the scan (boundary optimum): the optimum is "
                "only bracketed by the scan resolution and the stability limit"
                if edge == "largest"
                else f"note: the best eta is the {edge} stable eta of the scan (boundary optimum): scan smaller etas"
            )
        return "\n".join(lines)



def _escape_times_for(
    p: int, k: int, eta: float, seeds: tuple[int, ...], N: float, q0: float, alpha_max: float,
    threshold: float, learned_fraction: float, model: Any,
) -> tuple[np.ndarray | None, str]:
    """Escape times of the starts at one eta, or ``(None, reason)`` (see :data:`FAILURES`)."""
    starts = [initial_conditions(p, k, N=N, q0=q0, seed=s) for s in seeds]
    Q0 = np.stack([s[0] for s in starts])
    R0 = np.stack([s[1] for s in starts])
    try:
        result = integrate(Q0, R0, np.eye(k), eta=eta, alpha_max=alpha_max, model=model, n_points=300, rtol=1e-6,
                           atol=1e-9)
    except IntegrationError as error:
        return None, error.kind
    try:
        plateaus = run_plateaus(result)
    except ValueError:
        return None, "no plateau"
    times = np.asarray(escape_time(result, threshold=threshold))
    if np.any(np.isnan(times)):
        return None, "did not escape"
    # Learning means reaching (and staying at) a small fraction of the plateau's excess risk
    # over the label-noise floor; crossing the threshold and stalling above it (at large eta
    # the eta**2 term can hold the state at a finite-risk fixed point) is not an escape.
    floor = np.array([c.noise_floor for c in plateaus])
    learned = floor + learned_fraction * (np.array([c.risk for c in plateaus]) - floor)
    if np.any(result.risk[..., -1] >= learned):
        return None, "did not learn"
    return times, ""



def learning_rate_point(
    *, eta: float, p: int, k: int, seeds: list[int], N: float, q0: float, horizon: float, threshold: float,
    learned_fraction: float, model: Any = None,
) -> dict[str, Any]:
    """One eta of :func:`optimal_learning_rate` as a sweep task: escape ``times`` (NaN when failed) and ``reason``."""
    times, reason = _escape_times_for(p, k, eta, tuple(seeds), N, q0, horizon, threshold, learned_fraction, model)
    return {"times": np.full(len(seeds), np.nan) if times is None else times, "reason": reason}



def _scan_serially(etas: np.ndarray, args: tuple, extra: tuple, progress: bool) -> list[tuple[np.ndarray | None, str]]:
    """The etas one by one, up to the first failure, reporting each (a bar or log lines, and INFO)."""
    p, k = args
    bar = progress_bar(progress, etas.size, f"learning rates (p={p}, k={k})", unit_scale=False, unit="eta")
    results = []
    for eta in etas:
        results.append(_escape_times_for(*args, float(eta), *extra))
        times, reason = results[-1]
        logger.info("eta = %g: %s", eta, reason or f"mean escape alpha {np.mean(times):.4g}")
        if bar is not None:
            bar.update(1)
        if times is None:
            break
    if bar is not None:
        bar.close()
    return results


def _scan_on_sweep(etas, executor, store, args, extra) -> list[tuple[np.ndarray | None, str]]:
    p, k = args
    seeds, N, q0, horizon, threshold, learned_fraction, model = extra
    dataset = sweep(
        learning_rate_point, {"eta": [float(eta) for eta in etas]},
        executor=None if executor == "processes" else executor, store=store, progress=False,
        p=p, k=k, seeds=list(seeds), N=N, q0=q0, horizon=float(horizon), threshold=threshold,
        learned_fraction=learned_fraction, model=model,
    )
    results = []
    for i in range(etas.size):
        reason = str(dataset["reason"].values[i])
        times = np.asarray(dataset["times"].values[i], dtype=float)
        results.append((None if reason else times, reason))
    return results



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
    learned_fraction: float = 0.1,
    executor: Any = None,
    model: Any = None,
    store: Any = None,
    progress: bool = True,
) -> LearningRateScan:
    """Procedure of Sec. 4.1: the learning rate minimising the data needed to escape.

    For each eta (increasing) the ODE is integrated from the same random Eq. 8
    starts (batched, one solve per eta) and the escape times are averaged; the
    scan stops at the first eta where the dynamics fails: it blows up, leaves
    the PSD cone, has no plateau, does not escape, or does not learn.

    A start escapes at the first alpha where its risk falls below ``threshold``
    times the plateau risk (:func:`escape_time`), and it counts only if it
    also learns: by ``alpha_max`` its risk is below
    ``Delta/2 + learned_fraction * (plateau risk - Delta/2)`` (``Delta/2`` is
    the label-noise floor). A start that crosses the threshold and stalls
    above that level makes the eta fail ("did not learn").

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
        Horizon; default ``8 k p log(N) / min(etas)``.
    threshold : float
        Escape level, a fraction of the plateau risk (default 3/4).
    learned_fraction : float
        Fraction in (0, threshold]; default 0.1. When the student cannot
        represent the teacher (paper model with p < k) the learned risk is
        itself a finite fraction of the plateau risk (about 0.44 for p = 1,
        k = 2), and ``learned_fraction`` has to be raised above it.
    executor : concurrent.futures.Executor, dask.distributed.Client or "processes", optional
        Run the etas as one :func:`numerics.sweep` over ``eta`` on it (all at
        once, then the curve is cut at the first failure); ``"processes"`` is a
        local process pool with one worker per core. Default: serially here,
        stopping at the first failure.
    model : derive.Model, optional
    store : path, optional
        With an executor: the sweep's store (a directory of finished etas; a
        rerun with the same arguments computes nothing again).
    progress : bool
        Report the serial scan eta by eta: a ``tqdm.auto`` bar on a terminal or in a notebook,
        else a log line per 10 % of the grid; each finished eta is also logged at level INFO
        (logger ``numerics.sweeps.learning_rate``).

    Returns
    -------
    LearningRateScan
        With ``boundary`` set when the best eta is the smallest or largest
        stable eta, and ``stop_reason`` naming what ended the scan;
        ``summary()`` prints both.

    Raises
    ------
    ValueError
        If every eta fails (the message names the reason of the first).
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
    if alpha_max is not None:
        alpha_max = check_scalar(alpha_max, "alpha_max", positive=True)
    threshold = check_scalar(threshold, "threshold", positive=True)
    learned_fraction = check_scalar(learned_fraction, "learned_fraction", positive=True)
    if threshold >= 1 or learned_fraction > threshold:
        raise ValueError(
            f"need 0 < learned_fraction <= threshold < 1, got learned_fraction={learned_fraction}, "
            f"threshold={threshold}"
        )
    if etas is None:
        etas = p * 2.0 ** (np.arange(-12, 1) / 2)
    etas = as_real_array(etas, "etas", ndim_min=1)
    if etas.ndim != 1 or etas.size < 2 or np.any(np.diff(etas) <= 0) or np.any(etas <= 0):
        raise ValueError("etas must be an increasing 1-d array of at least two positive learning rates")
    horizon = alpha_max if alpha_max is not None else 8.0 * k * p * np.log(N) / etas[0]
    args = (p, k)
    extra = (seed_tuple, N, q0, horizon, threshold, learned_fraction, model)
    results: list[tuple[np.ndarray | None, str]] = []
    if executor is None:
        if store is not None:
            raise ValueError("store needs an executor (the serial scan stops early and stores nothing)")
        results = _scan_serially(etas, args, extra, check_flag(progress, "progress"))
    else:
        results = _scan_on_sweep(etas, executor, store, args, extra)
    failed = np.ones(etas.size, dtype=bool)
    mean = np.full(etas.size, np.nan)
    error = np.full(etas.size, np.nan)
    reasons = ["not run"] * etas.size
    stop_reason = "end of the grid"
    for i, (times, reason) in enumerate(results):
        reasons[i] = reason
        if times is None:
            stop_reason = reason
            reasons[i + 1 : len(results)] = ["beyond the first failure"] * (len(results) - i - 1)
            break
        failed[i] = False
        mean[i] = times.mean()
        error[i] = times.std(ddof=1) / np.sqrt(times.size) if times.size > 1 else np.nan
    if np.all(failed):
        raise ValueError(
            f"the dynamics failed for every eta (smallest {etas[0]:g}: {stop_reason}); scan smaller learning rates"
            + (", or raise learned_fraction if the student cannot represent the teacher"
               if stop_reason == "did not learn" else "")
        )
    best_index = int(np.nanargmin(mean))
    stable = np.nonzero(~failed)[0]
    boundary = best_index in (stable[0], stable[-1])
    resolution = float(np.max(etas[1:] / etas[:-1]))
    return LearningRateScan(p, k, etas, mean, error, failed, float(etas[best_index]), resolution, tuple(reasons),
                            stop_reason, bool(boundary), learned_fraction)


__all__ = ["FAILURES", "LearningRateScan", "learning_rate_point", "optimal_learning_rate"]
