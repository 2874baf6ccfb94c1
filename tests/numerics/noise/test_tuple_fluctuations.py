"""Increment moments of erf and relu networks (the per-tuple route): numerics/noise/tuple_fluctuations.py.

Checked against quadratures of the increments' definitions (erf: tensor Gauss-Hermite, which converges
geometrically for the entire erf, 1e-13 at the sizes and variances used; relu: exact polar quadrature for units
in a plane), against Monte Carlo of one SGD step from weights (with power checks), and through the SDE.
"""

from __future__ import annotations

import numpy as np
import pytest
from gauss_quadrature import gaussian_nodes
from numpy.polynomial import hermite_e
from sample_points import random_point
from scipy.special import erf
from sgd_steps import largest_z_scores

from derive.model.model import SCM, Model
from numerics import simulate_sde
from numerics.noise.fluctuations import increment_covariance
from numerics.noise.tuple_fluctuations import increment_moments
from numerics.runtime.registry import resolve


def sigma(x):
    return erf(x / np.sqrt(2))


def sigma_prime(x):
    return np.sqrt(2 / np.pi) * np.exp(-x * x / 2)


def relu(x):
    return np.maximum(x, 0.0)


def theta(x):
    return (x > 0).astype(float)


ERF = dict(sigma=sigma, sigma_prime=sigma_prime)
RELU = dict(sigma=relu, sigma_prime=theta)


def polar_nodes(C, angles=40, radii=12):
    """Nodes and weights of ``N(0, C)`` for a rank-2 ``C``, exact for relu integrands of degree <= 4.

    In polar coordinates the angle is cut where a unit changes sign (the integrand is smooth in
    between: Gauss-Legendre), the radius integrated by Gauss-Laguerre in ``r**2 / 2`` (the terms
    of odd degree in ``r`` carry odd powers of the label noise, which average to zero).
    """
    values, vectors = np.linalg.eigh(C)
    F = vectors[:, -2:] * np.sqrt(np.maximum(values[-2:], 0.0))
    cuts = np.mod(np.arctan2(-F[:, 0], F[:, 1]), np.pi)
    edges = np.unique(np.concatenate([cuts, cuts + np.pi, [0.0, 2 * np.pi]]))
    x, w = np.polynomial.legendre.leggauss(angles)
    phi = np.concatenate([lo + (hi - lo) * (x + 1) / 2 for lo, hi in zip(edges[:-1], edges[1:])])
    w_phi = np.concatenate([(hi - lo) / 2 * w for lo, hi in zip(edges[:-1], edges[1:])]) / (2 * np.pi)
    u, w_u = np.polynomial.laguerre.laggauss(radii)
    r = np.sqrt(2 * u)
    g = (r[:, None, None] * np.stack([np.cos(phi), np.sin(phi)], axis=-1)[None]).reshape(-1, 2)
    return g @ F.T, (w_u[:, None] * w_phi[None]).reshape(-1)


def quadrature_covariance(Q, R, T, eta, *, a, b, delta=0.0, eta_a=None, nodes=40, units=ERF):
    """Leading-order covariance of ``q = eta (E_j l_l + E_l l_j)``, ``r = eta E_j n_r`` (and ``s``) by quadrature.

    ``units=ERF``: a tensor Gauss-Hermite rule with ``nodes`` per dimension; ``RELU``: :func:`polar_nodes`
    (rank-2 ``C``).
    """
    p, k = R.shape
    C = np.block([[Q, R], [R.T, T]])
    z, weights = gaussian_nodes(C, nodes) if units is ERF else polar_nodes(C)
    activation, slope = units["sigma"], units["sigma_prime"]
    xi, xi_weights = hermite_e.hermegauss(3)
    xi_weights = xi_weights / np.sqrt(2 * np.pi)
    lam, nu = z[:, :p], z[:, p:]
    residual = activation(nu) @ b - activation(lam) @ a
    parts = []
    for noise, noise_weight in zip(xi, xi_weights):
        E = a * slope(lam) * (residual + np.sqrt(delta) * noise)[:, None]
        q = eta * (E[:, :, None] * lam[:, None, :] + lam[:, :, None] * E[:, None, :])
        r = eta * E[:, :, None] * nu[:, None, :]
        s = None if eta_a is None else eta_a * activation(lam) * (residual + np.sqrt(delta) * noise)[:, None]
        parts.append((weights * noise_weight, q, r, s))
    w = np.concatenate([part[0] for part in parts])

    def stacked(i):
        return np.concatenate([part[i] for part in parts])

    q, r = stacked(1), stacked(2)

    def cov(x, y):
        xc, yc = x - np.einsum("n,n...->...", w, x), y - np.einsum("n,n...->...", w, y)
        return np.einsum("n,na,nb->ab", w, xc.reshape(len(w), -1), yc.reshape(len(w), -1)).reshape(
            x.shape[1:] + y.shape[1:])

    blocks = [cov(q, q), cov(q, r), cov(r, r)]
    if eta_a is not None:
        s = stacked(3)
        blocks += [cov(s, q), cov(s, r), cov(s, s)]
    return blocks


