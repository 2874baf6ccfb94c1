"""The escape-law study at an overparameterised width: p = 4 students, k = 1 teacher.

The set-up of :mod:`numerics.figures.escape_laws` (student ``x**2/2 + x**3/6`` with readout 1,
teachers He1, He2, He3), with four students from ``Q(0) = I`` and ``R(0) ~ N(0, 1/N)`` entry-wise.
The p = 1 rule (the first alpha at which some ``|R_j|`` reaches 1/2) does not measure the same
event at p = 4: with He1 the four students first learn the teacher direction together (each
``R_j`` near 0.2, every student's own norm shrunk to ``Q_jj`` near 0.09) and only much later does
one student take over the teacher and the others die; that second stage breaks a symmetry among
students and lasts of order ``ln N``. The escape from the uninformed start is the first stage, so
the escape here is *weak recovery* (:func:`weak_recovery`): the first alpha at which some
student's normalised overlap ``|R_j| / sqrt(Q_jj T)`` (the cosine between its weight vector and
the teacher's) reaches 1/2. It is insensitive to the signs of the ``R_j`` (an even teacher is
learned with either sign, so the readout-weighted sum ``sum_j R_j`` can cancel) and to the
student's norm shrinking. The p = 1 rule is reported too (``specialisation``).

The ODE runs from a few Gaussian draws of ``R(0)`` (:data:`DRAWS`, one batched solve); the exact
overlap chain at N <= 1e3 and the SDE at larger N, with a handful of replicas, for He1 and He2
(He2 at both rates).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from numerics.figures import figure, save_figure
from numerics.figures.escape_laws import (
    ETA,
    LAWS,
    LEVEL,
    SDE_STEP,
    STUDENT,
    TEACHERS,
    EscapeLaw,
    first_passage,
    fit_escape_law,
    learning_rate,
    plot_method_means,
    study_model,
)

#: The overparameterised width (students), against one teacher.
WIDTH = 4
#: Gaussian draws of R(0) the ODE averages over.
DRAWS = 8
#: Panels: (information exponent, learning-rate schedule).
PANELS = ((1, "fixed"), (2, "fixed"), (2, "scaled"), (3, "scaled"))


def weak_recovery(alpha: np.ndarray, Q: np.ndarray, R: np.ndarray, T: np.ndarray | float = 1.0,
                  level: float = LEVEL) -> np.ndarray:
    """First alpha at which some student's normalised overlap ``|R_jm| / sqrt(Q_jj T_mm)`` reaches ``level``.

    Parameters
    ----------
    alpha : array, shape (n,)
        Increasing record times.
    Q : array, shape (..., n, p, p)
        Student-student overlaps along the records.
    R : array, shape (..., n, p, k)
        Student-teacher overlaps.
    T : float or array, shape (k, k)
        Teacher-teacher overlaps.
    level : float
        Level in (0, 1].

    Returns
    -------
    array, shape (...)
        Linearly interpolated between records; NaN where no student reaches ``level``.
    """
    Q, R = np.asarray(Q, dtype=float), np.asarray(R, dtype=float)
    T = np.atleast_2d(np.asarray(T, dtype=float))
    if Q.ndim < 3 or R.ndim != Q.ndim or R.shape[:-1] != Q.shape[:-1] or T.shape != (R.shape[-1],) * 2:
        raise ValueError(f"weak_recovery needs Q (..., n, p, p), R (..., n, p, k) and T (k, k); got Q {Q.shape}, "
                         f"R {R.shape}, T {T.shape}")
    if not 0 < level <= 1:
        raise ValueError(f"level must lie in (0, 1], got {level}")
    norms = np.sqrt(np.maximum(np.diagonal(Q, axis1=-2, axis2=-1), 0.0))[..., :, None] * np.sqrt(np.diag(T))
    # a student whose norm has died (Q_jj = 0) has R_j = 0 too: it carries no overlap
    cosine = np.abs(R) / np.where(norms > 0, norms, np.inf)
    return first_passage(alpha, cosine.max(axis=(-2, -1)), level)


@functools.cache
def ode_runs(k_star: int, N: float, eta: float, p: int, draws: int = DRAWS):
    """The ODE from ``Q(0) = I`` and ``draws`` Gaussian starts ``R(0) ~ N(0, 1/N)`` (seed 0), one batched solve.

    Returns
    -------
    IntegrationResult
        ``Q`` of shape (draws, n, p, p), ``R`` (draws, n, p, 1), ``risk`` (draws, n).
    """
    from numerics.ode.integrate import integrate

    alpha_max = 400.0 / eta
    if k_star >= 3:
        # the scaled rate's escape grows faster than 1/eta (escape_laws.ode_escape); capped, the rest decays
        alpha_max = min(3e5, alpha_max * np.sqrt(N / 100.0))
    grid = np.concatenate([[0.0], np.geomspace(1e-4 * alpha_max, alpha_max, 3000)])
    rng = np.random.default_rng(0)
    R0 = rng.normal(scale=N**-0.5, size=(draws, p, 1))
    Q0 = np.broadcast_to(np.eye(p), (draws, p, p)).copy()
    return integrate(Q0, R0, np.ones((draws, 1, 1)), eta=eta, alpha_max=alpha_max, alpha_eval=grid,
                     model=study_model(k_star))


def ode_escapes(k_star: int, N: float, eta: float, p: int, draws: int = DRAWS) -> tuple[np.ndarray, np.ndarray]:
    """The escape times of :func:`ode_runs`.

    Returns
    -------
    (recovery, specialisation) : arrays, shape (draws,)
        Weak recovery (:func:`weak_recovery`) and the p = 1 rule (some ``|R_j| >= LEVEL``); NaN: not reached.
    """
    run = ode_runs(k_star, N, eta, p, draws)
    recovery = weak_recovery(run.alpha, run.Q, run.R)
    specialisation = first_passage(run.alpha, np.abs(run.R[..., 0]).max(axis=-1), LEVEL)
    return recovery, specialisation


def describe_stages(k_star: int, N: float, eta: float, draws: int) -> str:
    """The p = 4 ODE's state at weak recovery and at its end (means over the starts), as one line."""
    run = ode_runs(k_star, N, eta, WIDTH, draws)
    recovery = weak_recovery(run.alpha, run.Q, run.R)
    at = np.searchsorted(run.alpha, np.nan_to_num(recovery, nan=run.alpha[-1]))
    starts = np.arange(draws)
    R, Q = run.R[starts, at, :, 0], np.diagonal(run.Q[starts, at], axis1=-2, axis2=-1)
    end_R = run.R[:, -1, :, 0]
    alive = np.abs(end_R) > 0.05
    return (f"at recovery |R_j| {np.abs(R).mean():.3g}, Q_jj {Q.mean():.3g}, risk {run.risk[starts, at].mean():.4g}; "
            f"at alpha = {run.alpha[-1]:.4g} risk {run.risk[:, -1].mean():.4g}, students with |R_j| > 0.05: "
            f"{alive.sum(axis=-1).tolist()}, sum_j R_j < 0 in {int(np.sum(end_R.sum(axis=-1) < 0))} of {draws} starts, "
            f"R_j of both signs in {int(np.sum((end_R * alive > 0).any(-1) & (end_R * alive < 0).any(-1)))}")


