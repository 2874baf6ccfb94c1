"""Figures of the SGD variants (docs/variants.md): spherical SGD and the readout's weight decay."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from derive.model.model import SCM, Model
from numerics.figures import figure, save_figure, show_progress
from numerics.ode.integrate import integrate
from numerics.simulators.weights import simulate

#: He3 student and teacher, unit readouts: information exponent 3.
HE3 = Model(student_activation="x**3 - 3*x", teacher_activation="x**3 - 3*x", student_readout="1",
            teacher_readout="1")


def he3_escape_closed_form(m0: float, m1: float, eta: float) -> float:
    """Gradient flow on the sphere, ``dm/dalpha = 18 eta m^2 (1 - m^2)``: the alpha from ``m0`` to ``m1``."""
    return ((math.atanh(m1) - 1 / m1) - (math.atanh(m0) - 1 / m0)) / (18 * eta)


def first_crossing(alpha: np.ndarray, values: np.ndarray, level: float) -> float:
    """The first alpha at which ``values`` reach ``level`` (linear between grid points); NaN if never."""
    above = np.flatnonzero(values >= level)
    if above.size == 0:
        return float("nan")
    i = int(above[0])
    if i == 0:
        return float(alpha[0])
    return float(alpha[i - 1] + (level - values[i - 1]) * (alpha[i] - alpha[i - 1]) / (values[i] - values[i - 1]))


@figure("spherical")
def spherical(out_dir: Path, small: bool) -> Path:
    """Spherical SGD of a He3 student learning a He3 teacher (p = k = 1): two learning rates, and the escape vs N.

    Left: ``m = R`` from ``m0 = 0.3`` by renormalised SGD at one N (replica means) against the
    projected ODE, at a small learning rate (the overlap grows) and a larger one (the
    normalisation's ``eta**2`` term, ``-eta**2 <E^2> m / 2``, beats the first-order growth
    ``18 eta m^2``: the overlap decays to zero). Right: the alpha at which ``m`` first reaches 1/2
    from ``m0 = N^-1/2`` with ``eta = eta0 / sqrt(N)``, by the ODE, against the gradient-flow
    closed form: both grow as ``N`` (information exponent 3). Prints the numbers it plots.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m0 = 0.3
    N, replicas, alpha_max = (200, 3, 40.0) if small else (1000, 8, 160.0)
    rng = np.random.default_rng(0)
    teacher = np.zeros((1, N))
    teacher[0, 0] = math.sqrt(N)
    noise = rng.standard_normal((replicas, 1, N))
    noise[..., 0] = 0.0
    # students at overlap m0 with the teacher, on the unit sphere
    W0 = m0 * teacher + math.sqrt(1 - m0 * m0) * math.sqrt(N) * noise / np.linalg.norm(noise, axis=-1, keepdims=True)
    record = np.linspace(0.0, alpha_max, 33)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for eta, colour in ((1e-3, "C0"), (2e-2, "C3")):
        run = simulate(eta=eta, model=HE3, spherical=True, N=N, p=1, k=1, alpha_max=alpha_max, replicas=replicas,
                       seed=1, W0=W0, W_star=np.broadcast_to(teacher, (replicas, 1, N)), record=record,
                       progress=show_progress(small))
        m = run.R[..., 0, 0]
        mean, error = m.mean(0), m.std(0, ddof=1) / math.sqrt(replicas)
        ode = integrate(np.eye(1), np.array([[m0]]), np.eye(1), eta=eta, model=HE3, spherical=True,
                        alpha_max=alpha_max, alpha_eval=record)
        left.errorbar(run.alpha, mean, 2 * error, fmt="o", ms=3, color=colour,
                      label=rf"SGD, $\eta = {eta:g}$, N = {N} (mean of {replicas}, 2 s.e.)")
        left.plot(ode.alpha, ode.R[:, 0, 0], "-", color=colour, lw=1, label=rf"projected ODE, $\eta = {eta:g}$")
        print(f"spherical: eta={eta:g}: m at alpha={alpha_max:g}: SGD at N={N} {mean[-1]:.4f} +- {error[-1]:.4f}, "
              f"ODE {ode.R[-1, 0, 0]:.4f}")
    left.set(xlabel=r"$\alpha$", ylabel=r"$m = R$", title=r"He3 / He3 on the sphere, $m_0 = 0.3$")
    left.legend(fontsize=7)
    eta0 = 0.005
    sizes = np.geomspace(1e2, 1e4 if small else 1e8, 3 if small else 7)
    escapes, closed = [], []
    for size in sizes:
        start, eta = 1 / math.sqrt(size), eta0 / math.sqrt(size)
        closed.append(he3_escape_closed_form(start, 0.5, eta))
        ode = integrate(np.eye(1), np.array([[start]]), np.eye(1), eta=eta, model=HE3, spherical=True,
                        alpha_max=3 * closed[-1], n_points=2001, rtol=1e-8, atol=1e-12)
        escapes.append(first_crossing(ode.alpha, ode.R[:, 0, 0], 0.5))
        print(f"spherical: N={size:.3g}, eta={eta:.3g}, m0={start:.3g}: ODE escape (m = 1/2) at alpha "
              f"{escapes[-1]:.5g}, gradient-flow closed form {closed[-1]:.5g} (ratio {escapes[-1] / closed[-1]:.4f})")
    right.loglog(sizes, escapes, "o", color="C0", label=r"projected ODE, $m_0 = N^{-1/2}$, $\eta = 0.005 / \sqrt{N}$")
    right.loglog(sizes, closed, "-", color="k", lw=1, label=r"gradient flow $[\mathrm{atanh}\,m - 1/m] / 18\eta$")
    right.set(xlabel="$N$", ylabel=r"$\alpha$ at $m = 1/2$", title=r"escape $\propto N$ (information exponent 3)")
    right.legend(fontsize=8)
    return save_figure(fig, out_dir / "spherical.png")


