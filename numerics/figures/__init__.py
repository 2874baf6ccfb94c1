"""Figures produced by ``wickode figures NAME ...``.

A figure is a function ``make(out_dir: Path, small: bool) -> Path`` registered
with :func:`figure`; modules holding figures are listed in
:data:`FIGURE_MODULES` and imported on demand. ``small=True`` runs a reduced
size (used by the tests); the README shows the full-size PNGs from
``docs/figures/``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIGURE_MODULES = (
    "numerics.figures.ode",
    "numerics.figures.simulation",
    "numerics.figures.landscape",
    "numerics.figures.escape",
    "numerics.figures.implicit",
    "numerics.figures.finite_n",
    "numerics.figures.sweep",
    "numerics.figures.classic",
    "numerics.figures.variants",
    "numerics.figures.escape_laws",
    "numerics.figures.escape_laws_width",
    "numerics.figures.giant_steps",
    "numerics.figures.sam",
    "numerics.figures.erf_plateau",
)

_FIGURES: dict[str, Callable[[Path, bool], Path]] = {}


def show_progress(small: bool) -> bool:
    """Whether a figure shows progress bars: at full size on a terminal only.

    In a notebook (or a log file) a text progress bar leaves every refresh in
    the stored output, hundreds of lines for one run.
    """
    return not small and sys.stderr.isatty()


def save_figure(fig: Any, path: Path, *, dpi: int = 90) -> Path:
    """Lay out, write and close a figure; returns ``path``."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def figure(name: str) -> Callable:
    def decorate(function: Callable[[Path, bool], Path]) -> Callable[[Path, bool], Path]:
        _FIGURES[name] = function
        return function

    return decorate


def available() -> dict[str, Callable[[Path, bool], Path]]:
    for module in FIGURE_MODULES:
        importlib.import_module(module)
    return dict(sorted(_FIGURES.items()))


def make(names: list[str], out_dir: Path, *, small: bool = False) -> list[Path]:
    figures = available()
    unknown = [n for n in names if n not in figures]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; available: {', '.join(figures)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    return [figures[name](out_dir, small) for name in (names or list(figures))]
