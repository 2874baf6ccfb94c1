"""Fig. 1 of the paper: ODE lines over finite-N SGD markers, all order parameters and the risk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from numerics.figures import figure, show_progress
from numerics.figures.plotting import plot_trajectory
from numerics.simulators.weights import compare_ode_simulation, simulate

#: The dashed ODE restarts from the SGD overlaps once the SGD risk is this fraction of its plateau value.
RESTART_FRACTION = 0.95


@figure("fig1")
def fig1(out_dir: Path, small: bool) -> Path:
    """Paper model, p = 4, k = 2, eta = 0.5: one SGD run at N = 4000 (Eq. 8 start from random
    orthonormal weights), the ODE from its measured initial overlaps, and the ODE restarted from
    its overlaps at the start of the escape."""

    N, alpha_max = (300, 40.0) if small else (4000, 60.0)
    sim = simulate(N=N, p=4, k=2, eta=0.5, alpha_max=alpha_max, seed=1, record=70, progress=show_progress(small))
    ode = compare_ode_simulation(sim).ode
    # the point of the zero-error manifold reached is set by the direction of R at the escape,
    # which the plateau's SGD noise randomises at any N: restarting there shows the ODE tracks the rest
    plateau_risk = sim.risk[np.searchsorted(sim.alpha, 5.0)]
    escaping = sim.alpha[np.argmax(sim.risk < RESTART_FRACTION * plateau_risk)]
    restart = compare_ode_simulation(sim, from_alpha=float(escaping)).ode
    path = out_dir / "fig1.png"
    fig = plot_trajectory(ode, None, simulation=sim, restart=restart,
                          title=f"paper model, p=4, k=2, eta=0.5, SGD at N={N} (markers)\n"
                                "ODE from the SGD start (solid) and restarted from SGD at the escape (dashed)")
    fig.savefig(path, dpi=90)
    return path
