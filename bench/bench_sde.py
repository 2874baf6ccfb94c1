"""The diffusion approximation (``numerics.simulate_sde``) against the simulators: cost per unit of alpha.

Paper model, p = 8, k = 1, eta = 0.5, started on the plateau (``Q = q* I``, ``R = 0``).

* **Cost per unit alpha at N = 10**6**, for 1 and 100 replicas: the SDE's loop time
  (``extra["seconds"]``) over ``alpha_max``, at its default step, against the exact overlap
  chain (``simulate(..., method="overlaps")``, whose cost per step does not depend on N:
  measured over a few thousand steps at N = 10**6, times N steps per unit alpha) and against
  the weight simulator (``method="weights"``, cost per step proportional to N: measured at
  N = 10**4 and multiplied by 100 per step, flagged ``extrapolated``; running it at 10**6 would
  take hours per unit of alpha). The three are timed in the same run.
* **Escape statistics at N = 10**7, 100 replicas**: the wall time of one ``simulate_sde`` call
  from the plateau to alpha = 45 (every replica escapes by about alpha = 38), with the
  escape times' mean and spread and the process's CPU time (on a shared machine the wall
  time also contains other jobs' share), against the exact chain's time for the same
  statistics (its measured cost per step times ``45 N`` steps: extrapolated, about a day).
* **He3's covariance per SDE step**: ``packed_covariance`` (what ``simulate_sde`` evaluates
  once per step) for He3, whose increment moments are network tables contracted
  numerically (``numerics/kernels/network_moments.py``), against the paper model's printed ones,
  at p = 8, k = 1 over 100 random points (best of a few calls, after a first one that
  builds the contraction plans).
* **The erf committee's SDE step** (``SCM``, p = k = 2, 32 replicas at random points): the
  evaluation one SDE step makes (the drift and the packed covariance, as
  ``SdeDynamics`` does) with the packed erf covariance (``numerics/noise/tuple_packing.py``,
  closed-form moments), against the same step through the per-tuple route
  (``pack_covariance(*covariance_blocks(...))``, the generated six-slot kernels) timed in the
  same run; and the covariance alone against the old route and against the paper model's
  packed covariance at the same points (p = k = 2).
"""

from __future__ import annotations

import time

import numpy as np

from bench.common import row

P, K, ETA = 8, 1, 0.5


def _start():
    from numerics.analyses.plateau import plateau_coefficients

    c = plateau_coefficients(P, K, ETA)
    return c, c.q_star * np.eye(P), np.zeros((P, K)), np.eye(K)


def sde_seconds_per_alpha(N: float, replicas: int, alpha_max: float, p: int = P, k: int = K) -> tuple[float, int]:
    """Loop seconds per unit alpha of ``simulate_sde`` at the default step, and its steps per unit alpha."""
    from numerics import simulate_sde
    from numerics.analyses.plateau import fixed_point_norm

    q_star = fixed_point_norm(p, k, ETA)
    result = simulate_sde(q_star * np.eye(p), np.zeros((p, k)), np.eye(k), N=N, eta=ETA, alpha_max=alpha_max,
                          replicas=replicas, seed=0, record=2, progress=False)
    return result.extra["seconds"] / alpha_max, round(result.nfev / alpha_max)


def simulator_step_seconds(method: str, N: int, replicas: int, steps: int, p: int = P, k: int = K) -> float:
    """Seconds per SGD step (all replicas) of ``numerics.simulate`` from the plateau."""
    from numerics import simulate
    from numerics.analyses.plateau import fixed_point_norm

    q_star = fixed_point_norm(p, k, ETA)
    start = {"q0": q_star} if method == "weights" else {"Q0": q_star * np.eye(p), "R0": np.zeros((p, k))}
    result = simulate(N=N, p=p, k=k, eta=ETA, alpha_max=steps / N, seed=0, replicas=replicas, record=2,
                      method=method, progress=False, **start)
    return result.extra["seconds"] / result.nfev


