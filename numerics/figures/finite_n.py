"""Finite-N science: escape from an uninformed start, the implicit bias at finite N, Eq. 8 revisited.

All three figures use the paper model with p = k = 2, eta = 0.25 (= p/8), ``Q(0) = I``, ``T = I``.
Finite-N SGD is the exact overlap chain (``simulate(..., method="overlaps")``) at the
smaller N and the diffusion approximation (``simulate_sde``) at every N. The theory they
test is :mod:`numerics.analyses.finite_n`: the plateau noise is worth a Gaussian ``R(0)`` of
variance ``S / N`` per entry. Every figure prints the numbers it shows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numerics.analyses.finite_n import gaussian_starts, plateau_noise
from numerics.analyses.implicit_bias import closest_solution
from numerics.analyses.plateau import escape_time, plateau_coefficients
from numerics.figures import figure, save_figure
from numerics.ode.initial import initial_conditions
from numerics.ode.integrate import integrate
from numerics.simulators.weights import simulate

#: Paper model, widths, learning rate and initial norm of the three figures.
P, K, ETA, Q0 = 2, 2, 0.25, 1.0
#: Escape times are read off a record grid of this spacing in alpha.
RECORD_STEP = 0.1
#: Macroscopic start of the implicit-bias figure: R(0) = diag(0.8, 0.6), Q(0) = I.
MACRO_R0 = np.diag([0.8, 0.6])
#: Length of the macroscopic-start runs: the ODE gap to the closest solution is 1.2e-8 at
#: alpha = 75 and 2.3e-11 at alpha = 100 (p = k: exponential convergence).
MACRO_ALPHA = {"overlaps": 75.0, "sde": 100.0}
#: After the last escape the Eq. 8 runs continue this long, to settle on the manifold.
SETTLE = 15.0


@dataclass(eq=False)
class SGDRuns:
    """Escape times (and end points) of a batch of finite-N runs."""

    method: str
    N: int
    start: str
    escape: np.ndarray
    seconds: float
    Q0: np.ndarray
    R0: np.ndarray
    Q_end: np.ndarray
    R_end: np.ndarray


def _sizes(small: bool) -> dict:
    if small:
        return dict(reduced_N=(200, 1000), sde_N=(200, 1000), eq8_sde_N=(200, 1000), replicas=12,
                    sde_replicas=12, ode_starts=24,
                    macro_reduced_N=(100, 300), macro_sde_N=(300, 1000), macro_replicas=8, macro_alpha=25.0)
    return dict(reduced_N=(1000, 10000), sde_N=(1000, 10000, 100000, 1000000, 10000000),
                eq8_sde_N=(1000, 100000, 10000000), replicas=128, sde_replicas=128, ode_starts=512,
                macro_reduced_N=(100, 300, 1000, 3000, 10000), macro_sde_N=(10000, 100000, 1000000, 10000000),
                macro_replicas=48)


@functools.cache
def _noise():

    return plateau_noise(P, K, ETA, q0=Q0)


@functools.cache
def ode_escapes(N: int, variance: float, starts: int, seed: int) -> np.ndarray:
    """Escape times of the ODE from ``starts`` Gaussian starts ``R(0)`` of variance ``variance / N``."""

    Qs, Rs, T = gaussian_starts(P, K, N=N, variance=variance, q0=Q0, batch=starts, seed=seed)
    alpha_max = _noise().log_slope * np.log(N) + 40.0
    grid = np.arange(0.0, alpha_max + RECORD_STEP / 2, RECORD_STEP)
    run = integrate(Qs, Rs, T, eta=ETA, alpha_max=grid[-1], alpha_eval=grid)
    return np.asarray(escape_time(run))


@functools.cache
def sgd_runs(method: str, N: int, start: str, replicas: int, seed: int, alpha_max: float) -> SGDRuns:
    """Finite-N SGD from ``Q(0) = I`` and ``R(0) = 0`` (``start="zero"``), an Eq. 8 start
    (``"eq8"``: random orthonormal frames for the overlap chain, ``initial_conditions`` for
    the SDE) or the macroscopic ``MACRO_R0`` (``"macro"``)."""

    grid = np.arange(0.0, alpha_max + RECORD_STEP / 2, RECORD_STEP)
    if start == "zero":
        Qs, Rs = np.eye(P), np.zeros((P, K))
    elif start == "macro":
        Qs, Rs = np.eye(P), MACRO_R0
    elif start == "eq8":
        if method == "overlaps":
            Qs = Rs = None
        else:
            Qs, Rs, _ = initial_conditions(P, K, N=N, q0=Q0, seed=seed + 7919, batch=replicas)
    else:
        raise ValueError(f"unknown start {start!r}")
    if method == "overlaps":
        from numerics.simulators.weights import simulate

        run = simulate(N=N, p=P, k=K, eta=ETA, alpha_max=grid[-1], replicas=replicas, seed=seed,
                       method="overlaps", Q0=Qs, R0=Rs, q0=Q0, record=grid, progress=False)
    else:
        from numerics.simulators.sde import simulate_sde

        if Qs is not None and np.ndim(Rs) == 2:
            Qs, Rs = np.broadcast_to(Qs, (replicas, P, P)).copy(), np.broadcast_to(Rs, (replicas, P, K)).copy()
        run = simulate_sde(Qs, Rs, np.eye(K), N=N, eta=ETA, alpha_max=grid[-1], replicas=replicas, seed=seed,
                           record=grid, progress=False)
    escape = np.asarray(escape_time(run)) if start != "macro" else np.full(replicas, np.nan)
    Q, R = np.asarray(run.Q).reshape(replicas, -1, P, P), np.asarray(run.R).reshape(replicas, -1, P, K)
    return SGDRuns(method, N, start, escape, float(run.extra.get("seconds", np.nan)),
                   Q[:, 0].copy(), R[:, 0].copy(), Q[:, -1].copy(), R[:, -1].copy())


def _horizon(N: int, extra: float = 0.0) -> float:
    """Run length that covers the escape-time law at size N (mean + 18 units: tail ~ exp(-4 g_R s))."""
    noise = _noise()
    mean = float(np.mean(ode_escapes(N, noise.variance, 64, 1)))
    return float(np.ceil(mean + 18.0 + extra))


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    return float(np.mean(values)), float(np.std(values, ddof=1) / np.sqrt(values.size))


def _fit_log(N: np.ndarray, mean: np.ndarray, se: np.ndarray) -> tuple[float, float, float, float]:
    """Weighted straight line ``mean = a + b ln N``: (b, se of b, a, chi2 per degree of freedom)."""
    x = np.log(np.asarray(N, dtype=float))
    w = 1.0 / np.asarray(se) ** 2
    X = np.stack([np.ones_like(x), x], axis=1)
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    a, b = cov @ (X.T @ (w * mean))
    chi2 = float(np.sum(w * (mean - a - b * x) ** 2))
    dof = max(x.size - 2, 1)
    return float(b), float(np.sqrt(cov[1, 1])), float(a), chi2 / dof


def _ecdf(ax, values, **style) -> None:
    values = np.sort(values[np.isfinite(values)])
    ax.step(values, np.arange(1, values.size + 1) / values.size, where="post", **style)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@figure("finite_n_escape")
def finite_n_escape(out_dir: Path, small: bool) -> Path:
    """Escape from R(0) = 0 at finite N (the ODE never escapes): escape-time law and its log N growth."""
    plt = _pyplot()
    sizes = _sizes(small)
    noise = _noise()
    print(f"finite_n_escape: p={P}, k={K}, eta={ETA}, Q(0)=I, R(0)=0; growth_R = {noise.growth_R:.5f}, "
          f"predicted slope 1/(2 g_R) = {noise.log_slope:.4f}; noise-equivalent variance S = {noise.variance:.4f}")
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4.6))
    results = {}
    for method, Ns, replicas in (("overlaps", sizes["reduced_N"], sizes["replicas"]),
                                 ("sde", sizes["sde_N"], sizes["sde_replicas"])):
        for i, N in enumerate(Ns):
            runs = sgd_runs(method, N, "zero", replicas, 100 + i, _horizon(N))
            ode = ode_escapes(N, noise.variance, sizes["ode_starts"], 2 + i)
            mean, se = _mean_se(runs.escape)
            results[method, N] = (mean, se)
            ode_mean, ode_se = _mean_se(ode)
            from scipy.stats import ks_2samp

            ks = ks_2samp(runs.escape[np.isfinite(runs.escape)], ode).statistic
            print(f"  {method:8} N={N:>9}: mean escape {mean:.3f} +- {se:.3f} ({replicas} runs, "
                  f"{np.sum(~np.isfinite(runs.escape))} not escaped, {runs.seconds:.1f} s); ODE from variance "
                  f"S/N: {ode_mean:.3f} +- {ode_se:.3f}; KS {ks:.3f}")
            colour = f"C{int(round(np.log10(N) * 2)) % 10}"
            if method == "sde":
                _ecdf(left, runs.escape, color=colour, label=f"N={N:.0e}")
                _ecdf(left, ode, color=colour, ls=":")
            else:
                _ecdf(left, runs.escape, color=colour, ls="--", lw=0.8, label=f"N={N:.0e}, overlap chain")
                _ecdf(left, ode, color=colour, ls=":")
            middle.errorbar(N, mean, se, fmt="o" if method == "overlaps" else "s", mfc="none" if method == "sde"
                            else colour, color=colour, ms=7 if method == "overlaps" else 10)
            results["ode", N] = (ode_mean, ode_se)
    for method in ("overlaps", "sde", "ode"):
        Ns = np.array(sorted(N for (m, N) in results if m == method))
        if Ns.size < 2:
            continue
        mean = np.array([results[method, N][0] for N in Ns])
        se = np.array([results[method, N][1] for N in Ns])
        slope, slope_se, intercept, chi2 = _fit_log(Ns, mean, se)
        print(f"  fit {method:8}: slope {slope:.3f} +- {slope_se:.3f} (chi2/dof {chi2:.2f}) against "
              f"1/(2 g_R) = {noise.log_slope:.3f}")
        x = np.geomspace(Ns[0], Ns[-1], 50)
        if method in ("overlaps", "sde"):
            middle.plot(x, intercept + slope * np.log(x), "k-" if method == "sde" else "k-.", lw=1,
                        label=f"fit ({method}): slope {slope:.2f} $\\pm$ {slope_se:.2f}")
        if method == "ode":
            middle.plot(Ns, mean, "k:", lw=1, label="ODE from R(0) ~ N(0, S/N)")
            middle.plot(x, mean[0] + noise.log_slope * np.log(x / Ns[0]), "r--", lw=1,
                        label=f"slope 1/(2 g_R) = {noise.log_slope:.2f}")
    middle.plot([], [], "ko", label="exact overlap chain")
    middle.plot([], [], "ks", mfc="none", ms=10, label="SDE")
    middle.set(xscale="log", xlabel="input dimension $N$", ylabel=r"mean escape $\alpha$",
               title="mean escape time from R(0) = 0 (standard errors)")
    middle.legend(fontsize=8)
    left.set(xlabel=r"escape $\alpha$", ylabel=r"fraction of runs escaped by $\alpha$",
             title="escape-time law from R(0) = 0 (solid: SDE, dashed: overlap chain)\n"
                   f"dotted: ODE from R(0) ~ N(0, S/N), S = {noise.variance:.3f}")
    left.legend(fontsize=8)
    # trajectories: the ODE from R = 0 stays on the plateau, SGD leaves it

    N_show = sizes["reduced_N"][0]
    runs_alpha = _horizon(N_show)
    flat = integrate(Q0 * np.eye(P), np.zeros((P, K)), np.eye(K), eta=ETA, alpha_max=runs_alpha, n_points=200,
                     grid="linear")

    show = simulate(N=N_show, p=P, k=K, eta=ETA, alpha_max=runs_alpha, replicas=6, seed=5, method="overlaps",
                    Q0=np.eye(P), R0=np.zeros((P, K)), record=200, progress=False)
    for b in range(show.risk.shape[0]):
        right.plot(show.alpha, show.risk[b], color="0.5", lw=0.8, label="SGD (overlap chain)" if b == 0 else None)
    right.plot(flat.alpha, flat.risk, "k-", lw=2, label="ODE (never escapes)")
    right.axhline(0.75 * noise_plateau_risk(), color="C3", ls=":", label="3/4 of the plateau risk")
    right.set(yscale="log", xlabel=r"$\alpha$", ylabel=r"population risk $\varepsilon$",
              title=f"R(0) = 0, N = {N_show}: 6 SGD runs and the ODE")
    right.legend(fontsize=8)
    fig.suptitle(f"paper model, p={P}, k={K}, eta={ETA}, Q(0) = I, R(0) = 0", fontsize=10)
    return save_figure(fig, out_dir / "finite_n_escape.png")


def noise_plateau_risk() -> float:

    return plateau_coefficients(P, K, ETA).risk_plateau


@functools.cache
def paired_ode_escapes(runs: SGDRuns) -> np.ndarray:
    """Escape times of the ODE from each SGD run's own measured start."""

    alpha_max = float(np.ceil(np.nanmax(runs.escape) + 10.0 + _noise().eq8_shift()))
    grid = np.arange(0.0, alpha_max + RECORD_STEP / 2, RECORD_STEP)
    run = integrate(runs.Q0, runs.R0, np.eye(K), eta=ETA, alpha_max=grid[-1], alpha_eval=grid)
    return np.asarray(escape_time(run))


