"""The noise integral's grid beyond 20 / g_R and its cost check (numerics/analyses/linear_noise.py,
numerics/analyses/path_covariance.py): the steps follow the path's change, and nothing it computes moves."""

import numpy as np
import pytest

from derive import SCM
from numerics import plateau_noise
from numerics.analyses import finite_n
from numerics.analyses.linear_noise import (
    INTEGRAND_HORIZON,
    SETTLED_MOVE_TOLERANCE,
    SETTLED_TAIL,
    noise_grid,
    settled_thinning,
)
from numerics.analyses.path_covariance import cost_check
from numerics.results.settings import RunSettings


def test_settled_thinning_keeps_the_integrand_and_follows_the_path_beyond():
    g_R, slowest = 0.1, -0.002
    alpha = noise_grid(True, g_R, slowest, 1.0, 2)
    # a path relaxing at two rates: one dead by 20 / g_R, one still moving there
    states = np.stack([1 + np.exp(-0.3 * alpha), 0.5 * np.exp(-0.01 * alpha), np.zeros_like(alpha)], axis=1)
    kept = settled_thinning(alpha, states, g_R)
    near = alpha <= INTEGRAND_HORIZON / g_R
    tail = alpha >= alpha[-1] - SETTLED_TAIL / g_R
    assert np.array_equal(kept[: near.sum()], np.flatnonzero(near))  # the integrand's points, all of them
    assert set(np.flatnonzero(tail)) <= set(kept) and kept[-1] == alpha.size - 1
    far = kept[(alpha[kept] > INTEGRAND_HORIZON / g_R) & (alpha[kept] < alpha[-1] - SETTLED_TAIL / g_R)]
    assert 10 < far.size < np.sum(~near & ~tail) / 3  # thinned, but not to nothing: the path still moves
    moves = np.max(np.abs(np.diff(states[kept], axis=0)), axis=1) * g_R * np.diff(alpha[kept])
    assert np.all((moves <= SETTLED_MOVE_TOLERANCE * np.max(np.abs(states)) * (1 + 1e-12)) | (np.diff(kept) == 1))
    # a path that has stopped moving beyond 20 / g_R: one step from there to the tail
    frozen = np.where(near[:, None], states, states[near][-1])
    assert np.sum(alpha[settled_thinning(alpha, frozen, g_R)] > INTEGRAND_HORIZON / g_R) == np.sum(tail) + 1


def test_thinning_leaves_the_erf_committees_noise_as_on_the_full_grid(monkeypatch):
    thinned = plateau_noise(2, 2, 1.0, model=SCM, points_per_unit=4)
    monkeypatch.setattr(finite_n, "settled_thinning", lambda alpha, states, g_R: np.arange(alpha.size))
    full = plateau_noise(2, 2, 1.0, model=SCM, points_per_unit=4)
    assert thinned.alpha.size < full.alpha.size / 2
    assert thinned.variance == pytest.approx(full.variance, rel=1e-12, abs=0)
    assert np.allclose(thinned.start_direction, full.start_direction, rtol=0, atol=1e-12)
    common = np.isin(full.alpha, thinned.alpha)
    assert np.array_equal(thinned.alpha, full.alpha[common])
    near = thinned.alpha <= INTEGRAND_HORIZON / thinned.growth_R
    assert np.allclose(thinned.gamma[near], full.gamma[common][near], rtol=1e-12, atol=0)
    assert np.allclose(thinned.sigma2, full.sigma2[common], rtol=1e-12, atol=0)
    # beyond 20 / g_R (where exp(-2 Gamma) < 1e-17) Gamma ~ 200 moves by about 1e-7 per step of the thinned grid,
    # far below the full grid's own error there (3e-5: halving its steps moves Gamma by that much)
    assert np.allclose(thinned.gamma[~near], full.gamma[common][~near], rtol=0, atol=1e-6)


def test_cost_check_refuses_with_its_estimate_and_words_a_lower_bound():
    check = cost_check(np.eye(2), np.zeros((2, 2)), np.eye(2), RunSettings(eta=0.25), max_seconds=1e-9)
    with pytest.raises(ValueError, match="for at least 1000 points"):
        check(1000, at_least=True)
    with pytest.raises(ValueError, match="for the 1000 points"):
        check(1000)
    cost_check(np.eye(2), np.zeros((2, 2)), np.eye(2), RunSettings(eta=0.25), max_seconds=60.0)(1000)
