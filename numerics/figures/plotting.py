"""Plots of overlap trajectories (matplotlib, Agg backend: works without a display)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402


def _xscale(ax) -> None:
    ax.set_xscale("symlog", linthresh=1e-2)
    ax.set_xlim(left=0)
    ax.set_xlabel(r"$\alpha$")


#: Most curves drawn one by one in a panel; above it the panel shows the mean and the min-max band
#: (p = 300 has 44,850 off-diagonal overlaps: drawing them took minutes and showed nothing legible).
MAX_CURVES = 48


def _entries(Q: np.ndarray, R: np.ndarray) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Per panel: the curves as columns ``(n, m)`` and their labels."""
    p, k = Q.shape[-1], R.shape[-1]
    diagonal = np.arange(p)
    upper = np.triu_indices(p, 1)
    return {
        "norm": (Q[:, diagonal, diagonal], [f"$Q_{{{j + 1}{j + 1}}}$" for j in range(p)]),
        "off": (Q[:, upper[0], upper[1]], [f"$Q_{{{j + 1}{l + 1}}}$" for j, l in zip(*upper)]),
        "r": (R.reshape(R.shape[0], p * k), [f"$R_{{{j + 1}{r + 1}}}$" for j in range(p) for r in range(k)]),
    }


def _draw_panel(ax, alpha, curves, labels, colors, sim=None, restart=None) -> None:
    """One panel: every curve when there are at most :data:`MAX_CURVES`, else mean and min-max band.

    ``sim`` is ``(alpha, curves)`` drawn as markers, ``restart`` ``(alpha, curves)`` as dashed lines.
    """
    if curves.shape[1] <= MAX_CURVES:
        for i in range(curves.shape[1]):
            c = colors[i % len(colors)]
            ax.plot(alpha, curves[:, i], color=c, label=labels[i])
            if restart is not None:
                ax.plot(restart[0], restart[1][:, i], "--", color=c, lw=1)
            if sim is not None:
                ax.plot(sim[0], sim[1][:, i], "o", ms=3, mfc="none", color=c)
        return
    c = colors[0]
    count = curves.shape[1]
    ax.fill_between(alpha, curves.min(axis=1), curves.max(axis=1), color=c, alpha=0.25,
                    label=f"min-max of {count}")
    ax.plot(alpha, curves.mean(axis=1), color=c, label="mean")
    if restart is not None:
        ax.plot(restart[0], restart[1].mean(axis=1), "--", color=c, lw=1)
    if sim is not None:
        ax.plot(sim[0], sim[1].mean(axis=1), "o", ms=3, mfc="none", color=c, label="simulation mean")


#: Most legend entries of a panel (one per curve, in its colour); above it the panel has no legend.
MAX_LEGEND_ENTRIES = 12


def _style_key(simulation: bool, restart: bool) -> list[Line2D]:
    """Legend entries saying what the line styles mean, when there is more than one style."""
    if not simulation and not restart:
        return []
    key = [Line2D([], [], color="0.3", label="ODE")]
    if restart:
        key.append(Line2D([], [], color="0.3", ls="--", lw=1, label="ODE restarted"))
    if simulation:
        key.append(Line2D([], [], color="0.3", ls="none", marker="o", ms=3, mfc="none", label="simulation"))
    return key


