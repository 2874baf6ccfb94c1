"""Escape time of finite-N one-pass SGD against N, by the teacher's information exponent.

One student ``sigma(x) = x**2/2 + x**3/6`` (readout 1, p = k = 1) learns the teachers He1, He2
and He3 (information exponents k* = 1, 2, 3), from ``Q(0) = 1`` and ``R(0)`` of order ``N**-1/2``.
The student has all three Hermite components (1/2, 1/2, 1/6 at unit norm) and ``sigma'(0) = 0``:
the student's own output then pulls ``R`` back to 0 at a rate ``eta <sigma'^2 + sigma sigma''>``
that vanishes with ``Q``, instead of at least ``eta sigma'(0)**2``. With a linear part
(``x + x**2/2 + x**3/6``) the ODE has ``R = 0`` attractive for He3 at every eta: no escape law exists.

The escape time is the first alpha at which ``|R| >= 1/2`` (:func:`first_passage`). It is measured
by the ODE from ``R(0) = N**-1/2``, the exact overlap chain and weight-space SGD where ``alpha N``
is affordable, and the diffusion approximation (``simulate_sde``) at a few N: its increment
moments for this cubic student are costly per step (any number of replicas), so it runs
with an explicit, coarse step ``dalpha = SDE_STEP / eta``. Two learning-rate choices: eta fixed
(:data:`ETA`), and eta scaled with N as in Ben Arous, Gheissari and Jagannath (2021)
(:func:`scaled_eta`). Laws are fitted by :func:`fit_escape_law` with bootstrap intervals.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numerics.figures import figure, save_figure
from numerics.simulators.common import SimulationError

#: The student activation shared by the three teachers.
STUDENT = "x**2/2 + x**3/6"
#: Teachers by information exponent.
TEACHERS = {1: "x", 2: "x**2 - 1", 3: "x**3 - 3*x"}
#: Fixed learning rate; the scaled rates equal it (He3: ETA_HE3) at N = N_REF.
ETA, ETA_HE3, N_REF = 0.05, 0.01, 100.0
#: Escape: the first alpha at which |R| reaches this level.
LEVEL = 0.5
#: Euler-Maruyama step of the SDE in units of 1/eta (eta * dalpha).
SDE_STEP = 0.1
#: Largest ``alpha * N`` simulated by the overlap chain and by weight-space SGD.
CHAIN_WORK, WEIGHT_WORK = 2e6, 2e5


def scaled_eta(k_star: int, N: float) -> float:
    """Learning rate scaled with N as in Ben Arous, Gheissari and Jagannath (2021).

    ``ETA`` for k* = 1, ``ETA ln(N_REF) / ln N`` for k* = 2 and ``ETA_HE3 (N_REF / N)**((k* - 2) / 2)``
    for k* >= 3 (so that ``eta`` stays below ``R(0) ~ N**-1/2``).
    """
    if k_star < 1 or N <= 1:
        raise ValueError(f"scaled_eta needs k_star >= 1 and N > 1, got k_star={k_star}, N={N}")
    if k_star == 1:
        return ETA
    if k_star == 2:
        return ETA * np.log(N_REF) / np.log(N)
    return ETA_HE3 * (N_REF / N) ** ((k_star - 2) / 2)


def learning_rate(k_star: int, N: float, schedule: str) -> float:
    """The learning rate of a schedule: ``"fixed"`` (``ETA`` for every teacher) or ``"scaled"`` (:func:`scaled_eta`)."""
    if schedule == "fixed":
        return ETA
    if schedule == "scaled":
        return scaled_eta(k_star, N)
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; use 'fixed' or 'scaled'")


def first_passage(alpha: np.ndarray, values: np.ndarray, level: float) -> np.ndarray:
    """First alpha at which ``|values|`` reaches ``level``, linearly interpolated between records.

    Parameters
    ----------
    alpha : array, shape (n,)
        Increasing record times.
    values : array, shape (..., n)
        Recorded values (for example ``R[..., 0, 0]``).
    level : float
        Positive level.

    Returns
    -------
    array, shape (...)
        NaN where ``|values|`` stays below ``level``.
    """
    alpha, values = np.asarray(alpha, dtype=float), np.abs(np.asarray(values, dtype=float))
    if alpha.ndim != 1 or values.shape[-1] != alpha.size or alpha.size < 2:
        raise ValueError(f"first_passage needs alpha of shape (n,), n >= 2, and values (..., n); got "
                         f"{alpha.shape} and {values.shape}")
    if not level > 0:
        raise ValueError(f"level must be positive, got {level}")
    above = values >= level
    hit = above.any(axis=-1)
    i = np.argmax(above, axis=-1)
    j = np.maximum(i - 1, 0)
    v0, v1 = np.take_along_axis(values, j[..., None], -1)[..., 0], np.take_along_axis(values, i[..., None], -1)[..., 0]
    a0, a1 = alpha[j], alpha[i]
    fraction = np.where(v1 > v0, (level - v0) / np.where(v1 > v0, v1 - v0, 1.0), 1.0)
    crossing = np.where(i == 0, alpha[0], a0 + np.clip(fraction, 0.0, 1.0) * (a1 - a0))
    return np.where(hit, crossing, np.nan)


@dataclass
class EscapeLaw:
    """A fitted law ``alpha_escape(N)``: ``law`` is ``"power"`` (``ln alpha = a + b ln N``), ``"log"``
    (``alpha = a + b ln N``) or ``"log2"`` (``alpha = a + b ln(N)**2``); ``slope`` is ``b`` with a 95 %
    bootstrap interval ``interval`` over replicas (``(b, b)`` for one deterministic sample per N)."""

    law: str
    slope: float
    interval: tuple[float, float]
    intercept: float


def _design(N: np.ndarray, law: str) -> np.ndarray:
    x = np.log(N)
    if law == "power" or law == "log":
        return x
    if law == "log2":
        return x**2
    raise ValueError(f"unknown law {law!r}; use 'power', 'log' or 'log2'")


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def fit_escape_law(N: np.ndarray, samples: list[np.ndarray], law: str, *, boot: int = 400,
                   seed: int = 0) -> EscapeLaw:
    """Least-squares fit of the mean escape time against N, with a bootstrap over replicas.

    Parameters
    ----------
    N : array, shape (m,)
        Input dimensions (m >= 2).
    samples : list of m arrays, shapes (n_i,)
        Escape times per N; NaN (not escaped) are dropped. One value per N gives the plain fit.
    law : {"power", "log", "log2"}
        See :class:`EscapeLaw`.
    boot, seed : int
        Bootstrap resamples and their seed.

    Returns
    -------
    EscapeLaw
    """
    N = np.asarray(N, dtype=float)
    kept = [np.asarray(s, dtype=float)[np.isfinite(s)] for s in samples]
    if N.ndim != 1 or N.size != len(kept) or N.size < 2 or any(s.size == 0 for s in kept):
        raise ValueError(f"fit_escape_law needs >= 2 values of N, each with an escaped sample; got N {N} and "
                         f"{[s.size for s in kept]} escaped samples")
    x = _design(N, law)

    def fit(means: np.ndarray) -> tuple[float, float]:
        return _line(x, np.log(means) if law == "power" else means)

    slope, intercept = fit(np.array([s.mean() for s in kept]))
    if all(s.size == 1 for s in kept):
        return EscapeLaw(law, slope, (slope, slope), intercept)
    rng = np.random.default_rng(seed)
    slopes = [fit(np.array([rng.choice(s, s.size).mean() for s in kept]))[0] for _ in range(boot)]
    low, high = np.percentile(slopes, [2.5, 97.5])
    return EscapeLaw(law, slope, (float(low), float(high)), intercept)


@functools.cache
def study_model(k_star: int):
    """The study's model: student :data:`STUDENT` learning the teacher of information exponent ``k_star``."""
    from derive.model.model import Model

    return Model(student_activation=STUDENT, teacher_activation=TEACHERS[k_star], student_readout="1",
                 teacher_readout="1")


