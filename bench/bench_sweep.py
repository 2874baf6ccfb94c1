"""A sweep on two workers against the same sweep run serially: the speed-up of ``numerics.sweep``.

The sweep integrates the paper model (p = 4, k = 2, Eq. 8 starts at N = 1e4)
through the plateau to alpha = 600 on a fixed grid of 201 output times, over
8 learning rates (0.2 ... 0.9) x 2 seeds: 16 points of about 0.2 s each. It
runs serially (``executor="serial"``), on a ``ProcessPoolExecutor(2)`` and on a
dask ``LocalCluster(n_workers=2, processes=True, threads_per_worker=1)``; the
three are timed alternately, best of three, with the pool and the cluster
started (and their workers warmed by a one-point sweep) beforehand, so the
rows measure the sweep, not the start-up (reported in the notes). The
datasets are checked to be identical before the timing counts. The ratio is
parallel / serial; with two workers the ideal is 0.5 (speed-up 2). The points
are small ODE solves whose cost is Python and NumPy call overhead, not BLAS;
dask's workers run with one BLAS thread each (its default worker environment),
the pool's forked workers with this process's setting.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from bench.common import THREAD_VARIABLES, row

ALPHA_MAX = 600.0
ETAS = [round(0.2 + 0.1 * i, 2) for i in range(8)]
SEEDS = [0, 1]


def sweep_args(smoke: bool) -> tuple[dict, dict]:
    """Grid and fixed arguments of the benchmark sweep (two short points when ``smoke``)."""
    alpha_max = 20.0 if smoke else ALPHA_MAX
    grid = {"eta": ETAS[:2] if smoke else ETAS, "seed": SEEDS[:1] if smoke else SEEDS}
    fixed = {"p": 4, "k": 2, "N": 1e4, "alpha_eval": np.linspace(0.0, alpha_max, 201)}
    return grid, fixed


def timed_sweep(executor, grid: dict, fixed: dict):
    """Wall time of one sweep on ``executor``, and its dataset."""
    from numerics import sweep

    started = time.perf_counter()
    dataset = sweep("integrate", grid, executor=executor, progress=False, **fixed)
    return time.perf_counter() - started, dataset


def warm() -> bool:
    """Import what a sweep point needs and run one tiny point (on every worker, before timing)."""
    from numerics import sweep

    sweep("integrate", {"eta": [0.5]}, executor="serial", progress=False, p=4, k=2,
          alpha_eval=np.linspace(0.0, 1.0, 3))
    return True


def warm_pool(_index: int) -> bool:
    # a pool starts its processes on demand: busy tasks make it start both
    time.sleep(0.2)
    return warm()


def run(smoke: bool = False) -> list[dict]:
    """Two rows: dask LocalCluster and ProcessPoolExecutor, each against serial, two workers."""
    import xarray as xr
    from distributed import Client, LocalCluster

    grid, fixed = sweep_args(smoke)
    # distributed exports OMP/MKL/OPENBLAS_NUM_THREADS=1 for its workers into this process's
    # environment; put the setting back so the row reports the BLAS threads this process runs with
    threads = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    points = int(np.prod([len(v) for v in grid.values()]))
    repeats = 1 if smoke else 3
    started = time.perf_counter()
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client, ProcessPoolExecutor(2) as pool:
        # start-up: every worker process exists and has imported the toolkit before anything is timed
        warm()
        client.run(warm)
        list(pool.map(warm_pool, range(4)))
        startup = time.perf_counter() - started
        best = {"serial": float("inf"), "dask": float("inf"), "pool": float("inf")}
        datasets = {}
        for _ in range(repeats):
            for name, executor in (("serial", "serial"), ("dask", client), ("pool", pool)):
                seconds, datasets[name] = timed_sweep(executor, grid, fixed)
                best[name] = min(best[name], seconds)
    for name, value in threads.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    for name in ("dask", "pool"):
        xr.testing.assert_identical(datasets[name], datasets["serial"])
    target = None if smoke else 1.5
    rows = []
    for name, case in (("dask", "dask LocalCluster, 2 workers"), ("pool", "ProcessPoolExecutor(2)")):
        rows.append(row("sweep", f"{case}, {points} points", seconds=best[name], baseline_seconds=best["serial"],
                        baseline="the same sweep, serial (in process)", target=target, target_kind="speedup>=",
                        speedup=best["serial"] / best[name], per_point_s=best["serial"] / points,
                        startup_s=startup, identical=True))
    return rows


if __name__ == "__main__":
    from bench.common import script_main

    raise SystemExit(script_main(run))
