"""Figure of sharpness-aware one-pass SGD (docs/variants.md): plateau length and final risk against the radius."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from numerics.figures import figure, save_figure
from numerics.figures.variants import first_crossing
from numerics.ode.initial import initial_conditions
from numerics.ode.integrate import integrate

#: The paper's model at p = 4, k = 2 with the Eq. 8 start at N = 1000, and a learning rate at which
#: every radius shown stays stable.
P, K, N_START, ETA = 4, 2, 1000, 0.1


def plateau_length(alpha: np.ndarray, risk: np.ndarray) -> float:
    """The alpha at which ``risk`` first falls below half its start value (NaN if it never does)."""
    return first_crossing(alpha, -np.asarray(risk), -0.5 * float(risk[0]))


@figure("sam")
def sam(out_dir: Path, small: bool) -> Path:
    """Paper model (p = 4, k = 2, eta = 0.1): risk curves, plateau length and final risk against ``rho``.

    ODE of sharpness-aware steps (``sam_radius = rho``) from one Eq. 8 start; the plateau length is the
    alpha at which the risk first falls below half its start value. Prints the plotted numbers.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    radii = np.array([0.0, 1.0, 2.0]) if small else np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0])
    alpha_max = 100.0 if small else 400.0
    Q0, R0, T = initial_conditions(P, K, N=N_START, seed=0)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    lengths, finals = [], []
    for i, radius in enumerate(radii):
        run = integrate(Q0, R0, T, eta=ETA, sam_radius=float(radius), alpha_max=alpha_max, n_points=300)
        lengths.append(plateau_length(run.alpha, run.risk))
        finals.append(float(run.risk[-1]))
        print(f"sam: rho={radius:g}: plateau length (risk at half its start) alpha={lengths[-1]:.4g}, "
              f"risk at alpha={alpha_max:g} {finals[-1]:.4g}")
        left.loglog(run.alpha[1:], run.risk[1:], color=plt.cm.viridis(i / max(1, len(radii) - 1)),
                    label=rf"$\rho = {radius:g}$")
    left.set(xlabel=r"$\alpha$", ylabel=r"risk $\varepsilon$",
             title=rf"paper model $p = {P}$, $k = {K}$, $\eta = {ETA:g}$: SAM ODE")
    left.legend(fontsize=8)
    right.plot(radii, lengths, "o-", color="C0", label=r"plateau length $\alpha_{1/2}$")
    right.set(xlabel=r"SAM radius $\rho$", ylabel=r"$\alpha_{1/2}$ (risk at half its start)")
    twin = right.twinx()
    twin.semilogy(radii, finals, "s--", color="C3", label=rf"risk at $\alpha = {alpha_max:g}$")
    twin.set_ylabel(rf"$\varepsilon(\alpha = {alpha_max:g})$")
    right.legend(loc="upper left", fontsize=8)
    twin.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out_dir / "sam.png")
