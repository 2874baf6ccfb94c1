"""The per-pair increment moments of relu networks (numerics/kernels/relu_increments.py) against the sum of truncated
moments tuple by tuple (numerics/kernels/relu_moments.py), on random, coinciding, singular and identical units."""

from __future__ import annotations

import numpy as np
import pytest
from sample_points import random_overlaps, relative_error

from numerics.kernels.relu_increments import orthant_table, relu_pair_moments
from numerics.kernels.relu_moments import orthant_moment, orthant_probability, unit_rows


def _by_tuples(C, c, delta, p):
    """``E[z_x z_y theta_j theta_i (h**2 + Delta)]`` (B, p, p, n, n) summed over every (u, v) tuple."""
    n = C.shape[-1]
    F = unit_rows(C)
    students, units = np.arange(p), np.arange(n)
    grid = [students, students, units, units, units, units]
    rows = [F[:, r.reshape((1,) * i + (-1,) + (1,) * (5 - i)), :] for i, r in enumerate(grid)]
    j, i, x, y, u, v = rows
    moments = orthant_moment([x, y, u, v], [j, i, u, v])
    value = np.einsum("bjixyuv,bu,bv->bjixy", moments, c, c)
    return value + delta * orthant_moment([x[..., 0, 0, :], y[..., 0, 0, :]], [j[..., 0, 0, :], i[..., 0, 0, :]])


def _covariance(Q, R, T):
    return np.concatenate([np.concatenate([Q, R], -1), np.concatenate([np.swapaxes(R, -1, -2), T], -1)], -2)


def _plane(rng, p, k):
    F = rng.standard_normal((p + k, 2))
    C = F @ F.T
    return C[None, :p, :p], C[None, :p, p:], C[None, p:, p:]


@pytest.mark.parametrize("case", ["random", "coinciding students", "units in a plane", "identical units"])
def test_pair_moments_equal_the_tuple_by_tuple_sum(case):
    """To 1e-12 relative, label noise and random readouts included (measured: below 2e-15)."""
    rng = np.random.default_rng(11)
    p, k = (2, 1) if case == "identical units" else (2, 2)
    if case in ("random", "coinciding students"):
        Q, R, T = random_overlaps(rng, (2,), p, k, coincide=case == "coinciding students")
    elif case == "units in a plane":
        Q, R, T = _plane(rng, p, k)
    else:  # student, student and teacher the same unit: every set of units collapses to one
        Q, R, T = np.ones((1, 2, 2)), np.ones((1, 2, 1)), np.ones((1, 1, 1))
    C = _covariance(Q, R, T)
    c = rng.uniform(-1.5, 1.5, size=C.shape[:-1])
    got = relu_pair_moments(C, c, 0.3, p)
    want = _by_tuples(C, c, 0.3, p)
    assert relative_error(got, want) < 1e-12
    np.testing.assert_array_equal(got, np.swapaxes(got, -1, -2))
    np.testing.assert_allclose(got, np.swapaxes(got, 1, 2), rtol=0, atol=1e-14 * np.max(np.abs(got)))


def test_orthant_table_evaluates_each_set_of_units_once():
    """Every entry equals the orthant probability of its four rows, whatever repeats among them."""
    rng = np.random.default_rng(2)
    Q, R, T = random_overlaps(rng, (2,), 2, 2)
    F = unit_rows(_covariance(Q, R, T))
    table = orthant_table(F, 2)
    assert table.shape == (2, 3, 4, 4)
    for pair, (j, i) in enumerate([(0, 0), (0, 1), (1, 1)]):
        for u in range(4):
            for v in range(4):
                want = orthant_probability([F[:, j], F[:, i], F[:, u], F[:, v]])
                np.testing.assert_allclose(table[:, pair, u, v], want, rtol=1e-13)


def test_pair_moments_batch_shapes_and_refusals():
    rng = np.random.default_rng(5)
    Q, R, T = random_overlaps(rng, (2, 3), 1, 2)
    C = _covariance(Q, R, T)
    c = rng.normal(size=(3,))
    got = relu_pair_moments(C, c, 0.0, 1)
    assert got.shape == (2, 3, 1, 1, 3, 3)
    np.testing.assert_allclose(got[1, 2], relu_pair_moments(C[1, 2], c, 0.0, 1), rtol=1e-14)
    with pytest.raises(ValueError, match="C must have shape"):
        relu_pair_moments(np.ones(3), c, 0.0, 1)
    with pytest.raises(ValueError, match="readout must have shape"):
        relu_pair_moments(C, np.ones(4), 0.0, 1)
    with pytest.raises(ValueError, match="p must lie between 1"):
        relu_pair_moments(C, c, 0.0, 4)
