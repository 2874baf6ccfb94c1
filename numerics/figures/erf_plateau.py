"""The symmetric (Saad-Solla) plateau of the erf committee machine at finite N: its length against N.

The soft committee machine (``SCM``: ``erf(x / sqrt 2)`` units, readouts 1, ``T = I``),
p = k = 2 (and p = k = 3, ODE and SDE only), eta = 0.5, from ``Q(0) = I`` and
``R(0) ~ N(0, 1/N)``, first reaches the symmetric plateau (every student overlaps every
teacher equally, :func:`numerics.plateau_fixed_point`) and leaves it along its one unstable
direction (the students specialise), at the linearised rate ``g_R``. A start of order
``N**-1/2`` along that direction (and noise of the same order) then predicts
``alpha_escape(N) = const + ln(N) / (2 g_R)``. The escape is the first alpha at which the risk
falls to half the plateau's (:func:`escape_alpha`). It is measured by the ODE from
``R(0) = N**-1/2 Z`` (one fixed draw ``Z``), the diffusion approximation
(:func:`numerics.simulate_sde`, many replicas, step ``dalpha = SDE_STEP / eta``, covariance at leading order
in eta), the exact
overlap chain and weight-space SGD (``simulate``, small N); the slopes against ``ln N`` are
fitted by :func:`numerics.figures.escape_laws.fit_escape_law` with bootstrap intervals.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from numerics.figures import figure, save_figure
from numerics.figures.escape_laws import first_passage, fit_escape_law, plot_method_means

#: Default widths, learning rate and the risk fraction that marks the escape.
P = K = 2
ETA = 0.5
LEVEL = 0.5
#: The SDE's step times eta (the Euler bias in the rates is of order eta dalpha = SDE_STEP).
SDE_STEP = 0.05


@functools.cache
def plateau(p: int = P, k: int = K, eta: float = ETA) -> tuple[float, float]:
    """``(plateau risk, g_R)`` of the committee machine's symmetric plateau."""
    from derive.model.model import SCM
    from numerics.analyses.plateau import plateau_fixed_point

    found = plateau_fixed_point(p, k, eta, model=SCM)
    return float(found.risk), float(found.growth_rate)


def escape_alpha(alpha: np.ndarray, risk: np.ndarray, plateau_risk: float, level: float = LEVEL) -> np.ndarray:
    """First alpha at which the risk has fallen to ``level`` times the plateau risk (linear interpolation).

    Parameters
    ----------
    alpha : array, shape (n,)
        Increasing record times.
    risk : array, shape (..., n)
        Recorded risks; the start lies above the plateau, so only the fall below it counts.
    plateau_risk : float
        Positive.
    level : float
        In (0, 1).

    Returns
    -------
    array, shape (...)
        NaN where the risk stays above ``level * plateau_risk``.
    """
    if not plateau_risk > 0 or not 0 < level < 1:
        raise ValueError(f"escape_alpha needs a positive plateau risk and a level in (0, 1), got {plateau_risk}, "
                         f"{level}")
    fall = np.maximum(1.0 - np.asarray(risk, dtype=float) / plateau_risk, 0.0)
    return first_passage(alpha, fall, 1.0 - level)


@functools.cache
def ode_escape(N: float, p: int = P, k: int = K, eta: float = ETA) -> float:
    """Escape alpha of the ODE from ``Q(0) = I``, ``R(0) = N**-1/2 Z`` (``Z`` one fixed standard normal draw)."""
    from derive.model.model import SCM
    from numerics.ode.integrate import integrate

    plateau_risk, g_R = plateau(p, k, eta)
    alpha_max = 20.0 / g_R
    Z = np.random.default_rng(2026).normal(size=(p, k))
    run = integrate(np.eye(p), N**-0.5 * Z, np.eye(k), eta=eta, alpha_max=alpha_max, model=SCM,
                    alpha_eval=np.linspace(0.0, alpha_max, 4001))
    return float(escape_alpha(run.alpha, run.risk, plateau_risk))