@figure("readout_decay")
def readout_decay(out_dir: Path, small: bool) -> Path:
    """Soft committee machine p = k = 2 with a trained readout: risk and readout norm against ``kappa_a``.

    ODE from an Eq. 8-like start to a fixed alpha, for a range of readout weight decays; the
    decay shrinks the readout and leaves a residual risk. Prints the plotted numbers.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    decays = np.array([0.0, 0.03, 0.3]) if small else np.concatenate([[0.0], np.geomspace(1e-3, 3, 15)])
    alpha_max = 100.0 if small else 2000.0
    rng = np.random.default_rng(2)
    R0 = 1e-2 * rng.standard_normal((2, 2))
    risks, norms = [], []
    for decay in decays:
        run = integrate(0.5 * np.eye(2), R0, np.eye(2), eta=0.5, model=SCM, a=np.ones(2), eta_a=0.5,
                        readout_decay=float(decay), alpha_max=alpha_max, n_points=50)
        risks.append(float(run.risk[-1]))
        norms.append(float(np.linalg.norm(run.a[-1])))
        print(f"readout_decay: kappa_a={decay:.3g}: risk at alpha={alpha_max:g} {risks[-1]:.4g}, |a| {norms[-1]:.4g}")
    fig, ax = plt.subplots(figsize=(6, 4.2))
    shown = decays > 0
    ax.loglog(decays[shown], np.array(risks)[shown], "o-", color="C0", label=r"risk at $\alpha_{max}$")
    ax.axhline(risks[0], color="C0", ls=":", lw=1, label=r"risk without decay")
    twin = ax.twinx()
    twin.semilogx(decays[shown], np.array(norms)[shown], "s--", color="C3", label=r"$|a|$")
    ax.set(xlabel=r"readout weight decay $\kappa_a$", ylabel=r"risk $\varepsilon$",
           title=rf"erf committee $p = k = 2$, $\eta = \eta_a = 0.5$, $\alpha = {alpha_max:g}$")
    twin.set_ylabel(r"readout norm $|a|$")
    ax.legend(loc="upper left", fontsize=8)
    twin.legend(loc="lower right", fontsize=8)
    return save_figure(fig, out_dir / "readout_decay.png")


@figure("classification")
def classification(out_dir: Path, small: bool) -> Path:
    """An erf student learning a sign teacher with label flips: classification error against alpha.

    p = k = 1, eta = 0.5, flip probabilities 0, 0.1 and 0.25: the ODE (lines), the replica means
    of finite-N SGD (the exact overlap chain; markers, with standard errors) and of the SDE (open markers), each from
    the same start; the error approaches its floor ``epsilon``. Prints the plotted numbers.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from numerics.analyses.classification import classification_error
    from numerics.simulators.sde import simulate_sde

    N, replicas, alpha_max = (200, 4, 10.0) if small else (1000, 16, 30.0)
    record = np.linspace(0.0, alpha_max, 7)
    Q0, R0, T = np.eye(1), np.array([[0.05]]), np.eye(1)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for colour, flip in zip(("C0", "C1", "C2"), (0.0, 0.1, 0.25)):
        model = Model(student_activation="erf(x/sqrt(2))", teacher_activation="sign(x)", student_readout="1",
                      teacher_readout="1", label_flip=str(flip))
        ode = integrate(Q0, R0, T, eta=0.5, model=model, alpha_max=alpha_max, alpha_eval=record)
        ode_error = classification_error(ode.Q, ode.R, T, model=model)
        sgd = simulate(N=N, p=1, k=1, eta=0.5, model=model, alpha_max=alpha_max, replicas=replicas, seed=3,
                       record=record, Q0=Q0, R0=R0, method="overlaps", progress=show_progress(small))
        sde = simulate_sde(Q0, R0, T, eta=0.5, model=model, N=N, alpha_max=alpha_max, replicas=replicas, seed=4,
                           record=record, progress=False)
        for name, run, marker, fill in (("SGD (exact overlap chain)", sgd, "o", colour), ("SDE", sde, "s", "none")):
            errors = classification_error(run.Q, run.R, T, model=model)  # (replicas, records)
            mean, spread = errors.mean(axis=0), errors.std(axis=0, ddof=1) / np.sqrt(replicas)
            ax.errorbar(record, mean, spread, fmt=marker, color=colour, mfc=fill, ms=4,
                        label=rf"{name}, $N = {N}$" if flip == 0 else None)
            print(f"classification: epsilon={flip:g}, {name} at N={N}: error at alpha={alpha_max:g} "
                  f"{mean[-1]:.4f} +- {spread[-1]:.4f}")
        ax.plot(record, ode_error, "-", color=colour, label=rf"ODE, $\epsilon = {flip:g}$")
        ax.axhline(flip, color=colour, ls=":", lw=1)
        print(f"classification: epsilon={flip:g}, ODE error at alpha={alpha_max:g} {ode_error[-1]:.4f}")
    ax.set(xlabel=r"$\alpha$", ylabel=r"classification error $P(\mathrm{sign}\, f \neq y)$",
           title=r"erf student, sign teacher, label flips $\epsilon$ ($p = k = 1$, $\eta = 0.5$)")
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir / "classification.png")