def _horizon(k_star: int, N: float, eta: float) -> float:
    """Run length: twice the ODE's escape time (``20 / eta`` when the ODE does not escape)."""
    escape = ode_escape(k_star, N, eta)
    return float(2.0 * escape if np.isfinite(escape) else 20.0 / eta)


@functools.cache
def ode_escape(k_star: int, N: float, eta: float) -> float:
    """Escape time of the ODE from ``Q(0) = 1``, ``R(0) = N**-1/2`` (NaN: ``|R|`` stays below LEVEL)."""
    from numerics.ode.integrate import integrate

    # He3 with the scaled rate escapes at alpha ~ N / eta**0 (module docstring): allow for sqrt(N) more
    alpha_max = 400.0 / eta * max(1.0, np.sqrt(N / N_REF)) if k_star >= 3 and eta < ETA else 400.0 / eta
    if k_star >= 3 and eta >= ETA:
        # R decays at this rate (no escape); a longer run only follows it to round-off, slowly
        alpha_max = 100.0 / eta
    grid = np.concatenate([[0.0], np.geomspace(1e-4 * alpha_max, alpha_max, 4000)])
    run = integrate(np.eye(1), np.full((1, 1), N**-0.5), np.eye(1), eta=eta, alpha_max=alpha_max,
                    alpha_eval=grid, model=study_model(k_star))
    return float(first_passage(run.alpha, run.R[:, 0, 0], LEVEL))


