"""Implicit-bias figures (paper Sec. 4.1, App. 7.4): Fig. 3 (closest solution), Fig. 4 (conserved Omega)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from numerics.analyses.implicit_bias import closest_solution, distance_to, omega
from numerics.figures import figure, save_figure
from numerics.ode.initial import initial_conditions
from numerics.ode.integrate import integrate

#: Paper model, widths and learning rate of both figures; Eq. 8 starts with this N.
P, K, ETA, N_START = 4, 2, 0.5, 1000


@figure("fig3")
def fig3(out_dir: Path, small: bool) -> Path:
    """Squared distance to the predicted end point of one start, for that start and for others (paper Fig. 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    starts, alpha_max = (10, 300.0) if small else (50, 3000.0)
    Q0, R0, T = initial_conditions(P, K, N=N_START, seed=3, batch=starts)
    result = integrate(Q0, R0, T, eta=ETA, alpha_max=alpha_max, n_points=150 if small else 400)
    # start 0 is the matched one: its end point is predicted by Eqs. 19-21 from R0[0] alone
    distance = distance_to(result, closest_solution(R0[0]))
    alpha = result.alpha[1:]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for b in range(starts - 1, -1, -1):
        matched = b == 0
        style = dict(color="k", lw=2, zorder=3) if matched else dict(color="0.65", lw=0.8)
        label = "matched start" if matched else ("other Eq. 8 starts" if b == 1 else None)
        left.plot(alpha, distance[b, 1:], label=label, **style)
        right.plot(alpha, result.risk[b, 1:], label=label, **style)
    # p > k: the students' components outside the teacher span decay as 1/alpha (quartic risk there)
    late = alpha >= alpha_max / 10
    guide = 3 * distance[0, -1] * alpha_max / alpha[late]  # offset by 3 to stay visible next to the curve
    left.plot(alpha[late], guide, ":", color="C3", lw=1.5, label=r"$\propto 1/\alpha$ (guide)")
    left.set(xscale="log", yscale="log", xlabel=r"$\alpha$", ylabel=r"$|W(\alpha) - \hat W_1|^2 / N$",
             title=f"distance to the closest solution of start 1 (Eqs. 19-21)\np={P}, k={K}, eta={ETA}, "
                   f"{starts} Eq. 8 starts (N={N_START})")
    left.legend(fontsize=8)
    right.set(xscale="log", yscale="log", xlabel=r"$\alpha$", ylabel=r"population risk $\varepsilon$",
              title="all starts reach zero risk")
    right.legend(fontsize=8)
    return save_figure(fig, out_dir / "fig3.png")


@figure("fig4")
def fig4(out_dir: Path, small: bool) -> Path:
    """Every entry of Omega = R (R^T R)^(-1/2) against alpha for one Eq. 8 start (paper Fig. 4), with controls."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    alpha_max = 100.0 if small else 500.0
    Q0, R0, T = initial_conditions(P, K, N=N_START, seed=5)
    runs = {
        "Eq. 8 start, Q(0) = I, T = I": (Q0, T, "-"),
        "anisotropic Q(0) = diag(1, .8, .6, .4)": (np.diag([1.0, 0.8, 0.6, 0.4]), T, "--"),
        "teacher T = [[1, .3], [.3, .6]]": (Q0, np.array([[1.0, 0.3], [0.3, 0.6]]), ":"),
    }
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for index, (name, (start_Q, teacher, style)) in enumerate(runs.items()):
        result = integrate(start_Q, R0, teacher, eta=ETA, alpha_max=alpha_max, n_points=150 if small else 300,
                           rtol=1e-11, atol=1e-13)
        polar = omega(result.R)
        if index < 2:  # the entries of the isotropic run and of the anisotropic contrast
            for j in range(P):
                for r in range(K):
                    label = name if (j, r) == (0, 0) else None
                    left.plot(result.alpha[1:], polar[1:, j, r], style, color=f"C{j * K + r}", label=label,
                              lw=1.6 if index == 0 else 1.0)
        drift = np.max(np.abs(polar - polar[0]), axis=(-2, -1))
        # an exactly conserved entry has drift 0: floor at the smallest positive double shown, for the log axis
        right.plot(result.alpha[1:], np.maximum(drift[1:], 1e-17), style, color=f"C{index}", label=name)
    left.set(xscale="log", xlabel=r"$\alpha$", ylabel=r"entries of $\Omega = R (R^T R)^{-1/2}$",
             title=f"conserved $\\Omega$ (App. 7.4): p={P}, k={K}, eta={ETA}, N={N_START}\n"
                   "solid: Eq. 8 start (flat); dashed: anisotropic start")
    left.legend(fontsize=8, loc="lower left")
    right.axhline(np.finfo(float).eps, color="0.6", lw=0.8)
    right.set(xscale="log", yscale="log", ylim=(1e-17, 10), xlabel=r"$\alpha$",
              ylabel=r"$\max_{jr} |\Omega_{jr}(\alpha) - \Omega_{jr}(0)|$",
              title="drift of $\\Omega$ from its start, growing from the first steps\n"
                    "when Q(0) or T is not isotropic (grey: machine epsilon)")
    right.legend(fontsize=8, loc="center right")
    return save_figure(fig, out_dir / "fig4.png")
