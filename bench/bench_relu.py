"""The relu right-hand side with its eta**2 term: one path integral per student pair against one per block.

The candidate is the generated ``rhs_terms`` of the relu model (``sigma = sigma* = relu``,
``a = 1/p``, ``b = 1/k``) with the eta**2 term, as ``numerics.integrate`` calls it: the eta**2
term by :func:`numerics.kernels.relu_pairs.theta_pairs_relu_square` (one path integral per
student pair ``(j, l)``, shared by all unit pairs, with the node rule of each pair chosen from
the closest singularity of its integrand). The baseline is the same call through the
per-tuple route it replaces (the kernels wrapped so that they are not recognised, so that
``E[theta theta relu relu]`` is integrated block by block,
:func:`numerics.kernels.relu_quadrature.theta_theta_relu_relu`), timed in the same run; both
are checked to agree within the per-block route's stated error (1e-10 per block, summed over
the blocks with their readout weights) before timing. p = k at a random point
``C = F F^T / (3 (p + k))`` (weakly correlated units: the shared route takes one panel of 12
nodes per student pair, the per-block route three panels, 36 nodes per block).

Where the baseline would take too long (p = 16 and 32: tens of seconds to minutes per call), its
time is **extrapolated** from the two largest measured sizes with the exponent they give, and
the row says so (``baseline_extrapolated=True``). The last row gives the fitted exponent of the
candidate's cost in p (least squares of log time against log p over p = 10, 16, 32 and over all p),
from the wall times and from the CPU times of the process (``cpu_seconds`` on each row, best of the
repeats: less disturbed by other jobs on a shared machine).

``python -m bench --only relu`` (or ``python -m bench.bench_relu``) prints the rows; ``ratio`` is
shared / per-block, lower is faster.
"""

from __future__ import annotations

import math
import time

import numpy as np

from bench.common import row, time_call, time_pair

ETA = 0.5
#: p = k sizes; the per-block baseline is timed up to :data:`LARGEST_TIMED_BASELINE`.
SIZES = (2, 6, 10, 16, 32)
SMOKE_SIZES = (2, 3)
LARGEST_TIMED_BASELINE = 10
#: The per-block route's stated error per block (numerics/kernels/relu_quadrature.py).
BLOCK_ERROR = 1e-10


def relu_module():
    from derive.model.model import Model
    from numerics.runtime.registry import artefact

    return artefact("model", Model(student_activation="relu(x)", teacher_activation="relu(x)", name="relu"))


def overlaps(p: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Q, R, T)`` from a random covariance ``F F^T / (3 (p + k))``."""
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((p + k, 3 * (p + k)))
    C = F @ F.T / (3 * (p + k))
    return C[:p, :p], C[:p, p:], C[p:, p:]


def routes(p: int, k: int):
    """``(shared, per_block)``: the relu right-hand side ``(dQ, dR)`` by the two routes, at :func:`overlaps`."""
    from numerics.kernels import unit_tuples

    module = relu_module()
    Q, R, T = overlaps(p, k)
    # a wrapper is not the generated call: unit_tuples then gathers the 4-slot kernel block by block
    wrapped = {name: (lambda *c, f=f: f(*c)) for name, f in module.KERNELS.items()}

    def shared():
        return module.rhs_terms(Q, R, T, ETA, ETA**2, 0.0)

    def per_block():
        return unit_tuples.rhs_terms(wrapped, module.readouts, Q, R, T, ETA, ETA**2, 0.0)

    return shared, per_block


def checked_difference(p: int, k: int, shared, per_block) -> float:
    """Largest difference of ``dQ``, raising if it exceeds the per-block route's error bound."""
    difference = float(np.max(np.abs(shared()[0] - per_block()[0])))
    # readouts 1/p, 1/k: (sum |c|)**2 = 4, the eta**2 term carries eta**2 a_j a_l
    bound = BLOCK_ERROR * 4 * ETA**2 / p**2
    if difference > bound:
        raise AssertionError(f"relu eta**2 term: shared and per-block routes differ by {difference:.2g} at p={p}")
    return difference


def cpu_seconds(function, repeats: int) -> float:
    """Least CPU time of the process over ``repeats`` calls of ``function``."""
    best = math.inf
    for _ in range(repeats):
        started = time.process_time()
        function()
        best = min(best, time.process_time() - started)
    return best


def fitted_exponent(sizes, seconds) -> float:
    """Least-squares slope of log(seconds) against log(p)."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def run(smoke: bool = False) -> list[dict]:
    """One row per p = k (candidate against the per-block route), then the fitted exponents."""
    sizes = SMOKE_SIZES if smoke else SIZES
    repeats = 2 if smoke else 3
    rows, measured, cpu_measured, baseline_measured = [], [], [], []
    for p in sizes:
        shared, per_block = routes(p, p)
        extrapolated = p > LARGEST_TIMED_BASELINE
        if extrapolated:
            candidate = time_call(shared, repeats=repeats, min_seconds=0.02)
            (p1, t1), (p2, t2) = baseline_measured[-2:]
            exponent = math.log(t2 / t1) / math.log(p2 / p1)
            baseline_seconds, difference = t2 * (p / p2) ** exponent, None
            note = {"baseline_extrapolated": True, "baseline_exponent": round(exponent, 2)}
        else:
            difference = checked_difference(p, p, shared, per_block)
            candidate, baseline = time_pair(shared, per_block, repeats=repeats, min_seconds=0.02)
            baseline_seconds = baseline.best
            baseline_measured.append((p, baseline_seconds))
            note = {"baseline_extrapolated": False}
        measured.append((p, candidate.best))
        cpu_measured.append((p, cpu_seconds(shared, repeats)))
        rows.append(
            row("relu", f"rhs p=k={p}", seconds=candidate.best, baseline_seconds=baseline_seconds,
                baseline="per-block quadrature (old route)", target=20 if p == 10 else None,
                target_kind="speedup>=", max_abs_difference=difference, cpu_seconds=cpu_measured[-1][1], **note)
        )
    exponents = {}
    for prefix, timings in (("", measured), ("cpu_", cpu_measured)):
        ps, times = zip(*timings)
        tail = [(p, t) for p, t in timings if p >= 10]
        exponents[f"{prefix}exponent_all_p"] = round(fitted_exponent(ps, times), 2)
        if len(tail) >= 2:
            exponents[f"{prefix}exponent_p10_to_p32"] = round(fitted_exponent(*zip(*tail)), 2)
    rows.append(row("relu", "cost exponent in p", seconds=measured[-1][1], baseline_seconds=None,
                    baseline="-", **exponents))
    return rows


if __name__ == "__main__":
    from bench.common import script_main

    raise SystemExit(script_main(run))
