"""The finite-N figures' computations (numerics/figures/finite_n.py) at small sizes; the figures themselves
take about 30 s each at the small size and are drawn by the slow tests of the figures.

The ODE escape from a Gaussian start ``R(0)`` of variance ``S / N`` (the plateau noise of
numerics/analyses/finite_n.py) is delayed by ``log_slope * ln(N2 / N1)`` when N grows: the same starts
scaled by ``sqrt(N1 / N2)``, read off the record grid of spacing ``RECORD_STEP``.
"""

import numpy as np
import pytest

from numerics.analyses.finite_n import plateau_noise
from numerics.analyses.plateau import plateau_coefficients
from numerics.figures import finite_n


def test_ode_escape_is_delayed_by_the_log_of_N():
    noise = plateau_noise(finite_n.P, finite_n.K, finite_n.ETA, q0=finite_n.Q0)
    small = finite_n.ode_escapes(1000, noise.variance, 16, 0)
    large = finite_n.ode_escapes(100000, noise.variance, 16, 0)
    assert small.shape == large.shape == (16,) and np.all(large > small)
    shift = np.mean(large - small)
    assert abs(shift - noise.log_slope * np.log(100)) < finite_n.RECORD_STEP


def test_the_plateau_risk_is_the_plateau_of_the_figures_model():
    expected = plateau_coefficients(finite_n.P, finite_n.K, finite_n.ETA).risk_plateau
    assert finite_n.noise_plateau_risk() == expected


def test_selection_gap_estimates_agree_between_seeds():
    # two independent Monte Carlo estimates within 5 combined standard errors
    first, first_se, first_flips = finite_n.eq8_selection_gap(samples=20_000, seed=0)
    second, second_se, second_flips = finite_n.eq8_selection_gap(samples=20_000, seed=1)
    assert first > 0 and abs(first - second) < 5 * np.hypot(first_se, second_se)
    # flips: a Bernoulli frequency over 20 000 samples
    flip_se = np.sqrt(first_flips * (1 - first_flips) * 2 / 20_000)
    assert 0 < first_flips < 1 and abs(first_flips - second_flips) < 5 * flip_se


def test_an_unknown_start_is_named():
    with pytest.raises(ValueError, match="unknown start 'sideways'"):
        finite_n.sgd_runs("sde", 200, "sideways", 2, 0, 1.0)
