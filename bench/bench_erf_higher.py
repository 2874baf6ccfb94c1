"""The erf committee's SDE step with the eta**3 and eta**4 parts of its increment covariance, against the leading order.

The candidate is the packed covariance one SDE step evaluates (``SdeDynamics.covariance``, the erf
committee ``SCM``, eta = 0.5, random points as replicas) with ``second_order=True``: the leading
order plus the parts of :mod:`numerics.noise.erf_higher_orders`. The baseline is the same call
with ``second_order=False`` (the leading order alone, what the step cost before those parts
existed), timed alternately in the same run. p = k = 2, 3 and 4 (32 replicas); at p = k = 8
(above ``MAX_HIGHER_ORDER_UNITS = 8`` units) the default is the leading order with a warning, so
that row's ratio is about 1, and one more row times the parts forced on (the limit raised) for a
single replica, once, to show why they are not the default there.

``python -m bench --only erf_higher`` (or ``python -m bench.bench_erf_higher``) prints the rows;
``ratio`` is with / without the higher parts, lower is cheaper.
"""

from __future__ import annotations

import warnings

import numpy as np

from bench.common import row, time_call, time_pair

ETA = 0.5
SIZES = ((2, 2, 32), (3, 3, 32), (4, 4, 32), (8, 8, 32))
SMOKE_SIZES = ((2, 2, 2),)


def random_points(p: int, k: int, points: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Q, R, T)`` of ``points`` random covariances ``F F^T / (p + k) + 0.1 I``."""
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=(points, p + k, p + k)) / np.sqrt(p + k)
    C = factor @ np.swapaxes(factor, 1, 2) + 0.1 * np.eye(p + k)
    return C[:, :p, :p], C[:, :p, p:], C[:, p:, p:]


def step_covariances(p: int, k: int, replicas: int):
    """``(with_parts, leading)``: the SDE step's packed covariance with and without the higher parts."""
    from derive.model.model import SCM
    from numerics.results.settings import RunSettings
    from numerics.runtime.registry import resolve
    from numerics.simulators.sde_dynamics import SdeDynamics

    Q, R, T = random_points(p, k, replicas)
    resolved = resolve(SCM, sizes=(p, k))
    full = SdeDynamics(RunSettings(eta=ETA, model=SCM), resolved, replicas, p, k)
    leading = SdeDynamics(RunSettings(eta=ETA, model=SCM, second_order=False), resolved, replicas, p, k)
    return (lambda: full.covariance(Q, R, T, None)), (lambda: leading.covariance(Q, R, T, None))


def forced_row(p: int, k: int) -> dict:
    """One replica at ``p + k`` above the limit with the parts forced on (the limit raised), timed once."""
    from numerics.noise import erf_higher_orders

    with_parts, leading = step_covariances(p, k, 1)
    saved = erf_higher_orders.MAX_HIGHER_ORDER_UNITS
    erf_higher_orders.MAX_HIGHER_ORDER_UNITS = p + k
    try:
        forced = time_call(with_parts, repeats=1, min_seconds=0.0)
    finally:
        erf_higher_orders.MAX_HIGHER_ORDER_UNITS = saved
    base = time_call(leading, repeats=3)
    return row("erf_higher", f"p={p},k={k},replicas=1, parts forced on", seconds=forced.best,
               baseline_seconds=base.best, baseline="the leading order alone (second_order=False)")


def size_rows(bench: str, sizes, step_covariances, limit: int, repeats: int) -> list[dict]:
    """One row per ``(p, k, replicas)``: the step's covariance with the higher parts against the leading order.

    ``step_covariances(p, k, replicas)`` returns the two calls; above ``p + k = limit`` units both are
    the leading order (the ``RuntimeWarning`` that says so is silenced here).
    """
    rows = []
    for p, k, replicas in sizes:
        with_parts, leading = step_covariances(p, k, replicas)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            new, old = time_pair(with_parts, leading, repeats=repeats)
        note = "leading order (above the limit)" if p + k > limit else "eta**3 and eta**4 parts included"
        rows.append(row(bench, f"p={p},k={k},replicas={replicas}", seconds=new.best, baseline_seconds=old.best,
                        baseline="the leading order alone (second_order=False)", included=note))
    return rows


def run(smoke: bool = False) -> list[dict]:
    """Rows: the step's covariance with the higher parts against the leading order, per size."""
    from numerics.noise.erf_higher_orders import MAX_HIGHER_ORDER_UNITS

    rows = size_rows("erf_higher", SMOKE_SIZES if smoke else SIZES, step_covariances, MAX_HIGHER_ORDER_UNITS,
                     3 if smoke else 5)
    if not smoke:
        rows.append(forced_row(8, 8))
    return rows


if __name__ == "__main__":
    from bench.common import script_main

    raise SystemExit(script_main(run))
