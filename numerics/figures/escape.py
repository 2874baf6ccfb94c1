"""Figures of the plateau analysis: Fig. 2 (optimal learning rate) and the escape time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from numerics.analyses.plateau import average_risk_reduction, escape_time, linearised_risk, plateau_coefficients
from numerics.figures import figure, save_figure
from numerics.ode.integrate import integrate
from numerics.sweeps.api import sweep
from numerics.sweeps.learning_rate import optimal_learning_rate

#: ``learned_fraction`` of the Fig. 2 scans when the student cannot represent the teacher (p < k):
#: the learned risk of the paper model is then itself 0.44-0.53 of the plateau risk over the
#: stable etas of the p = 1, k = 2 scan, so 0.1 would fail every eta.
UNREALISABLE_LEARNED_FRACTION = 0.6


@figure("fig2")
def fig2(out_dir: Path, small: bool) -> Path:
    """Optimal learning rate against p at fixed k (paper Fig. 2), Eq. 8 starts with N = 1000.

    A run counts only if it learns (risk below 10% of the plateau risk by the horizon; 60% when
    p < k). Open markers: boundary optima (the best eta is the largest stable eta of the scan).
    One line per scan is printed: best eta / p, boundary, and what stopped the scan.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    widths = (1, 2, 4) if small else (1, 2, 3, 4, 6, 8)
    teachers = (1, 2)
    steps = np.arange(-4, 1) if small else np.arange(-8, 1) / 2
    seeds = 2 if small else 4
    # the twelve scans are independent: one sweep over (k, p), on local processes at full size
    scans = sweep(fig2_scan, {"k": list(teachers), "p": list(widths)}, executor="serial" if small else None,
                  progress=False, steps=[float(s) for s in steps], seeds=seeds)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for k, colour in zip(teachers, ("C0", "C1")):
        best, boundary = [], []
        for p in widths:
            scan = scans.sel(k=k, p=p)
            stop_reason = str(scan["stop_reason"].values)
            print(f"fig2 k={k} p={p}: best eta/p = {float(scan['best_eta']) / p:.4g}, "
                  f"boundary = {bool(scan['boundary'])}, scan stopped: {stop_reason}")
            best.append(float(scan["best_eta"]))
            boundary.append(bool(scan["boundary"]))
            if p == widths[-1]:
                etas, mean, error = (np.asarray(scan[name].values) for name in ("etas", "mean_escape", "error"))
                ok = np.isfinite(mean)
                right.errorbar(etas[ok], mean[ok], error[ok], color=colour,
                               marker="o", label=f"p={p}, k={k} (then: {stop_reason})")
        best, edge = np.array(best), np.array(boundary)
        slope = np.exp(np.mean(np.log(best / np.array(widths))))
        label = f"$k$={k} (scan resolution {2.0 ** (steps[1] - steps[0]):.2g})"
        left.plot(np.array(widths)[~edge], best[~edge], "o", color=colour, label=label)
        left.plot(np.array(widths)[edge], best[edge], "o", color=colour, mfc="none",
                  label=f"$k$={k}, largest $\\eta$ that learns" if np.any(edge) else None)
        left.plot(widths, slope * np.array(widths), "--", color=colour, label=f"$\\eta$ = {slope:.3g} $p$")
    left.set(xlabel="student width $p$", ylabel=r"optimal learning rate $\eta$", title="optimal learning rate (Fig. 2)")
    left.legend(fontsize=8)
    right.set(xscale="log", xlabel=r"learning rate $\eta$", ylabel=r"$\alpha$ to escape (mean over starts)",
              title=r"escape time against $\eta$, while the runs learn")
    right.legend(fontsize=8)
    return save_figure(fig, out_dir / "fig2.png")


