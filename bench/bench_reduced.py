"""Reduced (overlap) simulator against the weight simulator: cost per unit of alpha.

``numerics.simulate(..., method="overlaps")`` and ``method="weights"`` (paper
model, p = 4, k = 2, eta = 0.5, default start) for N in (1000, 10000) and
replicas in (1, 32). The time is the wall time of the SGD loop
(``extra["seconds"]``, setup excluded) per step, times N steps per unit of
alpha; the ratio is reduced / weights (lower is faster). The reduced step
does not depend on N, so its cost per unit alpha grows like N and the weight
simulator's like N**2: the ratio should fall about tenfold from N = 1000 to
10000. The two simulators are timed alternately, best of three each; the
rows also give the reduced simulator's time per step (``reduced_step_us``),
which should be the same at both N.
"""

from __future__ import annotations

from bench.common import row

CASES = ((1000, 1), (1000, 32), (10000, 1), (10000, 32))


def step_seconds(method: str, N: int, replicas: int, steps: int) -> float:
    """Seconds per SGD step (all replicas) of ``numerics.simulate`` over ``steps`` steps."""
    from numerics.simulators.weights import simulate

    result = simulate(N=N, p=4, k=2, eta=0.5, alpha_max=steps / N, seed=0, replicas=replicas, record=2,
                      method=method, progress=False)
    return result.extra["seconds"] / result.nfev


def run(smoke: bool = False) -> list[dict]:
    """One row per (N, replicas): reduced against weight simulator, seconds per unit alpha."""
    work = 1e6 if smoke else 4e7  # weight simulator: input entries drawn per timing
    reduced_steps = 64 if smoke else 3000
    repeats = 1 if smoke else 3
    cases = CASES[:1] if smoke else CASES
    rows = []
    for N, replicas in cases:
        weight_steps = max(64, int(work / (N * replicas)))
        reduced, full = float("inf"), float("inf")
        for _ in range(repeats):
            reduced = min(reduced, step_seconds("overlaps", N, replicas, reduced_steps))
            full = min(full, step_seconds("weights", N, replicas, weight_steps))
        rows.append(row("reduced", f"N={N},replicas={replicas}", seconds=reduced * N, baseline_seconds=full * N,
                        baseline="weight simulator (method='weights'), seconds per unit alpha",
                        reduced_step_us=reduced * 1e6, weights_step_us=full * 1e6,
                        reduced_steps=reduced_steps, weight_steps=weight_steps))
    return rows


if __name__ == "__main__":
    from bench.common import script_main

    raise SystemExit(script_main(run))
