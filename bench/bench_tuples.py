"""Per-tuple routes (erf soft committee machine) against a plain vectorised NumPy closed form of the same ODE.

The model is :data:`derive.model.model.SCM`: ``g = erf(x / sqrt 2)`` for students and
teachers, readouts ``a = b = 1``. The baseline is Saad and Solla's closed form (1995),
written here as plain broadcast NumPy over all index tuples (no symmetry used):
with ``C = [[Q, R], [R^T, T]]``, ``c = (-a, b)`` and ``d_u = 1 + C_uu``,

    I2(u, v)       = (2 / pi) arcsin(C_uv / sqrt(d_u d_v))
    I3(j, u, v)    = (2 / pi) (C_uv d_j - C_ju C_jv) / (d_j sqrt(d_j d_v - C_jv**2))
    I4(j, l, u, v) = (4 / pi**2) arcsin(L0 / sqrt(L1 L2)) / sqrt(L4)

(``L4 = d_j d_l - C_jl**2``, ``L0``, ``L1``, ``L2`` in :func:`closed_form_rhs`), and
``dR_jr = eta a_j sum_v c_v I3(j, r, v)``, ``dQ_jl = eta a_j sum_v c_v I3(j, l, v) + (j <-> l)
+ eta**2 a_j a_l sum_{u, v} c_u c_v I4(j, l, u, v)``; the risk is ``sum_{u, v} c_u c_v I2 / 2``.
It is checked equal to the generated right-hand side (eta**2 term included) to 1e-12.

Rows (one BLAS thread and the default):

* ``rhs``: what :func:`numerics.integrate` calls per step (``rhs_unchecked`` on the
  per-tuple module, ``eta**2`` term kept) at (p, k) = (2, 2), (8, 4), (32, 8), against the
  closed form; targets: ratio <= 2 at p = 2, <= 1 from p = 8 on.
* ``trajectory``: ``numerics.integrate`` at p = k = 2, eta = 0.5, from the Eq. 8 start
  (``q0 = 0.2``, N = 1e4, seed 0) through the plateau (risk about 0.0147) and the escape
  (alpha about 250) to alpha = 500, at the loosest rtol whose risk on 401 alphas is within
  1e-3 of an rtol = 1e-11 reference; baseline: a fixed-step forward Euler loop of the closed
  form, its step halved until the same accuracy holds; target: faster (ratio <= 1).
* ``batch``: 100 replicas (p = k = 2) in one call against 100 single calls; target <= 1/20.

``python -m bench --only tuples`` (or ``python -m bench.bench_tuples``) prints the rows.
"""

from __future__ import annotations

import math
import time

import numpy as np

from bench.common import row, time_pair

SIZES = ((2, 2), (8, 4), (32, 8))
ETA = 0.5
#: The trajectory: start, horizon, output grid and accuracy.
Q0_NORM, N_START, ALPHA_END, INTERVALS, ACCURACY = 0.2, 10**4, 500.0, 400, 1e-3
REPLICAS = 100


def _covariance(Q, R, T):
    return np.block([[Q, R], [R.T, T]])