def _largest_relative_error(got, want):
    return max(float(np.max(np.abs(g - w))) / max(1.0, float(np.max(np.abs(w)))) for g, w in zip(got, want))


@pytest.mark.parametrize("kind", ["random", "singular", "near"])
@pytest.mark.parametrize("sizes", [(2, 1), (1, 2)])
def test_erf_increment_covariance_equals_quadrature(kind, sizes):
    """All six blocks (readout vectors, trained readout, label noise) against the quadrature, to 1e-10."""
    p, k = sizes
    rng = np.random.default_rng(11 + 3 * p + k)
    # halved so that the tensor rule converges to 1e-13 with 50 nodes (its error grows with the variances)
    Q, R, T = (0.5 * block for block in random_point(p, k, rng, kind))
    a, b = rng.uniform(-1.2, 1.2, p), rng.uniform(0.5, 1.5, k)
    got = increment_covariance(Q, R, T, 0.7, model=SCM.with_noise(0.3), a=a, b=b, eta_a=0.4, second_order=False)
    want = quadrature_covariance(Q, R, T, 0.7, a=a, b=b, delta=0.3, eta_a=0.4, nodes=50)
    assert _largest_relative_error(got, want) < 1e-10


def test_erf_scalar_readouts_and_repeated_units():
    """Scalar readouts (the model's a = b = 1) and a student equal to the teacher (a singular C)."""
    Q = np.array([[1.0, 0.3], [0.3, 0.6]])
    R = np.array([[1.0], [0.3]])  # student 0 is the teacher
    T = np.eye(1)
    got = increment_covariance(Q, R, T, 0.5, model=SCM, eta_a=0.2, second_order=False)
    want = quadrature_covariance(Q, R, T, 0.5, a=np.ones(2), b=np.ones(1), eta_a=0.2)
    assert _largest_relative_error(got, want) < 1e-10
    # without eta_a the first three blocks, and batch axes broadcast
    batched = increment_covariance(np.stack([Q, Q]), np.stack([R, R]), T, 0.5, model=SCM, second_order=False)
    for block, single in zip(batched, got[:3]):
        np.testing.assert_allclose(block, np.stack([single, single]), rtol=1e-13, atol=1e-15)


