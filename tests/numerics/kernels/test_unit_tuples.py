"""Gathering covariance blocks for all index tuples and contracting with readout vectors
(numerics/kernels/unit_tuples.py), with hand-written kernels of the linear model sigma = sigma* = x:
every quantity then has a closed form in Q, R, T and the readouts."""

import numpy as np
import pytest
from sample_points import random_point

from numerics.kernels import unit_tuples
from numerics.kernels.unit_tuples import (
    all_terms,
    gather,
    hessian_terms,
    readout_drift,
    readout_vectors,
    residual_risk,
    rhs_terms,
    update_averages,
)

P, K = 3, 2


def _zero(*entries):
    return 0.0


# kernel arguments: the block's upper triangle row by row, (c00, c01, ..., c11, ...)
LINEAR_KERNELS = {
    "noise": lambda c00, c01, c11: 1.0,  # <1 * 1>
    "drift_student": lambda *c: c[4],  # <1 * z1 * z2> = c12
    "drift_teacher": lambda *c: c[4],
    "diffusion_ss": lambda *c: c[8],  # <1 * 1 * z2 * z3> = c23
    "diffusion_st": lambda *c: c[8],
    "diffusion_tt": lambda *c: c[8],
    "pair_ss": lambda c00, c01, c11: c01,
    "pair_st": lambda c00, c01, c11: c01,
    "pair_tt": lambda c00, c01, c11: c01,
    "hessian_11_st": lambda c00, c01, c11: 1.0,
    **{name: _zero for name in ("hessian_22_ss", "hessian_22_st", "hessian_13_ss", "hessian_31_st", "hessian_2_s",
                                "hessian_2_t", "hessian_4_s", "hessian_4_t")},
}


def readouts(p, k):
    return 1 / p, 1 / k


@pytest.fixture
def point():
    rng = np.random.default_rng(0)
    Q, R, T = random_point(P, K, rng)
    return Q, R, T, rng.normal(size=P), rng.normal(size=K)


def test_gather_puts_slot_i_on_axis_i():
    C = np.arange(16.0).reshape(4, 4)
    C = C + C.T
    got = gather(C, lambda c00, c01, c11: c01, [np.array([0, 1]), np.array([1, 2, 3])])
    np.testing.assert_array_equal(got, C[np.ix_([0, 1], [1, 2, 3])])
    assert gather(C, lambda c00, c01, c11: 1.0, [np.arange(2), np.arange(3)]).shape == (2, 3)  # a constant broadcasts


def test_linear_model_quantities_have_their_closed_forms(point):
    Q, R, T, a, b = point
    risk = (a @ Q @ a - 2 * a @ R @ b + b @ T @ b) / 2
    assert residual_risk(LINEAR_KERNELS, readouts, Q, R, T, a, b) == pytest.approx(risk, rel=1e-12)
    drift_Q, drift_R, diffusion_Q, noise_Q = all_terms(LINEAR_KERNELS, readouts, Q, R, T, a, b)
    # drift_R[j, r] = a_j <nu_r (b.nu - a.lambda)>, half of drift_Q[j, l] = a_j <lambda_l (b.nu - a.lambda)>
    np.testing.assert_allclose(drift_R, np.outer(a, T @ b - R.T @ a), rtol=1e-12)
    half = np.outer(a, R @ b - Q @ a)
    np.testing.assert_allclose(drift_Q, half + half.T, rtol=1e-12)
    np.testing.assert_allclose(noise_Q, np.outer(a, a), rtol=1e-12)
    np.testing.assert_allclose(diffusion_Q, 2 * risk * np.outer(a, a), rtol=1e-12)
    np.testing.assert_allclose(readout_drift(LINEAR_KERNELS, readouts, Q, R, T, a, b), R @ b - Q @ a, rtol=1e-12)
    dQ, dR = rhs_terms(LINEAR_KERNELS, readouts, Q, R, T, 0.3, 0.09, 0.02, a, b)
    np.testing.assert_allclose(dQ, 0.3 * drift_Q + 0.09 * diffusion_Q + 0.02 * noise_Q, rtol=1e-12)
    np.testing.assert_allclose(dR, 0.3 * drift_R, rtol=1e-12)
    M11_ss, M11_st = hessian_terms(LINEAR_KERNELS, readouts, Q, R, T, a, b)[:2]
    np.testing.assert_allclose(M11_ss, np.outer(a, a), rtol=1e-12)
    np.testing.assert_allclose(M11_st, -np.outer(a, b), rtol=1e-12)


def test_scalar_readouts_by_default_and_row_blocks_change_nothing(point, monkeypatch):
    Q, R, T, _, _ = point
    default = all_terms(LINEAR_KERNELS, readouts, Q, R, T)
    explicit = all_terms(LINEAR_KERNELS, readouts, Q, R, T, np.full(P, 1 / P), np.full(K, 1 / K))
    for got, want in zip(default, explicit):
        np.testing.assert_array_equal(got, want)
    monkeypatch.setattr(unit_tuples, "MAX_BLOCK_ELEMENTS", 1)  # one student row per block
    np.testing.assert_allclose(all_terms(LINEAR_KERNELS, readouts, Q, R, T)[2], default[2], rtol=1e-14)


def test_batch_axes_of_overlaps_and_readouts(point):
    Q, R, T, a, b = point
    a_batch = np.stack([a, 2 * a])
    risks = residual_risk(LINEAR_KERNELS, readouts, Q, R, T, a_batch, b)
    assert risks.shape == (2,)
    assert risks[1] == pytest.approx(residual_risk(LINEAR_KERNELS, readouts, Q, R, T, 2 * a, b), rel=1e-13)


def test_readout_vectors_of_the_wrong_length_are_named():
    a, b = readout_vectors(readouts, P, K, None, None)
    np.testing.assert_array_equal(a, np.full(P, 1 / P))
    np.testing.assert_array_equal(b, np.full(K, 1 / K))
    with pytest.raises(ValueError, match=r"student readout a must have length p = 3"):
        readout_vectors(readouts, P, K, np.ones(2), None)
    with pytest.raises(ValueError, match=r"teacher readout b must have length k = 2"):
        readout_vectors(readouts, P, K, None, 1.0)



def test_update_averages_are_the_unsymmetrised_drift_and_the_eta_squared_terms(point):
    Q, R, T, a, b = point
    averages, diffusion_Q, noise_Q = update_averages(LINEAR_KERNELS, readouts, Q, R, T, a, b)
    # <E_j z_u> = a_j <z_u (b.nu - a.lambda)>: the students' block, then the teachers'
    np.testing.assert_allclose(averages, np.outer(a, np.concatenate([R @ b - Q @ a, T @ b - R.T @ a])), rtol=1e-12)
    expected = all_terms(LINEAR_KERNELS, readouts, Q, R, T, a, b)
    np.testing.assert_array_equal(averages[:, :P] + averages[:, :P].T, expected[0])
    np.testing.assert_array_equal(averages[:, P:], expected[1])
    np.testing.assert_array_equal(diffusion_Q, expected[2])
    np.testing.assert_array_equal(noise_Q, expected[3])
    batched = update_averages(LINEAR_KERNELS, readouts, np.stack([Q, Q]), R, T, np.stack([a, 2 * a]), b,
                              second_order=False)
    assert batched[0].shape == (2, P, P + K) and batched[1:] == (None, None)
    np.testing.assert_allclose(batched[0][0], averages, rtol=1e-13)