def _legend(ax, styles: list[Line2D]) -> None:
    """The panel's curves by colour (when there are few enough), then the style key."""
    handles, labels = ax.get_legend_handles_labels()
    if len(handles) > MAX_LEGEND_ENTRIES:
        handles, labels = [], []
    handles, labels = handles + styles, labels + [style.get_label() for style in styles]
    if handles:
        ax.legend(handles, labels, fontsize=7, ncol=2)


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
    same colours. A panel with more than :data:`MAX_CURVES` curves (large p)
    shows their mean and min-max band instead of every curve. Each overlap
    panel has a legend naming its curves by colour (up to
    :data:`MAX_LEGEND_ENTRIES`) and, with a simulation or restart, what the
    line styles mean. Returns the
    figure; saves it when ``path`` is given.
    """
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    ax_norm, ax_off, ax_r, ax_risk = axes.ravel()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    panels = _entries(np.asarray(result.Q), np.asarray(result.R))
    sim_panels = restart_panels = None
    if simulation is not None:
        sim_Q, sim_R, sim_risk = (np.asarray(simulation.Q), np.asarray(simulation.R), np.asarray(simulation.risk))
        if sim_Q.ndim == 4:  # replica axis: show the replica mean
            sim_Q, sim_R, sim_risk = sim_Q.mean(0), sim_R.mean(0), sim_risk.mean(0)
        sim_panels = _entries(sim_Q, sim_R)
    if restart is not None:
        restart_panels = _entries(np.asarray(restart.Q), np.asarray(restart.R))
    for ax, key in ((ax_norm, "norm"), (ax_off, "off"), (ax_r, "r")):
        curves, labels = panels[key]
        _draw_panel(
            ax, result.alpha, curves, labels, colors,
            sim=None if sim_panels is None else (simulation.alpha, sim_panels[key][0]),
            restart=None if restart_panels is None else (restart.alpha, restart_panels[key][0]),
        )
    ax_risk.plot(result.alpha, result.risk, color="k", label="ODE")
    if restart is not None:
        ax_risk.plot(restart.alpha, restart.risk, "--", color="0.4", lw=1,
                     label=rf"ODE restarted at $\alpha$ = {restart.alpha[0]:.3g}")
    if simulation is not None:
        ax_risk.plot(simulation.alpha, sim_risk, "o", ms=3, mfc="none", color="C3", label="simulation")
    ax_risk.set_yscale("log")
    for ax, name, ylabel in [
        (ax_norm, "student norms", r"$Q_{jj}$"),
        (ax_off, "student-student overlaps", r"$Q_{jl}$, $j < l$"),
        (ax_r, "teacher-student overlaps", r"$R_{jr}$"),
    ]:
        ax.set_title(name)
        ax.set_ylabel(ylabel)
        _xscale(ax)
        _legend(ax, styles=_style_key(simulation is not None, restart is not None))
    ax_risk.set_title(r"population risk $\varepsilon$")
    ax_risk.set_ylabel(r"$\varepsilon$")
    _xscale(ax_risk)
    ax_risk.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def csv_header(names: Sequence[str], metadata: Sequence[str] = ()) -> str:
    """The header of a CSV: each ``metadata`` line after ``# ``, then the column names.

    Readers skip the ``#`` lines (``np.loadtxt`` does by default; ``np.genfromtxt(...,
    names=True)`` needs them dropped first).
    """
    return "".join(f"# {line}\n" for line in metadata) + ",".join(names)


def save_csv(result: Any, path: str | Path, metadata: Sequence[str] = ()) -> None:
    """Write alpha, every entry of Q (upper triangle) and R, and the risk as CSV columns.

    ``metadata`` lines (model, parameters, version) head the file after ``#``.

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
    np.savetxt(path, np.column_stack(columns), delimiter=",", header=csv_header(names, metadata), comments="",
               fmt=formats)


#: Most overlap columns :func:`save_csv` writes by default; wider runs get summary columns
#: (at p = 300 the full CSV is 45,000 columns, 470 MB, and takes ten seconds to write).
MAX_CSV_COLUMNS = 2000


def csv_is_summarised(result: Any) -> bool:
    """Whether :func:`save_trajectory` writes summary columns instead of every overlap."""
    p, k = result.Q.shape[-1], result.R.shape[-1]
    return p * (p + 1) // 2 + p * k > MAX_CSV_COLUMNS


def save_summary_csv(result: Any, path: str | Path, metadata: Sequence[str] = ()) -> None:
    """Write alpha, mean/min/max of the diagonal and off-diagonal of Q and of R, and the risk.

    ``metadata`` lines head the file after ``#``, as in :func:`save_csv`.
    """
    columns = [result.alpha]
    names = ["alpha"]
    for key, (curves, _) in _entries(np.asarray(result.Q), np.asarray(result.R)).items():
        if curves.shape[1] == 0:
            continue
        name = {"norm": "Q_diag", "off": "Q_offdiag", "r": "R"}[key]
        for stat, values in (("mean", curves.mean(1)), ("min", curves.min(1)), ("max", curves.max(1))):
            columns.append(values)
            names.append(f"{name}_{stat}")
    columns.append(result.risk)
    names.append("risk")
    np.savetxt(path, np.column_stack(columns), delimiter=",", header=csv_header(names, metadata), comments="")


def save_trajectory(result: Any, csv_path: str | Path, metadata: Sequence[str] = ()) -> list[Path]:
    """Save a run: every overlap as CSV columns, or for wide runs summary columns plus an ``.npz``.

    Above :data:`MAX_CSV_COLUMNS` overlap entries the CSV holds the summary of
    :func:`save_summary_csv` and the full arrays (``alpha``, ``Q``, ``R``,
    ``risk``, ``T``) go to a NumPy ``.npz`` file beside it (binary: written in a
    fraction of the time, a third of the size). ``metadata`` lines head the
    CSV after ``#``. Returns the paths written.
    """
    csv_path = Path(csv_path)
    if not csv_is_summarised(result):
        save_csv(result, csv_path, metadata)
        return [csv_path]
    save_summary_csv(result, csv_path, metadata)
    npz_path = csv_path.with_suffix(".npz")
    np.savez(npz_path, alpha=result.alpha, Q=result.Q, R=result.R, risk=result.risk, T=result.T)
    return [csv_path, npz_path]
