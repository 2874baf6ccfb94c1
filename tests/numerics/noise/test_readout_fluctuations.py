"""Increment covariance and SDE with per-unit readout vectors (numerics/noise/readout_fluctuations.py).

Checked against an independent exact Gauss-Hermite quadrature with the units weighted by
``a_j``, ``b_r`` (tests/gauss_quadrature.py), against the scalar-readout route when the
vectors are uniform, and against Monte Carlo of actual SGD steps from weight vectors.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp
from gauss_quadrature import exact_increment_covariance, readout_values
from sample_points import random_point
from sgd_steps import PAPER_ACTIVATIONS, step_increments, z_scores

from derive.model.model import HE2, HE3, PAPER, Model
from numerics import simulate_sde
from numerics.noise.fluctuations import increment_covariance

# an uncommitted cubic model (network tables generated into the cache on first use)
MIXED_CUBIC = Model(student_activation="x**3 - 3*x", teacher_activation="x**2 + x", student_readout="1/sqrt(p)")

SHAPES = [(1, 1), (1, 3), (2, 1), (2, 2), (3, 1), (3, 2)]


def _relative_error(got, want):
    return float(np.max(np.abs(got - want))) / max(1.0, float(np.max(np.abs(want))))


def _readouts(p, k, rng):
    # signs mixed, magnitudes O(1): a committee with unequal units
    return rng.uniform(0.3, 1.2, size=p) * rng.choice([-1.0, 1.0], size=p), rng.uniform(0.5, 1.5, size=k)


@pytest.mark.parametrize(
    "model, shapes",
    [
        pytest.param(PAPER, SHAPES, id="paper"),
        pytest.param(HE2, SHAPES, id="he2"),
        pytest.param(HE3, [(1, 2), (2, 1), (2, 2)], id="he3"),
        pytest.param(MIXED_CUBIC, [(1, 2), (2, 1)], id="mixed-cubic", marks=pytest.mark.slow),
    ],
)
def test_readout_vectors_equal_exact_quadrature(model, shapes):
    rng = np.random.default_rng(41)
    noisy = model.with_noise(sp.Rational(3, 10)).with_weight_decay(sp.Rational(1, 10))
    for (p, k), kind in itertools.product(shapes, ["random", "singular", "near"]):
        if p + k == 5 and kind != "random":
            continue  # the rank-5 quadrature grid is the slow part
        Q, R, T = random_point(p, k, rng, kind)
        a, b = _readouts(p, k, rng)
        for second_order in (True, False):
            got = increment_covariance(Q, R, T, 0.4, model=noisy, second_order=second_order, a=a, b=b)
            want = exact_increment_covariance(model, Q, R, T, 0.4, delta=0.3, second_order=second_order, a=a, b=b)
            for name, g, w in zip(("QQ", "QR", "RR"), got, want):
                assert g.shape == w.shape
                assert _relative_error(g, w) < 1e-10, (name, p, k, kind, second_order)
    # the readouts matter: the scalar-readout covariance is far from the vector one
    scalar = increment_covariance(Q, R, T, 0.4, model=noisy)
    assert _relative_error(scalar[0], want[0]) > 1e-3


@pytest.mark.parametrize("model", [PAPER, HE3], ids=["paper", "he3"])
def test_uniform_vectors_equal_scalar_readouts(model):
    rng = np.random.default_rng(43)
    noisy = model.with_noise(0.2)
    for p, k in [(2, 1), (3, 2)]:
        Q, R, T = random_point(p, k, rng)
        a_value, b_value = readout_values(model, p, k)
        want = increment_covariance(Q, R, T, 0.3, model=noisy, batch_size=2)
        for a, b in [(np.full(p, a_value), None), (None, np.full(k, b_value)), (np.full(p, a_value), [b_value] * k)]:
            got = increment_covariance(Q, R, T, 0.3, model=noisy, batch_size=2, a=a, b=b)
            for g, w in zip(got, want):
                assert _relative_error(g, w) < 1e-12


def test_batched_readouts_equal_single_calls():
    rng = np.random.default_rng(47)
    p, k = 2, 2
    points = [random_point(p, k, rng) for _ in range(3)]
    Q, R, T = (np.stack([point[i] for point in points]) for i in range(3))
    a = rng.normal(size=(3, p))
    b = rng.normal(size=k)  # one teacher readout broadcast over the batch
    batched = increment_covariance(Q, R, T, 0.3, model=HE2, a=a, b=b)
    for index, (Qi, Ri, Ti) in enumerate(points):
        single = increment_covariance(Qi, Ri, Ti, 0.3, model=HE2, a=a[index], b=b)
        for block, want in zip(batched, single):
            assert block.shape == (3, *want.shape)
            assert _relative_error(block[index], want) < 1e-12


def test_bad_readouts_are_refused():
    Q, R, T = np.eye(2), np.zeros((2, 1)), np.eye(1)
    with pytest.raises(ValueError, match="a must have length p = 2"):
        increment_covariance(Q, R, T, 0.1, a=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="b must have length k = 1"):
        increment_covariance(Q, R, T, 0.1, b=[1.0, 2.0])
    with pytest.raises(ValueError, match="do not match"):
        increment_covariance(Q, R, T, 0.1, a=np.ones((3, 2)))
    with pytest.raises(ValueError, match="polynomial"):
        from derive.model.model import Model

        increment_covariance(Q, R, T, 0.1, model=Model(student_activation="relu(x)"), a=[1.0, 1.0])


@pytest.mark.slow  # about 10 s
def test_readout_vectors_match_monte_carlo_of_sgd_steps_from_weights():
    """Exact one-step increments of finite-N SGD with readout vectors (p = 3, k = 2, N = 400), 5 standard errors.

    Measured: largest |z| 2.4 (QQ), 1.9 (QR), 2.0 (RR); the scalar readouts' covariance is 22 (QQ)
    and 51 (RR) standard errors off, every entry 10 % too large 4.8 (QQ) and 7.0 (RR).
    """
    rng = np.random.default_rng(53)
    p, k, N, eta = 3, 2, 400, 0.5
    a, b = np.array([1.0, -0.6, 0.8]), np.array([1.2, 0.7])
    W = rng.standard_normal((p, N)) * 0.7
    W_star = rng.standard_normal((k, N))
    Q, R, T = W @ W.T / N, W @ W_star.T / N, W_star @ W_star.T / N
    q, r = step_increments(rng, W, W_star, eta, 200_000, a=a, b=b, chunk=4000, **PAPER_ACTIVATIONS)
    QQ, QR, RR = increment_covariance(Q, R, T, eta, a=a, b=b)
    for samples_a, samples_b, predicted in ((q, q, QQ), (q, r, QR), (r, r, RR)):
        z = z_scores(samples_a, samples_b, predicted)
        assert np.max(np.abs(z)) < 5, np.max(np.abs(z))
    # power: the covariance with the paper's scalar readouts at the same overlaps is many standard errors off
    for samples_a, samples_b, predicted in ((q, q, increment_covariance(Q, R, T, eta)[0]),
                                            (r, r, increment_covariance(Q, R, T, eta)[2])):
        assert np.max(np.abs(z_scores(samples_a, samples_b, predicted))) > 5


def test_sde_with_uniform_readouts_follows_the_scalar_sde():
    """Same seed, same step: uniform vectors (network tables) and the scalar path (packed evaluator) agree."""
    Q0, R0, T = np.eye(2) * 0.5, np.full((2, 1), 0.1), np.eye(1)
    options = dict(N=1000, eta=0.1, alpha_max=1.0, dalpha=0.05, replicas=3, seed=3, progress=False)
    scalar = simulate_sde(Q0, R0, T, **options)
    uniform = simulate_sde(Q0, R0, T, a=[0.5, 0.5], b=[1.0], **options)
    np.testing.assert_allclose(uniform.Q, scalar.Q, rtol=0, atol=1e-12)
    np.testing.assert_allclose(uniform.R, scalar.R, rtol=0, atol=1e-12)
    np.testing.assert_allclose(uniform.risk, scalar.risk, rtol=0, atol=1e-12)
    assert uniform.a.shape == (3, uniform.alpha.size, 2) and uniform.b.shape == (3, 1)
    # other readouts give another process: the committee's R moves the other way on the second unit
    committee = simulate_sde(Q0, R0, T, a=[0.5, -0.5], b=[1.0], **options)
    assert np.all(committee.R[:, -1, 1, 0] < scalar.R[:, -1, 1, 0])


def test_sde_readouts_per_replica_and_refusals():
    Q0, R0, T = np.eye(2) * 0.5, np.full((2, 1), 0.1), np.eye(1)
    options = dict(N=1000, eta=0.1, alpha_max=0.5, dalpha=0.05, progress=False)
    a = np.array([[1.0, -1.0], [0.5, 0.5]])
    both = simulate_sde(Q0, R0, T, a=a, replicas=2, seed=[5, 6], **options)
    for index, seed in enumerate((5, 6)):
        alone = simulate_sde(Q0, R0, T, a=a[index], replicas=1, seed=[seed], **options)
        np.testing.assert_allclose(both.Q[index], alone.Q, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="a must have length p = 2"):
        simulate_sde(Q0, R0, T, a=[1.0], **options)
    with pytest.raises(ValueError, match="do not match"):
        simulate_sde(Q0, R0, T, a=a, replicas=3, **options)


# --- a trained readout: the blocks of s_j = eta_a (y - f) sigma(lambda_j) -------------------------


@pytest.mark.parametrize(
    "model, shapes",
    [
        pytest.param(PAPER, SHAPES, id="paper"),
        pytest.param(HE2, [(1, 2), (2, 1), (2, 2), (3, 1)], id="he2"),
        pytest.param(HE3, [(1, 2), (2, 1), (2, 2)], id="he3"),
        pytest.param(MIXED_CUBIC, [(1, 2), (2, 1)], id="mixed-cubic", marks=pytest.mark.slow),
    ],
)
def test_trained_readout_blocks_equal_exact_quadrature(model, shapes):
    rng = np.random.default_rng(59)
    noisy = model.with_noise(sp.Rational(3, 10)).with_weight_decay(sp.Rational(1, 10))
    for (p, k), kind in itertools.product(shapes, ["random", "singular", "near"]):
        if p + k == 5 and kind != "random":
            continue
        Q, R, T = random_point(p, k, rng, kind)
        a, b = _readouts(p, k, rng)
        for second_order in (True, False):
            got = increment_covariance(Q, R, T, 0.4, model=noisy, second_order=second_order, a=a, b=b, eta_a=0.7)
            want = exact_increment_covariance(model, Q, R, T, 0.4, delta=0.3, second_order=second_order,
                                              a=a, b=b, eta_a=0.7)
            assert len(got) == 6
            for name, g, w in zip(("QQ", "QR", "RR", "AQ", "AR", "AA"), got, want):
                assert g.shape == w.shape
                assert _relative_error(g, w) < 1e-10, (name, p, k, kind, second_order)
    # the readout's scalar default is used when a is omitted
    default = increment_covariance(Q, R, T, 0.4, model=noisy, eta_a=0.7)
    want = exact_increment_covariance(model, Q, R, T, 0.4, delta=0.3, eta_a=0.7)
    for g, w in zip(default, want):
        assert _relative_error(g, w) < 1e-10


def test_trained_readout_mini_batch_scaling():
    """B samples per step: the covariance is B times the single-sample one at (eta / B, eta_a / B)."""
    rng = np.random.default_rng(61)
    Q, R, T = random_point(2, 1, rng)
    a, b = _readouts(2, 1, rng)
    batched = increment_covariance(Q, R, T, 0.4, model=HE2, a=a, b=b, eta_a=0.6, batch_size=4)
    single = increment_covariance(Q, R, T, 0.1, model=HE2, a=a, b=b, eta_a=0.15)
    for got, want in zip(batched, single):
        assert _relative_error(got, 4 * want) < 1e-12
    # the readout's own variance is that of a mean of 4 samples: Cov(s_1(eta_a)) / 4
    alone = increment_covariance(Q, R, T, 0.4, model=HE2, a=a, b=b, eta_a=0.6)
    assert _relative_error(batched[5], alone[5] / 4) < 1e-12


def test_trained_readout_bad_input():
    Q, R, T = np.eye(2), np.zeros((2, 1)), np.eye(1)
    with pytest.raises(ValueError, match="eta_a"):
        increment_covariance(Q, R, T, 0.1, eta_a=-0.1)
    with pytest.raises(ValueError, match="eta_a"):
        simulate_sde(Q, R, T, N=100, eta=0.1, alpha_max=0.5, eta_a=-1.0, progress=False)
    from derive.model.model import Model

    relu = Model(student_activation="relu(x)")
    with pytest.raises(ValueError, match="polynomial"):
        increment_covariance(Q, R, T, 0.1, model=relu, eta_a=0.5)
    with pytest.raises(ValueError, match="polynomial"):
        simulate_sde(Q, R, T, N=100, eta=0.1, alpha_max=0.5, model=relu, a=[1.0, 1.0], eta_a=0.5, progress=False)


@pytest.mark.slow  # about 10 s
def test_trained_readout_matches_monte_carlo_of_sgd_steps_from_weights():
    """The readout's blocks against one-step increments from weights (p = 3, k = 2, N = 400), 5 standard errors.

    Measured: largest |z| 1.5 (AQ), 1.9 (AR), 1.4 (AA); the blocks at the paper's scalar
    readouts are 22, 7.4 and 39 standard errors off; every entry 10 % too large 2.4, 2.4, 5.1.
    """
    rng = np.random.default_rng(67)
    p, k, N, eta, eta_a = 3, 2, 400, 0.5, 0.8
    a, b = np.array([1.0, -0.6, 0.8]), np.array([1.2, 0.7])
    W = rng.standard_normal((p, N)) * 0.7
    W_star = rng.standard_normal((k, N))
    Q, R, T = W @ W.T / N, W @ W_star.T / N, W_star @ W_star.T / N
    q, r, s = step_increments(rng, W, W_star, eta, 200_000, a=a, b=b, eta_a=eta_a, chunk=4000,
                              **PAPER_ACTIVATIONS)
    _, _, _, AQ, AR, AA = increment_covariance(Q, R, T, eta, a=a, b=b, eta_a=eta_a)
    for samples_a, samples_b, predicted in ((s, q, AQ), (s, r, AR), (s, s, AA)):
        z = z_scores(samples_a, samples_b, predicted)
        assert np.max(np.abs(z)) < 5, np.max(np.abs(z))
    # power: the blocks at the paper's scalar readouts are many standard errors off
    _, _, _, AQ_scalar, AR_scalar, AA_scalar = increment_covariance(Q, R, T, eta, eta_a=eta_a)
    for samples_a, samples_b, predicted in ((s, q, AQ_scalar), (s, r, AR_scalar), (s, s, AA_scalar)):
        assert np.max(np.abs(z_scores(samples_a, samples_b, predicted))) > 5


def test_sde_one_step_with_trained_readout_has_the_derived_mean_and_covariance():
    """One Euler-Maruyama step of (Q, R, a) from one start over many replicas: mean h * drift, covariance
    (h / N) Sigma with the readout's blocks, within 5 standard errors (Gaussian sampling errors).

    Measured: largest |z| 1.3 (mean), 1.9 (covariance); without the cross blocks 25.5.
    """
    from numerics import rhs
    from numerics.noise.sde_readouts import pack_readout_covariance

    Q0, R0, T = np.array([[0.6, 0.1], [0.1, 0.5]]), np.array([[0.3], [0.1]]), np.eye(1)
    a0, N, h, eta, eta_a, replicas = np.array([0.7, -0.4]), 100.0, 0.01, 0.3, 0.8, 4000
    run = simulate_sde(Q0, R0, T, N=N, eta=eta, alpha_max=h, dalpha=h, record=[0.0, h], replicas=replicas, seed=71,
                       a=a0, eta_a=eta_a, model=HE2, progress=False)
    assert run.extra["projections"] == 0 and run.a.shape == (replicas, 2, 2)
    iu = np.triu_indices(2)
    steps = np.concatenate([(run.Q[:, 1] - Q0)[:, iu[0], iu[1]], (run.R[:, 1] - R0).reshape(replicas, -1),
                            run.a[:, 1] - a0], axis=1)
    dQ, dR, da = rhs(Q0, R0, T, eta, model=HE2, a=a0, eta_a=eta_a)
    mean = h * np.concatenate([dQ[iu], dR.ravel(), da])
    Sigma = h / N * pack_readout_covariance(increment_covariance(Q0, R0, T, eta, model=HE2, a=a0, eta_a=eta_a))
    assert Sigma.shape == (7, 7) and np.all(np.abs(Sigma[-2:, :5]) > 0)  # the readout's noise is correlated
    z_mean = (steps.mean(axis=0) - mean) / np.sqrt(np.diag(Sigma) / replicas)
    assert np.max(np.abs(z_mean)) < 5, z_mean
    sample = np.cov(steps, rowvar=False)
    standard_error = np.sqrt((np.outer(np.diag(Sigma), np.diag(Sigma)) + Sigma**2) / replicas)
    z_cov = (sample - Sigma) / standard_error
    assert np.max(np.abs(z_cov)) < 5, np.max(np.abs(z_cov))
    # power: without the cross blocks (independent noise of a) the covariance is far off
    blocked = Sigma.copy()
    blocked[-2:, :5] = blocked[:5, -2:] = 0
    assert np.max(np.abs((sample - blocked) / standard_error)) > 5


def test_sde_without_noise_converges_to_the_ode_with_a_trained_readout():
    """N = 1e14 (noise negligible): the SDE is Euler's scheme for the ODE of (Q, R, a); its error halves with h.

    Measured up to alpha = 2: largest error 9.0e-4 (h = 0.02) and 4.5e-4 (h = 0.01) while a moves by 0.065.
    """
    from numerics import integrate

    Q0, R0, T = np.eye(2) * 0.5, np.array([[0.2], [0.05]]), np.eye(1)
    times = np.linspace(0, 2, 3)
    ode = integrate(Q0, R0, T, eta=0.2, alpha_max=2, a=[0.5, 0.3], eta_a=0.5, alpha_eval=times, rtol=1e-10,
                    atol=1e-12)
    errors = []
    for h in (0.02, 0.01):
        run = simulate_sde(Q0, R0, T, N=1e14, eta=0.2, alpha_max=2, dalpha=h, seed=1, progress=False, a=[0.5, 0.3],
                           eta_a=0.5, record=times)
        assert run.eta_a == 0.5 and run.a.shape == (3, 2)
        errors.append(max(np.abs(run.a - ode.a).max(), np.abs(run.Q - ode.Q).max(), np.abs(run.R - ode.R).max()))
    assert errors[1] < 1e-3 and 1.8 < errors[0] / errors[1] < 2.2, errors
    assert np.abs(ode.a[-1] - ode.a[0]).max() > 30 * errors[1]  # the readout does move


def test_network_tables_of_a_degree_two_model_equal_its_printed_moments():
    # the paper model's printed module bakes in the scalar readouts; its network tables take them as
    # vectors: uniform vectors must give the printed moments
    from numerics.noise.readout_fluctuations import network_moments
    from numerics.runtime.registry import fluctuation_module

    p, k = 3, 2
    Q, R, T = random_point(p, k, np.random.default_rng(41))
    printed = fluctuation_module(None).first_order_moments(Q, R, T, 0.3)
    tables = network_moments(None).evaluate(("LL", "LN", "NN"), Q, R, T, 0.3, np.full(p, 1 / p), np.full(k, 1 / k))
    for got, want in zip(tables, printed):
        assert got.shape == want.shape
        assert _relative_error(got, want) < 1e-12
    assert network_moments(None) is network_moments(None)  # built once per process


def test_readout_means_are_the_per_tuple_drift_and_second_moment():
    from numerics.noise.readout_fluctuations import readout_means
    from numerics.runtime.registry import tuple_module

    p, k = 2, 3
    rng = np.random.default_rng(43)
    Q, R, T = random_point(p, k, rng)
    a, b = _readouts(p, k, rng)
    drift_Q, drift_R, mean_B = readout_means(HE2, Q, R, T, a, b, 0.2)
    want_Q, want_R, diffusion_Q, noise_Q = tuple_module(HE2).all_terms(Q, R, T, a, b)
    np.testing.assert_allclose(drift_Q, want_Q, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(drift_R, want_R, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(mean_B, diffusion_Q + 0.2 * noise_Q, rtol=1e-12, atol=1e-14)


def test_readout_moments_refuse_non_polynomial_models():
    from derive.model.model import SCM
    from numerics.noise.readout_fluctuations import network_moments, trained_readout_moments

    for evaluator in (network_moments, trained_readout_moments):
        with pytest.raises(ValueError, match="polynomial|erf"):
            evaluator(SCM)
