"""Plots of overlap trajectories (matplotlib, Agg backend: works without a display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _xscale(ax) -> None:
    ax.set_xscale("symlog", linthresh=1e-2)
    ax.set_xlim(left=0)
    ax.set_xlabel(r"$\alpha$")


def plot_trajectory(
    result: Any,
    path: str | Path | None = None,
    *,
    simulation: Any = None,
    restart: Any = None,
    title: str = "",
):
    """All order parameters and the risk against alpha.

    Panels: student norms ``Q_jj``, student-student overlaps ``Q_jl`` (j < l),
    teacher-student overlaps ``R_jr``, and the risk (log scale). ``simulation``
    (a result with the same fields, optionally with a leading replica axis)
    is overlaid as markers; ``restart`` (a second ODE result, e.g. started
    from the simulation's overlaps at a later alpha) as dashed lines in the
    same colours. Returns the figure; saves it when ``path`` is given.
    """
    p, k = result.Q.shape[-1], result.R.shape[-1]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    ax_norm, ax_off, ax_r, ax_risk = axes.ravel()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    sim = None
    if simulation is not None:
        sim = simulation
        sim_Q, sim_R, sim_risk = (np.asarray(sim.Q), np.asarray(sim.R), np.asarray(sim.risk))
        if sim_Q.ndim == 4:  # replica axis: show the replica mean
            sim_Q, sim_R, sim_risk = sim_Q.mean(0), sim_R.mean(0), sim_risk.mean(0)
    for j in range(p):
        c = colors[j % len(colors)]
        ax_norm.plot(result.alpha, result.Q[:, j, j], color=c, label=f"$Q_{{{j + 1}{j + 1}}}$")
        if restart is not None:
            ax_norm.plot(restart.alpha, restart.Q[:, j, j], "--", color=c, lw=1)
        if sim is not None:
            ax_norm.plot(sim.alpha, sim_Q[:, j, j], "o", ms=3, mfc="none", color=c)
    index = 0
    for j in range(p):
        for l in range(j + 1, p):
            c = colors[index % len(colors)]
            ax_off.plot(result.alpha, result.Q[:, j, l], color=c, label=f"$Q_{{{j + 1}{l + 1}}}$")
            if restart is not None:
                ax_off.plot(restart.alpha, restart.Q[:, j, l], "--", color=c, lw=1)
            if sim is not None:
                ax_off.plot(sim.alpha, sim_Q[:, j, l], "o", ms=3, mfc="none", color=c)
            index += 1
    index = 0
    for j in range(p):
        for r in range(k):
            c = colors[index % len(colors)]
            ax_r.plot(result.alpha, result.R[:, j, r], color=c, label=f"$R_{{{j + 1}{r + 1}}}$")
            if restart is not None:
                ax_r.plot(restart.alpha, restart.R[:, j, r], "--", color=c, lw=1)
            if sim is not None:
                ax_r.plot(sim.alpha, sim_R[:, j, r], "o", ms=3, mfc="none", color=c)
            index += 1
    ax_risk.plot(result.alpha, result.risk, color="k", label="ODE")
    if restart is not None:
        ax_risk.plot(restart.alpha, restart.risk, "--", color="0.4", lw=1,
                     label=rf"ODE restarted at $\alpha$ = {restart.alpha[0]:.3g}")
    if sim is not None:
        ax_risk.plot(sim.alpha, sim_risk, "o", ms=3, mfc="none", color="C3", label="simulation")
    ax_risk.set_yscale("log")
    for ax, name in [(ax_norm, "student norms"), (ax_off, "student-student"), (ax_r, "teacher-student")]:
        ax.set_title(name)
        _xscale(ax)
        if len(ax.get_lines()) <= 12:
            ax.legend(fontsize=7, ncol=2)
    ax_risk.set_title(r"population risk $\varepsilon$")
    _xscale(ax_risk)
    ax_risk.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def save_csv(result: Any, path: str | Path) -> None:
    """Write alpha, every entry of Q (upper triangle) and R, and the risk as CSV columns.

    A batched result (``Q`` of shape (..., n, p, p): batched starts or simulation
    replicas) is written in long form, one block of ``n`` rows per batch entry,
    with its index in leading ``replica`` columns (``replica_0, replica_1, ...``
    for several batch axes).
    """
    Q, R, risk = np.asarray(result.Q), np.asarray(result.R), np.asarray(result.risk)
    alpha = np.asarray(result.alpha)
    p, k = Q.shape[-1], R.shape[-1]
    batch = Q.shape[:-3]
    n = alpha.size
    # every batch entry becomes a block of n rows (one row per alpha)
    Q = Q.reshape((-1, n, p, p))
    R = R.reshape((-1, n, p, k))
    risk = np.broadcast_to(risk, batch + (n,)).reshape((-1, n))
    blocks = Q.shape[0]
    columns = []
    names = []
    if batch:
        index = np.indices(batch).reshape(len(batch), -1)
        for axis, values in enumerate(index):
            columns.append(np.repeat(values, n))
            names.append("replica" if len(batch) == 1 else f"replica_{axis}")
    columns.append(np.tile(alpha, blocks))
    names.append("alpha")
    for j in range(p):
        for l in range(j, p):
            columns.append(Q[:, :, j, l].ravel())
            names.append(f"Q_{j + 1}_{l + 1}")
    for j in range(p):
        for r in range(k):
            columns.append(R[:, :, j, r].ravel())
            names.append(f"R_{j + 1}_{r + 1}")
    columns.append(risk.ravel())
    names.append("risk")
    # repr-exact floats; replica indices print as integers
    formats = ["%d"] * len(batch) + ["%.17g"] * (len(columns) - len(batch))
    np.savetxt(path, np.column_stack(columns), delimiter=",", header=",".join(names), comments="", fmt=formats)
