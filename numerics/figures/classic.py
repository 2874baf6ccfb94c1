"""Classic results of erf networks: Saad and Solla's plateau, and overparameterisation with label noise.

Both figures use the soft committee machine (``derive.model.model.SCM``: ``erf(x/sqrt(2))``
units, ``T = I``, teacher readouts 1). Our update ``w <- w + (eta/sqrt(N)) E x`` with
``lambda = w.x/sqrt(N)`` is Saad and Solla's (1995) and Goldt et al.'s (2019) with their
weights ``w/sqrt(N)``, so the learning rates are the same numbers; their label noise
``sigma zeta`` is our ``Delta = sigma**2``. Every figure prints the numbers it shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from derive.model.model import SCM
from numerics import initial_conditions
from numerics.analyses.symmetric_fixed_point import symmetric_fixed_point
from numerics.figures import figure, save_figure, show_progress
from numerics.ode.integrate import integrate
from numerics.simulators.weights import simulate

#: Learning rate of both layers in the plateau figure.
PLATEAU_ETA = 0.5
#: Eq. 8-like start of the plateau ODE runs: Q(0) = 0.5 I, R(0) ~ N(0, 0.5 / N) with this N.
PLATEAU_START_N = 1e6
PLATEAU_Q0 = 0.5
#: Overparameterisation figure: teacher width, learning rate (both layers), label noise.
OVER_K, OVER_ETA, OVER_DELTA = 2, 0.5, 0.01


@dataclass(frozen=True)
class PlateauStatistics:
    """Where a risk curve sits on a plateau of level ``level``.

    Attributes
    ----------
    entry : float
        First alpha with the risk within 5% of ``level`` (NaN if never).
    escape : float
        First alpha after ``entry`` with the risk below ``level / 2`` (NaN if never).
    closest : float
        Smallest ``|risk - level|`` between entry and escape.
    final : float
        Risk at the last alpha.
    """

    entry: float
    escape: float
    closest: float
    final: float

    @property
    def length(self) -> float:
        return self.escape - self.entry


def plateau_statistics(alpha: np.ndarray, risk: np.ndarray, level: float) -> PlateauStatistics:
    """Entry, escape and closest approach of a risk curve to the plateau ``level``.

    Parameters
    ----------
    alpha, risk : arrays, shape (n,)
        One trajectory.
    level : float
        Plateau risk (e.g. :func:`numerics.analyses.symmetric_fixed_point.symmetric_fixed_point`'s).
    """
    alpha, risk = np.asarray(alpha, dtype=float), np.asarray(risk, dtype=float)
    if alpha.shape != risk.shape or alpha.ndim != 1:
        raise ValueError(f"alpha and risk must be 1-d of one length, got shapes {alpha.shape} and {risk.shape}")
    if not level > 0:
        raise ValueError(f"level must be positive, got {level!r}")
    near = np.flatnonzero(np.abs(risk / level - 1) < 0.05)
    if near.size == 0:
        return PlateauStatistics(np.nan, np.nan, float(np.min(np.abs(risk - level))), float(risk[-1]))
    start = near[0]
    below = np.flatnonzero(risk[start:] < level / 2)
    stop = start + below[0] if below.size else risk.size
    return PlateauStatistics(entry=float(alpha[start]), escape=float(alpha[stop]) if below.size else np.nan,
                             closest=float(np.min(np.abs(risk[start:stop] - level))), final=float(risk[-1]))


def _plateau_sizes(small: bool) -> dict:
    if small:
        return dict(alpha_max=600.0, n_points=200, sim_N=200, replicas=2, sim_alpha=150.0, sim_points=25)
    return dict(alpha_max=3000.0, n_points=600, sim_N=500, replicas=4, sim_alpha=400.0, sim_points=60)


@figure("saad_solla")
def saad_solla(out_dir: Path, small: bool) -> Path:
    """Plateau of the soft committee machine, p = k = 2 and 3, eta = 0.5, fixed and trained second layer.

    ODE from an Eq. 8-like start (``Q(0) = 0.5 I``, ``R(0) ~ 7e-4``); finite-N SGD at one N
    (a few replicas, fixed readouts) against the ODE started from each replica's measured
    overlaps; dotted: the symmetric fixed point found by root finding. Prints, for each
    run, the fixed-point risk, plateau entry, escape, closest approach and final risk.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    sizes = _plateau_sizes(small)
    eta = PLATEAU_ETA
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, K in zip(axes, (2, 3)):
        Q0, R0, T = initial_conditions(K, K, N=PLATEAU_START_N, q0=PLATEAU_Q0, seed=K)
        for eta_a, colour, name in ((0.0, "C0", "second layer fixed"), (eta, "C1", "second layer trained")):
            run = integrate(Q0, R0, T, eta=eta, alpha_max=sizes["alpha_max"], model=SCM, a=np.ones(K),
                            eta_a=eta_a, n_points=sizes["n_points"])
            point = symmetric_fixed_point(K, eta, model=SCM, eta_a=eta_a)
            stats = plateau_statistics(run.alpha, run.risk, point.risk)
            print(f"saad_solla K={K} eta={eta} {name}: fixed point risk {point.risk:.6g} "
                  f"(Q={point.Q:.4g}, C={point.C:.4g}, R={point.R:.4g}, a={point.a:.4g}); "
                  f"plateau from alpha {stats.entry:.4g} to {stats.escape:.4g} (length {stats.length:.4g}), "
                  f"closest |risk - fixed point| {stats.closest:.2g}, final risk {stats.final:.3g}")
            ax.plot(run.alpha, run.risk, color=colour, label=f"ODE, {name}")
            ax.axhline(point.risk, color=colour, ls=":", lw=1,
                       label=f"symmetric fixed point {point.risk:.4f}")
        sim = simulate(N=sizes["sim_N"], p=K, k=K, eta=eta, alpha_max=sizes["sim_alpha"], model=SCM,
                       q0=PLATEAU_Q0, seed=10 + K, replicas=sizes["replicas"],
                       record=np.concatenate([[0.0], np.geomspace(1.0, sizes["sim_alpha"], sizes["sim_points"])]),
                       progress=show_progress(small))
        restart = integrate(sim.Q[:, 0], sim.R[:, 0], T, eta=eta, alpha_max=sim.alpha[-1], model=SCM,
                            alpha_eval=sim.alpha)
        sim_mean, ode_mean = sim.risk.mean(axis=0), restart.risk.mean(axis=0)
        error = sim.risk.std(axis=0, ddof=1) / np.sqrt(sim.risk.shape[0])
        ax.plot(restart.alpha[1:], ode_mean[1:], color="k", lw=1,
                label=f"ODE from the SGD starts (mean of {sim.risk.shape[0]})")
        ax.errorbar(sim.alpha[1:], sim_mean[1:], error[1:], fmt="o", ms=3, color="C2",
                    label=f"SGD, N = {sizes['sim_N']}, fixed second layer (mean)")
        worst = float(np.max(np.abs(sim_mean - ode_mean)))
        print(f"saad_solla K={K}: SGD at N={sizes['sim_N']} ({sim.risk.shape[0]} replicas) against the ODE "
              f"from the same starts: largest |mean risk difference| {worst:.3g}")
        ax.set(xscale="log", yscale="log", xlim=(0.1, sizes["alpha_max"]), ylim=(1e-5, 1.0), xlabel=r"$\alpha$",
               ylabel=r"risk $\varepsilon$", title=f"soft committee machine $p = k = {K}$, $\\eta = {eta}$")
        ax.legend(fontsize=7, loc="lower left")
    return save_figure(fig, out_dir / "saad_solla.png")


def overparameterised_errors(widths: tuple[int, ...], *, alpha_max: float, eta_a: float,
                             checkpoints: tuple[float, ...] = (), rtol: float = 1e-6) -> dict:
    """Generalisation error ``eps_g = risk - Delta/2`` of erf students learning a k = 2 teacher.

    Teacher ``b = 1``, label noise ``Delta = OVER_DELTA``, learning rate ``OVER_ETA``;
    students start from ``Q(0) = 0.1 I``, ``R(0) ~ N(0, 0.1/1000)`` (seed p) with ``a = 1``,
    fixed (``eta_a = 0``) or trained.

    Parameters
    ----------
    widths : tuple of int
        Student widths p.
    alpha_max : float
        Horizon.
    eta_a : float
        Learning rate of the second layer (0: fixed).
    checkpoints : tuple of float
        Alphas (within ``(0, alpha_max)``) at which eps_g is also returned.
    rtol : float
        Relative tolerance of the ODE solver.

    Returns
    -------
    dict
        ``p -> (result, eps_g along result.alpha, eps_g at checkpoints (array), eps_g at alpha_max)``.
    """

    model = SCM.with_noise(OVER_DELTA)
    out = {}
    for p in widths:
        Q0, R0, T = initial_conditions(p, OVER_K, N=1000, q0=0.1, seed=p)
        grid = np.unique(np.concatenate([np.geomspace(1.0, alpha_max, 150), checkpoints]))
        run = integrate(Q0, R0, T, eta=OVER_ETA, alpha_max=alpha_max, model=model, a=np.ones(p),
                        b=np.ones(OVER_K), eta_a=eta_a, alpha_eval=grid, rtol=rtol, atol=1e-10)
        error = run.risk - OVER_DELTA / 2
        at = np.array([error[np.searchsorted(run.alpha, c)] for c in checkpoints])
        out[p] = (run, error, at, float(error[-1]))
    return out


@figure("overparameterised_erf")
def overparameterised_erf(out_dir: Path, small: bool) -> Path:
    """Final generalisation error against student width p, k = 2, Delta = 0.01, eta = 0.5.

    Left: eps_g(alpha) for each p, second layer fixed (solid) and trained (dashed). Right:
    eps_g at two horizons against p. Prints eps_g at both horizons and the readouts.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = (2, 3, 4) if small else (2, 3, 4, 6, 8)
    alpha_max = 1000.0 if small else 10000.0
    early = 100.0 if small else 1000.0
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for eta_a, style, name in ((0.0, "-", "fixed"), (OVER_ETA, "--", "trained")):
        runs = overparameterised_errors(widths, alpha_max=alpha_max, eta_a=eta_a, checkpoints=(early,))
        for index, p in enumerate(widths):
            run, error, at, final = runs[p]
            left.plot(run.alpha, error, style, color=f"C{index}", label=f"$p$ = {p}, second layer {name}")
            readout = "" if run.a is None else f", final a = {np.array2string(run.a[-1], precision=3)}"
            print(f"overparameterised_erf p={p} second layer {name}: eps_g = {at[0]:.4g} at alpha {early:g}, "
                  f"{final:.4g} at alpha {alpha_max:g}{readout}")
        marker = "o" if eta_a == 0 else "s"
        right.plot(widths, [runs[p][2][0] for p in widths], marker + ":", color="0.5",
                   label=rf"second layer {name}, $\alpha$ = {early:g}")
        right.plot(widths, [runs[p][3] for p in widths], marker + style, color="k" if eta_a == 0 else "C3",
                   label=rf"second layer {name}, $\alpha$ = {alpha_max:g}")
    left.set(xscale="log", yscale="log", xlabel=r"$\alpha$", ylabel=r"$\varepsilon_g = \varepsilon - \Delta/2$",
             title=rf"erf, $k$ = {OVER_K}, $\Delta$ = {OVER_DELTA}, $\eta$ = {OVER_ETA}")
    left.legend(fontsize=6, ncol=2)
    right.set(yscale="log", xlabel="student width $p$", ylabel=r"$\varepsilon_g$",
              title="generalisation error against $p$")
    right.legend(fontsize=7)
    return save_figure(fig, out_dir / "overparameterised_erf.png")