@functools.cache
def sgd_escapes(method: str, k_star: int, N: float, eta: float, replicas: int, seed: int,
                sde_step: float = SDE_STEP) -> np.ndarray:
    """Escape times of ``replicas`` finite-N runs (``method``: ``"sde"``, ``"overlaps"`` or ``"weights"``)
    from ``Q(0) = 1`` and ``R(0) ~ N(0, 1/N)``; NaN where a run has not escaped by :func:`_horizon`.
    The SDE steps by ``dalpha = sde_step / eta``."""
    alpha_max = _horizon(k_star, N, eta)
    grid = np.linspace(0.0, alpha_max, 2001)
    rng = np.random.default_rng(seed)
    R0 = rng.normal(scale=N**-0.5, size=(replicas, 1, 1))
    Q0 = np.ones((replicas, 1, 1))
    if method == "sde":
        from numerics.simulators.sde import simulate_sde

        run = simulate_sde(Q0, R0, np.eye(1), N=N, eta=eta, model=study_model(k_star), alpha_max=alpha_max,
                           replicas=replicas, seed=seed, record=grid, progress=False, dalpha=sde_step / eta)
    else:
        from numerics.simulators.weights import simulate

        # the simulators' own start: independent random unit vectors, R(0) ~ N(0, 1/N)
        run = simulate(N=int(N), p=1, k=1, eta=eta, model=study_model(k_star), alpha_max=alpha_max, replicas=replicas,
                       seed=seed, method=method, record=grid, progress=False, q0=1.0)
    R = np.asarray(run.R).reshape(replicas, -1)
    return first_passage(np.asarray(run.alpha), R, LEVEL)


def euler_bias(k_star: int, N: float, eta: float, replicas: int, seed: int,
               steps: tuple[float, ...] = (SDE_STEP, SDE_STEP / 2, SDE_STEP / 4)) -> list[tuple[float, float, float]]:
    """The SDE's mean escape time at each step ``dalpha = step / eta`` (same replicas, start and seed).

    Returns
    -------
    list of ``(dalpha, mean, standard error)``
        Over the replicas that escaped; the Euler-Maruyama scheme has weak order 1, so the
        bias (against the step-free limit) halves with the step.
    """
    found = []
    for step in steps:
        escape = sgd_escapes("sde", k_star, N, eta, replicas, seed, sde_step=step)
        done = escape[np.isfinite(escape)]
        error = done.std(ddof=1) / np.sqrt(done.size) if done.size > 1 else float("nan")
        found.append((step / eta, float(done.mean()) if done.size else float("nan"), float(error)))
    return found


