"""Starts of the exact overlap chain: the Bartlett Wishart draw, square factors of ``C`` and the initial ``C``."""

from __future__ import annotations

import numpy as np
import pytest

from numerics.simulators.chain_start import bartlett_wishart, covariance_factor, start_covariance


@pytest.mark.parametrize("size, dof", [(1, 3), (3, 3), (3, 10)])
def test_bartlett_wishart_has_the_wishart_mean_and_variance(size, dof):
    # Wishart_size(dof, I): E W_ij = dof delta_ij, Var W_ii = 2 dof, Var W_ij = dof (i != j)
    rng = np.random.default_rng(7)
    draws = np.stack([bartlett_wishart(rng, rng, size, dof) for _ in range(4000)])
    mean = np.eye(size) * dof
    variance = np.where(np.eye(size, dtype=bool), 2.0 * dof, float(dof))
    standard_error = np.sqrt(variance / draws.shape[0])
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 5 * standard_error)
    # the variance of the sample variance of W_ij: (mu4 - sigma**4) / n with mu4 from the draws
    sample_variance = draws.var(axis=0, ddof=1)
    mu4 = ((draws - draws.mean(axis=0)) ** 4).mean(axis=0)
    assert np.all(np.abs(sample_variance - variance) < 5 * np.sqrt((mu4 - sample_variance**2) / draws.shape[0]))
    np.testing.assert_array_equal(draws, np.swapaxes(draws, 1, 2))


def test_covariance_factor_of_a_singular_matrix_reproduces_it():
    # a student equal to the teacher: C has rank 2 of 3 and no Cholesky factor
    v = np.array([[1.0, 0.0, 1.0], [0.0, 0.8, 0.0]])
    C = v.T @ v
    F = covariance_factor(np.stack([C, np.eye(3)]))
    np.testing.assert_allclose(F[0] @ F[0].T, C, rtol=0, atol=8 * np.finfo(float).eps)
    np.testing.assert_array_equal(F[1], np.eye(3))


def test_start_covariance_takes_the_given_overlaps_and_refuses_conflicts():
    Q0, R0, T = np.array([[1.0, 0.2], [0.2, 0.5]]), np.array([[0.3], [0.1]]), np.array([[2.0]])
    rngs = [np.random.default_rng(i) for i in range(2)]
    C = start_covariance(N=100, p=2, k=1, replicas=2, init_rngs=rngs, Q0=Q0, R0=R0, T=T)
    expected = np.block([[Q0, R0], [R0.T, T]])
    np.testing.assert_array_equal(C, np.stack([expected, expected]))
    with pytest.raises(ValueError, match="R0 needs Q0"):
        start_covariance(N=100, p=2, k=1, replicas=2, init_rngs=rngs, R0=R0)
    with pytest.raises(ValueError, match="W0 or Q0"):
        start_covariance(N=100, p=2, k=1, replicas=2, init_rngs=rngs, W0=np.ones((2, 100)), Q0=Q0)


def test_start_covariance_from_weights_is_their_gram_matrix():
    rng = np.random.default_rng(3)
    N = 50
    W0, W_star = rng.standard_normal((2, N)), rng.standard_normal((1, N))
    C = start_covariance(N=N, p=2, k=1, replicas=1, init_rngs=[rng], W0=W0, W_star=W_star)
    V = np.concatenate([W0, W_star])
    np.testing.assert_allclose(C[0], V @ V.T / N, rtol=1e-14)
