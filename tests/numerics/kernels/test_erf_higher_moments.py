"""The erf network's triple and quadruple increment moments (numerics/kernels/erf_higher_moments.py).

Against their definitions by tensor Gauss-Hermite quadrature (random and singular covariances, label noise), the
path integral's convergence in its nodes, and the multiset layout.
"""

from __future__ import annotations

import numpy as np
import pytest
from gauss_quadrature import gaussian_nodes
from scipy.special import erf

from numerics.kernels.erf_higher_moments import (
    erf_pair_means,
    erf_quadruple_moments,
    erf_triple_moments,
    path_nodes,
    student_multisets,
)


def _covariance(rng, n, p, kind, scale=0.5):
    A = rng.normal(size=(n, n))
    C = A @ A.T
    C *= scale / np.max(np.diag(C))  # the largest variance is ``scale``
    if kind == "singular":  # student 0 equal to the first teacher
        C[0, :], C[:, 0] = C[p, :], C[:, p]
        C[0, 0] = C[p, p]
    return C


@pytest.mark.parametrize("kind", ["random", "singular"])
@pytest.mark.parametrize("sizes", [(1, 1), (2, 1)])
def test_moments_equal_their_definitions_by_quadrature(kind, sizes):
    p, k = sizes
    n = p + k
    rng = np.random.default_rng(3 + n + 7 * (kind == "singular"))
    C = _covariance(rng, n, p, kind, scale=0.5)  # the tensor rule converges to 1e-12 with 60 nodes
    c, delta = rng.normal(size=n), 0.3
    z, w = gaussian_nodes(C, 60)
    slope = np.sqrt(2 / np.pi) * np.exp(-z[:, :p] ** 2 / 2)
    r = erf(z / np.sqrt(2)) @ c
    pair = np.einsum("s,sj,sl->jl", w * (r * r + delta), slope, slope)
    triple = np.einsum("s,sj,sm,sn,sx->jmnx", w * (r**3 + 3 * delta * r), slope, slope, slope, z)
    quadruple = np.einsum("s,sj,sl,sm,sn->jlmn", w * (r**4 + 6 * delta * r * r + 3 * delta**2), slope, slope,
                          slope, slope)
    np.testing.assert_allclose(erf_pair_means(C[None], c[None], delta, p)[0], pair, rtol=0, atol=1e-11)
    np.testing.assert_allclose(erf_triple_moments(C[None], c[None], delta, p)[0], triple, rtol=0, atol=1e-11)
    np.testing.assert_allclose(erf_quadruple_moments(C[None], c[None], delta, p)[0], quadruple, rtol=0, atol=1e-11)


@pytest.mark.parametrize("kind", ["random", "singular"])
@pytest.mark.parametrize("variance", [0.3, 1.0, 3.0, 10.0])
def test_path_integral_converges_in_its_nodes(kind, variance):
    """The default nodes (:func:`path_nodes` of the largest variance) against 80, at p = k = 2: below 1e-12."""
    rng = np.random.default_rng(8)
    C = np.stack([_covariance(rng, 4, 2, kind, variance) for _ in range(3)])
    c = rng.normal(size=(3, 4))
    want = erf_quadruple_moments(C, c, 0.2, 2, nodes=80)
    got = erf_quadruple_moments(C, c, 0.2, 2)
    assert np.max(np.abs(got - want)) < 1e-12 * np.max(np.abs(want))
    assert path_nodes(variance) < 30
    if variance >= 1:  # the check can fail: four nodes are told apart
        coarse = erf_quadruple_moments(C, c, 0.2, 2, nodes=4)
        assert np.max(np.abs(coarse - want)) > 1e-12 * np.max(np.abs(want))


def test_multisets_are_symmetric_and_batched_equals_single():
    G, index_of = student_multisets(3, 3)
    assert G.shape == (10, 3)
    assert np.array_equal(index_of, np.transpose(index_of, (2, 0, 1)))
    assert np.array_equal(G[index_of[2, 0, 1]], [0, 1, 2])
    rng = np.random.default_rng(2)
    C = np.stack([_covariance(rng, 4, 2, "random") for _ in range(2)])
    c = rng.normal(size=(2, 4))
    both = erf_triple_moments(C, c, 0.1, 2)
    np.testing.assert_allclose(both[1], erf_triple_moments(C[1:], c[1:], 0.1, 2)[0], rtol=1e-14, atol=0)
    assert np.allclose(both, np.transpose(both, (0, 2, 1, 3, 4)), rtol=1e-14, atol=0)