def _sizes(small: bool) -> dict:
    if small:
        return dict(ode_N=(1e2, 1e3), sde_N=(), replicas=8, weight_replicas=2, chain_N=(1e2,), weight_N=(),
                    chain_work=1e5)
    return dict(ode_N=tuple(10.0**e for e in range(2, 9)), sde_N=(1e2, 1e4, 1e8), replicas=64,
                weight_replicas=4, chain_N=(1e2, 1e3, 1e4), weight_N=(1e2, 1e3), chain_work=CHAIN_WORK)


#: Theory of the escape time in alpha = samples / N for each schedule and information exponent.
THEORY = {("fixed", 1): "N^0", ("fixed", 2): "ln N (rate eta R)", ("fixed", 3): "no escape (eta**2 term wins)",
          ("scaled", 1): "N^0", ("scaled", 2): "ln(N)^2 (eta ~ 1/ln N)", ("scaled", 3): "N^(k*-2) = N^1"}
#: The law fitted to each information exponent.
LAWS = {1: "power", 2: "log", 3: "power"}


def _method_runs(k_star: int, schedule: str, sizes: dict) -> dict:
    """Escape samples by (method, N) for one panel; runs longer than the work caps are skipped."""
    samples = {}
    for method, Ns, replicas, cap in (("sde", sizes["sde_N"], sizes["replicas"], np.inf),
                                      ("overlaps", sizes["chain_N"], sizes["replicas"] // 4, sizes["chain_work"]),
                                      ("weights", sizes["weight_N"], sizes["weight_replicas"], WEIGHT_WORK)):
        for i, N in enumerate(Ns):
            eta = learning_rate(k_star, N, schedule)
            if method == "sde" and k_star >= 3 and (N > N_REF or schedule == "fixed"):
                continue  # hundreds of costly steps; the ODE and the chain show there is no escape
            if _horizon(k_star, N, eta) * N > cap:
                continue
            try:
                samples[method, N] = sgd_escapes(method, k_star, N, eta, replicas, 10 * k_star + i)
            except SimulationError as error:
                print(f"    {method:8} N={N:9.0e}: diverged ({error})")
    return samples


def _report(k_star: int, schedule: str, ode: dict, samples: dict) -> list[tuple[str, EscapeLaw]]:
    """Print every escape time and fit; returns the fits drawn."""
    print(f"  k*={k_star} ({TEACHERS[k_star]}), eta {schedule}; theory: alpha_escape ~ {THEORY[schedule, k_star]}")
    for N, value in ode.items():
        print(f"    ODE      N={N:9.0e} eta={learning_rate(k_star, N, schedule):.3g}: escape {value:.4g}")
    for (method, N), escape in sorted(samples.items()):
        done = escape[np.isfinite(escape)]
        mean = f"{done.mean():.4g} +- {done.std(ddof=1) / np.sqrt(done.size):.2g}" if done.size > 1 else "-"
        print(f"    {method:8} N={N:9.0e}: escaped {done.size}/{escape.size}, mean escape {mean}")
    fits = []
    law = LAWS[k_star]
    escaped_ode = {N: v for N, v in ode.items() if np.isfinite(v)}
    if len(escaped_ode) >= 2:
        fits.append(("ODE", fit_escape_law(np.array(list(escaped_ode)), [np.array([v]) for v in escaped_ode.values()],
                                           law)))
    for method in ("sde", "overlaps"):
        Ns = sorted(N for (m, N) in samples if m == method and np.sum(np.isfinite(samples[m, N])) >= 2)
        if len(Ns) >= 2:
            fits.append((method, fit_escape_law(np.array(Ns), [samples[method, N] for N in Ns], law)))
    if k_star == 2 and schedule == "scaled" and len(escaped_ode) >= 2:
        fits.append(("ODE", fit_escape_law(np.array(list(escaped_ode)),
                                           [np.array([v]) for v in escaped_ode.values()], "log2")))
    for name, fit in fits:
        print(f"    fit {name:8} {fit.law:5}: slope {fit.slope:.4f} (95% interval {fit.interval[0]:.4f} .. "
              f"{fit.interval[1]:.4f})")
    return fits


def plot_method_means(ax, samples: dict) -> None:
    """Mean escape alpha with its standard error against N, one marker per method.

    ``samples`` maps ``(method, N)`` to the replicas' escape alphas (NaN: no escape); methods
    ``"sde"``, ``"overlaps"``, ``"weights"``; points with fewer than two escapes are left out.
    """
    styles = {"sde": ("s", "C0", "SDE"), "overlaps": ("o", "C1", "overlap chain"), "weights": ("^", "C2", "SGD")}
    for method, (marker, colour, label) in styles.items():
        points = [(N, s[np.isfinite(s)]) for (m, N), s in sorted(samples.items()) if m == method]
        points = [(N, s) for N, s in points if s.size >= 2]
        if points:
            ax.errorbar([N for N, _ in points], [s.mean() for _, s in points],
                        [s.std(ddof=1) / np.sqrt(s.size) for _, s in points], fmt=marker, color=colour,
                        mfc="none", label=label)


def _panel(ax, k_star: int, schedule: str, ode: dict, samples: dict, fits: list) -> None:
    Ns = np.array(list(ode))
    values = np.array(list(ode.values()))
    ax.plot(Ns[np.isfinite(values)], values[np.isfinite(values)], "k-", lw=1, label="ODE, R(0) = N^-1/2")
    plot_method_means(ax, samples)
    for (name, fit), style in zip(fits, ("k:", "C0--", "C1-.", "r:")):
        x = np.geomspace(Ns[0], Ns[-1], 40)
        line = _design(x, fit.law) * fit.slope + fit.intercept
        ax.plot(x, np.exp(line) if fit.law == "power" else line, style, lw=1,
                label=f"{name} {fit.law}: slope {fit.slope:.2f} [{fit.interval[0]:.2f}, {fit.interval[1]:.2f}]")
    if not np.any(np.isfinite(values)):
        ax.text(0.5, 0.5, "ODE: R decays, no escape", transform=ax.transAxes, ha="center")
    if np.any(np.isfinite(values)) or any(np.sum(np.isfinite(v)) >= 2 for v in samples.values()):
        ax.set_yscale("log")
    ax.set(xscale="log", xlabel="input dimension $N$", ylabel=r"escape $\alpha$ ($|R| = 1/2$)",
           title=f"He{k_star} teacher (k* = {k_star}), eta {schedule}")
    ax.legend(fontsize=6)


@figure("escape_laws")
def escape_laws(out_dir: Path, small: bool) -> Path:
    """Escape time against N for information exponents 1, 2, 3, eta fixed and scaled with N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = _sizes(small)
    print(f"escape_laws: student {STUDENT}, teachers He1, He2, He3, p = k = 1, Q(0) = 1; escape: |R| >= {LEVEL}; "
          f"eta fixed {ETA}; scaled: {ETA} (k*=1), {ETA} ln({N_REF:g})/ln N (k*=2), {ETA_HE3} ({N_REF:g}/N)^(1/2) "
          f"(k*=3); SDE step dalpha = {SDE_STEP}/eta")
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    for row, schedule in enumerate(("fixed", "scaled")):
        for column, k_star in enumerate(TEACHERS):
            ode = {N: ode_escape(k_star, N, learning_rate(k_star, N, schedule)) for N in sizes["ode_N"]}
            samples = _method_runs(k_star, schedule, sizes)
            fits = _report(k_star, schedule, ode, samples)
            _panel(axes[row, column], k_star, schedule, ode, samples, fits)
    fig.suptitle(f"escape of one-pass SGD from R ~ N^-1/2: student {STUDENT}, p = k = 1", fontsize=10)
    return save_figure(fig, out_dir / "escape_laws.png")
