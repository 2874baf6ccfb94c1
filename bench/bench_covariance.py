"""The packed covariance: the traced evaluation against the plain one (``increment_covariance``, then packing).

``numerics.packed_covariance`` (what ``simulate_sde`` evaluates once per step) runs the
generated fluctuation moments with their ``einsum`` deferred and sums the recorded terms
through a plan made once per shape (``numerics/noise/traced_einsums.py``,
``numerics/noise/covariance_plan.py``). The baseline is the definition it falls back to:
``pack_covariance(*increment_covariance(...))`` on the same points. Paper model (printed
einsums), second-order moments, eta = 0.5, random points ``C = F F^T + 0.1 I``; both results
are checked to agree to 1e-9 relative before timing; best of several interleaved repeats
after a first call that builds the plan.

``python -m bench --only covariance`` (or ``python -m bench.bench_covariance``) prints the rows;
``ratio`` is traced / plain, lower is faster.
"""

from __future__ import annotations

import numpy as np

from bench.common import row, time_pair

ETA = 0.5
#: (p, k, points): one point (an SDE of one replica) and a batch (replicas), small and wide students.
CASES = ((2, 1, 1), (2, 1, 300), (8, 1, 1), (8, 1, 100))
SMOKE_CASES = ((2, 1, 1), (2, 1, 4))


def random_overlaps(p: int, k: int, points: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Q, R, T)`` of shapes (points, p, p), (points, p, k), (points, k, k) from a random PSD covariance."""
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=(points, p + k, p + k)) / np.sqrt(p + k)
    C = factor @ np.swapaxes(factor, 1, 2) + 0.1 * np.eye(p + k)
    return C[:, :p, :p], C[:, :p, p:], C[:, p:, p:]


def covariance_row(p: int, k: int, points: int, repeats: int) -> dict:
    """Traced ``packed_covariance`` against ``pack_covariance(*increment_covariance(...))``."""
    from numerics.noise.diffusion import pack_covariance, packed_covariance
    from numerics.noise.fluctuations import increment_covariance

    Q, R, T = random_overlaps(p, k, points)

    def traced() -> np.ndarray:
        return packed_covariance(Q, R, T, ETA)

    def plain() -> np.ndarray:
        return pack_covariance(*increment_covariance(Q, R, T, ETA))

    want = plain()
    error = float(np.max(np.abs(traced() - want)) / max(1.0, float(np.max(np.abs(want)))))
    if error > 1e-9:
        raise AssertionError(f"traced packed covariance off by {error:.2g} at p={p}, k={k}")
    candidate, baseline = time_pair(traced, plain, repeats=repeats, min_seconds=0.02)
    return row("covariance", f"paper,p={p},k={k},points={points}", seconds=candidate.best,
               baseline_seconds=baseline.best, baseline="increment_covariance then pack_covariance, same points",
               max_relative_difference=error)


def run(smoke: bool = False) -> list[dict]:
    """One row per case of :data:`CASES`."""
    return [covariance_row(p, k, points, 2 if smoke else 5) for p, k, points in (SMOKE_CASES if smoke else CASES)]


if __name__ == "__main__":
    from bench.common import script_main

    raise SystemExit(script_main(run))
