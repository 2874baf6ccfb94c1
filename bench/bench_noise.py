"""The noise of the overlaps beyond degree 2: network tables through the shared-factor route.

Above degree 2 the increment moments are network tables contracted numerically
(``numerics/kernels/network_moments.py``). The default route shares the intermediates of all
networks and sums the products split by split through matrix products
(``numerics/kernels/network_plan.py``, ``network_shared.py``); the route it replaces contracts
every group of networks on its own (``route="groups"``). Rows, all timed in the same process,
CPU time of the best of a few calls after a first one that builds the plans:

* **He3 packed covariance** (``packed_covariance``, what ``simulate_sde`` evaluates per step)
  at p = 8, k = 1 over 100 random points, against the paper model's (printed einsums) on the
  same points: target at most 10x.
* **He3 moments**: the six averages (``LL .. EE``) by the shared route against the group route,
  same points (their agreement to 1e-12 relative is checked first).
* **Quartic moments** (student ``x**4``, teacher ``x**2``; tables generated into the cache on
  first use): the six averages by the shared route against the group route, at p = k = 2 on
  one point and p = 8, k = 1 over 10 points: target at least 5x faster.
* **relu SDE step** (relu units on both sides, p = k = 2, 32 random points as replicas): the
  evaluation one SDE step makes (the drift and the packed covariance, as ``SdeDynamics`` does),
  the increment moments per student pair (``numerics/kernels/relu_increments.py``), against the
  same step with the moments summed tuple by tuple (``relu_increment_moments_by_tuples``, the
  route it replaces), wall time interleaved in the same run; agreement checked to 1e-10 relative
  first. Target at least 20x faster.

``python -m bench --only noise`` (or ``python -m bench.bench_noise``) prints the rows.
"""

from __future__ import annotations

import time

import numpy as np

from bench.common import row

ETA = 0.5
NAMES = ("LL", "LN", "NN", "LE", "EN", "EE")
QUARTIC = {"student_activation": "x**4", "teacher_activation": "x**2"}


