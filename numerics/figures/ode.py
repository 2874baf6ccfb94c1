"""Figures of the foundation: a full ODE trajectory of the paper model."""

from __future__ import annotations

from pathlib import Path

from numerics import initial_conditions
from numerics.figures import figure
from numerics.figures.plotting import plot_trajectory
from numerics.ode.integrate import integrate


@figure("trajectory")
def trajectory(out_dir: Path, small: bool) -> Path:
    """ODE trajectory, p = 4, k = 2, eta = 0.5, Eq. 8 start with N = 1000."""

    Q0, R0, T = initial_conditions(4, 2, N=1000, seed=0)
    result = integrate(Q0, R0, T, eta=0.5, alpha_max=60 if small else 150, n_points=120 if small else 400)
    path = out_dir / "trajectory.png"
    plot_trajectory(result, path, title="paper model: p=4, k=2, eta=0.5, N=1000")
    return path
