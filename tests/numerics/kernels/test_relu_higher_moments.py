"""The relu network's pair, triple and quadruple increment moments (numerics/kernels/relu_higher_moments.py).

Against their definitions by an exact quadrature (radius in closed form, direction by Gauss-Legendre between the
units' sign changes: tests/sphere_quadrature.py), with repeated units, label noise and a batch, up to five units
(in three dimensions); the five-variate orthant probability; the size limit.
"""

from __future__ import annotations

import numpy as np
import pytest
from sphere_quadrature import radial_moments, unit_directions

from numerics.kernels.relu_higher_moments import MAX_UNITS, higher_plan, relu_higher_moments
from numerics.kernels.relu_moments import orthant_moment, orthant_probability, unit_rows


def _definitions(C, c, delta, p):
    """``P``, ``T``, ``F`` by quadrature: on a direction ``z = rho z1``, ``r = rho r1``, each a sum of ``E[rho**d]``."""
    z1, w, dimension = unit_directions(C, 20)
    mu = radial_moments(dimension, 5)
    step = (z1[:, :p] > 0).astype(float)
    r1 = np.maximum(z1, 0.0) @ c
    pair = np.einsum("s,sj,sl->jl", w * (mu[2] * r1**2 + delta), step, step)
    triple = np.einsum("s,sj,sm,sn,sx->jmnx", w * (mu[4] * r1**3 + 3 * delta * mu[2] * r1), step, step, step, z1)
    quadruple = np.einsum("s,sj,sl,sm,sn->jlmn", w * (mu[4] * r1**4 + 6 * delta * mu[2] * r1**2 + 3 * delta**2),
                          step, step, step, step)
    return pair, triple, quadruple


@pytest.mark.parametrize("sizes, coincide", [((1, 1), False), ((2, 1), False), ((2, 1), True), ((1, 2), True),
                                             ((3, 2), False), ((2, 3), True)])
def test_moments_equal_their_definitions_by_quadrature(sizes, coincide):
    """Five units in three dimensions (rank 3: every orthant of four or five rows singular) included."""
    p, k = sizes
    n = p + k
    rng = np.random.default_rng(5 + n + 3 * coincide)
    A = rng.normal(size=(n, min(n, 3)))
    C = A @ A.T / n + (0.1 * np.eye(n) if n <= 3 else 0.0)
    if coincide:  # the last student equal to the first teacher (a singular C)
        C[p - 1, :], C[:, p - 1] = C[p, :], C[:, p]
        C[p - 1, p - 1] = C[p, p]
    c, delta = rng.normal(size=n), 0.3
    want = _definitions(C, c, delta, p)
    got = relu_higher_moments(np.stack([C, 2 * C]), np.stack([c, c]), delta, p)
    for g, x in zip(got, want):
        np.testing.assert_allclose(g[0], x, rtol=0, atol=1e-12 * np.max(np.abs(x)))
    # a batch entry of twice the covariance: each term scales as 2**(degree / 2)
    for g, x in zip(got, _definitions(2 * C, c, delta, p)):
        np.testing.assert_allclose(g[1], x, rtol=0, atol=1e-12 * np.max(np.abs(x)))


def test_plan_layout_symmetry_and_the_size_limit():
    """Four units (p = k = 2) share one four-variate orthant; the outputs are symmetric in the students."""
    plan = higher_plan(2, 4)
    assert sum(group.orthant.shape[1] == 4 and group.orthant.shape[0] == 1 for group in plan.groups) >= 1
    rng = np.random.default_rng(3)
    A = rng.normal(size=(2, 4, 4))
    C = A @ np.swapaxes(A, 1, 2) / 4
    P, T, F = relu_higher_moments(C, rng.normal(size=(2, 4)), 0.1, 2)
    assert P.shape == (2, 2, 2) and T.shape == (2, 2, 2, 2, 4) and F.shape == (2, 2, 2, 2, 2)
    np.testing.assert_array_equal(T, np.transpose(T, (0, 2, 1, 3, 4)))
    np.testing.assert_array_equal(F, np.transpose(F, (0, 4, 2, 3, 1)))
    assert MAX_UNITS == 5
    with pytest.raises(ValueError, match="orthant probabilities of more than five rows"):
        higher_plan(2, 6)


def test_five_variate_orthant_probability():
    """Equicorrelated 1/2 (``1 / 6``), independent (``1 / 32``), five units in three dimensions (exact quadrature of
    the indicator), equal rows (the four-variate value) and a zero row (half the four-variate value)."""
    def probability(C):
        F = unit_rows(C[None])
        return float(orthant_probability([F[:, i] for i in range(5)])[0])

    assert abs(probability(0.5 * np.eye(5) + 0.5) - 1 / 6) < 1e-12
    assert abs(probability(np.eye(5)) - 1 / 32) < 1e-15
    rng = np.random.default_rng(1)
    A = rng.normal(size=(5, 3))
    z1, w, _ = unit_directions(A @ A.T, 20)
    assert abs(probability(A @ A.T) - np.sum(w * np.all(z1 > 0, axis=1))) < 1e-13
    B = rng.normal(size=(5, 5))
    C = B @ B.T
    F = unit_rows(C[None])
    four = float(orthant_probability([F[:, i] for i in range(4)])[0])
    equal = [F[:, i] for i in range(4)] + [F[:, 0]]
    assert abs(float(orthant_probability(equal)[0]) - four) < 1e-13
    zero = [F[:, i] for i in range(4)] + [0 * F[:, 0]]
    assert abs(float(orthant_probability(zero)[0]) - four / 2) < 1e-13
    with pytest.raises(ValueError, match="at most five rows"):
        orthant_probability([F[:, 0]] * 6)
    # a shared cache gives the same moments, and a five-row orthant fills it with its subsets
    rows = [F[:, i] for i in range(5)]
    cache: dict = {}
    shared = orthant_moment([F[:, 0], F[:, 1]], rows, cache=cache)
    assert np.array_equal(shared, orthant_moment([F[:, 0], F[:, 1]], rows)) and len(cache) >= 30
    assert np.array_equal(orthant_moment([], rows, cache=cache), orthant_probability(rows))