def closed_form_rhs(Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float) -> tuple[np.ndarray, np.ndarray]:
    """``(dQ, dR)``, shapes (p, p) and (p, k), of the erf committee machine (a = b = 1), eta**2 term included."""
    p = R.shape[0]
    C = _covariance(Q, R, T)
    c = np.concatenate([-np.ones(p), np.ones(R.shape[1])])
    d = 1.0 + np.diagonal(C)
    S, dj = C[:p], d[:p]  # C_ju (p, n), d_j (p,)
    lam3 = dj[:, None] * d[None, :] - S * S
    I3 = (2 / np.pi) * (C[None] * dj[:, None, None] - S[:, :, None] * S[:, None, :]) / (
        dj[:, None, None] * np.sqrt(lam3)[:, None, :])
    half = I3 @ c
    dQ = eta * (half[:, :p] + half[:, :p].T)
    dR = eta * half[:, p:]
    cjl = S[:, :p]
    lam4 = dj[:, None] * dj[None, :] - cjl * cjl
    Sj, Sl = S[:, None, :, None], S[None, :, :, None]  # C_ju, C_lu
    Tj, Tl = S[:, None, None, :], S[None, :, None, :]  # C_jv, C_lv
    Dj, Dl, B, L4 = dj[:, None, None, None], dj[None, :, None, None], cjl[:, :, None, None], lam4[:, :, None, None]
    # L0 = L4 C_uv - C_lu C_lv d_j - C_ju C_jv d_l + C_jl (C_ju C_lv + C_jv C_lu)
    lam0 = L4 * C - Sl * Tl * Dj - Sj * Tj * Dl + B * Sj * Tl + B * Tj * Sl
    Su, Slu = S[:, None, :], S[None, :, :]
    # L1[j, l, u] = L4 d_u - C_lu**2 d_j - C_ju**2 d_l + 2 C_jl C_ju C_lu (L2: the same at v)
    lam1 = (lam4[:, :, None] * d - Slu * Slu * dj[:, None, None] - Su * Su * dj[None, :, None]
            + 2 * cjl[:, :, None] * Su * Slu)
    I4 = (4 / np.pi**2) / np.sqrt(L4) * np.arcsin(lam0 / np.sqrt(lam1[..., :, None] * lam1[..., None, :]))
    return dQ + eta**2 * (I4 @ c @ c), dR


def closed_form_risk(Q: np.ndarray, R: np.ndarray, T: np.ndarray) -> float:
    """Population risk of the erf committee machine (a = b = 1)."""
    C = _covariance(Q, R, T)
    c = np.concatenate([-np.ones(R.shape[0]), np.ones(R.shape[1])])
    d = np.sqrt(1.0 + np.diagonal(C))
    return float(c @ ((2 / np.pi) * np.arcsin(C / np.outer(d, d))) @ c / 2)


