"""Stiff runs: ``numerics.integrate`` with an implicit method and the exact Jacobian against the explicit default.

Soft committee machine (erf units, unit readouts), p = k = 2, eta = 0.5, ``Q0 = I / 2``,
``R0 = 0.1`` in every entry, the student readout trained with ``eta_a = 1e3`` (its mode relaxes
on alpha ~ 1e-3, which caps the explicit step there). Candidate: ``method="BDF"`` (and
``"LSODA"``, which switches to an implicit method when the explicit one stalls), both handed
the exact Jacobian of :mod:`numerics.ode.jacobian`; baseline: the default ``"DOP853"``. Both
run to ``ALPHA_MAX`` (smoke: a tenth) at the default tolerances; the final risks are checked to
agree to 1e-5 relative before the times are compared.
"""

from __future__ import annotations

import time

import numpy as np

from bench.common import row

P, K, ETA, ETA_A = 2, 2, 0.5, 1e3
ALPHA_MAX = 20.0


def _solve(method: str, alpha_max: float):
    from derive.model.model import SCM
    from numerics import integrate

    started = time.perf_counter()
    result = integrate(0.5 * np.eye(P), np.full((P, K), 0.1), np.eye(K), eta=ETA, model=SCM, eta_a=ETA_A,
                       alpha_max=alpha_max, n_points=20, method=method)
    return time.perf_counter() - started, result


def run(smoke: bool = False) -> list[dict]:
    """One row per implicit method: its wall time against the explicit DOP853's on the same run."""
    alpha_max = ALPHA_MAX / 10 if smoke else ALPHA_MAX
    baseline_seconds, baseline = _solve("DOP853", alpha_max)
    rows = []
    for method in ("BDF", "LSODA"):
        seconds, result = _solve(method, alpha_max)
        error = float(np.max(np.abs(result.risk - baseline.risk) / baseline.risk))
        if error > 1e-5:
            raise RuntimeError(f"{method} disagrees with DOP853: max relative risk error {error:.3g}")
        rows.append(row(
            "stiff", f"SCM p=k=2, eta_a=1e3, alpha={alpha_max:g}: {method} + exact Jacobian",
            seconds=seconds, baseline_seconds=baseline_seconds, baseline="DOP853 (explicit default)",
            target=None if smoke else 5.0, target_kind="speedup>=", nfev=result.nfev,
            baseline_nfev=baseline.nfev, risk_error=error,
        ))
    return rows


if __name__ == "__main__":
    from bench.common import table

    print(table(run()))
