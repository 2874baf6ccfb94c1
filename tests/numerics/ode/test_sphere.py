"""Spherical (projected) one-pass SGD: the projected ODE, its closed forms, the renormalised simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest

import numerics
from derive.model.model import SCM, Model
from numerics import RunSettings
from numerics.ode.sphere import project_rates, sphere_map


def hermite_model(degree: int) -> Model:
    text = {1: "x", 2: "x**2 - 1", 3: "x**3 - 3*x"}[degree]
    return Model(student_activation=text, teacher_activation=text, student_readout="1", teacher_readout="1")


@pytest.mark.parametrize("degree", [2, 3])
def test_single_index_gradient_flow_on_the_sphere(degree):
    # He_k student and teacher, |w| = |w*|: risk k! (1 - m^k), spherical gradient flow
    # dm/dalpha = eta k k! m^(k-1) (1 - m^2) (Ben Arous, Gheissari, Jagannath's population dynamics)
    model = hermite_model(degree)
    for m in (-0.4, 0.05, 0.3, 0.9):
        dQ, dR = numerics.rhs(np.eye(1), np.array([[m]]), np.eye(1), 0.3, model=model, spherical=True,
                              second_order=False)
        assert dQ.item() == 0.0
        expected = 0.3 * degree * math.factorial(degree) * m ** (degree - 1) * (1 - m * m)
        assert dR.item() == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_he3_escape_time_against_the_closed_form():
    # dm/dalpha = 18 eta m^2 (1 - m^2): alpha(m0 -> m1) = [atanh(m) - 1/m]_{m0}^{m1} / (18 eta)
    eta, m0, m1 = 0.2, 0.02, 0.5
    expected = ((math.atanh(m1) - 1 / m1) - (math.atanh(m0) - 1 / m0)) / (18 * eta)
    run = numerics.integrate(np.eye(1), np.array([[m0]]), np.eye(1), model=hermite_model(3), eta=eta, spherical=True,
                             second_order=False, alpha_max=expected, alpha_eval=[0.0, expected / 2, expected],
                             rtol=1e-11, atol=1e-13)
    assert run.R[-1, 0, 0] == pytest.approx(m1, rel=1e-8)
    np.testing.assert_allclose(run.Q[:, 0, 0], 1.0, rtol=0, atol=1e-9)


def test_the_norms_stay_at_their_start():
    rng = np.random.default_rng(0)
    p, k = 3, 2
    A = rng.standard_normal((p + k, p + k + 3))
    C = A @ A.T / (p + k + 3)
    Q0, R0, T = C[:p, :p], C[:p, p:], C[p:, p:]
    for model in (None, SCM):
        run = numerics.integrate(Q0, R0, T, eta=0.3, model=model, spherical=True, alpha_max=30.0, rtol=1e-9,
                                 atol=1e-11)
        norms = np.diagonal(run.Q, axis1=-2, axis2=-1)
        np.testing.assert_allclose(norms, np.broadcast_to(np.diag(Q0), norms.shape), rtol=1e-7)
        free = numerics.integrate(Q0, R0, T, eta=0.3, model=model, alpha_max=30.0)
        assert np.max(np.abs(np.diagonal(free.Q[-1]) - np.diag(Q0))) > 1e-2  # the projection matters


def test_projection_is_the_linear_map_of_the_increments():
    # the drift on the sphere is J applied to the packed free drift; J kills every q_jj
    rng = np.random.default_rng(1)
    p, k = 3, 2
    A = rng.standard_normal((2, p + k, p + k + 3))
    C = A @ np.swapaxes(A, 1, 2) / (p + k + 3)
    Q, R, T = C[:, :p, :p], C[:, :p, p:], C[:, p:, p:]
    dQ, dR = numerics.rhs(Q, R, T, 0.4, model=SCM)
    sphere_Q, sphere_R = project_rates(Q, R, dQ, dR)
    rows, cols = np.triu_indices(p)
    packed = np.concatenate([dQ[:, rows, cols], dR.reshape(2, -1)], axis=-1)
    mapped = np.einsum("bij,bj->bi", sphere_map(Q, R), packed)
    expected = np.concatenate([sphere_Q[:, rows, cols], sphere_R.reshape(2, -1)], axis=-1)
    np.testing.assert_allclose(mapped, expected, rtol=1e-12, atol=1e-14)
    assert np.all(np.abs(mapped[:, np.flatnonzero(rows == cols)]) < 1e-15)
    batched = numerics.rhs(Q, R, T, 0.4, model=SCM, spherical=True)
    for i in range(2):
        single = numerics.rhs(Q[i], R[i], T[i], 0.4, model=SCM, spherical=True)
        np.testing.assert_allclose(single[1], batched[1][i], rtol=1e-13)


def sphere_rows(W: np.ndarray, radius: float = 1.0) -> np.ndarray:
    return W * np.sqrt(radius * W.shape[-1]) / np.linalg.norm(W, axis=-1, keepdims=True)


@pytest.mark.parametrize(
    ("model", "p", "k", "eta", "batch_size", "alpha"),
    [(None, 2, 1, 0.3, 1, 1.5), (SCM, 2, 2, 0.8, 2, 1.5)],
    ids=["paper", "scm-batch2"],
)
def test_simulation_on_the_sphere_against_the_ode(model, p, k, eta, batch_size, alpha):
    # replica means of the renormalised SGD against the projected ODE from each replica's start (5 standard errors)
    N, replicas = 1000, 24
    rng = np.random.default_rng(2)
    W_star = sphere_rows(rng.standard_normal((k, N)))
    # a start with some overlap with the teacher, so that the dynamics move within alpha
    W0 = sphere_rows(0.4 * W_star[rng.integers(0, k, p)] + rng.standard_normal((replicas, p, N)))
    settings = RunSettings(eta=eta, model=model, spherical=True, batch_size=batch_size)
    run = numerics.simulate(settings, N=N, p=p, k=k, alpha_max=alpha, replicas=replicas, seed=3, W0=W0,
                            W_star=np.broadcast_to(W_star, (replicas, k, N)), record=[0.0, alpha], progress=False)
    np.testing.assert_allclose(np.diagonal(run.Q[:, -1], axis1=-2, axis2=-1), 1.0, rtol=1e-12)
    Q0, R0, T = W0 @ np.swapaxes(W0, 1, 2) / N, W0 @ W_star.T / N, W_star @ W_star.T / N

    def largest_z(ode_settings):
        ode = numerics.integrate(Q0, R0, T, ode_settings, alpha_max=alpha, alpha_eval=[0.0, alpha], rtol=1e-9)
        rows, cols = np.triu_indices(p, 1)
        differences = [run.R[:, -1] - ode.R[:, -1], (run.Q[:, -1] - ode.Q[:, -1])[:, rows, cols]]
        z = [d.reshape(replicas, -1).mean(0) / (d.reshape(replicas, -1).std(0, ddof=1) / np.sqrt(replicas))
             for d in differences]
        # the norms: the simulation keeps them exactly, so their distance to the ODE's is a plain number
        norms = np.max(np.abs(np.diagonal(ode.Q[:, -1], axis1=-2, axis2=-1) - 1.0))
        return np.max(np.abs(np.concatenate(z))), norms

    z, norms = largest_z(settings)
    assert z < 5 and norms < 1e-7
    # power: the free ODE is rejected, by the statistics or by the norms
    z, norms = largest_z(settings.replace(spherical=False))
    assert z > 5 or norms > 0.05


def test_bad_spherical_settings_are_refused():
    with pytest.raises(ValueError, match="spherical"):
        RunSettings(eta=0.5, spherical="yes")
    with pytest.raises(ValueError, match=r"Q\[1, 1\] = 0.0"):
        numerics.integrate(np.diag([1.0, 0.0]), np.zeros((2, 1)), np.eye(1), eta=0.5, spherical=True, alpha_max=1)
    with pytest.raises(ValueError, match="every Q_jj must be positive"):
        numerics.rhs(np.diag([1.0, 0.0]), np.zeros((2, 1)), np.eye(1), 0.5, spherical=True)
    with pytest.raises(ValueError, match="every Q_jj must be positive"):
        numerics.simulate(eta=0.5, spherical=True, N=50, p=2, k=1, alpha_max=0.1, method="overlaps", progress=False,
                          Q0=np.diag([1.0, 0.0]))
