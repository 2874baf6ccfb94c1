"""The four-erf average of numerics/kernels/tuple_moments.py against a tensor Gauss-Hermite rule and Price's theorem."""

from __future__ import annotations

import numpy as np
from gauss_quadrature import gaussian_nodes
from scipy.special import erf

from numerics.kernels.tuple_moments import erf_erf_erf_erf, tilted_pair


def sigma(x):
    return erf(x / np.sqrt(2))


def test_four_erf_average_equals_quadrature_and_its_price_derivative():
    rng = np.random.default_rng(5)
    factor = rng.standard_normal((4, 4))
    K = factor @ factor.T / 8  # largest eigenvalue 1.5: the tensor rule converges to 1e-14
    entries = [K[a, b] for a in range(4) for b in range(a, 4)]
    z, weights = gaussian_nodes(K, 30)
    want = weights @ np.prod(sigma(z), axis=1)
    assert abs(erf_erf_erf_erf(*entries) - want) < 1e-12
    assert abs(erf_erf_erf_erf(*entries, nodes=64) - erf_erf_erf_erf(*entries)) < 1e-13
    # Price: d/dK_02 E[s s s s] = E[s'_0 s_1 s'_2 s_3] (closed form), by central differences
    step = 1e-5
    shifted = [list(entries), list(entries)]
    shifted[0][2] += step
    shifted[1][2] -= step
    derivative = (erf_erf_erf_erf(*shifted[0]) - erf_erf_erf_erf(*shifted[1])) / (2 * step)
    table = {(a, b): K[a, b] for a in range(4) for b in range(4)}
    assert abs(derivative - tilted_pair(table, 0, 2, 1, 3)) < 1e-8
    # a singular block (units 0 and 2 equal), broadcast over a batch
    K[2], K[:, 2] = K[0], K[0]
    K[2, 2] = K[0, 0]
    entries = [np.full(3, K[a, b]) for a in range(4) for b in range(a, 4)]
    z, weights = gaussian_nodes(K, 30)
    np.testing.assert_allclose(erf_erf_erf_erf(*entries), weights @ np.prod(sigma(z), axis=1), atol=1e-12)
