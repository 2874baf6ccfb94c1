"""The noise-equivalent initial overlap of the plateau (numerics.analyses.finite_n) against the exact overlap chain."""

import numpy as np
import pytest

from numerics import plateau_coefficients, simulate
from numerics.analyses.finite_n import plateau_noise


def test_predicted_log_slope_and_eq8_shift():
    noise = plateau_noise(2, 2, 0.25)
    g_R = plateau_coefficients(2, 2, 0.25).growth_R
    assert noise.growth_R == g_R
    assert noise.log_slope == pytest.approx(1 / (2 * g_R))
    assert noise.log_slope == pytest.approx(2.5811, abs=1e-3)
    # at the plateau sigma^2 settles, and the integral has converged: S from a finer grid agrees
    assert noise.variance == pytest.approx(plateau_noise(2, 2, 0.25, points_per_unit=80).variance, rel=1e-4)
    assert noise.variance == pytest.approx(0.629, abs=2e-3)
    assert noise.eq8_shift() == pytest.approx(np.log1p(noise.variance) / (2 * g_R))


def test_noise_grown_overlap_variance_matches_the_overlap_chain():
    """From R(0) = 0, N Var(R_jr(alpha)) is exp(2 Gamma) int exp(-2 Gamma) sigma^2 (the ODE keeps R = 0)."""
    p, k, eta, N, replicas = 2, 2, 0.25, 2000, 96
    noise = plateau_noise(p, k, eta)
    alphas = np.array([4.0, 10.0])
    run = simulate(N=N, p=p, k=k, eta=eta, alpha_max=alphas[-1], replicas=replicas, seed=4, method="overlaps",
                   Q0=np.eye(p), R0=np.zeros((p, k)), record=alphas, progress=False)
    measured = N * np.mean(run.R**2, axis=(0, 2, 3))
    predicted = noise.variance_at(alphas)
    # replicas x p k Gaussian entries (independent at leading order): relative se of a variance sqrt(2 / n)
    se = np.sqrt(2.0 / (replicas * p * k))
    assert np.all(np.abs(measured / predicted - 1) < 4 * se), (measured, predicted)
    # half the noise amplitude (a quarter of S) is far outside
    assert np.all(np.abs(measured / (predicted / 4) - 1) > 4 * se)


def test_finite_n_figures_are_registered():
    from numerics.figures import available

    assert {"finite_n_escape", "finite_n_eq8", "finite_n_implicit"} <= set(available())
