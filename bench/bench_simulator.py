"""Step cost of the SGD simulator relative to drawing that step's Gaussian inputs.

``python bench/bench_simulator.py [--smoke]`` prints one row per (N, replicas):
the wall time of one SGD step per replica, the time to draw the same step's
N x replicas standard normals with numpy, and their ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_info

        return ",".join(f"{i['internal_api']}:{i['num_threads']}" for i in threadpool_info() if i["user_api"] == "blas")
    except ImportError:
        import os

        return os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "unknown"


def run(smoke: bool = False) -> list[dict]:
    """Measure the ratio for N in (1000, 10000) and replicas in (1, 32); returns one dict per row."""
    from numerics.simulate import simulate

    work = 2e6 if smoke else 4e7  # normals drawn per configuration
    rows = []
    for N in (1000, 10000):
        for replicas in (1, 32):
            steps = max(20, int(work / (N * replicas)))
            sim = simulate(N=N, p=4, k=2, eta=0.5, alpha_max=steps / N, seed=0, replicas=replicas, record=2,
                           progress=False)
            step_seconds = sim.extra["seconds"] / sim.nfev
            rng = np.random.default_rng(0)
            buffer = np.empty((replicas, N))
            started = time.perf_counter()
            for _ in range(steps):
                rng.standard_normal(out=buffer)
            draw_seconds = (time.perf_counter() - started) / steps
            rows.append(
                {
                    "N": N,
                    "replicas": replicas,
                    "steps": steps,
                    "step_us_per_replica": 1e6 * step_seconds / replicas,
                    "draw_us_per_replica": 1e6 * draw_seconds / replicas,
                    "ratio": step_seconds / draw_seconds,
                    "blas_threads": _blas_threads(),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, just check it runs")
    args = parser.parse_args()
    print(f"{'N':>6} {'replicas':>8} {'steps':>7} {'step/replica us':>16} {'draw/replica us':>16} {'ratio':>6}  BLAS")
    for row in run(args.smoke):
        print(f"{row['N']:>6} {row['replicas']:>8} {row['steps']:>7} {row['step_us_per_replica']:>16.2f} "
              f"{row['draw_us_per_replica']:>16.2f} {row['ratio']:>6.2f}  {row['blas_threads']}")


if __name__ == "__main__":
    main()
