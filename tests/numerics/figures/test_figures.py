"""Figures: legends of the trajectory panels, math labels on every axis."""

import ast
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

FIGURES_DIR = Path(__file__).resolve().parents[3] / "numerics" / "figures"


def _legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [] if legend is None else [text.get_text() for text in legend.get_texts()]


def test_every_overlap_panel_of_a_simulation_plot_has_a_legend():
    # Fig. 1's layout: ODE lines, simulation markers and a dashed restart in every panel (p = 4, k = 2:
    # 6 student-student and 8 teacher-student curves, three line styles each)
    from numerics import initial_conditions, integrate, simulate
    from numerics.figures.plotting import plot_trajectory

    sim = simulate(N=200, p=4, k=2, eta=0.5, alpha_max=2.0, seed=1, record=10, progress=False)
    Q0, R0, T = initial_conditions(4, 2, N=200, seed=1)
    ode = integrate(Q0, R0, T, eta=0.5, alpha_max=2.0, n_points=20)
    restart = integrate(Q0, R0, T, eta=0.5, alpha_max=1.0, n_points=10)
    fig = plot_trajectory(ode, simulation=sim, restart=restart)
    norm, off, r, risk = fig.axes
    expected = {
        norm: [f"$Q_{{{j}{j}}}$" for j in range(1, 5)],
        off: [f"$Q_{{{j}{l}}}$" for j in range(1, 5) for l in range(j + 1, 5)],
        r: [f"$R_{{{j}{s}}}$" for j in range(1, 5) for s in range(1, 3)],
    }
    for ax, curves in expected.items():
        texts = _legend_texts(ax)
        assert texts[: len(curves)] == curves, ax.get_title()
        assert texts[len(curves):] == ["ODE", "ODE restarted", "simulation"], ax.get_title()
    assert "simulation" in _legend_texts(risk)


def test_a_plain_ode_plot_names_its_curves_without_a_style_key():
    from numerics import initial_conditions, integrate
    from numerics.figures.plotting import plot_trajectory

    Q0, R0, T = initial_conditions(3, 1, N=100, seed=0)
    fig = plot_trajectory(integrate(Q0, R0, T, eta=0.5, alpha_max=1.0, n_points=10))
    assert _legend_texts(fig.axes[2]) == ["$R_{11}$", "$R_{21}$", "$R_{31}$"]


def _label_arguments(path: Path) -> list[tuple[int, str]]:
    """Every axis label written in a figure module: ``set_xlabel("...")`` and ``set(xlabel="...")``."""
    labels = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr in ("set_xlabel", "set_ylabel") and node.args:
            labels.append(node.args[0])
        labels.extend(kw.value for kw in node.keywords if kw.arg in ("xlabel", "ylabel"))
    # labels held in variables (plotting.py's panel table) are checked on the drawn figures
    literal = [label for label in labels if isinstance(label, (ast.Constant, ast.JoinedStr))]
    return [(label.lineno, ast.unparse(label)) for label in literal]


@pytest.mark.parametrize("path", sorted(FIGURES_DIR.glob("*.py")), ids=lambda p: p.stem)
def test_axis_labels_in_the_source_are_math(path):
    labels = _label_arguments(path)
    assert labels or path.stem in ("__init__", "ode", "simulation")  # those draw through plotting.py
    for line, label in labels:
        assert "$" in label, f"{path.name}:{line}: axis label {label} has no math"


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_every_axis_of_the_quick_figures_has_math_labels(tmp_path, monkeypatch):
    # the finite-N figures take about 30 s each at the small size; their labels are checked in the source
    from numerics.figures import make

    drawn: list[Figure] = []
    save = Figure.savefig

    def recording_savefig(self, *args, **kwargs):
        drawn.append(self)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_savefig)
    names = ["trajectory", "fig1", "fig3", "fig4", "fig5", "fig6", "escape", "sweep"]
    make(names, tmp_path, small=True)
    assert len(drawn) >= len(names)
    axes = [ax for fig in drawn for ax in fig.axes]
    assert axes
    for ax in axes:
        assert "$" in ax.get_xlabel() and "$" in ax.get_ylabel(), (ax.get_title(), ax.get_xlabel(), ax.get_ylabel())
    assert np.all([len(ax.get_lines()) + len(ax.collections) > 0 for ax in axes])


def test_figures_show_progress_bars_on_a_terminal_only(monkeypatch):
    from numerics.figures import show_progress

    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    monkeypatch.setattr(sys, "stderr", Stream(True))
    assert show_progress(small=False) and not show_progress(small=True)
    monkeypatch.setattr(sys, "stderr", Stream(False))  # a notebook kernel's stream, a log file
    assert not show_progress(small=False)
