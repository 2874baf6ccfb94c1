"""The packed covariance of erf and relu networks (numerics/noise/tuple_packing.py) against the per-tuple route.

The per-tuple route (``pack_covariance(*increment_covariance(...))``) is itself checked against quadratures and
Monte Carlo in test_tuple_fluctuations.py; here the fast path must reproduce it to 1e-12 relative, batched and
unbatched, with label noise and readout vectors, and the closed-form erf moments must reproduce the generated
six-slot kernels.
"""

from __future__ import annotations

import numpy as np
import pytest
from sample_points import random_overlaps, relative_error

import numerics
from derive.model.model import SCM, Model
from numerics.noise.packing import pack_covariance
from numerics.noise.tuple_packing import tuple_packed_covariance, tuple_packing
from numerics.runtime.registry import resolve

RELU = Model(student_activation="relu(x)", teacher_activation="relu(x)")


#: erf units of other scales: the closed form is written for erf(z / sqrt 2) and rescaled
SCALED_ERF = Model(student_activation="erf(x)", teacher_activation="erf(2*x)", student_readout="1",
                   teacher_readout="1")


@pytest.mark.parametrize("model, sizes", [(SCM, (2, 2)), (SCM, (3, 1)), (SCM.with_noise(0.2), (1, 3)),
                                          (SCALED_ERF, (2, 2)), (RELU, (2, 1)), (RELU.with_noise(0.3), (1, 2))])
def test_packed_covariance_equals_the_per_tuple_route_batched_and_with_readouts(model, sizes):
    p, k = sizes
    rng = np.random.default_rng(7 + p + 3 * k)
    # coinciding students for relu only: there the generated erf kernels lose digits (the next test)
    Q, R, T = random_overlaps(rng, (3,), p, k, coincide=p > 1 and model.student_activation == RELU.student_activation)
    a, b = rng.normal(size=(3, p)), rng.normal(size=(3, k))
    for readouts in ({}, {"a": a, "b": b}):
        want = pack_covariance(*numerics.increment_covariance(Q, R, T, 0.6, model=model, second_order=False,
                                                              **readouts))
        resolved = resolve(model, sizes=(p, k))
        got = tuple_packed_covariance(resolved.module, Q, R, T, 0.6, resolved.noise_variance, readouts.get("a"),
                                      readouts.get("b"))
        assert relative_error(got, want) < 1e-12
        np.testing.assert_allclose(got, np.swapaxes(got, -1, -2), rtol=0, atol=1e-15 * np.max(np.abs(got)))
    # the public function, unbatched and batched
    single = numerics.packed_covariance(Q[0], R[0], T[0], 0.6, model=model)
    want = pack_covariance(*numerics.increment_covariance(Q[0], R[0], T[0], 0.6, model=model))
    assert single.shape == want.shape and relative_error(single, want) < 1e-12
    batched = numerics.packed_covariance(Q, R, T, 0.6, model=model)
    assert relative_error(batched[0], single) < 1e-14


def test_packing_layout_and_mixed_kinds_are_refused():
    packing = tuple_packing(2, 1)
    assert packing.terms.shape == (5, 5, 4)  # D = 3 + 2
    # Cov(r_00, r_00) has one moment, X[0, 2, 0, 2], the others are the appended zero
    zero = 2 * 3 * 2 * 3
    assert sorted(packing.terms[3, 3]) == [(0 * 3 + 2) * 6 + 2, zero, zero, zero]
    mixed = Model(student_activation="erf(x/sqrt(2))", teacher_activation="relu(x)")
    module = resolve(mixed, sizes=(1, 1)).module
    with pytest.raises(ValueError, match="erf units or relu units on both sides"):
        tuple_packed_covariance(module, np.eye(1)[None], np.zeros((1, 1, 1)), np.eye(1), 0.5, 0.0)


def sign_teacher_increments(C, p, eta, flip, samples, rng):
    """One step's first-order increments ``(q_jl (j <= l), r_jr)`` of an erf student (readout 1) and a sign teacher."""
    from scipy.special import erf

    z = rng.multivariate_normal(np.zeros(C.shape[0]), C, size=samples)
    lam, nu = z[:, :p], z[:, p:]
    y = np.sign(nu).sum(axis=1)
    y = np.where(rng.random(samples) < flip, -y, y)
    E = (y - erf(lam / np.sqrt(2)).sum(axis=1))[:, None] * np.sqrt(2 / np.pi) * np.exp(-lam**2 / 2)
    rows, columns = np.triu_indices(p)
    q = eta * (E[:, rows] * lam[:, columns] + E[:, columns] * lam[:, rows])
    r = eta * (E[:, :, None] * nu[:, None, :]).reshape(samples, -1)
    return np.concatenate([q, r], axis=1)


def test_sign_teacher_with_label_flips_against_monte_carlo_with_power():
    # the sign teacher is the limit of erf(s z) as s -> infinity (numerics/kernels/erf_increments.py)
    p, k, eta, flip, samples = 2, 2, 0.5, 0.3, 400_000
    rng = np.random.default_rng(3)
    Q, R, T = random_overlaps(rng, (), p, k)
    model = Model(student_activation="erf(x/sqrt(2))", teacher_activation="sign(x)", student_readout="1",
                  teacher_readout="1", label_flip=flip)
    # the leading order: the increments below have no eta**2 E E term
    got = numerics.packed_covariance(Q, R, T, eta, model=model, second_order=False)
    X = sign_teacher_increments(np.block([[Q, R], [R.T, T]]), p, eta, flip, samples, rng)
    centred = X - X.mean(axis=0)
    products = centred[:, :, None] * centred[:, None, :]
    estimate, error = products.mean(axis=0), products.std(axis=0) / np.sqrt(samples)
    assert np.max(np.abs(got - estimate) / error) < 5
    # power: the mixture of the two covariances without the means' difference is told apart
    module = resolve(model, sizes=(p, k)).module
    ones = np.ones((1, k))
    plain = (1 - flip) * tuple_packed_covariance(module, Q[None], R[None], T, eta, 0.0, b=ones)[0] \
        + flip * tuple_packed_covariance(module, Q[None], R[None], T, eta, 0.0, b=-ones)[0]
    assert np.max(np.abs(plain - estimate) / error) > 5


def test_parallel_sign_teachers_are_refused():
    model = Model(student_activation="erf(x/sqrt(2))", teacher_activation="sign(x)", student_readout="1",
                  teacher_readout="1")
    with pytest.raises(ValueError, match="not parallel"):
        numerics.packed_covariance(np.eye(1), np.zeros((1, 2)), np.ones((2, 2)), 0.5, model=model)
