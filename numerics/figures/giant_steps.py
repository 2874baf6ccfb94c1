"""The giant-step figure (docs/variants.md): batches of ``n_b N`` samples against the one-sample ODE."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from numerics.core.validation import covariance, is_positive_semidefinite
from numerics.figures import figure, save_figure, show_progress
from numerics.ode.giant_steps import giant_step, giant_steps
from numerics.ode.integrate import integrate
from numerics.ode.overlaps import risk
from numerics.results.settings import RunSettings
from numerics.simulators.weights import simulate, weights_from_overlaps

#: Learning rate per sample of the figure (the paper's model, p = k = 2).
ETA = 0.2
#: Batch sizes per input dimension drawn as curves.
BATCHES = (0.25, 1.0, 4.0)
#: Teacher-student overlaps at the start (with ``Q = I``).
START_R = np.array([[0.4, 0.1], [0.0, 0.3]])


@figure("giant_steps")
def giant_steps_figure(out_dir: Path, small: bool) -> Path:
    """Risk against ``alpha`` (samples / N) for giant steps of ``n_b = 0.25, 1, 4`` and the one-sample ODE.

    The paper's model, p = k = 2, ``eta = 0.2`` per sample, from ``Q = I`` and :data:`START_R`.
    Left: the map for each ``n_b`` and the ODE, with full-batch SGD at ``n_b = 1`` (``simulate``
    with ``batch_size = N`` and learning rate ``eta N``, replica means and 2 standard errors).
    Right: the map's risk at the last alpha against ``n_b``, with and without the square of the
    mean update (the ``n_b**2`` term; without it the map can leave the cone of covariances, where
    no risk is drawn). Prints the numbers it plots.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    N, replicas, alpha_max = (200, 2, 8.0) if small else (1000, 6, 24.0)
    # a macroscopic start: no plateau, whose finite-N escape times would spread the replicas
    Q0, R0, T = np.eye(2), START_R, np.eye(2)
    W0, W_star = weights_from_overlaps(Q0, R0, N=N, seed=3)
    sgd = simulate(eta=ETA * N, batch_size=N, N=N, p=2, k=2, alpha_max=alpha_max / N, replicas=replicas, seed=4,
                   W0=np.broadcast_to(W0, (replicas, 2, N)), W_star=np.broadcast_to(W_star, (replicas, 2, N)),
                   record=np.arange(int(alpha_max) + 1) / N, progress=show_progress(small))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    ode = integrate(Q0, R0, T, eta=ETA, alpha_max=alpha_max, n_points=200, grid="linear")
    left.semilogy(ode.alpha, ode.risk, "k-", lw=1.5, label="one-sample ODE")
    for n_b, colour in zip(BATCHES, ("C0", "C1", "C3")):
        run = giant_steps(Q0, R0, T, n_b=n_b, steps=round(alpha_max / n_b), eta=ETA)
        left.semilogy(run.alpha, run.risk, "o-" if n_b >= 1 else "-", ms=3, color=colour, lw=1,
                      label=rf"giant steps, $n_b = {n_b:g}$")
        print(f"giant_steps: n_b={n_b:g}: risk at alpha={alpha_max:g}: map {run.risk[-1]:.4g}, "
              f"ODE {ode.risk[-1]:.4g}")
    mean, error = sgd.risk.mean(0), sgd.risk.std(0, ddof=1) / math.sqrt(replicas)
    left.errorbar(sgd.alpha * N, mean, 2 * error, fmt="s", ms=4, mfc="none", color="C1",
                  label=rf"full-batch SGD, $n_b = 1$, N = {N} ({replicas} replicas, 2 s.e.)")
    print(f"giant_steps: full-batch SGD n_b=1, N={N}: risk at alpha={alpha_max:g} {mean[-1]:.4g} +- {error[-1]:.2g}")
    left.set(xlabel=r"$\alpha$ (samples / $N$)", ylabel=r"risk $\varepsilon$",
             title=rf"paper model $p = k = 2$, $\eta = {ETA:g}$ per sample")
    left.legend(fontsize=7)
    _risk_against_batch(right, Q0, R0, T, alpha_max, small)
    return save_figure(fig, out_dir / "giant_steps.png")


def _risk_against_batch(ax, Q0, R0, T, alpha_max, small):
    """The map's risk at ``alpha_max`` against ``n_b``, with and without the ``n_b**2`` term."""
    settings = RunSettings(eta=ETA)
    # whole numbers of steps to alpha_max
    batches = alpha_max / np.unique(np.round(alpha_max / np.geomspace(0.05, 4.0, 4 if small else 12)))[::-1]
    full, without = [], []
    for n_b in batches:
        steps = round(alpha_max / n_b)
        full.append(float(giant_steps(Q0, R0, T, settings, n_b=n_b, steps=steps).risk[-1]))
        Q, R = Q0, R0
        for _ in range(steps):
            Q, R, _ = giant_step(Q, R, T, n_b, settings, square_of_mean=False)
        # the wrong map can leave the cone of covariances (C not PSD): no risk there
        without.append(float(risk(Q, R, T)) if is_positive_semidefinite(covariance(Q, R, T)) else math.nan)
        shown = "left the cone of covariances" if math.isnan(without[-1]) else f"{without[-1]:.4g}"
        print(f"giant_steps: n_b={n_b:.3g}: risk at alpha={alpha_max:g} {full[-1]:.4g}, "
              f"without the square of the mean update {shown}")
    ax.loglog(batches, full, "o-", color="C0", label="exact map")
    ax.loglog(batches, without, "s--", color="C3", label=r"without the $n_b^2$ term")
    ax.set(xlabel=r"batch size per dimension $n_b = B / N$", ylabel=rf"risk at $\alpha = {alpha_max:g}$",
           title="the square of the mean update")
    ax.legend(fontsize=8)