def escape_row(N: float, replicas: int, alpha_max: float, reduced_step: float, p: int = P, k: int = K) -> dict:
    """Time one escape-statistics run of the SDE; the exact chain's time for it, extrapolated."""
    from numerics import simulate_sde
    from numerics.analyses.plateau import plateau_coefficients

    c = plateau_coefficients(p, k, ETA)
    grid = np.linspace(0.0, alpha_max, 181)
    cpu = time.process_time()
    result = simulate_sde(c.q_star * np.eye(p), np.zeros((p, k)), np.eye(k), N=N, eta=ETA, alpha_max=alpha_max,
                          replicas=replicas, seed=1, record=grid, progress=False)
    below = result.risk < 0.75 * c.risk_plateau
    escaped = below.any(axis=1)
    times = result.alpha[np.argmax(below, axis=1)][escaped]
    cpu = time.process_time() - cpu  # this process's CPU time: the wall time less other jobs' share
    seconds = result.extra["seconds"]
    exact = reduced_step * N * alpha_max
    return row("sde", f"escape N={N:.0e},p={p},k={k},replicas={replicas},alpha<={alpha_max:g}", seconds=seconds,
               baseline_seconds=exact, baseline="exact overlap chain, same statistics (time extrapolated)",
               target=30.0, target_kind="seconds<=", steps=result.nfev, dalpha=result.extra["dalpha"],
               cpu_seconds=cpu, escaped=f"{int(escaped.sum())}/{replicas}",
               escape_mean=float(np.mean(times)) if times.size else float("nan"),
               escape_std=float(np.std(times)) if times.size else float("nan"))


def _covariance_seconds(model, Q: np.ndarray, R: np.ndarray, T: np.ndarray, repeats: int) -> float:
    from numerics.noise.diffusion import packed_covariance

    packed_covariance(Q, R, T, ETA, model=model)  # plans, self-check
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        packed_covariance(Q, R, T, ETA, model=model)
        best = min(best, time.perf_counter() - start)
    return best


def he3_covariance_row(p: int, k: int, points: int, repeats: int) -> dict:
    """``packed_covariance`` of He3 (network tables) against the paper model's (printed einsums)."""
    from derive.model.model import HE3

    rng = np.random.default_rng(3)
    factor = rng.normal(size=(points, p + k, p + k)) / np.sqrt(p + k)
    C = factor @ np.swapaxes(factor, 1, 2) + 0.1 * np.eye(p + k)
    Q, R, T = C[:, :p, :p], C[:, :p, p:], C[:, p:, p:]
    he3 = _covariance_seconds(HE3, Q, R, T, repeats)
    paper = _covariance_seconds(None, Q, R, T, repeats)
    return row("sde", f"covariance he3,p={p},k={k},points={points}", seconds=he3, baseline_seconds=paper,
               baseline="paper model's packed_covariance (printed einsums), same points")


def _random_points(p: int, k: int, points: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=(points, p + k, p + k)) / np.sqrt(p + k)
    C = factor @ np.swapaxes(factor, 1, 2) + 0.1 * np.eye(p + k)
    return C[:, :p, :p], C[:, :p, p:], C[:, p:, p:]


