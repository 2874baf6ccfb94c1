"""The giant-step figure (numerics/figures/giant_steps.py) at the small size."""

from __future__ import annotations

from numerics.figures import make
from numerics.figures.giant_steps import BATCHES


def test_giant_steps_figure_at_the_small_size(tmp_path, capsys):
    (path,) = make(["giant_steps"], tmp_path, small=True)
    assert path.exists() and path.stat().st_size > 10_000
    printed = capsys.readouterr().out
    for n_b in BATCHES:
        assert f"giant_steps: n_b={n_b:g}: risk at alpha=" in printed
    assert "full-batch SGD n_b=1" in printed
