"""Giant steps (batches of n_b N samples): the one-step map against full-batch SGD, its limits and its checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

import numerics
from derive.model.model import HE3, SCM, Model
from numerics import RunSettings
from numerics.ode.giant_steps import giant_step, mean_square, step_averages


def _orthonormal_rows(rng, rows, N):
    """``rows`` random orthonormal vectors of squared norm N, shape (rows, N)."""
    basis, _ = np.linalg.qr(rng.standard_normal((N, rows)))
    return np.sqrt(N) * basis.T


def _full_batch_sgd(rng, W, W_star, *, eta, batch, steps, sigma, sigma_prime, sigma_star, a, b):
    """Overlaps ``(Q, R)`` before and after each of ``steps`` full-batch steps, written from docs/model.md.

    One step sums the per-sample updates ``(eta / sqrt N) E_j x`` over ``batch`` fresh samples,
    all taken at the weights before the step. Shapes (steps + 1, p, p) and (steps + 1, p, k).
    """
    N = W.shape[1]
    Qs, Rs = [W @ W.T / N], [W @ W_star.T / N]
    for _ in range(steps):
        X = rng.standard_normal((batch, N))
        lam, nu = X @ W.T / np.sqrt(N), X @ W_star.T / np.sqrt(N)
        residual = sigma_star(nu) @ b - sigma(lam) @ a
        E = residual[:, None] * a * sigma_prime(lam)
        W = W + (eta / np.sqrt(N)) * (X.T @ E).T  # as X^T E: BLAS is far slower on the transposed product
        Qs.append(W @ W.T / N)
        Rs.append(W @ W_star.T / N)
    return np.array(Qs), np.array(Rs)


def _scaled_erf(x):
    return erf(x / np.sqrt(2))


def _scaled_erf_prime(x):
    return np.sqrt(2 / np.pi) * np.exp(-x * x / 2)


CASES = {
    # model, p, k, eta, sigma, sigma', sigma*, a, b
    "paper": (None, 2, 2, 0.2, np.square, lambda x: 2 * x, np.square, 0.5, 0.5),
    "erf": (SCM, 2, 2, 1.0, _scaled_erf, _scaled_erf_prime, _scaled_erf, 1.0, 1.0),
}


def _simulated_and_mapped(name, replicas=10, N=1000, n_b=2, steps=2):
    """Per-replica full-batch SGD and the map started from each replica's measured overlaps."""
    model, p, k, eta, sigma, sigma_prime, sigma_star, a, b = CASES[name]
    rng = np.random.default_rng(2026)
    Q_sim, R_sim = [], []
    for _ in range(replicas):
        W, W_star = _orthonormal_rows(rng, p, N), _orthonormal_rows(rng, k, N)  # R of order 1/sqrt(N)
        Q, R = _full_batch_sgd(rng, W, W_star, eta=eta, batch=n_b * N, steps=steps, sigma=sigma,
                               sigma_prime=sigma_prime, sigma_star=sigma_star, a=np.full(p, a), b=np.full(k, b))
        Q_sim.append(Q)
        R_sim.append(R)
    Q_sim, R_sim = np.array(Q_sim), np.array(R_sim)
    settings = RunSettings(eta=eta, model=model)
    mapped = numerics.giant_steps(Q_sim[:, 0], R_sim[:, 0], np.eye(k), settings, n_b=n_b, steps=steps)
    return Q_sim, R_sim, mapped, settings