def _eq8_runs(sizes: dict) -> list[SGDRuns]:
    """The Eq. 8 runs shared by ``finite_n_eq8`` and ``finite_n_implicit``."""
    out = []
    for method, Ns, replicas in (("overlaps", sizes["reduced_N"], sizes["replicas"]),
                                 ("sde", sizes["eq8_sde_N"], sizes["sde_replicas"])):
        for i, N in enumerate(Ns):
            out.append(sgd_runs(method, N, "eq8", replicas, 300 + i, _horizon(N, SETTLE)))
    return out


def _shift_ks(sample: np.ndarray, reference: np.ndarray) -> tuple[float, float, float]:
    """(mean of ``reference`` minus mean of ``sample``, its standard error, two-sample KS statistic)."""
    from scipy.stats import ks_2samp

    a, b = sample[np.isfinite(sample)], reference[np.isfinite(reference)]
    shift = float(np.mean(b) - np.mean(a))
    se = float(np.sqrt(np.var(a, ddof=1) / a.size + np.var(b, ddof=1) / b.size))
    return shift, se, float(ks_2samp(a, b).statistic)


@figure("finite_n_eq8")
def finite_n_eq8(out_dir: Path, small: bool) -> Path:
    """Eq. 8 revisited: ODE from random R(0) of variance q0/N against finite-N SGD from the same starts."""
    plt = _pyplot()
    sizes = _sizes(small)
    noise = _noise()
    predicted = noise.eq8_shift()
    # the law of escape times at N -> infinity depends on the variance of R(0) only through a shift
    # log(v' / v) / (2 g_R): the KS distance of a shift, measured on large ODE samples
    big = 4 * sizes["ode_starts"]
    N_ref = 10**6
    asymptotic_ks = _shift_ks(ode_escapes(N_ref, Q0 + noise.variance, big, 11), ode_escapes(N_ref, Q0, big, 12))[2]
    print(f"finite_n_eq8: p={P}, k={K}, eta={ETA}, Q(0)=I; S = {noise.variance:.4f}; predicted mean shift "
          f"(ODE from Eq. 8 minus SGD from Eq. 8) log(1 + S/q0)/(2 g_R) = {predicted:.4f}; KS of that shift "
          f"(ODE samples of {big} at N = 1e6) {asymptotic_ks:.3f}")
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4.6))
    rows = []
    for runs in _eq8_runs(sizes):
        N = runs.N
        ode8 = ode_escapes(N, Q0, sizes["ode_starts"], 20)
        corrected = ode_escapes(N, Q0 + noise.variance, sizes["ode_starts"], 21)
        paired = paired_ode_escapes(runs) - runs.escape
        paired_mean, paired_se = _mean_se(paired)
        shift, shift_se, ks = _shift_ks(runs.escape, ode8)
        c_shift, c_se, c_ks = _shift_ks(runs.escape, corrected)
        zero = sgd_runs(runs.method, N, "zero", sizes["replicas"] if runs.method == "overlaps"
                        else sizes["sde_replicas"], 100 + (sizes["reduced_N"] if runs.method == "overlaps"
                                                          else sizes["sde_N"]).index(N), _horizon(N))
        z_shift, z_se, z_ks = _shift_ks(zero.escape, ode8)
        rows.append((runs.method, N, paired_mean, paired_se, shift, shift_se, ks, c_shift, c_se, c_ks, z_shift, z_ks))
        print(f"  {runs.method:8} N={N:>9} ({runs.escape.size} runs, {np.sum(~np.isfinite(runs.escape))} not escaped): "
              f"SGD mean escape {np.nanmean(runs.escape):.3f}; ODE(Eq. 8) - SGD: paired {paired_mean:.3f} +- "
              f"{paired_se:.3f}, unpaired {shift:.3f} +- {shift_se:.3f}, KS {ks:.3f}; ODE(q0 + S) - SGD "
              f"{c_shift:.3f} +- {c_se:.3f}, KS {c_ks:.3f}; ODE(Eq. 8) - SGD from R(0)=0 {z_shift:.3f} +- "
              f"{z_se:.3f}, KS {z_ks:.3f}")
        if runs is _eq8_runs(sizes)[len(sizes["reduced_N"]) - 1]:
            _ecdf(left, runs.escape, color="k", lw=2, label=f"SGD from Eq. 8 (N={N}, overlap chain)")
            _ecdf(left, ode8, color="C0", label="ODE from Eq. 8 (variance q0/N)")
            _ecdf(left, corrected, color="C2", ls="--", label="ODE from variance (q0 + S)/N")
            _ecdf(left, zero.escape, color="C3", lw=1, label="SGD from R(0) = 0")
            left.set(title=f"escape-time laws at N = {N}", xlabel=r"escape $\alpha$",
                     ylabel=r"fraction of runs escaped by $\alpha$")
    rows = np.array([r[1:] for r in rows], dtype=float), [r[0] for r in rows]
    table, methods = rows
    for method, marker, offset in (("overlaps", "o", 1.0), ("sde", "s", 1.08)):
        pick = np.array([m == method for m in methods])
        if not pick.any():
            continue
        N = table[pick, 0] * offset
        fill = dict(mfc="none") if method == "sde" else {}
        middle.errorbar(N, table[pick, 1], table[pick, 2], fmt=marker, color="C0", **fill,
                        label=f"ODE(Eq. 8) - SGD, paired ({method})")
        middle.errorbar(N, table[pick, 6], table[pick, 7], fmt=marker, color="C2", **fill,
                        label=f"ODE((q0 + S)/N) - SGD ({method})")
        right.plot(N, table[pick, 5], marker, color="C0", **fill, label=f"ODE(Eq. 8) vs SGD from Eq. 8 ({method})")
        right.plot(N, table[pick, 8], marker, color="C2", **fill, label=f"ODE((q0 + S)/N) vs SGD ({method})")
        right.plot(N, table[pick, 10], marker, color="C3", **fill, label=f"ODE(Eq. 8) vs SGD from R(0)=0 ({method})")
    middle.axhline(predicted, color="C0", ls="--", label=f"log(1 + S/q0)/(2 g_R) = {predicted:.2f}")
    middle.axhline(0.0, color="C2", ls=":")
    middle.set(xscale="log", xlabel="input dimension $N$", ylabel=r"mean escape difference ($\alpha$)",
               title="how much later the ODE escapes")
    middle.legend(fontsize=7)
    right.axhline(asymptotic_ks, color="C0", ls="--", label="KS of the predicted shift (N -> inf)")
    right.set(xscale="log", xlabel="input dimension $N$", ylabel="Kolmogorov-Smirnov statistic $D$",
              title="distance between escape-time laws")
    right.legend(fontsize=7)
    left.legend(fontsize=8)
    fig.suptitle(f"paper model, p={P}, k={K}, eta={ETA}, Q(0) = I: Eq. 8 starts, S = {noise.variance:.3f}",
                 fontsize=10)
    return save_figure(fig, out_dir / "finite_n_eq8.png")


