"""Sharpness-aware (SAM) one-pass steps: the exact drift (``sam_radius``) against quadrature, Monte Carlo and SGD.

The step (docs/model.md): ascent point ``w - rho (eta / sqrt N) E x``, so ``lambda~ = lambda - rho eta E``
as N -> infinity, and the gradient ``E~ = (y - f~) a sigma'(lambda~)`` taken there. The checks here are
written from that definition, independently of :mod:`numerics.ode.sam`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gauss_quadrature import gaussian_nodes
from numpy.polynomial import hermite_e

import numerics
from derive.model.model import Model
from numerics import RunSettings
from numerics.ode.sam import quadratic_form_moments, sam_rates
from numerics.ode.sam_quadrature import integrand_degree, quadrature_rates
from numerics.runtime.registry import resolve

#: Student c x**2 + c0 and teacher c* x**2 + c0* with readouts, label noise and weight decay: every term of the drift.
GENERAL = Model(student_activation="x**2 - 1", teacher_activation="2*x**2 + 1/2", student_readout="7/10",
                teacher_readout="1/k", noise_variance="3/10", weight_decay="1/10")


HE3 = Model(student_activation="x**3 - 3*x", teacher_activation="x**3 - 3*x", student_readout="1",
            teacher_readout="1")


def covariance(rng, p, k, batch=()):
    A = rng.standard_normal(batch + (p + k, p + k + 2))
    C = A @ np.swapaxes(A, -1, -2) / (p + k + 2)
    return C[..., :p, :p], C[..., :p, p:], C[..., p:, p:]


def displaced_increments(z, xi, p, eta, rho, sigma, sigma_prime, sigma_star, a, b, noise_std):
    """Per-sample ``(q, r)`` of one SAM step at N -> infinity, from the pre-activations ``z`` (n, p + k)."""
    lam, nu = z[:, :p], z[:, p:]
    y = sigma_star(nu).sum(axis=1) * b + noise_std * xi
    E = (y - a * sigma(lam).sum(axis=1))[:, None] * a * sigma_prime(lam)
    shifted = lam - rho * eta * E
    E_sam = (y - a * sigma(shifted).sum(axis=1))[:, None] * a * sigma_prime(shifted)
    q = eta * (E_sam[:, :, None] * lam[:, None, :] + lam[:, :, None] * E_sam[:, None, :])
    q = q + eta**2 * E_sam[:, :, None] * E_sam[:, None, :]
    return q, eta * E_sam[:, :, None] * nu[:, None, :]


def general_functions():
    return (lambda x: x**2 - 1), (lambda x: 2 * x), (lambda x: 2 * x**2 + 0.5)


@pytest.mark.parametrize("case", ["paper p=2 k=1", "general p=k=1"])
def test_drift_against_gauss_hermite_quadrature(case):
    # exact for polynomials (degree 18 in z): a tensor Gauss-Hermite rule in z, and one in the label noise
    if case.startswith("paper"):
        model, functions, (a, b, noise, decay), p = None, (np.square, lambda x: 2 * x, np.square), (0.5, 1.0, 0, 0), 2
        Q, R, T = np.array([[1.2, 0.3], [0.3, 0.7]]), np.array([[0.4], [-0.2]]), np.array([[0.9]])
    else:
        model, functions, (a, b, noise, decay), p = GENERAL, general_functions(), (0.7, 1.0, 0.3, 0.1), 1
        Q, R, T = np.array([[1.2]]), np.array([[0.4]]), np.array([[0.9]])
    z, weights = gaussian_nodes(np.block([[Q, R], [R.T, T]]), 10)
    xi, xi_weights = hermite_e.hermegauss(6)
    xi_weights = xi_weights / np.sqrt(2 * np.pi)
    eta, rho = 0.3, 0.8
    zz = np.repeat(z, xi.size, axis=0)
    q, r = displaced_increments(zz, np.tile(xi, len(z)), p, eta, rho, *functions, a, b, np.sqrt(noise))
    w = (weights[:, None] * xi_weights[None, :]).ravel()
    expected_Q = np.einsum("n,nij->ij", w, q) - 2 * eta * decay * Q
    expected_R = np.einsum("n,nij->ij", w, r) - eta * decay * R
    dQ, dR = numerics.rhs(Q, R, T, eta, model=model, sam_radius=rho)
    np.testing.assert_allclose(dQ, expected_Q, rtol=1e-10)
    np.testing.assert_allclose(dR, expected_R, rtol=1e-10)


def test_quadratic_form_moments_against_wick_counting():
    # <(z^T A z)^i (z^T B z)^j z_a z_b> at p = k = 1 from the generating function against Isserlis'
    # theorem enumerated by derive's pair counts
    from derive.gauss.wick import pairing_counts

    C = np.array([[1.3, 0.6], [0.6, 0.8]])
    alpha, beta = 0.7, -1.1  # F = alpha lambda^2, Y = beta nu^2
    P1, P2 = np.zeros((2, 2)), np.zeros((2, 2))
    P1[:, 0], P2[:, 1] = 2 * alpha * C[:, 0], 2 * beta * C[:, 1]
    moments = quadratic_form_moments(C, P1, P2, 5)

    def wick(exponents):
        return sum(float(coefficient) * np.prod([C[a, b] ** count for (a, b), count in pairs])
                   for coefficient, pairs in pairing_counts(tuple(exponents)))

    for i in range(6):
        for j in range(6 - i):
            for x, y in ((0, 0), (0, 1), (1, 1)):
                exponents = [2 * i, 2 * j]
                exponents[x] += 1
                exponents[y] += 1
                expected = alpha**i * beta**j * wick(exponents)
                derived = math.factorial(i) * math.factorial(j) * moments[i + j][i, x, y]
                assert derived == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_rho_zero_is_the_plain_right_hand_side():
    rng = np.random.default_rng(1)
    Q, R, T = covariance(rng, 3, 2)
    for model in (None, GENERAL):
        plain = numerics.rhs(Q, R, T, 0.4, model=model, batch_size=3)
        same = numerics.rhs(Q, R, T, 0.4, model=model, batch_size=3, sam_radius=0.0)
        assert all(np.array_equal(x, y) for x, y in zip(plain, same))
        # the sharpness-aware route itself at rho = 0: the generated plain terms, to rounding
        for second_order in (True, False):
            derived = sam_rates(Q, R, T, 0.4, 0.0, resolve(model, sizes=(3, 2)), second_order, batch_size=3)
            expected = numerics.rhs(Q, R, T, 0.4, model=model, batch_size=3, second_order=second_order)
            for x, y in zip(derived, expected):
                np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-13)


def test_batched_equals_one_by_one_and_the_batch_size_divides_the_square():
    rng = np.random.default_rng(2)
    Q, R, T = covariance(rng, 2, 2, batch=(3,))
    dQ, dR = numerics.rhs(Q, R, T, 0.2, model=GENERAL, sam_radius=1.5)
    for i in range(3):
        single = numerics.rhs(Q[i], R[i], T[i], 0.2, model=GENERAL, sam_radius=1.5)
        np.testing.assert_allclose(single[0], dQ[i], rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(single[1], dR[i], rtol=1e-13, atol=1e-14)
    first = numerics.rhs(Q, R, T, 0.2, model=GENERAL, sam_radius=1.5, second_order=False)[0]
    halved = numerics.rhs(Q, R, T, 0.2, model=GENERAL, sam_radius=1.5, batch_size=2)[0]
    np.testing.assert_allclose(halved - first, (dQ - first) / 2, rtol=1e-12, atol=1e-13)


#: Not of the form c x**2 + c0 (a linear term): the exact Gauss-Hermite route (numerics/ode/sam_quadrature.py).
LINEAR_TERM = Model(student_activation="x**2 + x", teacher_activation="x**2", student_readout="1/2",
                    teacher_readout="1")


@pytest.mark.parametrize("case", ["paper", "linear term"])
def test_drift_against_monte_carlo_with_a_power_check(case):
    # per-sample increments from Gaussian z, means within 5 standard errors; the drift truncated at
    # first order in rho (its value and slope at rho = 0) is rejected by the same statistics
    model, sigma, sigma_prime = ((None, np.square, lambda x: 2 * x) if case == "paper"
                                 else (LINEAR_TERM, lambda x: x**2 + x, lambda x: 2 * x + 1))
    rng = np.random.default_rng(3)
    p, k, eta, rho, samples = 2, 1, 0.5, 1.0, 400_000
    Q, R, T = np.array([[1.0, 0.2], [0.2, 0.8]]), np.array([[0.5], [0.1]]), np.eye(1)
    C = np.block([[Q, R], [R.T, T]])
    z = rng.standard_normal((samples, p + k)) @ np.linalg.cholesky(C).T
    q, r = displaced_increments(z, np.zeros(samples), p, eta, rho, sigma, sigma_prime, np.square, 1 / p, 1.0, 0.0)
    values = np.concatenate([q.reshape(samples, -1), r.reshape(samples, -1)], axis=1)
    mean, error = values.mean(0), values.std(0) / np.sqrt(samples)

    def packed(radius):
        dQ, dR = sam_rates(Q, R, T, eta, radius, resolve(model, sizes=(p, k)))
        return np.concatenate([dQ.ravel(), dR.ravel()])

    exact = packed(rho)
    assert np.max(np.abs(mean - exact) / error) < 5
    step = 1e-4
    linear = packed(0.0) + rho * (packed(step) - packed(-step)) / (2 * step)
    assert np.max(np.abs(mean - linear) / error) > 10


HE3_NOISY = Model(student_activation="x**3 - 3*x", teacher_activation="x**3 - 3*x + x**2", student_readout="1",
                  teacher_readout="1", noise_variance="1/5", weight_decay="1/20")


def test_quadrature_route_at_rho_zero_and_against_the_generating_function():
    # any polynomial model: at rho = 0 the generated plain terms (He3 with label noise and weight decay,
    # degree 50 integrands); for c x**2 + c0 the two routes agree at rho > 0
    rng = np.random.default_rng(5)
    for model, (p, k) in ((HE3_NOISY, (1, 1)), (HE3, (2, 1)), (LINEAR_TERM, (2, 1))):
        Q, R, T = covariance(rng, p, k)
        for second_order in (True, False):
            derived = quadrature_rates(Q, R, T, 0.2, 0.0, resolve(model, sizes=(p, k)), second_order, 2)
            expected = numerics.rhs(Q, R, T, 0.2, model=model, second_order=second_order, batch_size=2)
            for x, y in zip(derived, expected):
                np.testing.assert_allclose(x, y, rtol=1e-11, atol=1e-13)
    for model, (p, k) in ((None, (2, 1)), (GENERAL, (1, 1))):
        Q, R, T = covariance(rng, p, k)
        resolved = resolve(model, sizes=(p, k))
        for x, y in zip(quadrature_rates(Q, R, T, 0.3, 1.5, resolved), sam_rates(Q, R, T, 0.3, 1.5, resolved)):
            np.testing.assert_allclose(x, y, rtol=1e-11)


def test_quadrature_rule_sizes():
    # the degree bound: paper model 18 (10 nodes), He3 50 (26 nodes); larger widths are refused by name
    assert integrand_degree((0, 0, 1), (0, 0, 1), True) == 18
    assert integrand_degree((0, -3, 0, 1), (0, -3, 0, 1), True) == 50
    assert integrand_degree((0, -3, 0, 1), (0, -3, 0, 1), False) == 26
    with pytest.raises(ValueError, match="Gauss-Hermite rule of 26"):
        numerics.rhs(np.eye(2), np.zeros((2, 2)), np.eye(2), 0.1, model=HE3, sam_radius=0.1)


ERF = Model(student_activation="erf(x/sqrt(2))", teacher_activation="erf(x/sqrt(2))", student_readout="1",
            teacher_readout="1")
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: RunSettings(eta=0.5, sam_radius=-0.1), "sam_radius"),
        (lambda: RunSettings(eta=0.5, sam_radius=0.1, spherical=True), "spherical"),
        (lambda: RunSettings(eta=0.5, sam_radius=0.1, eta_a=0.5), "eta_a"),
        (lambda: numerics.rhs(np.eye(1), np.zeros((1, 1)), np.eye(1), 0.5, sam_radius=-1.0), "sam_radius"),
        (lambda: numerics.rhs(np.eye(1), np.zeros((1, 1)), np.eye(1), 0.5, model=ERF, sam_radius=0.5), "erf"),
        (lambda: numerics.rhs(np.eye(1), np.zeros((1, 1)), np.eye(1), 0.5, sam_radius=0.5, a=[1.0]), "a"),
        (lambda: numerics.integrate(np.eye(1), np.zeros((1, 1)), np.eye(1), eta=0.5, model=ERF, sam_radius=0.5,
                                    alpha_max=1.0), "erf"),
        (lambda: numerics.jacobian(np.eye(1), np.zeros((1, 1)), np.eye(1), 0.5, sam_radius=0.5), "sam_radius"),
        (lambda: numerics.increment_covariance(np.eye(1), np.zeros((1, 1)), np.eye(1), 0.5, sam_radius=0.5),
         "sam_radius"),
        (lambda: numerics.simulate(eta=0.5, sam_radius=0.5, N=50, p=1, k=1, alpha_max=0.1, method="overlaps",
                                   progress=False), "method='weights'"),
        (lambda: numerics.simulate_sde(np.eye(1), np.zeros((1, 1)), np.eye(1), eta=0.5, sam_radius=0.5, N=50,
                                       alpha_max=0.1), "sam_radius"),
    ],
)
def test_bad_settings_are_refused(call, message):
    with pytest.raises(ValueError, match=message.replace("*", r"\*")):
        call()