def overlaps(p: int, k: int, seed: int = 0, batch: tuple[int, ...] = ()):
    """A generic point (or ``batch`` of them): Q (p, p), R (p, k), T (k, k) from Gaussian weights."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal(batch + (p + k, 4 * (p + k))) / np.sqrt(4 * (p + k))
    C = W @ np.swapaxes(W, -1, -2)
    return C[..., :p, :p].copy(), C[..., :p, p:].copy(), C[..., p:, p:].copy()


def generated_rhs():
    """The function integrate calls per step, bound to the erf committee machine."""
    from derive.model.model import SCM
    from numerics.ode.overlaps import rhs_unchecked
    from numerics.runtime.registry import resolve

    resolved = resolve(SCM)

    def call(Q, R, T, eta):
        return rhs_unchecked(Q, R, T, eta, resolved, True)

    return call


def max_relative_error(p: int, k: int) -> float:
    """Largest |generated - closed form| / max|closed form| over dQ and dR at one point."""
    Q, R, T = overlaps(p, k)
    candidate, reference = generated_rhs()(Q, R, T, ETA), closed_form_rhs(Q, R, T, ETA)
    return max(float(np.max(np.abs(x - y)) / np.max(np.abs(y))) for x, y in zip(candidate, reference))


def rhs_rows(smoke: bool) -> list[dict]:
    """One row per (p, k): the generated right-hand side against the closed form."""
    call = generated_rhs()
    rows = []
    for p, k in SIZES[:1] if smoke else SIZES:
        error = max_relative_error(p, k)
        if error > 1e-12:
            raise AssertionError(f"closed form and generated erf rhs disagree at p={p}, k={k}: {error:.2e}")
        Q, R, T = overlaps(p, k)
        cand, base = time_pair(lambda Q=Q, R=R, T=T: call(Q, R, T, ETA),
                               lambda Q=Q, R=R, T=T: closed_form_rhs(Q, R, T, ETA),
                               repeats=3 if smoke else 7, min_seconds=0.01 if smoke else 0.2)
        rows.append(row("tuples", f"erf rhs p={p},k={k}", seconds=cand.best, baseline_seconds=base.best,
                        baseline="NumPy closed form (I3, I4)", target=2.0 if p == 2 else 1.0,
                        median_ratio=cand.median / base.median, rel_error=error))
    return rows


def batch_row(smoke: bool) -> dict:
    """``REPLICAS`` points in one call against one call per point."""
    call = generated_rhs()
    replicas = 10 if smoke else REPLICAS
    Q, R, T = overlaps(2, 2, seed=1, batch=(replicas,))
    batched = call(Q, R, T, ETA)
    singles = [call(Q[i], R[i], T[i], ETA) for i in range(replicas)]
    error = max(float(np.max(np.abs(batched[n][i] - singles[i][n]))) for i in range(replicas) for n in (0, 1))
    if error > 1e-12:
        raise AssertionError(f"batched and single erf rhs disagree: {error:.2e}")

    def one_by_one():
        for i in range(replicas):
            call(Q[i], R[i], T[i], ETA)

    cand, base = time_pair(lambda: call(Q, R, T, ETA), one_by_one, repeats=3 if smoke else 7,
                           min_seconds=0.01 if smoke else 0.2)
    return row("tuples", f"erf rhs {replicas} replicas in one call, p=2,k=2", seconds=cand.best,
               baseline_seconds=base.best, baseline=f"{replicas} single calls", target=1 / 20,
               median_ratio=cand.median / base.median, max_difference=error)


def _euler(Q0, R0, T, grid, steps_per_interval: int) -> np.ndarray:
    Q, R = Q0.copy(), R0.copy()
    h = (grid[1] - grid[0]) / steps_per_interval
    risks = [closed_form_risk(Q, R, T)]
    for _ in range(len(grid) - 1):
        for _ in range(steps_per_interval):
            dQ, dR = closed_form_rhs(Q, R, T, ETA)
            Q = Q + h * dQ
            R = R + h * dR
        risks.append(closed_form_risk(Q, R, T))
    return np.array(risks)


def trajectory_row(smoke: bool) -> dict:
    """``numerics.integrate`` through plateau and escape against fixed-step Euler of the closed form."""
    from derive.model.model import SCM
    from numerics import initial_conditions, integrate

    alpha_end = 40.0 if smoke else ALPHA_END
    Q0, R0, T = initial_conditions(2, 2, N=N_START, q0=Q0_NORM, seed=0)
    grid = np.linspace(0.0, alpha_end, (40 if smoke else INTERVALS) + 1)
    reference = integrate(Q0, R0, T, eta=ETA, model=SCM, alpha_max=alpha_end, alpha_eval=grid, rtol=1e-11,
                          atol=1e-14).risk

    def solve(rtol):
        return integrate(Q0, R0, T, eta=ETA, model=SCM, alpha_max=alpha_end, alpha_eval=grid, rtol=rtol,
                         atol=rtol * 1e-3)

    rtol = 1e-4
    while float(np.max(np.abs(solve(rtol).risk - reference))) > ACCURACY and rtol > 1e-11:
        rtol /= 10
    result = solve(rtol)
    adaptive_error = float(np.max(np.abs(result.risk - reference)))
    adaptive_seconds = math.inf
    for _ in range(3):
        started = time.perf_counter()
        solve(rtol)
        adaptive_seconds = min(adaptive_seconds, time.perf_counter() - started)
    steps = 1
    while True:
        started = time.perf_counter()
        with np.errstate(all="ignore"):
            euler_error = float(np.max(np.abs(_euler(Q0, R0, T, grid, steps) - reference)))
        euler_seconds = time.perf_counter() - started
        if euler_error <= ACCURACY:
            break
        steps *= 2
    h = (grid[1] - grid[0]) / steps
    return row("tuples", f"erf trajectory p=2,k=2,alpha<={alpha_end:g}", seconds=adaptive_seconds,
               baseline_seconds=euler_seconds, baseline=f"forward Euler of the closed form h={h:.3g}", target=1.0,
               rtol=rtol, nfev=result.nfev, adaptive_error=adaptive_error, euler_steps=steps * (len(grid) - 1),
               euler_error=euler_error, plateau_risk=float(np.median(reference[(grid > 40) & (grid < 150)]))
               if not smoke else float("nan"))


def run(smoke: bool = False) -> list[dict]:
    """The rhs rows, the batch row and the trajectory row."""
    return [*rhs_rows(smoke), batch_row(smoke), trajectory_row(smoke)]


if __name__ == "__main__":
    from bench.common import script_main

    raise SystemExit(script_main(run))