def _z_scores(simulated, mapped):
    """Replica mean of (simulated - mapped) over its standard error, entry by entry."""
    difference = simulated - mapped
    return difference.mean(axis=0) / (difference.std(axis=0, ddof=1) / np.sqrt(len(difference)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_map_matches_full_batch_sgd_and_needs_the_square_of_the_mean(name):
    Q_sim, R_sim, mapped, settings = _simulated_and_mapped(name)
    assert np.all(np.abs(_z_scores(Q_sim[:, 1:], mapped.Q[:, 1:])) < 5)
    assert np.all(np.abs(_z_scores(R_sim[:, 1:], mapped.R[:, 1:])) < 5)
    # power: the map without the n_b**2 term (the square of the mean update) is rejected by the same test
    T = np.eye(R_sim.shape[-1])
    Q_without, _, _ = giant_step(Q_sim[:, 0], R_sim[:, 0], T, 2.0, settings, square_of_mean=False)
    assert np.max(np.abs(_z_scores(Q_sim[:, 1], Q_without))) > 5


LIMIT_CASES = {
    "paper": {},
    "label noise and weight decay": {"model": Model(noise_variance="0.1", weight_decay="0.05")},
    "erf, trained readout with decay": {"model": SCM, "a": np.array([0.8, 1.2]), "eta_a": 0.5, "readout_decay": 0.1},
}


@pytest.mark.parametrize("case", sorted(LIMIT_CASES))
def test_small_batches_approach_the_one_sample_ode(case):
    # n_b -> 0 at fixed alpha: the map's error against the ODE is first order in n_b
    settings = RunSettings(eta=0.5, **LIMIT_CASES[case])
    rng = np.random.default_rng(3)
    Q0, R0, T = np.eye(2), 0.1 * rng.standard_normal((2, 2)), np.eye(2)
    ode = numerics.integrate(Q0, R0, T, settings, alpha_max=1.0, alpha_eval=[1.0], rtol=1e-11, atol=1e-13)
    errors = []
    for n_b in (4e-3, 2e-3):
        run = numerics.giant_steps(Q0, R0, T, settings, n_b=n_b, steps=round(1 / n_b))
        assert run.alpha[-1] == pytest.approx(1.0)
        errors.append(max(np.max(np.abs(run.Q[-1] - ode.Q[-1])), np.max(np.abs(run.R[-1] - ode.R[-1]))))
        if settings.eta_a:
            errors[-1] = max(errors[-1], np.max(np.abs(run.a[-1] - ode.a[-1])))
    assert errors[1] < 1e-3
    assert errors[0] / errors[1] == pytest.approx(2.0, rel=0.05)


def test_batched_starts_equal_single_starts():
    rng = np.random.default_rng(4)
    Q0 = np.array([np.eye(2), 0.8 * np.eye(2) + 0.1])
    R0 = 0.2 * rng.standard_normal((2, 2, 1))
    batched = numerics.giant_steps(Q0, R0, n_b=1.5, steps=4, eta=0.02, model=HE3)
    for i in range(2):
        single = numerics.giant_steps(Q0[i], R0[i], n_b=1.5, steps=4, eta=0.02, model=HE3)
        np.testing.assert_allclose(batched.Q[i], single.Q, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(batched.R[i], single.R, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(batched.risk[i], single.risk, rtol=1e-13, atol=1e-15)
    assert batched.Q.shape == (2, 5, 2, 2) and batched.risk.shape == (2, 5)
    np.testing.assert_allclose(batched.alpha, 1.5 * np.arange(5))


def test_equal_students_make_a_singular_covariance_and_stay_equal():
    # two identical students: C is singular, the pseudo-inverse is exact on the range of C
    R_row = np.array([[0.3, 0.1]])
    Q0, R0 = np.full((2, 2), 0.9), np.repeat(R_row, 2, axis=0)
    run = numerics.giant_steps(Q0, R0, n_b=2.0, steps=3, eta=0.2)
    assert np.all(np.isfinite(run.Q)) and np.all(np.isfinite(run.R))
    np.testing.assert_allclose(run.Q[-1], run.Q[-1][0, 0], rtol=1e-12)
    np.testing.assert_allclose(run.R[-1][0], run.R[-1][1], rtol=1e-12)
    # the square of the mean update from a regularised C converges to the pseudo-inverse's
    settings = RunSettings(eta=0.2)
    averages = step_averages(Q0, R0, np.eye(2), settings)
    C = np.block([[Q0, R0], [R0.T, np.eye(2)]])
    regularised = mean_square(averages.first_order, C + 1e-9 * np.eye(4))
    np.testing.assert_allclose(averages.mean_square, regularised, rtol=1e-6)


def test_trained_readout_and_sphere_follow_their_maps():
    rng = np.random.default_rng(5)
    Q0, R0, T = np.eye(2), 0.2 * rng.standard_normal((2, 2)), np.eye(2)
    run = numerics.giant_steps(Q0, R0, T, n_b=0.5, steps=2, eta=0.3, eta_a=0.4, readout_decay=0.1, model=SCM)
    settings = RunSettings(eta=0.3, eta_a=0.4, readout_decay=0.1, model=SCM)
    a0 = np.ones(2)
    readout = step_averages(Q0, R0, T, settings, a0).readout
    np.testing.assert_allclose(run.a[1], a0 + 0.4 * 0.5 * (readout - 0.1 * a0), rtol=1e-13)
    sphere = numerics.giant_steps(Q0, R0, T, n_b=0.5, steps=3, eta=0.3, spherical=True)
    np.testing.assert_allclose(np.diagonal(sphere.Q, axis1=-2, axis2=-1), 1.0, rtol=1e-13)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"n_b": 0.0}, "n_b"),
        ({"n_b": -1.0}, "n_b"),
        ({"steps": 0}, "steps"),
        ({"Q0": np.array([[np.nan, 0], [0, 1.0]])}, "Q0"),
        ({"Q0": np.array([[1.0, 2.0], [2.0, 1.0]])}, "positive semi-definite"),
        ({"batch_size": 4}, "batch_size"),
        ({"sam_radius": 0.5}, "sam_radius"),
    ],
)
def test_bad_inputs_are_refused_by_name(arguments, message):
    values = {"Q0": np.eye(2), "R0": np.zeros((2, 2)), "n_b": 1.0, "steps": 2, "eta": 0.2, **arguments}
    with pytest.raises(ValueError, match=message):
        numerics.giant_steps(values.pop("Q0"), values.pop("R0"), **values)


