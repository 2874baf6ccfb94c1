"""The sharpness-aware steps' figure (numerics/figures/sam.py) at the small size, and its plateau length."""

from __future__ import annotations

import numpy as np
import pytest

from numerics.figures.sam import plateau_length


def test_plateau_length_is_the_first_fall_below_half_the_start():
    alpha = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    risk = np.array([1.0, 0.9, 0.7, 0.3, 0.6])
    assert plateau_length(alpha, risk) == pytest.approx(2.5)
    assert np.isnan(plateau_length(alpha, np.full(5, 1.0)))


def test_sam_figure_at_the_small_size(tmp_path, capsys):
    from numerics.figures import make

    (path,) = make(["sam"], tmp_path, small=True)
    assert path.exists() and path.stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert printed.count("sam: rho=") == 3