def _closest_gap(Q_end: np.ndarray, R_end: np.ndarray, R_start: np.ndarray) -> np.ndarray:
    """``|W_end - W_closest(W_start)|^2 / N`` from overlaps (``T = I``)."""

    Q_t, R_t = closest_solution(R_start)
    return (np.trace(Q_end, axis1=-2, axis2=-1) - 2 * np.einsum("...jr,...jr->...", R_end, R_t)
            + np.trace(Q_t, axis1=-2, axis2=-1))


def _fit_power(N: np.ndarray, mean: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """Weighted log-log slope of ``mean`` against ``N`` and its standard error."""
    x, y, w = np.log(N), np.log(mean), (mean / se) ** 2
    X = np.stack([np.ones_like(x), x], axis=1)
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    return float((cov @ (X.T @ (w * y)))[1]), float(np.sqrt(cov[1, 1]))


def _flipped(R_start: np.ndarray, R_end: np.ndarray) -> np.ndarray:
    """For p = k: whether ``det R`` changed sign (the selected ``Omega`` is then a reflection of the closest one)."""
    return np.linalg.det(R_start) * np.linalg.det(R_end) < 0


def eq8_selection_gap(samples: int = 200_000, seed: int = 0) -> tuple[float, float, float]:
    """Predicted mean of ``|W_end - W_closest(W_0)|^2 / N`` from an Eq. 8 start as N -> infinity.

    The selected point is ``omega(R(0) + Z)`` with ``Z`` the noise-equivalent overlap
    (variance ``S/N`` against ``q0/N`` for ``R(0)``): the mean of
    ``(p/k) |omega(R0 + Z) - omega(R0)|^2``, Monte Carlo (value, standard error), and for
    p = k the probability that ``det(R0 + Z)`` and ``det(R0)`` differ in sign.
    """
    def polar(R: np.ndarray) -> np.ndarray:
        # U V^T; Gaussian R is singular with probability 0 (numerics.omega refuses near-singular R)
        U, _, Vt = np.linalg.svd(R, full_matrices=False)
        return U @ Vt

    rng = np.random.default_rng(seed)
    R0 = rng.normal(scale=np.sqrt(Q0), size=(samples, P, K))
    Z = rng.normal(scale=np.sqrt(_noise().variance), size=(samples, P, K))
    gap = (P / K) * np.sum((polar(R0 + Z) - polar(R0)) ** 2, axis=(-2, -1))
    flips = float(np.mean(_flipped(R0, R0 + Z))) if P == K else float("nan")
    return float(gap.mean()), float(gap.std(ddof=1) / np.sqrt(samples)), flips


@figure("finite_n_implicit")
def finite_n_implicit(out_dir: Path, small: bool) -> Path:
    """Implicit bias at finite N: distance from where SGD ends to the closest zero-error solution of its start."""
    plt = _pyplot()
    sizes = _sizes(small)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    print(f"finite_n_implicit: p={P}, k={K}, eta={ETA}, Q(0)=I; gap = |W_end - W_closest(W_0)|^2 / N, mean +- se")
    fits = {}
    for method, Ns, seeds in (("overlaps", sizes["macro_reduced_N"], 500),
                              ("sde", sizes["macro_sde_N"], 600)):
        points = []
        for i, N in enumerate(Ns):
            alpha = sizes.get("macro_alpha", MACRO_ALPHA[method])
            runs = sgd_runs(method, N, "macro", sizes["macro_replicas"], seeds + i, alpha)
            gap = _closest_gap(runs.Q_end, runs.R_end, runs.R0)
            mean, se = _mean_se(gap)
            points.append((N, mean, se))
            print(f"  macroscopic start, {method:8} N={N:>9}: gap {mean:.3e} +- {se:.1e} "
                  f"({gap.size} runs, alpha = {alpha:g}, {runs.seconds:.1f} s)")
        if not points:
            continue
        N, mean, se = map(np.array, zip(*points))
        fill = dict(mfc="none") if method == "sde" else {}
        left.errorbar(N, mean, se, fmt="o" if method == "overlaps" else "s", color="C0", **fill,
                      label="exact overlap chain" if method == "overlaps" else "SDE")
        if N.size >= 2:
            slope, slope_se = _fit_power(N, mean, se)
            fits[method] = (slope, slope_se)
            print(f"  macroscopic start, {method}: power {slope:.3f} +- {slope_se:.3f}")
            x = np.geomspace(N[0], N[-1], 20)
            left.plot(x, mean[0] * (x / N[0]) ** slope, ls="-" if method == "overlaps" else "--", color="k", lw=0.8,
                      label=f"fit ({method}): N^({slope:.2f} $\\pm$ {slope_se:.2f})")
    left.set(xscale="log", yscale="log", xlabel="input dimension $N$", ylabel=r"$|W_{end} - \hat W(W_0)|^2 / N$",
             title="macroscopic start R(0) = diag(0.8, 0.6)\n(the ODE lands on the closest solution)")
    left.legend(fontsize=8)
    predicted, predicted_se, flips = eq8_selection_gap(20_000 if small else 400_000)
    print(f"  Eq. 8 start: predicted N -> inf gap (p/k) <|omega(R0 + Z) - omega(R0)|^2> = {predicted:.4f} +- "
          f"{predicted_se:.4f} (Z of variance S against q0); det R changes sign with probability {flips:.4f}")
    for runs in _eq8_runs(sizes):
        gap = _closest_gap(runs.Q_end, runs.R_end, runs.R0)
        mean, se = _mean_se(gap)
        print(f"  Eq. 8 start, {runs.method:8} N={runs.N:>9}: gap {mean:.4f} +- {se:.4f} ({gap.size} runs; "
              f"median {np.median(gap):.4f}, largest {np.max(gap):.3f}; det R changed sign in "
              f"{np.mean(_flipped(runs.R0, runs.R_end)):.3f})")
        fill = dict(mfc="none") if runs.method == "sde" else {}
        right.errorbar(runs.N * (1.08 if runs.method == "sde" else 1.0), mean, se,
                       fmt="o" if runs.method == "overlaps" else "s", color="C1", **fill)
    right.plot([], [], "o", color="C1", label="exact overlap chain")
    right.plot([], [], "s", color="C1", mfc="none", label="SDE")
    right.axhline(predicted, color="k", ls="--",
                  label=f"(p/k) <|omega(R0+Z) - omega(R0)|^2> = {predicted:.3f}")
    right.set(xscale="log", xlabel="input dimension $N$", ylabel=r"$|W_{end} - \hat W(W_0)|^2 / N$",
              title="Eq. 8 start: the selected solution stays random\n(the ODE from the same start: gap 0)")
    right.set_ylim(bottom=0)
    right.legend(fontsize=8)
    fig.suptitle(f"paper model, p={P}, k={K}, eta={ETA}, Q(0) = I", fontsize=10)
    return save_figure(fig, out_dir / "finite_n_implicit.png")
