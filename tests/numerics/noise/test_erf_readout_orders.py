"""A trained readout's eta**2 part in the erf networks' increment covariance (numerics/noise/erf_higher_orders.py).

``AQ = Cov(s, q)`` with ``q``'s ``eta**2 E_m E_n`` term, as the polynomial models have it; ``AR`` and ``AA`` have no
such part. Against a tensor Gauss-Hermite quadrature of the definition, Monte Carlo of one SGD step from weights with
flipped labels at eta = 1 (a power check: the leading order's ``AQ`` is rejected), label flips and mini-batches.
"""

from __future__ import annotations

import numpy as np
import pytest
from gauss_quadrature import gaussian_nodes
from numpy.polynomial import hermite_e
from sample_points import random_point
from scipy.special import erf
from sgd_steps import largest_z_scores, step_increments, z_scores

import numerics
from derive.model.model import SCM


def sigma(x):
    return erf(x / np.sqrt(2))


def sigma_prime(x):
    return np.sqrt(2 / np.pi) * np.exp(-x * x / 2)


def readout_quadrature(Q, R, T, eta, eta_a, *, a, b, delta, nodes=50):
    """``(AQ, AR, AA)``: ``Cov(s_j, .)`` with ``s = eta_a sigma(l) (y - f)``, ``q = eta (E l + l E) + eta**2 E E``."""
    p = Q.shape[0]
    z, weights = gaussian_nodes(np.block([[Q, R], [R.T, T]]), nodes)
    xi, xi_weights = hermite_e.hermegauss(5)
    w = np.concatenate([weights * v / np.sqrt(2 * np.pi) for v in xi_weights])
    lam, nu = np.concatenate([z[:, :p]] * len(xi)), np.concatenate([z[:, p:]] * len(xi))
    residual = np.concatenate([sigma(z[:, p:]) @ b - sigma(z[:, :p]) @ a + np.sqrt(delta) * x for x in xi])
    E = a * sigma_prime(lam) * residual[:, None]
    q = eta * (E[:, :, None] * lam[:, None, :] + lam[:, :, None] * E[:, None, :]) + eta**2 * E[:, :, None] * E[:, None]
    r = eta * E[:, :, None] * nu[:, None, :]
    s = eta_a * sigma(lam) * residual[:, None]

    def cov(x, y):
        xc, yc = x - np.einsum("n,n...->...", w, x), y - np.einsum("n,n...->...", w, y)
        return np.einsum("n,na,nb->ab", w, xc.reshape(len(w), -1), yc.reshape(len(w), -1)).reshape(
            x.shape[1:] + y.shape[1:])

    return cov(s, q), cov(s, r), cov(s, s)


@pytest.mark.parametrize("kind", ["random", "singular"])
@pytest.mark.parametrize("sizes", [(1, 1), (2, 1)])
def test_readout_blocks_equal_the_quadrature(kind, sizes):
    """eta = 0.9, eta_a = 0.7, label noise 0.3, readout vectors: to 1e-10 relative; the leading AQ is far off."""
    p, k = sizes
    rng = np.random.default_rng(2 + 3 * p + k)
    Q, R, T = (0.5 * block for block in random_point(p, k, rng, kind))
    a, b = rng.uniform(-1.2, 1.2, p), rng.uniform(0.5, 1.5, k)
    model = SCM.with_noise(0.3)
    got = numerics.increment_covariance(Q, R, T, 0.9, model=model, a=a, b=b, eta_a=0.7)[3:]
    # one student: a larger variance for the tensor rule, 50 nodes are 7e-9 off, 80 nodes 1e-14
    want = readout_quadrature(Q, R, T, 0.9, 0.7, a=a, b=b, delta=0.3, nodes=80 if p == 1 else 50)
    scale = max(float(np.max(np.abs(x))) for x in want)
    assert max(float(np.max(np.abs(g - x))) for g, x in zip(got, want)) / scale < 1e-10
    leading = numerics.increment_covariance(Q, R, T, 0.9, model=model, a=a, b=b, eta_a=0.7, second_order=False)[3]
    assert float(np.max(np.abs(leading - want[0]))) > 1e-3 * float(np.max(np.abs(want[0])))


def test_one_sgd_step_with_a_trained_readout_and_flipped_labels_matches():
    """p = 2, k = 1, N = 400, eta = 1.0, eta_a = 0.8, flips 0.2, 60,000 steps from weights: within 5 standard errors.

    Measured: largest |z| 2.1 over the six blocks (1.6 in AQ, AR, AA). Power: the leading order's AQ is 57 standard
    errors off, the covariance without flips 27 (in RR).
    """
    rng = np.random.default_rng(12)
    p, k, N, eta, eta_a, flip = 2, 1, 400, 1.0, 0.8, 0.2
    a, b = np.array([1.0, 0.6]), np.array([1.4])
    W = rng.standard_normal((p, N)) * 0.8
    W_star = rng.standard_normal((k, N))
    Q, R, T = W @ W.T / N, W @ W_star.T / N, W_star @ W_star.T / N
    q, r, s = step_increments(rng, W, W_star, eta, 60_000, sigma=sigma, sigma_prime=sigma_prime, sigma_star=sigma,
                              a=a, b=b, eta_a=eta_a, chunk=5000, label_flip=flip)
    model = SCM.with_label_flip(flip)
    blocks = numerics.increment_covariance(Q, R, T, eta, model=model, a=a, b=b, eta_a=eta_a)
    samples = ((q, q), (q, r), (r, r), (s, q), (s, r), (s, s))
    largest = largest_z_scores(samples, blocks)
    assert max(largest) < 5, largest
    leading = numerics.increment_covariance(Q, R, T, eta, model=model, a=a, b=b, eta_a=eta_a, second_order=False)
    assert float(np.max(np.abs(z_scores(s, q, leading[3])))) > 5
    unflipped = numerics.increment_covariance(Q, R, T, eta, model=SCM, a=a, b=b, eta_a=eta_a)
    assert max(largest_z_scores(samples, unflipped)) > 5


def test_mini_batches_and_the_sde_path_take_the_readout_part():
    """A mini-batch of B is B times the single sample at eta / B, eta_a / B; the SDE's packed noise has the part."""
    Q, R, T = np.array([[0.8, 0.1], [0.1, 0.5]]), np.array([[0.4], [-0.2]]), np.eye(1)
    batched = numerics.increment_covariance(Q, R, T, 1.2, model=SCM, eta_a=0.8, batch_size=4)
    single = numerics.increment_covariance(Q, R, T, 0.3, model=SCM, eta_a=0.2)
    for got, want in zip(batched, single):
        np.testing.assert_allclose(got, 4 * want, rtol=1e-13, atol=1e-17)
    full = numerics.increment_covariance(Q, R, T, 0.9, model=SCM, eta_a=0.5)
    leading = numerics.increment_covariance(Q, R, T, 0.9, model=SCM, eta_a=0.5, second_order=False)
    assert not np.allclose(full[3], leading[3], rtol=1e-3)
    for got, want in zip(full[4:], leading[4:]):  # AR, AA: no eta**2 part
        np.testing.assert_array_equal(got, want)
    runs = [numerics.simulate_sde(Q, R, T, N=100, eta=0.9, eta_a=0.5, model=SCM, alpha_max=0.2, dalpha=0.05, seed=1,
                                  replicas=2, progress=False, leading_order_noise=flag) for flag in (False, True)]
    assert not np.allclose(np.asarray(runs[0].Q), np.asarray(runs[1].Q))
