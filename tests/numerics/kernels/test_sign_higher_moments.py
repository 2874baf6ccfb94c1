"""The eta**3, eta**4 increment moments with sign teachers (numerics/kernels/erf_higher_moments.py, offsets 0).

A sign teacher is not smooth, so the reference quadrature splits at its boundaries: the teachers' plane (one teacher:
a line, two: polar coordinates) is cut into the regions where every sign is constant, each taken by Gauss-Legendre
(the integrand is analytic inside), and the students given the teachers by Gauss-Hermite. One closed form at
p = k = 1 (a student of readout 0: ``r = b sign(z_t)``, ``r**4 = b**4``) and the path integral's nodes against 150.
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
    path_nodes_with_signs,
)


def teacher_rule(T, radial=70, angular=36, length=12.0):
    """Nodes ``z`` (m, k) of ``N(0, T)`` and weights (m,), with no node region straddling a sign boundary (k <= 2)."""
    L = np.linalg.cholesky(T)
    x, w = np.polynomial.legendre.leggauss(radial)
    radius, radius_weights = length * (x + 1) / 2, length * w / 2  # the tail beyond 12 is below 1e-31
    if T.shape[0] == 1:
        g = np.concatenate([radius, -radius])[:, None]
        weights = np.tile(radius_weights * np.exp(-radius**2 / 2) / np.sqrt(2 * np.pi), 2)
        return g @ L.T, weights
    # polar coordinates of the whitened plane: teacher t changes sign on the line (L g)_t = 0
    cuts = [np.arctan2(-row[0], row[1]) % np.pi + shift for row in L for shift in (0.0, np.pi)]
    edges = np.sort(np.concatenate([cuts, [0.0, 2 * np.pi]]))
    xa, wa = np.polynomial.legendre.leggauss(angular)
    points, weights = [], []
    for low, high in zip(edges[:-1], edges[1:]):
        angle, angle_weights = low + (high - low) * (xa + 1) / 2, (high - low) * wa / 2
        rr, aa = np.meshgrid(radius, angle, indexing="ij")
        points.append(np.stack([rr * np.cos(aa), rr * np.sin(aa)], axis=-1).reshape(-1, 2))
        weights.append((np.outer(radius_weights, angle_weights) * rr * np.exp(-rr**2 / 2) / (2 * np.pi)).ravel())
    return np.concatenate(points) @ L.T, np.concatenate(weights)


def reference_moments(C, c, delta, p, hermite=50):
    """``(P, T, F)`` of erf(z / sqrt 2) students and sign teachers (kernel module docstring) by quadrature."""
    n = C.shape[0]
    students, teachers = slice(0, p), slice(p, n)
    nu, teacher_weights = teacher_rule(C[teachers, teachers])
    gain = C[students, teachers] @ np.linalg.inv(C[teachers, teachers])
    lam, student_weights = gaussian_nodes(C[students, students] - gain @ C[teachers, students], hermite)
    lam = ((nu @ gain.T)[:, None, :] + lam[None]).reshape(-1, p)
    w = np.outer(teacher_weights, student_weights).ravel()
    nu = np.repeat(nu, student_weights.size, axis=0)
    r = np.concatenate([erf(lam / np.sqrt(2)), np.sign(nu)], axis=1) @ c
    slope = np.sqrt(2 / np.pi) * np.exp(-lam**2 / 2)
    z = np.concatenate([lam, nu], axis=1)
    pair = np.einsum("s,sj,sl->jl", w * (r * r + delta), slope, slope)
    triple = np.einsum("s,sj,sm,sn,sx->jmnx", w * (r**3 + 3 * delta * r), slope, slope, slope, z)
    quadruple = np.einsum("s,sj,sl,sm,sn->jlmn", w * (r**4 + 6 * delta * r * r + 3 * delta**2), slope, slope, slope,
                          slope)
    return pair, triple, quadruple


def _covariance(rng, p, k, kind):
    n = p + k
    A = rng.normal(size=(n, n))
    C = A @ A.T
    C *= 0.8 / np.max(np.diag(C))
    if kind == "singular":  # student 0 along the first teacher (a singular C)
        C[0, :], C[:, 0] = C[p, :], C[:, p]
        C[0, 0] = C[p, p]
    return C


@pytest.mark.parametrize("sizes, kind", [((1, 1), "random"), ((1, 1), "singular"), ((2, 1), "random"),
                                         ((1, 2), "random"), ((1, 2), "singular")])
def test_moments_with_sign_teachers_equal_the_split_quadrature(sizes, kind):
    p, k = sizes
    rng = np.random.default_rng(11 + 5 * p + k + 3 * (kind == "singular"))
    C = _covariance(rng, p, k, kind)
    c, delta = rng.normal(size=p + k), 0.3
    offsets = np.array([1.0] * p + [0.0] * k)
    pair, triple, quadruple = reference_moments(C, c, delta, p)
    np.testing.assert_allclose(erf_pair_means(C[None], c[None], delta, p, offsets)[0], pair, rtol=0, atol=1e-11)
    np.testing.assert_allclose(erf_triple_moments(C[None], c[None], delta, p, offsets)[0], triple, rtol=0,
                               atol=1e-11)
    np.testing.assert_allclose(erf_quadruple_moments(C[None], c[None], delta, p, offsets=offsets)[0], quadruple,
                               rtol=0, atol=1e-11)
    # power: the erf teacher's formulas (offsets 1) on the same blocks are far off
    assert np.max(np.abs(erf_quadruple_moments(C[None], c[None], delta, p)[0] - quadruple)) > 1e-3


def test_a_student_of_readout_zero_against_the_closed_form():
    """``c = (0, b)``: ``r = b sign(z_t)``, ``F = (b**4 + 6 Delta b**2 + 3 Delta**2) (2 / pi)**2 / sqrt(1 + 4 Q)``."""
    Q, b, delta = 0.7, 1.3, 0.2
    C = np.array([[[Q, 0.4], [0.4, 1.5]]])
    c = np.array([[0.0, b]])
    want = (b**4 + 6 * delta * b**2 + 3 * delta**2) * (2 / np.pi) ** 2 / np.sqrt(1 + 4 * Q)
    got = erf_quadruple_moments(C, c, delta, 1, offsets=np.array([1.0, 0.0]))[0, 0, 0, 0, 0]
    assert abs(got - want) < 1e-14
    # E[sigma'**2 r**2] = b**2 (2 / pi) / sqrt(1 + 2 Q): sign**2 = 1 is no derivative term
    pair = erf_pair_means(C, c, 0.0, 1, np.array([1.0, 0.0]))[0, 0, 0]
    assert abs(pair - b**2 * (2 / np.pi) / np.sqrt(1 + 2 * Q)) < 1e-14


@pytest.mark.parametrize("correlation", [0.0, 0.6, 0.95])
def test_path_nodes_with_sign_teachers_converge(correlation):
    """Default nodes against 150 (p = 2, k = 3 equicorrelated sign teachers: singularities on both sides of [0, 1])."""
    rng = np.random.default_rng(21)
    p, k = 2, 3
    T = (1 - correlation) * np.eye(k) + correlation
    R = 0.3 * rng.normal(size=(p, k))
    Q = R @ np.linalg.solve(T, R.T) + 0.5 * np.eye(p)
    C = np.block([[Q, R], [R.T, T]])[None]
    c, offsets = rng.normal(size=(1, p + k)), np.array([1.0] * p + [0.0] * k)
    want = erf_quadruple_moments(C, c, 0.1, p, nodes=150, offsets=offsets)
    got = erf_quadruple_moments(C, c, 0.1, p, offsets=offsets)
    assert np.max(np.abs(got - want)) < 1e-12 * np.max(np.abs(want))
    if correlation > 0.9:  # the check can fail: too few nodes are told apart
        coarse = erf_quadruple_moments(C, c, 0.1, p, nodes=8, offsets=offsets)
        assert np.max(np.abs(coarse - want)) > 1e-10 * np.max(np.abs(want))


def test_dependent_sign_teachers_are_refused():
    T = np.array([[1.0, 0.5, -0.5], [0.5, 1.0, 0.5], [-0.5, 0.5, 1.0]])  # t_2 = t_1 - t_0: rank 2, none parallel
    C = np.block([[np.eye(1), np.zeros((1, 3))], [np.zeros((3, 1)), T]])[None]
    with pytest.raises(ValueError, match="linearly independent"):
        path_nodes_with_signs(C, np.array([1.0, 0.0, 0.0, 0.0]))