def fig2_scan(*, p: int, k: int, steps: list[float], seeds: int) -> dict:
    """One Fig. 2 scan (a sweep task): etas ``p * 2**steps``, the best eta, boundary, stop reason and the curve."""

    learned = UNREALISABLE_LEARNED_FRACTION if p < k else 0.1
    scan = optimal_learning_rate(p, k, seeds=seeds, etas=p * 2.0 ** np.asarray(steps), learned_fraction=learned)
    failed = np.asarray(scan.failed)
    return {
        "best_eta": scan.best_eta,
        "boundary": bool(scan.boundary),
        "stop_reason": scan.stop_reason,
        "etas": np.asarray(scan.etas),
        "mean_escape": np.where(failed, np.nan, scan.mean_escape),
        "error": np.where(failed, np.nan, scan.standard_error),
    }


@figure("escape")
def escape(out_dir: Path, small: bool) -> Path:
    """Escape time against p with eta = eta_0 p, full ODE against the linearised plateau (Eq. 13).

    One line per (p, k) is printed: the mean escape alpha of the ODE and the linearised one.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.optimize import brentq


    eta0, N, threshold = 0.1, 1e5, 0.75
    widths = (1, 2, 4) if small else (1, 2, 3, 4, 6, 8, 12)
    starts = 8 if small else 48
    rng = np.random.default_rng(0)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for k, colour in zip((1, 2), ("C0", "C1")):
        measured, predicted = [], []
        for p in widths:
            eta = eta0 * p
            c = plateau_coefficients(p, k, eta)
            Q0 = np.broadcast_to(c.q_star * np.eye(p), (starts, p, p))
            R0 = rng.normal(0.0, np.sqrt(c.q_star / N), size=(starts, p, k))
            # long enough for the rare starts with a tiny overlap (heavy tail of log R(0))
            horizon = (np.log(N) + 16) / (2 * c.growth_R)
            result = integrate(Q0, R0, np.eye(k), eta=eta, alpha_max=horizon, n_points=600, grid="linear",
                               rtol=1e-7, atol=1e-12)
            measured.append(np.asarray(escape_time(result, threshold=threshold)))
            predicted.append(brentq(_reduction_gap, 0.0, horizon, args=(p, k, eta, N, 1 - threshold)))
            if k == 2 and p == widths[-1]:
                shown = result
        mean = np.array([m.mean() for m in measured])
        error = np.array([m.std(ddof=1) / np.sqrt(m.size) for m in measured])
        for p, m, e, lin in zip(widths, mean, error, predicted):
            print(f"escape k={k} p={p}: mean ODE escape alpha = {m:.2f} +- {e:.2f}, linearised {lin:.2f}")
        left.errorbar(widths, mean, error, fmt="o", color=colour, label=f"ODE, k={k}")
        left.plot(widths, predicted, "-", color=colour, label=f"linearised (Eq. 13), k={k}")
    left.set(xlabel="student width $p$", ylabel=r"$\alpha$ to escape",
             title=f"escape from the plateau, $\\eta$ = {eta0} $p$, $N$ = {N:g}")
    left.legend(fontsize=8)
    p, k = shown.p, shown.k
    for b in range(3):
        right.plot(shown.alpha, shown.risk[b], color=f"C{b}", label="ODE" if b == 0 else None)
        right.plot(shown.alpha, linearised_risk(shown.alpha, shown.R[b, 0], eta=shown.eta), "--", color=f"C{b}",
                   label="linearised" if b == 0 else None)
    level = plateau_coefficients(p, k, shown.eta).risk_plateau
    right.axhline(threshold * level, color="grey", lw=0.8, label=f"{threshold} x plateau risk")
    right.set(xlabel=r"$\alpha$", ylabel=r"population risk $\varepsilon$", ylim=(0, 1.1 * level),
              title=f"plateau: $p$={p}, $k$={k}, $\\eta$={shown.eta:.2g}, three starts")
    right.legend(fontsize=8)
    return save_figure(fig, out_dir / "escape.png")


def _reduction_gap(alpha: float, p: int, k: int, eta: float, N: float, target: float) -> float:

    return float(average_risk_reduction(alpha, p, k, eta=eta, N=N, second_order=True)) - target
