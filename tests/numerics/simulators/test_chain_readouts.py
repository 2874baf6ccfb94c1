"""The exact overlap chain with per-unit readout vectors ``a``, ``b`` (``simulate(..., method="overlaps")``).

Pathwise: one block of steps equals weight-space SGD with the same inputs and readouts (1e-11). In law:
means and variances of every overlap agree with the weight simulator within 5 standard errors (measured
2.0 / 2.0 at N = 100, 300 replicas), while the chain run with the model's scalar readouts instead (the
vectors forgotten) is rejected (34 standard errors on the means).
"""

import numpy as np
import pytest
from sample_points import largest_z

from derive.model.model import HE3, PAPER
from numerics import simulate
from numerics.core.activations import activation_functions
from numerics.core.validation import covariance
from numerics.runtime.registry import resolve
from numerics.simulators.chain_start import covariance_factor
from numerics.simulators.overlap_chain import StepKernel

A_VECTOR, B_VECTOR = np.array([1.0, -0.5]), np.array([0.8])


def _weight_sgd(W, W_star, X, xi, *, eta, a, b, resolved):
    """Weight-space SGD with readout vectors: E_j = (y - f) a_j sigma'(lambda_j)."""
    N = W.shape[1]
    sigma, sigma_prime = activation_functions(resolved.module, "STUDENT")
    sigma_star, _ = activation_functions(resolved.module, "TEACHER")
    for x, noise in zip(X, xi):
        lam, nu = W @ x / np.sqrt(N), W_star @ x / np.sqrt(N)
        y = b @ sigma_star(nu) + np.sqrt(resolved.noise_variance) * noise
        E = (y - a @ sigma(lam)) * a * sigma_prime(lam)
        W = W + (eta / np.sqrt(N)) * np.outer(E, x)
    return W


@pytest.mark.parametrize("batch", [1, 3])
def test_block_with_readout_vectors_equals_weight_space_sgd(batch):
    N, p, k, eta, steps = 30, 2, 1, 0.3, 5
    resolved = resolve(HE3.with_noise(0.2), sizes=(p, k))
    rng = np.random.default_rng(4)
    W, W_star = rng.standard_normal((p, N)), rng.standard_normal((k, N))
    V = np.vstack([W, W_star])
    C = covariance(W @ W.T / N, W @ W_star.T / N, W_star @ W_star.T / N)
    F = covariance_factor(C)
    E = np.linalg.solve(F, V / np.sqrt(N))  # orthonormal rows: V / sqrt(N) = F E (C is regular here)
    X = rng.standard_normal((steps * batch, N))
    xi = rng.standard_normal(steps * batch)
    G = X @ E.T
    orthogonal = X - G @ E
    inputs = np.hstack([G, np.linalg.cholesky(orthogonal @ orthogonal.T)])[None]
    state = C[None].copy()
    kernel = StepKernel(resolved, eta, N, p, k, batch, readouts=(A_VECTOR[None], B_VECTOR[None]))
    kernel.advance(state, inputs, xi[None])
    W1 = W.copy()
    for t in range(steps):  # a mini-batch step: the mean of the batch's gradients at the same weights
        rows = slice(t * batch, (t + 1) * batch)
        moves = [_weight_sgd(W1, W_star, X[i : i + 1], xi[i : i + 1], eta=eta / batch, a=A_VECTOR, b=B_VECTOR,
                             resolved=resolved) - W1 for i in range(rows.start, rows.stop)]
        W1 = W1 + sum(moves)
    np.testing.assert_allclose(state[0, :p, :p], W1 @ W1.T / N, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(state[0, :p, p:], W1 @ W_star.T / N, rtol=1e-11, atol=1e-12)


def test_readout_vectors_agree_with_the_weight_simulator_in_law():
    # the paper model (its scalar readouts are a = 1/p, b = 1/k) with other readouts
    a, b = np.array([0.7, 0.3]), np.array([1.2])
    N, replicas, record = 100, 300, [0.0, 0.5, 1.0, 2.0, 3.0]
    kwargs = dict(N=N, p=2, k=1, eta=0.1, alpha_max=record[-1], model=PAPER, replicas=replicas, record=record,
                  progress=False)
    full = simulate(seed=1, a=a, b=b, **kwargs)
    chain = simulate(seed=2, method="overlaps", a=a, b=b, **kwargs)
    z_mean, z_var = largest_z(full, chain)
    assert z_mean < 5 and z_var < 5, (z_mean, z_var)
    np.testing.assert_array_equal(chain.a[:, -1], np.broadcast_to(a, (replicas, 2)))
    np.testing.assert_array_equal(chain.b, np.broadcast_to(b, (replicas, 1)))
    np.testing.assert_allclose(chain.risk[:, 0], full.risk[:, 0], rtol=0.5)  # the risk uses the vectors too
    # power: the chain with the model's scalar readouts is told apart (measured: z = 34 on the means)
    wrong = simulate(seed=2, method="overlaps", **kwargs)
    assert largest_z(full, wrong)[0] > 10


def test_per_replica_readouts_and_a_trained_readout():
    a = np.array([[1.0, 1.0], [0.5, -1.0]])
    sim = simulate(N=50, p=2, k=1, eta=0.05, alpha_max=0.5, model=HE3, replicas=2, seed=0, record=3, a=a, q0=0.5,
                   method="overlaps", progress=False)
    np.testing.assert_array_equal(sim.a[:, 0], a)
    with pytest.raises(ValueError, match="method='weights' only"):
        simulate(N=50, p=2, k=1, eta=0.05, alpha_max=0.5, a=a[0], eta_a=0.1, method="overlaps", progress=False)
    with pytest.raises(ValueError, match="a must have length p = 2"):
        simulate(N=50, p=2, k=1, eta=0.05, alpha_max=0.5, a=np.ones(3), method="overlaps", progress=False)
