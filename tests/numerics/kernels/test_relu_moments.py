"""Truncated Gaussian moments of numerics/kernels/relu_moments.py: known orthant probabilities, the relu quadrature
of the ODE's eta**2 term, and an exact polar quadrature for rank-2 covariances."""

from __future__ import annotations

import numpy as np
import pytest

from numerics.kernels import relu_moments
from numerics.kernels.relu_moments import orthant_moment, orthant_probability, unit_rows
from numerics.kernels.relu_quadrature import arccos_kernel, theta_theta_relu_relu


def _rows(C):
    F = unit_rows(C)
    return [F[..., a, :] for a in range(C.shape[-1])]


def test_four_variate_orthant_probabilities_with_known_values():
    # independent: 1/16; equicorrelated 1/2: 1/(n + 1) = 1/5; duplicated units reduce to three and two units
    assert abs(orthant_probability(_rows(np.eye(4))) - 1 / 16) < 1e-14
    assert abs(orthant_probability(_rows(np.full((4, 4), 0.5) + 0.5 * np.eye(4))) - 1 / 5) < 1e-13
    rows = _rows(np.array([[1.0, 0.3], [0.3, 2.0]]))
    sheppard = 0.25 + np.arcsin(0.3 / np.sqrt(2.0)) / (2 * np.pi)
    assert abs(orthant_probability([rows[0], rows[0], rows[1], rows[1]]) - sheppard) < 1e-15


@pytest.mark.parametrize("kind", ["random", "singular", "near"])
def test_theta_theta_relu_relu_equals_the_relu_quadrature(kind):
    """E[theta theta relu relu] (the relu ODE's eta**2 kernel, an independent path) to 1e-10, batched."""
    rng = np.random.default_rng({"random": 1, "singular": 2, "near": 3}[kind])
    factor = rng.standard_normal((6, 4, 4 if kind != "singular" else 3))
    C = factor @ np.swapaxes(factor, -1, -2) / 2
    if kind == "near":
        C[:, 3] = C[:, 2] * (1 + 1e-6)
        C[:, :, 3] = C[:, :, 2] * (1 + 1e-6)
        C[:, 3, 3] = C[:, 2, 2] * (1 + 1e-6) ** 2 + 1e-9
    rows = _rows(C)
    got = orthant_moment([rows[2], rows[3]], rows)
    want = theta_theta_relu_relu(*(C[:, a, b] for a in range(4) for b in range(a, 4)))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(orthant_moment([rows[0], rows[1]], [rows[0], rows[1]]),
                               arccos_kernel(C[:, 0, 0], C[:, 0, 1], C[:, 1, 1]), rtol=1e-13, atol=1e-14)


def test_more_path_nodes_change_nothing(monkeypatch):
    rng = np.random.default_rng(7)
    factor = rng.standard_normal((5, 4, 4))
    rows = _rows(factor @ np.swapaxes(factor, -1, -2))
    before = orthant_probability(rows)
    monkeypatch.setattr(relu_moments, "NODES", 2 * relu_moments.NODES)
    np.testing.assert_allclose(orthant_probability(rows), before, rtol=0, atol=1e-13)


def _polar_expectation(F, function, angles=40, radii=12):
    """``E[function(z)]``, ``z = F g``, ``g`` in two dimensions: exact for even piecewise polynomials of degree <= 8."""
    cuts = np.mod(np.arctan2(-F[:, 0], F[:, 1]), np.pi)
    edges = np.unique(np.concatenate([cuts, cuts + np.pi, [0.0, 2 * np.pi]]))
    x, w = np.polynomial.legendre.leggauss(angles)
    phi = np.concatenate([lo + (hi - lo) * (x + 1) / 2 for lo, hi in zip(edges[:-1], edges[1:])])
    w_phi = np.concatenate([(hi - lo) / 2 * w for lo, hi in zip(edges[:-1], edges[1:])]) / (2 * np.pi)
    u, w_u = np.polynomial.laguerre.laggauss(radii)
    g = np.sqrt(2 * u)[:, None, None] * np.stack([np.cos(phi), np.sin(phi)], axis=-1)[None]
    return float(np.sum(w_u[:, None] * w_phi[None] * function(g @ F.T)))


@pytest.mark.parametrize(("linear", "orthant"), [
    ((0, 1), (0, 2)), ((0, 1, 2, 2), (0, 1, 2, 2)), ((1, 1, 2, 0), (0, 2, 1, 1)), ((0, 0, 0, 0), (0, 0, 1, 1)),
    ((0, 2, 1, 1), (0, 0, 0, 1)), ((), (0, 1, 2, 2)),
])
def test_moments_with_repeated_and_coplanar_units_equal_a_polar_quadrature(linear, orthant):
    """Three units in a plane (every 4-block singular), units repeated in the orthant (theta**n = theta)."""
    F = np.array([[1.2, 0.3], [-0.4, 0.9], [0.5, -0.8]])
    rows = list(F)
    got = orthant_moment([rows[a] for a in linear], [rows[s] for s in orthant])
    want = _polar_expectation(F, lambda z: np.prod(z[..., list(linear)], axis=-1)
                              * np.prod(z[..., list(orthant)] > 0, axis=-1))
    assert abs(got - want) < 1e-12 * max(1.0, abs(want))
