"""A parameter sweep as a figure: the README's ``numerics.sweep`` example, drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from numerics.figures import figure, save_figure
from numerics.sweeps.api import sweep


@figure("sweep")
def sweep_figure(out_dir: Path, small: bool) -> Path:
    """Risk against alpha over a sweep of eta x p (k = 2, three Eq. 8 starts each, N = 1e4), from one dataset.

    The sweep runs on local processes (in this process at the small size); one line per
    point is printed: the replica-mean risk at the end and the first alpha where it falls
    below half its starting value.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    etas = [0.25, 0.5, 1.0]
    widths = [4] if small else [4, 8]
    alpha = np.linspace(0.0, 80.0 if small else 200.0, 81 if small else 201)
    dataset = sweep("integrate", {"eta": etas, "p": widths}, executor="serial" if small else None, progress=False,
                    k=2, seed=[0, 1, 2], N=1e4, alpha_eval=alpha)
    fig, axes = plt.subplots(1, len(widths), figsize=(5 * len(widths), 3.8), squeeze=False)
    for axis, p in zip(axes[0], widths):
        for colour, eta in zip(("C0", "C1", "C2"), etas):
            risk = dataset["risk"].sel(eta=eta, p=p)
            mean = risk.mean("replica").values
            for curve in risk.values:
                axis.plot(alpha, curve, color=colour, lw=0.6, alpha=0.4)
            axis.plot(alpha, mean, color=colour, lw=1.8, label=rf"$\eta$ = {eta:g}")
            below = np.nonzero(mean < mean[0] / 2)[0]
            half = f"{alpha[below[0]]:.0f}" if below.size else "never"
            print(f"sweep p={p} eta={eta:g}: final mean risk {mean[-1]:.3g}, below half the start at alpha = {half}")
        axis.set(yscale="log", xlabel=r"$\alpha$", ylabel=r"population risk $\varepsilon$",
                 title=rf"paper model, $p$ = {p}, $k$ = 2 (three starts; thick: mean)")
        axis.legend(fontsize=8)
    return save_figure(fig, out_dir / "sweep.png")