def test_divergence_names_the_step():
    with pytest.raises(numerics.IntegrationError, match=r"at step \d+, alpha = "):
        numerics.giant_steps(np.eye(2), 0.1 * np.ones((2, 2)), n_b=4.0, steps=50, eta=0.5)


def test_label_flips_mix_the_averages_before_squaring():
    flipped = Model(student_activation="erf(x/sqrt(2))", teacher_activation="erf(x/sqrt(2))", student_readout=1,
                    teacher_readout=1, label_flip=0.1)
    rng = np.random.default_rng(6)
    Q0, R0, T = np.eye(2), 0.3 * rng.standard_normal((2, 2)), np.eye(2)
    settings = RunSettings(eta=0.5, model=flipped)
    Q1, R1, _ = giant_step(Q0, R0, T, 1.0, settings, np.ones(2))
    kept = step_averages(Q0, R0, T, RunSettings(eta=0.5, model=SCM, b=np.ones(2)))
    lost = step_averages(Q0, R0, T, RunSettings(eta=0.5, model=SCM, b=-np.ones(2)))
    first_order = 0.9 * kept.first_order + 0.1 * lost.first_order
    np.testing.assert_allclose(R1, R0 + 0.5 * first_order[:, 2:], rtol=1e-12)
    C = np.block([[Q0, R0], [R0.T, T]])
    expected_Q = Q0 + 0.5 * (first_order[:, :2] + first_order[:, :2].T) + 0.25 * (
        mean_square(first_order, C) + 0.9 * kept.second_moment + 0.1 * lost.second_moment)
    np.testing.assert_allclose(Q1, expected_Q, rtol=1e-12)
