"""Overlaps of explicit weights and the checks of the weight arrays (numerics/analyses/gradient_hessian.py)."""

import numpy as np
import pytest

from numerics.analyses.gradient_hessian import overlaps_of_gram, weight_arrays, weight_gram, weight_overlaps


def test_overlaps_of_small_integer_weights():
    W = np.array([[1.0, 2.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]])
    W_star = np.array([[2.0, 0.0, 0.0, 2.0]])
    Q, R, T = weight_overlaps(W, W_star)
    # entries by hand: dot products of the rows over N = 4
    np.testing.assert_array_equal(Q, np.array([[6.0, 2.0], [2.0, 2.0]]) / 4)
    np.testing.assert_array_equal(R, np.array([[4.0], [0.0]]) / 4)
    np.testing.assert_array_equal(T, np.array([[8.0]]) / 4)


def test_the_gram_matrix_is_that_of_the_stacked_weights():
    rng = np.random.default_rng(3)
    W, W_star = rng.normal(size=(3, 7)), rng.normal(size=(2, 7))
    V = np.concatenate([W, W_star])
    gram = weight_gram(W, W_star, "f")
    np.testing.assert_array_equal(gram, gram.T)
    np.testing.assert_allclose(gram, V @ V.T, rtol=1e-14)
    Q, R, T = overlaps_of_gram(gram, 3, 7)
    assert (Q.shape, R.shape, T.shape) == ((3, 3), (3, 2), (2, 2))
    np.testing.assert_array_equal(R, gram[:3, 3:] / 7)


def test_overflowing_overlaps_name_the_function():
    with pytest.raises(ValueError, match="gradient: W and W_star are too large"):
        weight_gram(np.full((1, 2), 1e200), np.ones((1, 2)), "gradient")
    with pytest.raises(ValueError, match="W"):
        weight_gram(np.array([[np.nan, 1.0]]), np.ones((1, 2)), "gradient")


@pytest.mark.parametrize("W, W_star, message", [
    (np.ones(3), np.ones((1, 3)), r"W must have at least 2 axes, got shape \(3,\)"),
    (np.ones((1, 2, 3)), np.ones((1, 3)), r"must be 2-d \(p x N, k x N\), got shapes \(1, 2, 3\), \(1, 3\)"),
    (np.ones((2, 3)), np.ones((1, 4)), "same input dimension N, got 3 and 4"),
    (np.ones((0, 3)), np.ones((1, 3)), "p and k must be >= 1"),
    (np.ones((2, 0)), np.ones((1, 0)), "N must be >= 1"),
])
def test_bad_weight_shapes_are_named(W, W_star, message):
    with pytest.raises(ValueError, match=message):
        weight_arrays(W, W_star)