def erf_step_rows(p: int, k: int, replicas: int, repeats: int) -> list[dict]:
    """The erf committee's SDE step (drift and packed covariance): the packed erf path against the per-tuple route."""
    from bench.common import time_pair
    from derive.model.model import SCM
    from numerics.noise.diffusion import packed_covariance
    from numerics.noise.fluctuations import covariance_blocks
    from numerics.noise.packing import pack_covariance
    from numerics.results.settings import RunSettings
    from numerics.runtime.registry import resolve
    from numerics.simulators.sde_dynamics import SdeDynamics

    Q, R, T = _random_points(p, k, replicas)
    resolved = resolve(SCM, sizes=(p, k))
    dynamics = SdeDynamics(RunSettings(eta=ETA, model=SCM), resolved, replicas, p, k)

    def new_covariance():
        return dynamics.covariance(Q, R, T, None)

    def old_covariance():
        return pack_covariance(*covariance_blocks(Q, R, T, ETA, SCM, resolved, True))

    gap = np.max(np.abs(new_covariance() - old_covariance())) / np.max(np.abs(old_covariance()))
    if not gap < 1e-12:
        raise AssertionError(f"packed erf covariance off the per-tuple route by {gap:.2g}")
    new, old = time_pair(lambda: (dynamics.drift(Q, R, T, None), new_covariance()),
                         lambda: (dynamics.drift(Q, R, T, None), old_covariance()), repeats=repeats)
    rows = [row("sde", f"erf step (drift + covariance) p={p},k={k},replicas={replicas}", seconds=new.best,
                baseline_seconds=old.best, baseline="the same step through the per-tuple route (six-slot kernels)",
                target=10.0, target_kind="speedup>=", relative_gap=float(gap))]
    new, old = time_pair(new_covariance, old_covariance, repeats=repeats)
    rows.append(row("sde", f"erf covariance p={p},k={k},replicas={replicas}", seconds=new.best,
                    baseline_seconds=old.best, baseline="per-tuple route, pack_covariance(*covariance_blocks(...))"))
    new, paper = time_pair(new_covariance, lambda: packed_covariance(Q, R, T, ETA), repeats=repeats)
    rows.append(row("sde", f"erf covariance p={p},k={k},replicas={replicas}", seconds=new.best,
                    baseline_seconds=paper.best, baseline="paper model's packed_covariance, same points"))
    return rows


def run(smoke: bool = False) -> list[dict]:
    """Rows: SDE against the exact chain and the weight simulator per unit alpha; the N = 1e7 escape run."""
    if smoke:
        p, k, N, cases = P, K, 10_000, ((2, 0.5),)
        reduced_steps, weight_steps, weight_N = 64, 64, 1000
    else:
        p, k, N, cases = P, K, 1_000_000, ((1, 3.0), (100, 3.0))
        reduced_steps, weight_steps, weight_N = 3000, 2000, 10_000
    rows = []
    for replicas, alpha_max in cases:
        sde, per_alpha = sde_seconds_per_alpha(N, replicas, alpha_max, p, k)
        reduced = simulator_step_seconds("overlaps", N, replicas, reduced_steps, p, k) * N
        weights = simulator_step_seconds("weights", weight_N, replicas, max(16, weight_steps // replicas), p, k)
        weights *= (N / weight_N) * N  # per step proportional to N, then N steps per unit alpha
        common = dict(steps_per_alpha=per_alpha, reduced_steps=reduced_steps)
        rows.append(row("sde", f"N={N:.0e},p={p},k={k},replicas={replicas}", seconds=sde, baseline_seconds=reduced,
                        baseline="exact overlap chain (method='overlaps'), seconds per unit alpha", **common))
        rows.append(row("sde", f"N={N:.0e},p={p},k={k},replicas={replicas}", seconds=sde, baseline_seconds=weights,
                        baseline=f"weight simulator, seconds per unit alpha (time extrapolated from N={weight_N})",
                        extrapolated=True, **common))
    if smoke:
        rows.append(escape_row(1e5, 2, 1.0, reduced / N, p, k))
    else:
        reduced_step = simulator_step_seconds("overlaps", N, 100, reduced_steps, P, K)
        rows.append(escape_row(1e7, 100, 45.0, reduced_step, P, K))
    rows.append(he3_covariance_row(2, 1, 4, 1) if smoke else he3_covariance_row(P, K, 100, 3))
    rows += erf_step_rows(2, 2, 4, 1) if smoke else erf_step_rows(2, 2, 32, 5)
    return rows


if __name__ == "__main__":
    from bench.common import script_main

    raise SystemExit(script_main(run))
