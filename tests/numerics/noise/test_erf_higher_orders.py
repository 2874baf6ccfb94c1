"""The eta**3 and eta**4 parts of the erf networks' increment covariance: numerics/noise/erf_higher_orders.py.

Checked against a tensor Gauss-Hermite quadrature of the full increments' covariance (``q = eta (E l + l E) +
eta**2 E E``), against Monte Carlo of SGD steps from weights at a large eta (with a power check: the leading order
alone is rejected), and the packed route against the per-tuple blocks, batched, with mini-batches and label flips.
"""

from __future__ import annotations

import numpy as np
import pytest
from gauss_quadrature import gaussian_nodes
from numpy.polynomial import hermite_e
from sample_points import random_overlaps, random_point, relative_error
from scipy.special import erf
from sgd_steps import largest_z_scores, step_increments

import numerics
from derive.model.model import SCM, Model
from numerics.noise.erf_higher_orders import MAX_HIGHER_ORDER_UNITS, erf_unit_scales, has_higher_orders
from numerics.noise.packing import pack_covariance
from numerics.noise.tuple_packing import tuple_packed_covariance
from numerics.runtime.registry import resolve


def sigma(x):
    return erf(x / np.sqrt(2))


def sigma_prime(x):
    return np.sqrt(2 / np.pi) * np.exp(-x * x / 2)


def full_quadrature_covariance(Q, R, T, eta, *, a, b, delta=0.0, nodes=40):
    """``(QQ, QR, RR)`` of ``q = eta (E_j l_l + E_l l_j) + eta**2 E_j E_l``, ``r = eta E_j n_r`` by quadrature."""
    p = Q.shape[0]
    z, weights = gaussian_nodes(np.block([[Q, R], [R.T, T]]), nodes)
    xi, xi_weights = hermite_e.hermegauss(5)  # exact for the label noise's moments up to the ninth
    xi_weights = xi_weights / np.sqrt(2 * np.pi)
    lam, nu = z[:, :p], z[:, p:]
    residual = sigma(nu) @ b - sigma(lam) @ a
    w = np.concatenate([weights * v for v in xi_weights])
    E = np.concatenate([a * sigma_prime(lam) * (residual + np.sqrt(delta) * x)[:, None] for x in xi])
    lam, nu = np.concatenate([lam] * len(xi)), np.concatenate([nu] * len(xi))
    q = eta * (E[:, :, None] * lam[:, None, :] + lam[:, :, None] * E[:, None, :]) + eta**2 * E[:, :, None] * E[:, None]
    r = eta * E[:, :, None] * nu[:, None, :]

    def cov(x, y):
        xc, yc = x - np.einsum("n,n...->...", w, x), y - np.einsum("n,n...->...", w, y)
        return np.einsum("n,na,nb->ab", w, xc.reshape(len(w), -1), yc.reshape(len(w), -1)).reshape(
            x.shape[1:] + y.shape[1:])

    return cov(q, q), cov(q, r), cov(r, r)


@pytest.mark.parametrize("kind", ["random", "singular"])
@pytest.mark.parametrize("sizes", [(1, 1), (2, 1)])
def test_full_covariance_equals_quadrature(kind, sizes):
    """Every order (eta = 0.9, label noise, readout vectors) against the quadrature, to 1e-10 relative."""
    p, k = sizes
    rng = np.random.default_rng(5 + 3 * p + k)
    Q, R, T = (0.5 * block for block in random_point(p, k, rng, kind))
    a, b = rng.uniform(-1.2, 1.2, p), rng.uniform(0.5, 1.5, k)
    got = numerics.increment_covariance(Q, R, T, 0.9, model=SCM.with_noise(0.3), a=a, b=b)
    want = full_quadrature_covariance(Q, R, T, 0.9, a=a, b=b, delta=0.3, nodes=50)
    scale = max(1.0, max(float(np.max(np.abs(w))) for w in want))
    assert max(float(np.max(np.abs(g - w))) for g, w in zip(got, want)) / scale < 1e-10
    # the higher parts are a sizeable share: the leading order alone is far off
    leading = numerics.increment_covariance(Q, R, T, 0.9, model=SCM.with_noise(0.3), a=a, b=b, second_order=False)
    assert float(np.max(np.abs(leading[0] - want[0]))) > 1e-3 * float(np.max(np.abs(want[0])))