def test_erf_covariance_matches_monte_carlo_of_sgd_steps_from_weights(monkeypatch):
    """One-step increments from weights (p = 2, k = 2, N = 200, 100,000 steps) within 5 standard errors.

    Measured: largest |z| 1.6 (QQ), 2.3 (QR), 2.0 (RR), 1.5 (AQ), 2.4 (AR), 0.7 (AA). Power: the same
    covariance without the student-teacher residual kernel (``increment_st``, ``readout_increment_st``)
    is 22, 132, 15, 26, 129 standard errors off (AA does not use it).
    """
    rng = np.random.default_rng(29)
    p, k, N, eta, eta_a = 2, 2, 200, 0.8, 0.6
    a, b = np.array([1.0, -0.7]), np.array([1.1, 0.6])
    W = rng.standard_normal((p, N)) * 0.9
    W_star = rng.standard_normal((k, N))
    Q, R, T = W @ W.T / N, W @ W_star.T / N, W_star @ W_star.T / N
    q, r, s = _steps(rng, W, W_star, eta, eta_a, a, b, 100_000, ERF)
    samples = ((q, q), (q, r), (r, r), (s, q), (s, r), (s, s))
    blocks = increment_covariance(Q, R, T, eta, model=SCM, a=a, b=b, eta_a=eta_a, second_order=False)
    largest = largest_z_scores(samples, blocks)
    assert max(largest) < 5, largest
    module = resolve(SCM, sizes=(p, k)).module
    for name in ("increment_st", "readout_increment_st"):
        monkeypatch.setitem(module.KERNELS, name, lambda *entries: np.zeros(np.broadcast_shapes(
            *(np.shape(e) for e in entries))))
    dropped = increment_covariance(Q, R, T, eta, model=SCM, a=a, b=b, eta_a=eta_a, second_order=False)
    largest = largest_z_scores(samples, dropped)
    assert min(largest[i] for i in (0, 2, 3)) > 5, largest


def test_sde_runs_for_the_soft_committee_machine():
    """Scalar readouts, readout vectors and a trained readout; N only scales the noise."""
    Q0, R0, T = 0.5 * np.eye(2), np.full((2, 1), 0.05), np.eye(1)
    run = simulate_sde(Q0, R0, T, N=1e3, eta=0.5, model=SCM, alpha_max=1.0, dalpha=0.1, replicas=3, seed=1,
                       progress=False)
    assert run.Q.shape == (3, run.alpha.size, 2, 2) and np.all(np.isfinite(run.risk))
    assert np.ptp(run.R[:, -1], axis=0).max() > 0  # the replicas differ: there is noise
    quiet = simulate_sde(Q0, R0, T, N=1e12, eta=0.5, model=SCM, alpha_max=1.0, dalpha=0.1, replicas=2, seed=1,
                         progress=False)
    assert np.ptp(quiet.R[:, -1], axis=0).max() < 1e-5
    trained = simulate_sde(Q0, R0, T, N=1e3, eta=0.5, model=SCM, alpha_max=1.0, dalpha=0.1, replicas=2, seed=1,
                           a=[1.0, 0.8], b=[1.2], eta_a=0.3, progress=False)
    assert trained.a.shape == (2, trained.alpha.size, 2) and np.all(np.isfinite(trained.a))


RELU_MODEL = Model(student_activation="relu(x)", teacher_activation="relu(x)")


@pytest.mark.parametrize("sizes", [(1, 1), (2, 1), (1, 2)])
def test_relu_increment_covariance_equals_polar_quadrature(sizes):
    """Units in a plane (every block singular, repeated units): all six blocks to 1e-10, label noise included."""
    p, k = sizes
    rng = np.random.default_rng(3 + p + 2 * k)
    F = rng.standard_normal((p + k, 2))
    C = F @ F.T
    Q, R, T = C[:p, :p], C[:p, p:], C[p:, p:]
    a, b = rng.uniform(-1.0, 1.0, p), rng.uniform(0.5, 1.5, k)
    got = increment_covariance(Q, R, T, 0.7, model=RELU_MODEL.with_noise(0.3), a=a, b=b, eta_a=0.4,
                               second_order=False)
    want = quadrature_covariance(Q, R, T, 0.7, a=a, b=b, delta=0.3, eta_a=0.4, units=RELU)
    assert _largest_relative_error(got, want) < 1e-10


