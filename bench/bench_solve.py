"""ODE solve: adaptive ``numerics.integrate`` against fixed-step forward Euler.

Paper model, p = 4, k = 2, Eq. 8 start (N = 10**4, seed 0), eta = 0.5, from
alpha = 0 through the plateau until the risk is below 1e-6 (alpha ~ 1.6e3:
after the escape the risk decays algebraically, so the end is found on a
log-spaced scan up to ``HORIZON``). Accuracy is the maximum relative risk
error on a uniform grid of ``INTERVALS + 1`` alphas against a tight-tolerance
(rtol 1e-12) reference. Euler's global error is first order in the step, so the
step that reaches the target accuracy is predicted from a coarse run and then
halved until the target holds; when that run would exceed ``max_steps``, its
time is extrapolated from the measured cost per step (and flagged).
"""

from __future__ import annotations

import time

import numpy as np

from bench.common import row

P, K, N, ETA = 4, 2, 10**4, 0.5
HORIZON = 1e4
INTERVALS = 400


def _problem(smoke: bool):
    from numerics import initial_conditions, integrate

    Q0, R0, T = initial_conditions(P, K, N=N, seed=0)
    scan = integrate(Q0, R0, T, eta=ETA, alpha_max=HORIZON, n_points=2001, grid="log", rtol=1e-10, atol=1e-13)
    below = np.nonzero(scan.risk < (1e-3 if smoke else 1e-6))[0]
    if below.size == 0:
        raise RuntimeError(f"risk did not reach the threshold by alpha = {HORIZON:g}")
    alpha_end = float(scan.alpha[below[0]])
    grid = np.linspace(0.0, alpha_end, INTERVALS + 1)
    reference = integrate(Q0, R0, T, eta=ETA, alpha_max=alpha_end, alpha_eval=grid, rtol=1e-12, atol=1e-15)
    return Q0, R0, T, grid, reference.risk


def _euler(Q0, R0, T, grid, step_per_interval: int):
    from numerics.ode.overlaps import rhs_unchecked
    from numerics.runtime.registry import resolve

    resolved = resolve(None)
    risk_of = resolved.module.residual_risk
    Q, R = Q0.copy(), R0.copy()
    h = (grid[1] - grid[0]) / step_per_interval
    risks = [float(risk_of(Q, R, T))]
    for _ in range(len(grid) - 1):
        for _ in range(step_per_interval):
            dQ, dR = rhs_unchecked(Q, R, T, ETA, resolved, True)
            Q = Q + h * dQ
            R = R + h * dR
        risks.append(float(risk_of(Q, R, T)))
    return np.array(risks)


def _relative_error(risks, reference) -> float:
    return float(np.max(np.abs(risks - reference) / reference))


def run(smoke: bool = False, max_steps: int = 2_000_000) -> list[dict]:
    """One row: integrate's wall time against Euler's at equal accuracy."""
    from numerics import integrate

    tolerance = 1e-3 if smoke else 1e-6
    Q0, R0, T, grid, reference = _problem(smoke)
    intervals = len(grid) - 1

    rtol = 1e-8
    while True:
        started = time.perf_counter()
        result = integrate(Q0, R0, T, eta=ETA, alpha_max=grid[-1], alpha_eval=grid, rtol=rtol, atol=rtol * 1e-3)
        adaptive_seconds = time.perf_counter() - started
        adaptive_error = _relative_error(result.risk, reference)
        if adaptive_error <= tolerance or rtol < 1e-13:
            break
        rtol /= 10
    # repeat the adaptive solve: it is short, so take the best of three
    for _ in range(2):
        started = time.perf_counter()
        integrate(Q0, R0, T, eta=ETA, alpha_max=grid[-1], alpha_eval=grid, rtol=rtol, atol=rtol * 1e-3)
        adaptive_seconds = min(adaptive_seconds, time.perf_counter() - started)

    # Euler: error ~ c * h**order. Two coarse runs (fine enough to be stable) measure c and the
    # order; the step for the target accuracy is predicted from them, then halved until it holds
    coarse = 4
    while True:
        started = time.perf_counter()
        with np.errstate(all="ignore"):
            coarse_error = _relative_error(_euler(Q0, R0, T, grid, coarse), reference)
        seconds_per_step = (time.perf_counter() - started) / (coarse * intervals)
        if np.isfinite(coarse_error) and coarse_error < 0.1:
            break
        coarse *= 4
    finer_error = _relative_error(_euler(Q0, R0, T, grid, 2 * coarse), reference)
    order = float(np.log2(coarse_error / finer_error))
    per_interval = 2 * coarse * max(1.0, (finer_error / tolerance) ** (1 / max(order, 0.5)))
    per_interval = int(np.ceil(per_interval))
    extrapolated = False
    while True:
        steps = per_interval * intervals
        if steps > max_steps:
            euler_seconds = steps * seconds_per_step
            euler_error = float("nan")
            extrapolated = True
            break
        started = time.perf_counter()
        euler_error = _relative_error(_euler(Q0, R0, T, grid, per_interval), reference)
        euler_seconds = time.perf_counter() - started
        if euler_error <= tolerance:
            break
        per_interval *= 2
    h = (grid[1] - grid[0]) / per_interval
    return [
        row("solve", f"p={P},k={K},alpha<={grid[-1]:.1f}", seconds=adaptive_seconds, baseline_seconds=euler_seconds,
            baseline=f"forward Euler h={h:.3g}" + (" (time extrapolated)" if extrapolated else ""),
            target=20.0, target_kind="speedup>=", nfev=result.nfev, rtol=rtol, adaptive_error=adaptive_error,
            euler_steps=per_interval * intervals, euler_error=euler_error, coarse_euler_error=coarse_error,
            euler_order=order, speedup=euler_seconds / adaptive_seconds)
    ]


if __name__ == "__main__":
    from bench.common import script_main

    raise SystemExit(script_main(run))