def test_scalar_readouts_and_a_student_equal_to_the_teacher():
    Q = np.array([[1.0, 0.3], [0.3, 0.6]])
    R = np.array([[1.0], [0.3]])  # student 0 is the teacher: a singular C
    T = np.eye(1)
    got = numerics.increment_covariance(Q, R, T, 0.8, model=SCM)
    # unit variances: the eighth-degree tilted integrand needs more nodes (40 nodes are 4e-9 off, 80 nodes 2e-15)
    want = full_quadrature_covariance(Q, R, T, 0.8, a=np.ones(2), b=np.ones(1), nodes=80)
    assert max(float(np.max(np.abs(g - w))) for g, w in zip(got, want)) < 1e-10


def test_full_covariance_matches_monte_carlo_of_sgd_steps_at_a_large_eta():
    """One step from weights (p = 2, k = 1, N = 400, eta = 1.0, 60,000 steps) within 5 standard errors.

    Measured: largest |z| 2.4 (QQ), 2.2 (QR), 2.5 (RR). Power: the leading order alone is 36 standard errors off in
    QQ (and 10 in QR).
    """
    rng = np.random.default_rng(41)
    p, k, N, eta = 2, 1, 400, 1.0
    a, b = np.array([1.0, 0.6]), np.array([1.4])
    W = rng.standard_normal((p, N)) * 0.8
    W_star = rng.standard_normal((k, N))
    Q, R, T = W @ W.T / N, W @ W_star.T / N, W_star @ W_star.T / N
    q, r = step_increments(rng, W, W_star, eta, 60_000, sigma=sigma, sigma_prime=sigma_prime, sigma_star=sigma,
                           a=a, b=b, chunk=5000)
    samples = ((q, q), (q, r), (r, r))
    blocks = numerics.increment_covariance(Q, R, T, eta, model=SCM, a=a, b=b)
    largest = largest_z_scores(samples, blocks)
    assert max(largest) < 5, largest
    leading = numerics.increment_covariance(Q, R, T, eta, model=SCM, a=a, b=b, second_order=False)
    largest = largest_z_scores(samples, leading)
    assert min(largest[:2]) > 5, largest


#: erf units of other scales: the closed forms are written for erf(z / sqrt 2) and rescaled
SCALED_ERF = Model(student_activation="erf(x)", teacher_activation="erf(2*x)", student_readout="1",
                   teacher_readout="1")


@pytest.mark.parametrize("model, sizes", [(SCM, (2, 2)), (SCM.with_noise(0.2), (3, 1)), (SCALED_ERF, (2, 1)),
                                          (SCM.with_label_flip(0.2), (2, 1))])
def test_packed_route_equals_the_blocks_batched_and_with_readouts(model, sizes):
    p, k = sizes
    rng = np.random.default_rng(17 + p + 3 * k)
    Q, R, T = random_overlaps(rng, (3,), p, k)
    a, b = rng.normal(size=(3, p)), rng.normal(size=(3, k))
    want = pack_covariance(*numerics.increment_covariance(Q, R, T, 0.9, model=model))
    got = numerics.packed_covariance(Q, R, T, 0.9, model=model)
    assert relative_error(got, want) < 1e-12
    single = numerics.packed_covariance(Q[1], R[1], T[1], 0.9, model=model)
    assert relative_error(single, got[1]) < 1e-14
    # readout vectors through the SDE's packed path (numerics/noise/tuple_packing.py)
    resolved = resolve(model, sizes=(p, k))
    vectors = pack_covariance(*numerics.increment_covariance(Q, R, T, 0.9, model=model, a=a, b=b))
    packed = tuple_packed_covariance(resolved.module, Q, R, T, 0.9, resolved.noise_variance, a, b,
                                     label_flip=resolved.label_flip, second_order=True)
    assert relative_error(packed, vectors) < 1e-12


def test_mini_batches_scale_the_higher_parts_as_the_polynomial_route():
    """A mini-batch of B is B times the single-sample covariance at eta / B: the eta**3 part over B**2, eta**4 B**3."""
    Q, R, T = np.array([[0.8, 0.1], [0.1, 0.5]]), np.array([[0.4], [-0.2]]), np.eye(1)
    batched = numerics.increment_covariance(Q, R, T, 1.2, model=SCM, batch_size=4)
    single = numerics.increment_covariance(Q, R, T, 0.3, model=SCM)
    for got, want in zip(batched, single):
        np.testing.assert_allclose(got, 4 * want, rtol=1e-13, atol=0)
    leading = numerics.increment_covariance(Q, R, T, 1.2, model=SCM, batch_size=4, second_order=False)
    assert not np.allclose(batched[0], leading[0], rtol=1e-3)