@functools.cache
def finite_n_escapes(method: str, k_star: int, N: float, eta: float, replicas: int, seed: int,
                     sde_step: float = SDE_STEP) -> np.ndarray:
    """Weak-recovery times of ``replicas`` runs at width :data:`WIDTH` (``method``: ``"sde"`` or ``"overlaps"``).

    Every run lasts twice the ODE's mean recovery time; the SDE steps by ``dalpha = sde_step / eta``.

    Returns
    -------
    array, shape (replicas,)
        NaN where a run has not recovered.
    """
    alpha_max = 2.0 * float(np.nanmean(ode_escapes(k_star, N, eta, WIDTH)[0]))
    grid = np.linspace(0.0, alpha_max, 1001)
    if method == "sde":
        from numerics.simulators.sde import simulate_sde

        rng = np.random.default_rng(seed)
        R0 = rng.normal(scale=N**-0.5, size=(replicas, WIDTH, 1))
        Q0 = np.broadcast_to(np.eye(WIDTH), (replicas, WIDTH, WIDTH)).copy()
        run = simulate_sde(Q0, R0, np.eye(1), N=N, eta=eta, model=study_model(k_star), alpha_max=alpha_max,
                           replicas=replicas, seed=seed, record=grid, progress=False, dalpha=sde_step / eta)
    elif method == "overlaps":
        from numerics.simulators.weights import simulate

        run = simulate(N=int(N), p=WIDTH, k=1, eta=eta, model=study_model(k_star), alpha_max=alpha_max,
                       replicas=replicas, seed=seed, method=method, record=grid, progress=False, q0=1.0)
    else:
        raise ValueError(f"unknown method {method!r}; use 'sde' or 'overlaps'")
    shape = (replicas, np.asarray(run.alpha).size)
    return weak_recovery(np.asarray(run.alpha), np.asarray(run.Q).reshape(shape + (WIDTH, WIDTH)),
                         np.asarray(run.R).reshape(shape + (WIDTH, 1)))


