"""Stage 3 against Stage 0: generated functions equal Monte Carlo averages of the definitions."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derive.model.model import COMMITTED_MODELS
from numerics.analyses.montecarlo import (
    QUANTITIES,
    generated_terms,
    monte_carlo_rhs,
    monte_carlo_terms,
    random_overlaps,
    z_scores,
)

SIGMAS = 5.0
SAMPLES = 100_000
# the He3 eta**2 term averages a degree-10 polynomial: heavy tails make the
# sample standard error converge slowly, so it gets more samples
SAMPLES_BY_MODEL = {"paper": SAMPLES, "he2": SAMPLES, "he3": 1_000_000}


@settings(max_examples=30)
@given(
    model_index=st.integers(0, len(COMMITTED_MODELS) - 1),
    p=st.integers(1, 4),
    k=st.integers(1, 3),
    scale=st.floats(0.3, 1.5),
    seed=st.integers(0, 2**31 - 1),
)
@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_generated_functions_match_monte_carlo(model_index, p, k, scale, seed):
    model = COMMITTED_MODELS[model_index]
    Q, R, T = random_overlaps(p, k, np.random.default_rng(seed), scale=scale)
    scores = z_scores(Q, R, T, model=model, n_samples=SAMPLES_BY_MODEL[model.name], seed=seed + 1)
    assert max(scores.values()) < SIGMAS, scores


@settings(max_examples=20)
@given(
    model_index=st.integers(0, len(COMMITTED_MODELS) - 1),
    p=st.integers(1, 4),
    k=st.integers(1, 3),
    eta=st.floats(0.01, 2.0),
    noise=st.sampled_from([0.0, 0.3]),
    decay=st.sampled_from([0.0, 0.1]),
    seed=st.integers(0, 2**31 - 1),
)
@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_rhs_matches_monte_carlo_of_the_sgd_increments(model_index, p, k, eta, noise, decay, seed):
    import numerics

    model = COMMITTED_MODELS[model_index].with_noise(noise).with_weight_decay(decay)
    Q, R, T = random_overlaps(p, k, np.random.default_rng(seed))
    dQ, dR = numerics.rhs(Q, R, T, eta, model=model)
    sampled = monte_carlo_rhs(Q, R, T, eta, model=model, n_samples=SAMPLES_BY_MODEL[model.name], seed=seed + 1)
    for name, value in (("dQ", dQ), ("dR", dR)):
        mean, se = sampled[name]
        assert np.max(np.abs(value - mean) / se) < SIGMAS, name


def wrong_drift_R(Q, R, T):
    """Deliberately wrong paper-model formula: 3 Q R instead of 2 Q R."""
    p, k = R.shape
    return (2 / (k * p)) * (np.trace(T) * R + 2 * R @ T) - (2 / p**2) * (np.trace(Q) * R + 3 * Q @ R)


def right_drift_R(Q, R, T):
    p, k = R.shape
    return (2 / (k * p)) * (np.trace(T) * R + 2 * R @ T) - (2 / p**2) * (np.trace(Q) * R + 2 * Q @ R)


def test_monte_carlo_check_catches_a_wrong_formula():
    Q, R, T = random_overlaps(2, 1, np.random.default_rng(11))
    mean, sem = monte_carlo_terms(Q, R, T, n_samples=SAMPLES, seed=5)["drift_R"]
    assert np.max(np.abs(right_drift_R(Q, R, T) - mean) / sem) < SIGMAS
    assert np.max(np.abs(wrong_drift_R(Q, R, T) - mean) / sem) > SIGMAS
    np.testing.assert_allclose(generated_terms(Q, R, T)["drift_R"], right_drift_R(Q, R, T), rtol=1e-13)


def test_noise_and_weight_decay_enter_as_documented():
    import numerics
    from derive.model.model import PAPER

    Q, R, T = random_overlaps(3, 2, np.random.default_rng(2))
    eta, Delta, kappa = 0.3, 0.2, 0.05
    plain_dQ, plain_dR = numerics.rhs(Q, R, T, eta)
    terms = generated_terms(Q, R, T)
    dQ, dR = numerics.rhs(Q, R, T, eta, model=PAPER.with_noise(Delta).with_weight_decay(kappa))
    np.testing.assert_allclose(dQ, plain_dQ + eta**2 * Delta * terms["noise_Q"] - 2 * eta * kappa * Q, rtol=1e-12)
    np.testing.assert_allclose(dR, plain_dR - eta * kappa * R, rtol=1e-12)
    assert numerics.risk(Q, R, T, model=PAPER.with_noise(Delta)) == pytest.approx(numerics.risk(Q, R, T) + Delta / 2)


def test_quantities_are_complete():
    assert set(QUANTITIES) == {"drift_Q", "drift_R", "diffusion_Q", "noise_Q", "residual_risk"}