@functools.cache
def sgd_escapes(method: str, N: float, replicas: int, seed: int, p: int = P, k: int = K, eta: float = ETA,
                sde_step: float = SDE_STEP) -> np.ndarray:
    """Escape alphas of ``replicas`` finite-N runs (``"sde"``, ``"overlaps"`` or ``"weights"``), shape (replicas,).

    Every run starts at ``Q(0) = I`` (the simulators: random vectors of norm ``sqrt N``) and
    ``R(0) ~ N(0, 1/N)``, and lasts twice the ODE's escape; NaN where a run has not escaped. The
    SDE steps by ``dalpha = sde_step / eta``.
    """
    from derive.model.model import SCM

    alpha_max = 2.0 * ode_escape(N, p, k, eta)
    grid = np.linspace(0.0, alpha_max, 2001)
    if method == "sde":
        from numerics.simulators.sde import simulate_sde

        R0 = np.random.default_rng(seed).normal(scale=N**-0.5, size=(replicas, p, k))
        # leading order in eta: the eta**3, eta**4 parts move the noise of Q (not of R, which drives the
        # escape) and would make the runs 20-70 times longer (docs/escape_laws.md)
        run = simulate_sde(np.broadcast_to(np.eye(p), (replicas, p, p)), R0, np.eye(k), N=N, eta=eta, model=SCM,
                           alpha_max=alpha_max, replicas=replicas, seed=seed, record=grid, progress=False,
                           dalpha=sde_step / eta, leading_order_noise=True)
    else:
        from numerics.simulators.weights import simulate

        run = simulate(N=int(N), p=p, k=k, eta=eta, model=SCM, alpha_max=alpha_max, replicas=replicas, seed=seed,
                       method=method, record=grid, progress=False, q0=1.0)
    risk = np.asarray(run.risk).reshape(replicas, -1)
    return escape_alpha(np.asarray(run.alpha), risk, plateau(p, k, eta)[0])


def _sizes(small: bool) -> dict[int, dict]:
    """Run sizes by width ``p = k``."""
    if small:
        return {2: dict(ode_N=(1e2, 1e3, 1e4), sde_N=(1e2,), replicas=4, chain_N=(), chain_replicas=0, weight_N=(),
                        weight_replicas=0, sde_step=4 * SDE_STEP, halving_N=None)}
    return {2: dict(ode_N=tuple(10.0**e for e in range(2, 9)), sde_N=tuple(10.0**e for e in range(2, 7)),
                    replicas=64, chain_N=(1e2, 1e3), chain_replicas=16, weight_N=(1e2, 1e3), weight_replicas=8,
                    sde_step=SDE_STEP, halving_N=1e4),
            3: dict(ode_N=tuple(10.0**e for e in range(2, 9)), sde_N=(1e2, 1e4, 1e6), replicas=64, chain_N=(),
                    chain_replicas=0, weight_N=(), weight_replicas=0, sde_step=SDE_STEP, halving_N=None)}


def _report(ode: dict, samples: dict, g_R: float) -> list:
    """Print every escape time and the fitted slopes; returns ``(name, fit, N fitted)`` for the lines drawn."""
    print(f"  prediction: alpha_escape = const + ln(N) / (2 g_R), slope 1/(2 g_R) = {1 / (2 * g_R):.4g}")
    for N, value in ode.items():
        print(f"    ODE      N={N:9.0e}: escape {value:.4g}")
    Ns, values = np.array(list(ode)), np.array(list(ode.values()))
    local = np.diff(values) / np.diff(np.log(Ns))
    print("    ODE local slopes between consecutive N: " + ", ".join(f"{v:.3g}" for v in local))
    for (method, N), escape in sorted(samples.items()):
        done = escape[np.isfinite(escape)]
        mean = f"{done.mean():.4g} +- {done.std(ddof=1) / np.sqrt(done.size):.2g}" if done.size > 1 else "-"
        print(f"    {method:8} N={N:9.0e}: escaped {done.size}/{escape.size}, mean escape {mean}")
    fits = [("ODE", fit_escape_law(Ns, [np.array([v]) for v in values], "log"), Ns)]
    for method in ("sde", "overlaps"):  # SGD from weights: too few replicas for a slope
        fitted = np.array(sorted(N for (m, N) in samples if m == method and np.sum(np.isfinite(samples[m, N])) >= 2))
        if fitted.size >= 2:
            fits.append((method, fit_escape_law(fitted, [samples[method, N] for N in fitted], "log"), fitted))
    for name, fit, _ in fits:
        print(f"    fit {name:8} log: slope {fit.slope:.4g} (95% interval {fit.interval[0]:.4g} .. "
              f"{fit.interval[1]:.4g})")
    return fits


