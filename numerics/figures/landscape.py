"""Figures of the landscape issue: degrees of freedom (paper Figs. 5 and 6)."""

from __future__ import annotations

from pathlib import Path

from numerics.analyses.closed_forms import solution_manifold_dimension, student_expressivity
from numerics.analyses.solution_manifold import expressivity_rank, manifold_rank
from numerics.figures import figure, save_figure


@figure("fig5")
def fig5(out_dir: Path, small: bool) -> Path:
    """Student expressivity dim{W^T W} vs p for a few N; markers: rank of the Jacobian of W -> W^T W."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    dims = (3, 5) if small else (4, 6, 8)
    fig, ax = plt.subplots(figsize=(6, 4))
    for N in dims:
        ps = list(range(1, 2 * N + 1))
        ax.plot(ps, [student_expressivity(N, p) for p in ps], "-", label=f"N = {N} (closed form)")
        checked = ps[:: 2 if small else 1]
        ax.plot(checked, [expressivity_rank(N, p) for p in checked], "o", mfc="none", color=ax.lines[-1].get_color())
        ax.axhline(N * (N + 1) / 2, ls=":", lw=0.8, color=ax.lines[-1].get_color())
    ax.set_xlabel("student width $p$")
    ax.set_ylabel("degrees of freedom of $W^T W$")
    ax.set_title("Student expressivity (App. 7.5.1): pN - p(p-1)/2, saturating at N(N+1)/2", fontsize=9)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir / "fig5.png", dpi=100)


@figure("fig6")
def fig6(out_dir: Path, small: bool) -> Path:
    """Dimension of the zero-error manifold vs p for a few k; markers: rank of the orbit Jacobian."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    N = 10
    teachers = (1, 2) if small else (1, 2, 3, 4)
    p_max = 5 if small else 10
    fig, ax = plt.subplots(figsize=(6, 4))
    for k in teachers:
        ps = list(range(k, p_max + 1))
        ax.plot(ps, [solution_manifold_dimension(N, p, k) for p in ps], "-", label=f"k = {k} (closed form)")
        ax.plot(ps, [manifold_rank(N, p, k) for p in ps], "o", mfc="none", color=ax.lines[-1].get_color())
    ax.set_xlabel(r"student width $p$ ($p \geq k$)")
    ax.set_ylabel(r"$\dim$ of the zero-error manifold")
    ax.set_title("Zero-error manifold (App. 7.5.2): pk - k(k+1)/2, N = 10", fontsize=9)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir / "fig6.png", dpi=100)
