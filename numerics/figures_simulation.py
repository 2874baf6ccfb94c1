"""Fig. 1 of the paper: ODE lines over finite-N SGD markers, all order parameters and the risk."""

from __future__ import annotations

from pathlib import Path

from .figures import figure


@figure("fig1")
def fig1(out_dir: Path, small: bool) -> Path:
    """Paper model, p = 4, k = 2, eta = 0.5: one SGD run at N = 4000 (Eq. 8 start from random
    orthonormal weights) and the ODE started from its measured initial overlaps."""
    from .plotting import plot_trajectory
    from .simulate import compare_ode_simulation, simulate

    N, alpha_max = (300, 40.0) if small else (4000, 60.0)
    sim = simulate(N=N, p=4, k=2, eta=0.5, alpha_max=alpha_max, seed=1, record=70, progress=not small)
    ode = compare_ode_simulation(sim).ode
    path = out_dir / "fig1.png"
    fig = plot_trajectory(ode, None, simulation=sim,
                          title=f"paper model, p=4, k=2, eta=0.5: ODE (lines) vs SGD at N={N} (markers)")
    fig.savefig(path, dpi=90)
    return path
