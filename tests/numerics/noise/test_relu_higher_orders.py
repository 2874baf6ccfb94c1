"""The eta**3 and eta**4 parts of the relu networks' increment covariance: numerics/noise/relu_higher_orders.py.

Checked against an exact quadrature of the full increments' covariance (``q = eta (E l + l E) + eta**2 E E``;
radius in closed form, direction by Gauss-Legendre between the units' sign changes: tests/sphere_quadrature.py)
for two and three units, against Monte Carlo of SGD steps from weights at a large eta (with a power check: the
leading order alone is rejected), the packed route against the blocks, batched, and the size limit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.polynomial import hermite_e
from sample_points import random_overlaps, random_point, relative_error
from sgd_steps import largest_z_scores, step_increments
from sphere_quadrature import radial_moments, unit_directions

import numerics
from derive.model.model import Model
from numerics.noise.packing import pack_covariance
from numerics.noise.relu_higher_orders import MAX_HIGHER_ORDER_UNITS, is_relu_network
from numerics.noise.tuple_packing import tuple_packed_covariance
from numerics.runtime.registry import resolve

RELU = Model(student_activation="relu(x)", teacher_activation="relu(x)")


def relu(x):
    return np.maximum(x, 0.0)


def theta(x):
    return (x > 0).astype(float)


def exact_covariance(Q, R, T, eta, *, a, b, delta=0.0, nodes=20):
    """``(QQ, QR, RR)`` of ``q = eta (E_j l_l + E_l l_j) + eta**2 E_j E_l``, ``r = eta E_j n_r``, exactly.

    On a direction ``w`` (``z = rho z1``) ``q`` and ``r`` are polynomials of degree 2 in the radius ``rho``,
    so their moments are sums of ``E[rho**d]``; the label noise by Gauss-Hermite (exact to degree 5).
    """
    p = Q.shape[0]
    z1, weights, dimension = unit_directions(np.block([[Q, R], [R.T, T]]), nodes)
    step, lam, nu = theta(z1[:, :p]), z1[:, :p], z1[:, p:]
    r1 = relu(nu) @ b - relu(lam) @ a
    A1 = a * step  # a_j theta_j
    linear = A1[:, :, None] * lam[:, None, :]
    xi, xi_weights = hermite_e.hermegauss(3)
    coefficients, w = [], []
    for noise, noise_weight in zip(xi, xi_weights / np.sqrt(2 * np.pi)):
        s = np.sqrt(delta) * noise
        one = np.zeros_like(r1)
        # rho (rho r1 + s) and (rho r1 + s)**2 as coefficients of rho**0, rho**1, rho**2
        times_rho = np.stack([0 * one, s + one * 0, r1], axis=1)[:, :, None, None]
        squared = np.stack([s * s + 0 * one, 2 * s * r1, r1 * r1], axis=1)[:, :, None, None]
        q = eta * times_rho * (linear + np.swapaxes(linear, 1, 2))[:, None] + eta**2 * squared * (
            A1[:, :, None] * A1[:, None, :])[:, None]
        r = eta * times_rho * (A1[:, :, None] * nu[:, None, :])[:, None]
        coefficients.append(np.concatenate([q.reshape(len(z1), 3, -1), r.reshape(len(z1), 3, -1)], axis=2))
        w.append(weights * noise_weight)
    X, w = np.concatenate(coefficients), np.concatenate(w)
    mu = radial_moments(dimension, 5)
    mean = np.einsum("n,ndi,d->i", w, X, mu[:3])
    hankel = mu[np.add.outer(np.arange(3), np.arange(3))]
    second = np.einsum("n,ndi,nej,de->ij", w, X, X, hankel)
    cov = second - np.outer(mean, mean)
    k = R.shape[1]
    nq = p * p
    return (cov[:nq, :nq].reshape(p, p, p, p), cov[:nq, nq:].reshape(p, p, p, k),
            cov[nq:, nq:].reshape(p, k, p, k))


def _largest_error(got, want):
    scale = max(1.0, max(float(np.max(np.abs(x))) for x in want))
    return max(float(np.max(np.abs(g - x))) for g, x in zip(got, want)) / scale


def _point(p, k, rng, kind):
    """Overlaps of a full-rank covariance (``near``: nearly singular), or (``singular``) with student 0 equal to the
    first teacher."""
    Q, R, T = random_point(p, k, rng, "near" if kind == "near" else "random")
    C = np.block([[Q, R], [R.T, T]])
    if kind == "singular":
        C[0, :], C[:, 0] = C[p, :], C[:, p]
        C[0, 0] = C[p, p]
    return C[:p, :p], C[:p, p:], C[p:, p:]


@pytest.mark.parametrize("kind", ["random", "singular", "near"])
@pytest.mark.parametrize("sizes", [(1, 1), (2, 1), (1, 2)])
def test_full_covariance_equals_exact_quadrature(kind, sizes):
    """Every order (eta = 0.9, label noise, readout vectors) to 1e-10 (two units) and 1e-9 (three units).

    Measured: 1e-14 or less for random and singular covariances (the quadrature converges at 16 nodes per piece),
    2e-12 for nearly singular ones (smallest eigenvalue 1e-9 of the largest; 3e-14 with 40 nodes).
    """
    p, k = sizes
    rng = np.random.default_rng(7 + 3 * p + k)
    Q, R, T = _point(p, k, rng, kind)
    a, b = rng.uniform(-1.2, 1.2, p), rng.uniform(0.5, 1.5, k)
    model = RELU.with_noise(0.3)
    got = numerics.increment_covariance(Q, R, T, 0.9, model=model, a=a, b=b)
    want = exact_covariance(Q, R, T, 0.9, a=a, b=b, delta=0.3)
    assert _largest_error(got, want) < (1e-10 if p + k == 2 else 1e-9)
    # the higher parts are a sizeable share: the leading order alone is far off
    leading = numerics.increment_covariance(Q, R, T, 0.9, model=model, a=a, b=b, second_order=False)
    assert relative_error(leading[0], want[0]) > 1e-2


@pytest.mark.parametrize("sizes", [(2, 1), (3, 2)])
def test_full_covariance_matches_monte_carlo_of_sgd_steps_at_a_large_eta(sizes):
    """One step from weights (N = 400, eta = 1.0, 30,000 steps) within 5 standard errors; five units included.

    Measured: largest |z| 1.3 (QQ), 1.0 (QR), 0.8 (RR) at p = 2, k = 1; 2.3, 3.3, 2.9 at p = 3, k = 2 (over 81, 54
    and 36 entries). Power: the leading order alone is 37 to 45 standard errors off in QQ and QR.
    """
    p, k = sizes
    rng = np.random.default_rng(43)
    N, eta = 400, 1.0
    a, b = np.array([1.0, -0.6, 0.8])[:p], np.array([1.4, 0.7])[:k]
    W = rng.standard_normal((p, N)) * 0.8
    W_star = rng.standard_normal((k, N))
    Q, R, T = W @ W.T / N, W @ W_star.T / N, W_star @ W_star.T / N
    q, r = step_increments(rng, W, W_star, eta, 30_000, sigma=relu, sigma_prime=theta, sigma_star=relu,
                           a=a, b=b, chunk=5000)
    samples = ((q, q), (q, r), (r, r))
    blocks = numerics.increment_covariance(Q, R, T, eta, model=RELU, a=a, b=b)
    largest = largest_z_scores(samples, blocks)
    assert max(largest) < 5, largest
    leading = numerics.increment_covariance(Q, R, T, eta, model=RELU, a=a, b=b, second_order=False)
    largest = largest_z_scores(samples, leading)
    assert min(largest[:2]) > 5, largest


@pytest.mark.parametrize("model, sizes", [(RELU, (2, 2)), (RELU.with_noise(0.2), (3, 1)),
                                          (RELU.with_label_flip(0.2), (2, 1))])
def test_packed_route_equals_the_blocks_batched_and_with_readouts(model, sizes):
    p, k = sizes
    rng = np.random.default_rng(19 + p + 3 * k)
    Q, R, T = random_overlaps(rng, (3,), p, k)
    a, b = rng.normal(size=(3, p)), rng.normal(size=(3, k))
    want = pack_covariance(*numerics.increment_covariance(Q, R, T, 0.9, model=model))
    got = numerics.packed_covariance(Q, R, T, 0.9, model=model)
    assert relative_error(got, want) < 1e-12
    assert relative_error(got, numerics.packed_covariance(Q, R, T, 0.9, model=model, second_order=False)) > 1e-3
    single = numerics.packed_covariance(Q[1], R[1], T[1], 0.9, model=model)
    assert relative_error(single, got[1]) < 1e-14
    # readout vectors through the SDE's packed path (numerics/noise/tuple_packing.py)
    resolved = resolve(model, sizes=(p, k))
    vectors = pack_covariance(*numerics.increment_covariance(Q, R, T, 0.9, model=model, a=a, b=b))
    packed = tuple_packed_covariance(resolved.module, Q, R, T, 0.9, resolved.noise_variance, a, b,
                                     label_flip=resolved.label_flip, second_order=True)
    assert relative_error(packed, vectors) < 1e-12


def test_above_the_size_limit_the_leading_order_with_a_warning_and_silence_when_asked():
    """p + k = 6 > MAX_HIGHER_ORDER_UNITS: the leading order and a RuntimeWarning; ``leading_order_noise=True`` and
    ``second_order=False`` say nothing."""
    assert MAX_HIGHER_ORDER_UNITS == 5 and is_relu_network(resolve(RELU, sizes=(1, 1)).module)
    Q, R, T = random_overlaps(np.random.default_rng(4), (), 3, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        leading = numerics.packed_covariance(Q, R, T, 0.5, model=RELU, second_order=False)
        quiet = numerics.packed_covariance(Q, R, T, 0.5, model=RELU, leading_order_noise=True)
        blocks = numerics.increment_covariance(Q, R, T, 0.5, model=RELU, leading_order_noise=True)
    np.testing.assert_array_equal(quiet, leading)
    with pytest.warns(RuntimeWarning, match="relu network \\(p \\+ k = 6 units\\) is the leading order"):
        got = numerics.packed_covariance(Q, R, T, 0.5, model=RELU)
    np.testing.assert_array_equal(got, leading)
    with pytest.warns(RuntimeWarning, match="leading order"):
        full = numerics.increment_covariance(Q, R, T, 0.5, model=RELU)
    for x, y in zip(full, blocks):
        np.testing.assert_array_equal(x, y)


def test_leading_order_noise_and_the_sde_take_the_higher_parts():
    """``leading_order_noise=True`` is the covariance of ``second_order=False``, silently; the SDE runs with both."""
    Q, R, T = random_overlaps(np.random.default_rng(12), (), 2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = numerics.packed_covariance(Q, R, T, eta=0.8, model=RELU)
        leading = numerics.packed_covariance(Q, R, T, eta=0.8, model=RELU, leading_order_noise=True)
    assert relative_error(leading, numerics.packed_covariance(Q, R, T, eta=0.8, model=RELU,
                                                              second_order=False)) < 1e-14
    assert relative_error(leading, full) > 1e-3
    runs = [numerics.simulate_sde(0.5 * np.eye(2), np.full((2, 1), 0.1), np.eye(1), N=100, eta=0.8, model=RELU,
                                  alpha_max=0.2, dalpha=0.05, seed=3, replicas=2, progress=False,
                                  leading_order_noise=flag) for flag in (False, True)]
    assert not np.allclose(np.asarray(runs[0].Q), np.asarray(runs[1].Q))


def test_mini_batches_and_a_trained_readout_keep_their_orders():
    """A mini-batch of B is B times the single-sample covariance at eta / B; a trained readout's blocks (and RR)
    stay at leading order while QQ gains the higher parts."""
    Q, R, T = np.array([[0.8, 0.1], [0.1, 0.5]]), np.array([[0.4], [-0.2]]), np.eye(1)
    batched = numerics.increment_covariance(Q, R, T, 1.2, model=RELU, batch_size=4)
    single = numerics.increment_covariance(Q, R, T, 0.3, model=RELU)
    for got, want in zip(batched, single):
        np.testing.assert_allclose(got, 4 * want, rtol=1e-13, atol=0)
    leading = numerics.increment_covariance(Q, R, T, 1.2, model=RELU, batch_size=4, second_order=False)
    assert not np.allclose(batched[0], leading[0], rtol=1e-3)
    full = numerics.increment_covariance(Q, R, T, 0.9, model=RELU, eta_a=0.5)
    leading = numerics.increment_covariance(Q, R, T, 0.9, model=RELU, eta_a=0.5, second_order=False)
    for got, want in zip(full[2:], leading[2:]):
        np.testing.assert_array_equal(got, want)
    assert not np.allclose(full[0], leading[0], rtol=1e-3)