def random_overlaps(p: int, k: int, points: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Q, R, T)`` of shapes (points, p, p), (points, p, k), (points, k, k) from a random PSD covariance."""
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=(points, p + k, p + k)) / np.sqrt(p + k)
    C = factor @ np.swapaxes(factor, 1, 2) + 0.1 * np.eye(p + k)
    return C[:, :p, :p], C[:, :p, p:], C[:, p:, p:]


def cpu_best(function, repeats: int) -> float:
    """Best CPU seconds of ``repeats`` calls after a first (plans, caches) one."""
    function()
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        function()
        best = min(best, time.process_time() - start)
    return best


def packed_row(p: int, k: int, points: int, repeats: int) -> dict:
    """He3's ``packed_covariance`` against the paper model's, same points."""
    from derive.model.model import HE3
    from numerics.noise.diffusion import packed_covariance

    Q, R, T = random_overlaps(p, k, points)
    he3 = cpu_best(lambda: packed_covariance(Q, R, T, ETA, model=HE3), repeats)
    paper = cpu_best(lambda: packed_covariance(Q, R, T, ETA), repeats)
    return row("noise", f"he3 packed covariance,p={p},k={k},points={points}", seconds=he3, baseline_seconds=paper,
               baseline="paper model's packed_covariance (printed einsums), same points", target=10.0,
               clock="cpu")


def routes_row(label: str, model, p: int, k: int, points: int, repeats: int, target: float | None) -> dict:
    """The six averages of ``model`` by the shared route against the group route, same points."""
    from numerics.noise.readout_fluctuations import network_moments

    evaluator = network_moments(model)
    Q, R, T = random_overlaps(p, k, points)
    shared = evaluator.evaluate(NAMES, Q, R, T, 0.1)
    groups = evaluator.evaluate(NAMES, Q, R, T, 0.1, route="groups")
    error = max(float(np.max(np.abs(s - g)) / np.max(np.abs(g))) for s, g in zip(shared, groups))
    if error > 1e-12:
        raise AssertionError(f"{label}: shared route off by {error:.2g} at p={p}, k={k}")
    candidate = cpu_best(lambda: evaluator.evaluate(NAMES, Q, R, T, 0.1), repeats)
    baseline = cpu_best(lambda: evaluator.evaluate(NAMES, Q, R, T, 0.1, route="groups"), repeats)
    return row("noise", f"{label} moments,p={p},k={k},points={points}", seconds=candidate,
               baseline_seconds=baseline, baseline="group route (every group of networks on its own), same points",
               target=target, target_kind="speedup>=", clock="cpu", max_relative_difference=error)


def _packed_by_tuples(module, Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float) -> np.ndarray:
    """The packed relu covariance with the moments summed tuple by tuple (the route the per-pair one replaces)."""
    from numerics.noise.packing import packed_size
    from numerics.noise.tuple_fluctuations import relu_increment_moments_by_tuples
    from numerics.noise.tuple_packing import tuple_packing

    points, p, k = Q.shape[0], Q.shape[-1], R.shape[-1]
    packing = tuple_packing(p, k)
    X = relu_increment_moments_by_tuples(module, Q, R, T, 0.0).reshape(points, -1)
    X = np.concatenate([X, np.zeros((points, 1))], axis=1)
    drift_Q, drift_R = module.first_order_terms(Q, R, T)
    drift = np.concatenate([drift_Q.reshape(points, -1), drift_R.reshape(points, -1)], axis=1)[:, packing.drift_index]
    D = packed_size(p, k)
    second = X[:, packing.terms.reshape(-1)].reshape(points, D, D, 4).sum(axis=-1)
    Sigma = eta**2 * (second - drift[:, :, None] * drift[:, None, :])
    return (Sigma + np.swapaxes(Sigma, -1, -2)) / 2


def relu_step_row(p: int, k: int, replicas: int, repeats: int) -> dict:
    """One relu SDE step (drift and packed covariance): moments per student pair against tuple by tuple."""
    from bench.common import time_pair
    from derive.model.model import Model
    from numerics.results.settings import RunSettings
    from numerics.runtime.registry import resolve
    from numerics.simulators.sde_dynamics import SdeDynamics

    relu = Model(student_activation="relu(x)", teacher_activation="relu(x)")
    Q, R, T = random_overlaps(p, k, replicas, seed=5)
    resolved = resolve(relu, sizes=(p, k))
    # the leading order, as the tuple-by-tuple route has it (the eta**3, eta**4 parts: bench_relu_higher.py)
    dynamics = SdeDynamics(RunSettings(eta=ETA, model=relu, leading_order_noise=True), resolved, replicas, p, k)
    new = dynamics.covariance(Q, R, T, None)
    old = _packed_by_tuples(resolved.module, Q, R, T, ETA)
    gap = float(np.max(np.abs(new - old)) / np.max(np.abs(old)))
    if not gap < 1e-10:
        raise AssertionError(f"relu covariance per student pair off the tuple-by-tuple route by {gap:.2g}")
    new, old = time_pair(lambda: (dynamics.drift(Q, R, T, None), dynamics.covariance(Q, R, T, None)),
                         lambda: (dynamics.drift(Q, R, T, None), _packed_by_tuples(resolved.module, Q, R, T, ETA)),
                         repeats=repeats)
    return row("noise", f"relu step (drift + covariance) p={p},k={k},replicas={replicas}", seconds=new.best,
               baseline_seconds=old.best, baseline="the same step with the moments summed tuple by tuple",
               target=20.0, target_kind="speedup>=", relative_gap=gap)


def run(smoke: bool = False) -> list[dict]:
    """Rows: He3's packed covariance against the paper model's; shared against group route (He3, quartic); the
    relu SDE step per student pair against tuple by tuple."""
    from derive.model.model import HE3, Model

    if smoke:
        return [packed_row(2, 1, 4, 1), routes_row("he3", HE3, 2, 1, 2, 1, None), relu_step_row(1, 2, 2, 1)]
    quartic = Model(**QUARTIC)
    return [
        packed_row(8, 1, 100, 3),
        routes_row("he3", HE3, 8, 1, 100, 3, None),
        routes_row("quartic", quartic, 2, 2, 1, 3, 5.0),
        routes_row("quartic", quartic, 8, 1, 10, 1, 5.0),
        relu_step_row(2, 2, 32, 3),
    ]


if __name__ == "__main__":
    from bench.common import script_main

    raise SystemExit(script_main(run))