def test_a_sign_teacher_and_a_trained_readout_get_the_higher_parts():
    """A sign teacher gets the higher parts (tests/numerics/noise/test_sign_higher_orders.py); a trained readout's
    ``AQ`` its ``eta_a eta**2`` part (tests/numerics/noise/test_erf_readout_orders.py), ``AR`` and ``AA`` none."""
    sign = Model(student_activation="erf(x/sqrt(2))", teacher_activation="sign(x)", student_readout="1",
                 teacher_readout="1")
    module = resolve(sign, sizes=(2, 1)).module
    assert has_higher_orders(module) and has_higher_orders(resolve(SCM, sizes=(2, 1)).module)
    assert np.array_equal(erf_unit_scales(module, 2, 1)[1], [1.0, 1.0, 0.0])  # the sign teacher's offset
    Q, R, T = np.array([[0.8, 0.1], [0.1, 0.5]]), np.array([[0.4], [-0.2]]), np.eye(1)
    assert not np.allclose(numerics.packed_covariance(Q, R, T, 0.9, model=sign),
                           numerics.packed_covariance(Q, R, T, 0.9, model=sign, second_order=False), rtol=1e-3)
    full = numerics.increment_covariance(Q, R, T, 0.9, model=SCM, eta_a=0.5)
    leading = numerics.increment_covariance(Q, R, T, 0.9, model=SCM, eta_a=0.5, second_order=False)
    for got, want in zip(full[4:], leading[4:]):
        np.testing.assert_array_equal(got, want)
    assert not np.allclose(full[3], leading[3], rtol=1e-3)
    np.testing.assert_array_equal(full[2], leading[2])  # RR has no eta**2 E E part
    # with label flips too: AR and AA keep the leading order
    flips = SCM.with_label_flip(0.2)
    full = numerics.increment_covariance(Q, R, T, 0.9, model=flips, eta_a=0.5)
    leading = numerics.increment_covariance(Q, R, T, 0.9, model=flips, eta_a=0.5, second_order=False)
    for got, want in zip(full[4:], leading[4:]):
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-16)
    assert not np.allclose(full[0], leading[0], rtol=1e-3)


def test_above_the_size_limit_the_leading_order_with_a_warning():
    """p + k = 9 > MAX_HIGHER_ORDER_UNITS: both parts left out (not one: eta**2 + eta**3 alone need not be PSD)."""
    assert MAX_HIGHER_ORDER_UNITS == 8
    rng = np.random.default_rng(4)
    Q, R, T = random_overlaps(rng, (), 5, 4)
    leading = numerics.packed_covariance(Q, R, T, 0.5, model=SCM, second_order=False)
    with pytest.warns(RuntimeWarning, match="leading order"):
        got = numerics.packed_covariance(Q, R, T, 0.5, model=SCM)
    np.testing.assert_array_equal(got, leading)
    with pytest.warns(RuntimeWarning, match="p \\+ k = 9"):
        blocks = numerics.increment_covariance(Q, R, T, 0.5, model=SCM)
    np.testing.assert_array_equal(blocks[0], numerics.increment_covariance(Q, R, T, 0.5, model=SCM,
                                                                           second_order=False)[0])


def test_leading_order_noise_setting_drops_the_higher_parts_of_the_covariance_only():
    """``leading_order_noise=True``: the covariance of ``second_order=False`` in every route, the drift unchanged."""
    Q, R, T = random_overlaps(np.random.default_rng(11), (), 2, 2)
    cubic = Model(student_activation="x**3", teacher_activation="x**3")
    for model in (SCM, cubic):
        full = numerics.packed_covariance(Q, R, T, eta=0.5, model=model)
        leading = numerics.packed_covariance(Q, R, T, eta=0.5, model=model, leading_order_noise=True)
        gradient_flow = numerics.packed_covariance(Q, R, T, eta=0.5, model=model, second_order=False)
        assert relative_error(leading, gradient_flow) < 1e-14
        assert relative_error(leading, full) > 1e-3  # the setting is not ignored
        blocks = numerics.increment_covariance(Q, R, T, eta=0.5, model=model, leading_order_noise=True)
        assert relative_error(pack_covariance(*blocks), leading) < 1e-12
    drift = numerics.rhs(Q, R, T, eta=0.5, model=SCM)
    same = numerics.rhs(Q, R, T, eta=0.5, model=SCM, leading_order_noise=True)
    assert all(np.array_equal(x, y) for x, y in zip(drift, same))
    runs = [numerics.simulate_sde(Q, R, T, N=100, eta=0.5, model=SCM, alpha_max=0.5, dalpha=0.05, seed=3, replicas=2,
                                  progress=False, leading_order_noise=flag) for flag in (False, True)]
    assert runs[1].settings.leading_order_noise and not runs[0].settings.leading_order_noise
    assert not np.allclose(np.asarray(runs[0].Q), np.asarray(runs[1].Q))