def _sizes(small: bool) -> dict:
    if small:
        return dict(panels=PANELS[:1], ode_N=(1e2, 1e3), draws=2, chain_N=(1e2,), sde_N=(), replicas=2)
    return dict(panels=PANELS, ode_N=tuple(10.0**e for e in range(2, 9)), draws=DRAWS, chain_N=(1e2, 1e3),
                sde_N=(1e4, 1e8), replicas=8)


def _mean(values: np.ndarray) -> str:
    done = values[np.isfinite(values)]
    if done.size == 0:
        return f"none of {values.size}"
    error = f" +- {done.std(ddof=1) / np.sqrt(done.size):.2g}" if done.size > 1 else ""
    return f"{done.mean():.4g}{error} ({done.size}/{values.size})"


def _fit(Ns: list, samples: list, law: str) -> EscapeLaw | None:
    kept = [(N, s) for N, s in zip(Ns, samples) if np.sum(np.isfinite(s)) >= 1]
    if len(kept) < 2:
        return None
    return fit_escape_law(np.array([N for N, _ in kept]), [s for _, s in kept], law)


def _run_panel(k_star: int, schedule: str, sizes: dict) -> dict:
    """ODE escapes at widths 1 and WIDTH and the finite-N samples of one panel, printed with their fits."""
    print(f"  k*={k_star} ({TEACHERS[k_star]}), eta {schedule}")
    ode = {}
    for p in (1, WIDTH):
        for N in sizes["ode_N"]:
            ode[p, N] = ode_escapes(k_star, N, learning_rate(k_star, N, schedule), p, sizes["draws"])
            print(f"    ODE p={p} N={N:7.0e} eta={learning_rate(k_star, N, schedule):.3g}: recovery "
                  f"{_mean(ode[p, N][0])}, some |R_j| >= {LEVEL}: {_mean(ode[p, N][1])}")
    if schedule == "fixed":
        N = sizes["ode_N"][-1]
        print(f"    ODE p={WIDTH} N={N:7.0e} stages: {describe_stages(k_star, N, ETA, sizes['draws'])}")
    samples = {}
    if k_star <= 2:
        for method, Ns in (("overlaps", sizes["chain_N"]), ("sde", sizes["sde_N"])):
            for i, N in enumerate(Ns):
                samples[method, N] = finite_n_escapes(method, k_star, N, learning_rate(k_star, N, schedule),
                                                      sizes["replicas"], 10 * k_star + i)
                print(f"    {method:8} p={WIDTH} N={N:7.0e}: recovery {_mean(samples[method, N])}")
        if sizes["sde_N"] and k_star == 1:
            # the Euler bias of the coarse step: the same replicas at half the step
            N = sizes["sde_N"][-1]
            halved = finite_n_escapes("sde", k_star, N, ETA, sizes["replicas"], 10 * k_star + len(sizes["sde_N"]) - 1,
                                      sde_step=SDE_STEP / 2)
            print(f"    sde      p={WIDTH} N={N:7.0e}, half the step (dalpha = {SDE_STEP / 2 / ETA:g}): recovery "
                  f"{_mean(halved)}")
    fits = {}
    law = LAWS[k_star]
    for p in (1, WIDTH):
        for index, criterion in ((0, "recovery"), (1, "|R_j|")):
            fits[f"ODE p={p} {criterion}"] = _fit(list(sizes["ode_N"]), [ode[p, N][index] for N in sizes["ode_N"]],
                                                  law)
    by_N = sorted(samples, key=lambda key: key[1])
    fits[f"chain+SDE p={WIDTH}"] = _fit([N for _, N in by_N], [samples[key] for key in by_N], law)
    if k_star == 1:
        # the specialisation among students leaves a symmetric state: a log law
        fits[f"ODE p={WIDTH} |R_j| (log)"] = _fit(list(sizes["ode_N"]), [ode[WIDTH, N][1] for N in sizes["ode_N"]],
                                                  "log")
    if k_star == 2 and schedule == "scaled":
        # Ben Arous et al.'s rate eta ~ 1/ln N: alpha ~ ln(N)**2
        for p in (1, WIDTH):
            fits[f"ODE p={p} recovery"] = _fit(list(sizes["ode_N"]), [ode[p, N][0] for N in sizes["ode_N"]], "log2")
        fits[f"chain+SDE p={WIDTH}"] = _fit([N for _, N in by_N], [samples[key] for key in by_N], "log2")
    for name, fit in fits.items():
        if fit is not None:
            print(f"    fit {name:22} {fit.law:5}: slope {fit.slope:.4f} (95% interval {fit.interval[0]:.4f} .. "
                  f"{fit.interval[1]:.4f})")
    return dict(ode=ode, samples=samples, fits=fits)


