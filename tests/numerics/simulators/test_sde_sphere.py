"""The diffusion approximation of spherical SGD (simulate_sde with spherical=True) against renormalised SGD."""

from __future__ import annotations

import numpy as np
import pytest

import numerics
from numerics import RunSettings


def sphere_rows(W):
    return W * np.sqrt(W.shape[-1]) / np.linalg.norm(W, axis=-1, keepdims=True)


def test_sde_on_the_sphere_against_renormalised_sgd():
    N, p, k, replicas, alpha, eta = 1000, 2, 1, 24, 1.5, 0.3
    rng = np.random.default_rng(0)
    W_star = sphere_rows(rng.standard_normal((k, N)))
    W0 = sphere_rows(0.4 * W_star[np.zeros(p, dtype=int)] + rng.standard_normal((replicas, p, N)))
    settings = RunSettings(eta=eta, spherical=True)
    sgd = numerics.simulate(settings, N=N, p=p, k=k, alpha_max=alpha, replicas=replicas, seed=1, W0=W0,
                            W_star=np.broadcast_to(W_star, (replicas, k, N)), record=[0.0, alpha], progress=False)
    Q0, R0, T = sgd.Q[:, 0], sgd.R[:, 0], W_star @ W_star.T / N

    def sde_of(run_settings):
        return numerics.simulate_sde(Q0, R0, T, run_settings, N=N, alpha_max=alpha, replicas=replicas, seed=2,
                                     record=[0.0, alpha], progress=False)

    sde = sde_of(settings)
    # the norms stay exactly at the start (zero drift and zero noise on every q_jj)
    np.testing.assert_allclose(np.diagonal(sde.Q[:, -1], axis1=-2, axis2=-1), 1.0, rtol=1e-12)
    rows, cols = np.triu_indices(p, 1)

    def largest_z(run):
        z = []
        for sim, other in ((sgd.R[:, -1], run.R[:, -1]), (sgd.Q[:, -1][:, rows, cols], run.Q[:, -1][:, rows, cols])):
            sim, other = sim.reshape(replicas, -1), other.reshape(replicas, -1)
            error = np.sqrt(sim.var(0, ddof=1) / replicas + other.var(0, ddof=1) / replicas)
            z.append((sim.mean(0) - other.mean(0)) / error)
        return np.max(np.abs(np.concatenate(z)))

    assert largest_z(sde) < 5
    # power: the free diffusion leaves the sphere
    free = sde_of(settings.replace(spherical=False))
    assert np.max(np.abs(np.diagonal(free.Q[:, -1], axis1=-2, axis2=-1) - 1.0)) > 0.05


def test_sde_refuses_a_zero_norm_student_on_the_sphere():
    with pytest.raises(ValueError, match="every Q_jj must be positive"):
        numerics.simulate_sde(np.diag([1.0, 0.0]), np.zeros((2, 1)), np.eye(1), eta=0.3, spherical=True, N=100,
                              alpha_max=1.0, progress=False)
