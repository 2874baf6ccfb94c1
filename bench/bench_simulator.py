"""SGD simulator: cost of one step per replica relative to drawing that step's Gaussian input.

``numerics.simulate`` (paper model, p = 4, k = 2, eta = 0.5) for N in (1000,
10000) and replicas in (1, 32). The time per step is the wall time of the SGD
loop (``extra["seconds"]``: drawing the inputs, the forward pass, the
updates, the divergence checks; not the setup) divided by the number of
steps; per replica it is further divided by the replicas. The baseline is
drawing the same N x replicas standard normals per step with one NumPy
generator into a preallocated buffer, the least a step has to do, so the ratio
is 1 + (everything else) / (drawing). Target: <= 1.5 at N = 10000. The
simulation and the draws are timed alternately, best of three each.
"""

from __future__ import annotations

import time

import numpy as np

from bench.common import row

CASES = ((1000, 1), (1000, 32), (10000, 1), (10000, 32))


def step_seconds(N: int, replicas: int, steps: int) -> float:
    """Seconds per SGD step (all replicas) of ``numerics.simulate`` over ``steps`` steps."""
    from numerics.simulators.weights import simulate

    result = simulate(N=N, p=4, k=2, eta=0.5, alpha_max=steps / N, seed=0, replicas=replicas, record=2,
                      progress=False)
    return result.extra["seconds"] / result.nfev


def draw_seconds(N: int, replicas: int, steps: int) -> float:
    """Seconds to draw one step's N x replicas standard normals."""
    rng = np.random.default_rng(0)
    buffer = np.empty((replicas, N))
    started = time.perf_counter()
    for _ in range(steps):
        rng.standard_normal(out=buffer)
    return (time.perf_counter() - started) / steps


def run(smoke: bool = False) -> list[dict]:
    """One row per (N, replicas): per-replica step time against the per-replica draw time."""
    work = 2e6 if smoke else 4e7  # normals drawn per timing
    repeats = 1 if smoke else 3
    cases = CASES[:1] if smoke else CASES
    rows = []
    for N, replicas in cases:
        steps = max(64, int(work / (N * replicas)))
        step, draw = float("inf"), float("inf")
        for _ in range(repeats):
            step = min(step, step_seconds(N, replicas, steps))
            draw = min(draw, draw_seconds(N, replicas, steps))
        target = 1.5 if N == 10000 else None
        rows.append(row("simulator", f"N={N},replicas={replicas}", seconds=step / replicas,
                        baseline_seconds=draw / replicas, baseline="drawing the step's N x replicas normals",
                        target=target, steps=steps))
    return rows


if __name__ == "__main__":
    from bench.common import script_main

    raise SystemExit(script_main(run))