def _draw_panel(ax, k_star: int, schedule: str, found: dict) -> None:
    ode = found["ode"]
    Ns = sorted({N for (_, N) in ode})
    styles = {(WIDTH, 0): ("-", "k", f"ODE $p={WIDTH}$, recovery"),
              (WIDTH, 1): ("--", "k", rf"ODE $p={WIDTH}$, some $|R_j| \geq 1/2$"),
              (1, 0): ("-", "0.6", "ODE $p=1$, recovery"), (1, 1): (":", "0.6", r"ODE $p=1$, $|R| \geq 1/2$")}
    for (p, index), (line, colour, label) in styles.items():
        means = np.array([np.nanmean(ode[p, N][index]) if np.any(np.isfinite(ode[p, N][index])) else np.nan
                          for N in Ns])
        shown = np.isfinite(means)
        ax.plot(np.array(Ns)[shown], means[shown], line, color=colour, lw=1, label=label)
    plot_method_means(ax, found["samples"])
    if any(np.any(np.isfinite(v[0])) for v in ode.values()):
        ax.set_yscale("log")
    ax.set(xscale="log", xlabel="input dimension $N$", ylabel=r"escape $\alpha$",
           title=f"He{k_star} teacher ($k^* = {k_star}$), $\\eta$ {schedule}")
    ax.legend(fontsize=6)


@figure("escape_laws_width")
def escape_laws_width(out_dir: Path, small: bool) -> Path:
    """Escape time against N at width p = 4 (k = 1): weak recovery against the p = 1 rule, and against p = 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = _sizes(small)
    print(f"escape_laws_width: student {STUDENT}, p = {WIDTH} (and 1), k = 1, Q(0) = I, R(0) ~ N(0, 1/N); "
          f"recovery: some |R_j|/sqrt(Q_jj) >= {LEVEL}; ODE mean over {sizes['draws']} draws of R(0) (+- their "
          f"standard error); SDE step dalpha = {SDE_STEP}/eta")
    panels = sizes["panels"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, (k_star, schedule) in zip(axes[0], panels):
        _draw_panel(ax, k_star, schedule, _run_panel(k_star, schedule, sizes))
    fig.suptitle(f"escape from $R \\sim N^{{-1/2}}$ at width $p = {WIDTH}$: student {STUDENT}, $k = 1$", fontsize=10)
    return save_figure(fig, out_dir / "escape_laws_width.png")
