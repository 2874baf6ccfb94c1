"""Cost of the public API around the generated code, and of BLAS threads in ``integrate``.

Rows ``api``: the public ``numerics.rhs`` (input validation, model look-up,
overflow check) and ``numerics.rhs(..., check=False)`` against the generated
function alone (``numerics.ode.overlaps.rhs_unchecked`` on the resolved module,
what ``integrate`` calls per step), timed interleaved in the same process.
``ratio - 1`` is the overhead in units of the generated computation; the
target ``ratio <= 2`` says validation costs less than the computation it
guards. The ``model=HE2`` row passes an explicit model object (looked up by
identity after the first call; by content hash it cost about 1 ms).

Rows ``blas``: ``integrate`` at p = 100, k = 10 and p = 300, k = 2 with
``blas_threads=1`` against ``blas_threads=None`` (BLAS as the process started
it), on an otherwise idle machine and with CPU-bound processes competing for
the cores (all but one, at most 15), as on a shared machine. In the runner's
one-thread subprocess both settings are one thread (ratio about 1); the
default-thread subprocess shows what pinning saves.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import numpy as np

from bench.common import row, time_pair

SIZES = ((8, 2), (64, 4))
ETA = 0.3


def overlaps(p: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A generic point: ``C = [[Q, R], [R^T, T]]`` positive definite."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((p + k, 4 * (p + k))) / np.sqrt(4 * (p + k))
    C = W @ W.T
    return C[:p, :p].copy(), C[:p, p:].copy(), C[p:, p:].copy()


def api_rows(smoke: bool) -> list[dict]:
    import numerics
    from derive.model.model import HE2
    from numerics.ode.overlaps import rhs_unchecked
    from numerics.runtime.registry import resolve

    rows = []
    repeats, min_seconds = (3, 0.01) if smoke else (7, 0.2)
    for model, label in ((None, "paper"), (HE2, "model=HE2")):
        resolved = resolve(model)
        for p, k in SIZES[:1] if smoke or model is not None else SIZES:
            Q, R, T = overlaps(p, k)

            def generated(Q=Q, R=R, T=T, resolved=resolved):
                return rhs_unchecked(Q, R, T, ETA, resolved, True)

            def public(Q=Q, R=R, T=T, model=model):
                return numerics.rhs(Q, R, T, ETA, model=model)

            def unchecked(Q=Q, R=R, T=T, model=model):
                return numerics.rhs(Q, R, T, ETA, model=model, check=False)

            for a, b in zip(public(), generated()):
                np.testing.assert_array_equal(a, b)
            for name, candidate, target in (("rhs", public, 2.0), ("rhs check=False", unchecked, None)):
                cand, base = time_pair(candidate, generated, repeats=repeats, min_seconds=min_seconds)
                rows.append(row("api", f"{name}, {label}, p={p},k={k}", seconds=cand.best,
                                baseline_seconds=base.best, baseline="generated function alone",
                                target=target if p == 8 else None, median_ratio=cand.median / base.median))
    return rows


@contextlib.contextmanager
def busy_cores(count: int):
    """``count`` CPU-bound processes (a busy machine) for the duration of the block; ended after."""
    processes = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.2)  # let them start spinning
        yield
    finally:
        for process in processes:  # only the processes started here, by handle
            process.kill()
            process.wait()


def blas_rows(smoke: bool) -> list[dict]:
    from numerics import initial_conditions, integrate

    cases = [(20, 4, 20.0)] if smoke else [(100, 10, 2000.0), (300, 2, 50.0)]
    # one core left free per BLAS thread but one: what a shared machine running other jobs looks like
    competing = [0] if smoke else [0, max(1, min((os.cpu_count() or 2) - 1, 15))]
    rows = []
    for p, k, alpha_max in cases:
        Q0, R0, T = initial_conditions(p, k, N=10_000, seed=0)

        def solve(threads, Q0=Q0, R0=R0, T=T, alpha_max=alpha_max):
            started = time.perf_counter()
            result = integrate(Q0, R0, T, eta=0.5, alpha_max=alpha_max, blas_threads=threads)
            return time.perf_counter() - started, result.nfev

        solve(1)  # imports, generated module, threadpoolctl's library scan
        for busy in competing:
            with busy_cores(busy):
                pinned, free = [], []
                for _ in range(1 if smoke else 2):  # alternate, so load from other processes hits both
                    pinned.append(solve(1))
                    free.append(solve(None))
            best_pinned, best_free = min(t for t, _ in pinned), min(t for t, _ in free)
            rows.append(row("blas", f"integrate p={p},k={k}, alpha={alpha_max:g}, blas_threads=1, "
                            f"{busy} busy processes", seconds=best_pinned, baseline_seconds=best_free,
                            baseline="blas_threads=None (BLAS as started)", nfev=pinned[0][1]))
    return rows


def run(smoke: bool = False) -> list[dict]:
    """API overhead rows, then the BLAS-thread row."""
    return api_rows(smoke) + blas_rows(smoke)


if __name__ == "__main__":
    from bench.common import script_main

    raise SystemExit(script_main(run))