def _steps(rng, W, W_star, eta, eta_a, a, b, samples, units, delta=0.0, chunk=20_000):
    """Leading-order increments of one SGD step from the weights: ``q = eta (E l + l E)``, ``r``, ``s``.

    The label is ``y = sum_r b_r sigma(nu_r) + sqrt(delta) xi``.
    """
    N = W.shape[1]
    activation, slope = units["sigma"], units["sigma_prime"]
    out = []
    for _ in range(samples // chunk):
        X = rng.standard_normal((chunk, N))
        lam, nu = X @ W.T / np.sqrt(N), X @ W_star.T / np.sqrt(N)
        residual = activation(nu) @ b - activation(lam) @ a + np.sqrt(delta) * rng.standard_normal(chunk)
        E = residual[:, None] * a * slope(lam)
        q = eta * (E[:, :, None] * lam[:, None, :] + lam[:, :, None] * E[:, None, :])
        out.append((q, eta * E[:, :, None] * nu[:, None, :], eta_a * residual[:, None] * activation(lam)))
    return tuple(np.concatenate(part) for part in zip(*out))


def test_relu_covariance_matches_monte_carlo_of_sgd_steps_from_weights():
    """One-step increments from weights (p = 2, k = 2, N = 200, label noise 0.5, 100,000 steps) within 5 standard
    errors (measured: largest |z| 0.9 to 1.6).

    Power: the same covariance without the label-noise term (``Delta E[z_x z_y 1{z_j, z_i > 0}]`` and its
    readout counterparts) is more than 5 standard errors off in QQ, RR, AQ and AA (measured: 19, 14, 19, 19;
    QR and AR 2.6).
    """
    rng = np.random.default_rng(31)
    p, k, N, eta, eta_a, delta = 2, 2, 200, 0.8, 0.6, 0.5
    a, b = np.array([1.0, -0.7]), np.array([1.1, 0.6])
    W = rng.standard_normal((p, N)) * 0.9
    W_star = rng.standard_normal((k, N))
    Q, R, T = W @ W.T / N, W @ W_star.T / N, W_star @ W_star.T / N
    q, r, s = _steps(rng, W, W_star, eta, eta_a, a, b, 100_000, RELU, delta=delta)
    samples = ((q, q), (q, r), (r, r), (s, q), (s, r), (s, s))
    blocks = increment_covariance(Q, R, T, eta, model=RELU_MODEL.with_noise(delta), a=a, b=b, eta_a=eta_a,
                                  second_order=False)
    largest = largest_z_scores(samples, blocks)
    assert max(largest) < 5, largest
    dropped = increment_covariance(Q, R, T, eta, model=RELU_MODEL, a=a, b=b, eta_a=eta_a, second_order=False)
    largest = largest_z_scores(samples, dropped)
    assert min(largest[i] for i in (0, 2, 3, 5)) > 5, largest  # QQ, RR, AQ, AA


def test_sde_runs_for_a_relu_network():
    Q0, R0, T = 0.5 * np.eye(2), np.full((2, 1), 0.05), np.eye(1)
    run = simulate_sde(Q0, R0, T, N=1e3, eta=0.5, model=RELU_MODEL, alpha_max=0.3, dalpha=0.1, replicas=2, seed=1,
                       a=[1.0, 0.8], eta_a=0.2, progress=False)
    assert run.Q.shape == (2, run.alpha.size, 2, 2) and np.all(np.isfinite(run.risk)) and np.all(np.isfinite(run.a))
    assert np.ptp(run.R[:, -1], axis=0).max() > 0


def test_moment_layout_symmetry_and_refusal_of_half_relu_models():
    """``X[j, x, i, y] = X[i, y, j, x]`` over all units; erf or relu mixed with a polynomial is refused."""
    Q, R, T = random_point(2, 2, np.random.default_rng(4))
    module = resolve(SCM, sizes=(2, 2)).module
    X = increment_moments(module, Q, R, T, 0.2, a=np.array([0.5, 1.0]))
    assert X.shape == (2, 4, 2, 4)
    np.testing.assert_allclose(X, np.transpose(X, (2, 3, 0, 1)), rtol=1e-13, atol=1e-15)
    for student in ("relu(x)", "erf(x)"):
        with pytest.raises(ValueError, match=f"{student.split('(')[0]} student and a polynomial teacher"):
            increment_covariance(Q, R, T, 0.1, model=Model(student_activation=student))
