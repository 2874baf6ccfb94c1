"""A trained readout's eta**2 moment of an erf network (numerics/kernels/erf_readout_moments.py).

Against its definition by tensor Gauss-Hermite quadrature (random and singular covariances, label noise), the path
integral against 80 nodes, and batched against single.
"""

from __future__ import annotations

import numpy as np
import pytest
from gauss_quadrature import gaussian_nodes
from scipy.special import erf

from numerics.kernels.erf_readout_moments import erf_readout_moments


def _covariance(rng, n, p, kind, scale=0.5):
    A = rng.normal(size=(n, n))
    C = A @ A.T
    C *= scale / np.max(np.diag(C))
    if kind == "singular":  # student 0 equal to the first teacher
        C[0, :], C[:, 0] = C[p, :], C[:, p]
        C[0, 0] = C[p, p]
    return C


@pytest.mark.parametrize("sizes, kind", [((1, 1), "random"), ((2, 1), "random"), ((2, 1), "singular"),
                                         ((1, 2), "random")])
def test_readout_moment_equals_its_definition_by_quadrature(sizes, kind):
    p, k = sizes
    n = p + k
    rng = np.random.default_rng(4 + n + 7 * (kind == "singular"))
    C = _covariance(rng, n, p, kind)
    c, delta = rng.normal(size=n), 0.3
    z, w = gaussian_nodes(C, 60)
    units = erf(z / np.sqrt(2))
    slope = np.sqrt(2 / np.pi) * np.exp(-z[:, :p] ** 2 / 2)
    r = units @ c
    want = np.einsum("s,sj,sm,sn->jmn", w * (r**3 + 3 * delta * r), units[:, :p], slope, slope)
    got = erf_readout_moments(C[None], c[None], delta, p)[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert np.max(np.abs(want)) > 1e-3  # not a trivial zero


@pytest.mark.parametrize("variance", [0.3, 3.0])
def test_path_integral_converges_and_batched_equals_single(variance):
    rng = np.random.default_rng(9)
    C = np.stack([_covariance(rng, 4, 2, "random", variance) for _ in range(3)])
    c = rng.normal(size=(3, 4))
    want = erf_readout_moments(C, c, 0.2, 2, nodes=80)
    got = erf_readout_moments(C, c, 0.2, 2)
    assert np.max(np.abs(got - want)) < 1e-12 * np.max(np.abs(want))
    np.testing.assert_allclose(erf_readout_moments(C[1:2], c[1:2], 0.2, 2)[0], got[1], rtol=1e-14, atol=0)
    assert np.allclose(got, np.swapaxes(got, -1, -2), rtol=1e-13, atol=0)
    if variance > 1:  # the check can fail: four nodes are told apart
        coarse = erf_readout_moments(C, c, 0.2, 2, nodes=4)
        assert np.max(np.abs(coarse - want)) > 1e-12 * np.max(np.abs(want))
