"""The erf committee's symmetric plateau against N (numerics/figures/erf_plateau.py)."""

from __future__ import annotations

import numpy as np
import pytest

from numerics.figures import erf_plateau
from numerics.figures.escape_laws import fit_escape_law


def test_escape_alpha_marks_the_fall_below_a_fraction_of_the_plateau_risk():
    alpha = np.linspace(0.0, 10.0, 11)
    # above the plateau at the start (no escape there), on it, then falling through half of it at alpha = 6.5
    risk = np.array([[0.5, 0.2, 0.1, 0.1, 0.1, 0.1, 0.06, 0.04, 0.02, 0.01, 0.01],
                     [0.5, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]])
    escape = erf_plateau.escape_alpha(alpha, risk, 0.1)
    assert escape[0] == pytest.approx(6.5) and np.isnan(escape[1])
    with pytest.raises(ValueError, match="level in"):
        erf_plateau.escape_alpha(alpha, risk, 0.1, level=1.5)


def test_log_law_fit_recovers_a_synthetic_plateau_slope_within_its_interval():
    # alpha = 40 + 15.8 ln N plus noise of known spread: the bootstrap interval must hold 15.8 and exclude 0
    rng = np.random.default_rng(3)
    N = np.array([1e2, 1e3, 1e4, 1e5])
    samples = [40 + 15.8 * np.log(n) + rng.normal(scale=5.0, size=32) for n in N]
    fit = fit_escape_law(N, samples, "log", boot=200)
    assert fit.interval[0] < 15.8 < fit.interval[1] and fit.interval[0] > 10
    flat = fit_escape_law(N, [40 + rng.normal(scale=5.0, size=32) for _ in N], "log", boot=200)
    assert flat.interval[0] < 0 < flat.interval[1]


def test_erf_plateau_figure_small(tmp_path, capsys):
    path = erf_plateau.erf_plateau(tmp_path, small=True)
    assert path.exists() and path.stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "slope 1/(2 g_R) = 15.81" in out  # the symmetric plateau's own g_R at eta = 0.5
    # the ODE from R(0) = N^-1/2 Z escapes later at larger N, on the predicted slope within 20 %
    ode = [erf_plateau.ode_escape(N) for N in (1e2, 1e3, 1e4)]
    assert ode[0] < ode[1] < ode[2]
    slope = (ode[2] - ode[0]) / np.log(100.0)
    assert abs(slope - 15.81) < 0.2 * 15.81
