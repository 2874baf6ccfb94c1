"""The eta**3 and eta**4 parts of the increment covariance for sign teachers (erf students), with label flips.

Against Monte Carlo of one SGD step from weights at eta = 1 (flipped labels, with a power check: the leading order
alone is rejected), the packed covariance against the blocks of numerics/noise/erf_higher_orders.py packed, batched
against single, and the SDE taking them. The moments themselves: tests/numerics/kernels/test_sign_higher_moments.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from sample_points import random_overlaps, relative_error
from scipy.special import erf
from sgd_steps import step_increments, z_scores

import numerics
from derive.model.model import Model
from numerics.noise.erf_higher_orders import erf_higher_blocks, has_higher_orders
from numerics.noise.packing import pack_covariance
from numerics.noise.tuple_packing import tuple_packed_covariance
from numerics.runtime.registry import resolve

SIGN = Model(student_activation="erf(x/sqrt(2))", teacher_activation="sign(x)", student_readout="1",
             teacher_readout="1")
#: a student erf(x) = erf(sqrt(2) x / sqrt(2)): the closed forms are rescaled to it
SCALED_SIGN = Model(student_activation="erf(x)", teacher_activation="sign(x)", student_readout="1",
                    teacher_readout="1")


def sigma(x):
    return erf(x / np.sqrt(2))


def sigma_prime(x):
    return np.sqrt(2 / np.pi) * np.exp(-x * x / 2)


def test_one_sgd_step_with_flipped_labels_matches_at_a_large_eta():
    """p = 2, k = 1, N = 400, eta = 1.0, flips 0.2, 60,000 steps from weights: within 5 standard errors.

    Measured: largest |z| 2.4. Power: the leading order alone is 111 standard errors off, the covariance without the
    flips 51.
    """
    rng = np.random.default_rng(8)
    p, k, N, eta, flip = 2, 1, 400, 1.0, 0.2
    a, b = np.array([1.0, 0.6]), np.array([1.4])
    W = rng.standard_normal((p, N)) * 0.8
    W_star = rng.standard_normal((k, N))
    Q, R, T = W @ W.T / N, W @ W_star.T / N, W_star @ W_star.T / N
    q, r = step_increments(rng, W, W_star, eta, 60_000, sigma=sigma, sigma_prime=sigma_prime, sigma_star=np.sign,
                           a=a, b=b, chunk=5000, label_flip=flip)
    rows, columns = np.triu_indices(p)
    packed = np.concatenate([q[:, rows, columns], r.reshape(len(r), -1)], axis=1)
    module = resolve(SIGN, sizes=(p, k)).module
    got = tuple_packed_covariance(module, Q[None], R[None], T, eta, 0.0, a, b, label_flip=flip, second_order=True)[0]
    largest = float(np.max(np.abs(z_scores(packed, packed, got))))
    assert largest < 5, largest
    leading = tuple_packed_covariance(module, Q[None], R[None], T, eta, 0.0, a, b, label_flip=flip)[0]
    assert float(np.max(np.abs(z_scores(packed, packed, leading)))) > 5
    unflipped = tuple_packed_covariance(module, Q[None], R[None], T, eta, 0.0, a, b, second_order=True)[0]
    assert float(np.max(np.abs(z_scores(packed, packed, unflipped)))) > 5


@pytest.mark.parametrize("model, sizes", [(SIGN, (2, 2)), (SIGN.with_noise(0.2), (3, 1)), (SCALED_SIGN, (2, 1))])
def test_packed_covariance_is_the_leading_order_plus_the_packed_blocks(model, sizes):
    """``packed(second_order) - packed(leading)`` equals ``pack_covariance`` of :func:`erf_higher_blocks`, batched."""
    p, k = sizes
    rng = np.random.default_rng(3 + p + 5 * k)
    Q, R, T = random_overlaps(rng, (3,), p, k)
    a, b = rng.normal(size=(3, p)), rng.normal(size=(3, k))
    resolved = resolve(model, sizes=(p, k))
    module, delta = resolved.module, resolved.noise_variance
    assert has_higher_orders(module)
    full = tuple_packed_covariance(module, Q, R, T, 0.9, delta, a, b, second_order=True)
    leading = tuple_packed_covariance(module, Q, R, T, 0.9, delta, a, b)
    drift_Q, drift_R = module.first_order_terms(Q, R, T, a, b)
    QQ, QR = erf_higher_blocks(module, Q, R, T, 0.9, delta, a, b, drift_Q, drift_R)
    want = pack_covariance(QQ, QR, np.zeros(R.shape + (p, k)))
    assert relative_error(full - leading, want) < 1e-12
    assert relative_error(full, leading) > 1e-3  # the parts are a sizeable share at eta = 0.9
    single = tuple_packed_covariance(module, Q[1:2], R[1:2], T[1:2], 0.9, delta, a[1], b[1], second_order=True)
    assert relative_error(single[0], full[1]) < 1e-14
    scalar = numerics.packed_covariance(Q[1], R[1], T[1], 0.9, model=model)
    assert relative_error(scalar, tuple_packed_covariance(module, Q[1:2], R[1:2], T[1:2], 0.9, delta,
                                                          second_order=True)[0]) < 1e-14


def test_label_flips_mix_the_two_teachers_with_the_higher_parts():
    """Flip 0 is the unflipped covariance exactly; flip epsilon with b is flip 1 - epsilon with -b."""
    rng = np.random.default_rng(6)
    Q, R, T = random_overlaps(rng, (2,), 2, 2)
    module = resolve(SIGN, sizes=(2, 2)).module
    b = np.array([1.0, 0.7])
    plain = tuple_packed_covariance(module, Q, R, T, 0.8, 0.0, b=b, second_order=True)
    none = tuple_packed_covariance(module, Q, R, T, 0.8, 0.0, b=b, label_flip=0.0, second_order=True)
    np.testing.assert_array_equal(none, plain)
    flipped = tuple_packed_covariance(module, Q, R, T, 0.8, 0.0, b=b, label_flip=0.3, second_order=True)
    mirrored = tuple_packed_covariance(module, Q, R, T, 0.8, 0.0, b=-b, label_flip=0.7, second_order=True)
    assert relative_error(flipped, mirrored) < 1e-13
    assert relative_error(flipped, plain) > 1e-2
    # the mean difference of q carries its eta**2 <E E> part: without second order the mixture differs
    leading = tuple_packed_covariance(module, Q, R, T, 0.8, 0.0, b=b, label_flip=0.3)
    assert relative_error(flipped, leading) > 1e-3


def test_the_sde_takes_the_higher_parts_for_sign_teachers():
    Q, R, T = np.eye(1), np.array([[0.2]]), np.eye(1)
    model = SIGN.with_label_flip(0.1)
    runs = [numerics.simulate_sde(Q, R, T, N=100, eta=0.8, model=model, alpha_max=0.4, dalpha=0.05, seed=2,
                                  replicas=2, progress=False, leading_order_noise=flag) for flag in (False, True)]
    assert not np.allclose(np.asarray(runs[0].Q), np.asarray(runs[1].Q))
    full = numerics.packed_covariance(Q, R, T, 0.8, model=model)
    leading = numerics.packed_covariance(Q, R, T, 0.8, model=model, leading_order_noise=True)
    assert relative_error(full, leading) > 1e-3