def _panel(ax, p: int, ode: dict, samples: dict, fits: list, g_R: float) -> None:
    Ns = np.array(list(ode))
    ax.plot(Ns, list(ode.values()), "k-", lw=1, label=r"ODE, $R(0) = N^{-1/2} Z$")
    plot_method_means(ax, samples)
    for (name, fit, fitted), style in zip(fits, ("k:", "C0--", "C1-.")):
        x = np.geomspace(fitted[0], fitted[-1], 40)
        ax.plot(x, fit.intercept + fit.slope * np.log(x), style, lw=1,
                label=f"{name}: slope {fit.slope:.1f} [{fit.interval[0]:.1f}, {fit.interval[1]:.1f}]")
    x = np.geomspace(Ns[0], Ns[-1], 40)
    anchor = fits[0][1]
    ax.plot(x, anchor.intercept + anchor.slope * np.log(Ns[0]) + np.log(x / Ns[0]) / (2 * g_R), "r--", lw=1,
            label=rf"prediction: slope $1/(2 g_R) = {1 / (2 * g_R):.1f}$")
    ax.set(xscale="log", xlabel="input dimension $N$",
           ylabel=r"escape $\alpha$ (risk at $1/2$ of the plateau's)",
           title=rf"erf committee, $p = k = {p}$, $\eta = {ETA}$: symmetric plateau")
    ax.legend(fontsize=7)


def _halving(p: int, sizes: dict) -> None:
    """Print the SDE's mean escape at ``halving_N`` with the step and with half of it (same replicas, start, seed)."""
    N = sizes["halving_N"]
    index = sizes["sde_N"].index(N)
    for step in (sizes["sde_step"], sizes["sde_step"] / 2):
        escape = sgd_escapes("sde", N, sizes["replicas"], 100 + index, p, p, sde_step=step)
        done = escape[np.isfinite(escape)]
        print(f"    sde      N={N:9.0e} dalpha={step / ETA:.3g}: escaped {done.size}/{escape.size}, mean escape "
              f"{done.mean():.4g} +- {done.std(ddof=1) / np.sqrt(done.size):.2g}")


@figure("erf_plateau")
def erf_plateau(out_dir: Path, small: bool) -> Path:
    """Length of the erf committee's symmetric plateau against N: ODE, SDE, chain and SGD, with the g_R prediction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = _sizes(small)
    fig, axes = plt.subplots(1, len(widths), figsize=(7 * len(widths), 5), squeeze=False)
    for ax, (p, sizes) in zip(axes[0], widths.items()):
        plateau_risk, g_R = plateau(p, p)
        print(f"erf_plateau: SCM, p = k = {p}, eta = {ETA}, Q(0) = I, R(0) ~ N(0, 1/N); plateau risk "
              f"{plateau_risk:.4g}, g_R = {g_R:.4g}; escape: risk <= {LEVEL} x plateau risk; SDE step dalpha = "
              f"{sizes['sde_step']}/eta")
        ode = {N: ode_escape(N, p, p) for N in sizes["ode_N"]}
        samples = {}
        for method, Ns, replicas in (("sde", sizes["sde_N"], sizes["replicas"]),
                                     ("overlaps", sizes["chain_N"], sizes["chain_replicas"]),
                                     ("weights", sizes["weight_N"], sizes["weight_replicas"])):
            for i, N in enumerate(Ns):
                samples[method, N] = sgd_escapes(method, N, replicas, 100 + i, p, p, sde_step=sizes["sde_step"])
        fits = _report(ode, samples, g_R)
        if sizes["halving_N"]:
            _halving(p, sizes)
        _panel(ax, p, ode, samples, fits, g_R)
    return save_figure(fig, out_dir / "erf_plateau.png")
