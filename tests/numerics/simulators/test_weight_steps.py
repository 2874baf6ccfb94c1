"""Blocks of SGD steps on the weights against plain SGD, one step and one sample at a time.

Plain SGD (docs/model.md) with the same draws: per step of ``B`` samples
``W <- W + eta / (sqrt(N) B) sum_s (y_s - a . g(lambda_s)) (a * g'(lambda_s)) x_s^T`` and, when
trained, ``a <- a + eta_a / (N B) sum_s (y_s - a . g(lambda_s)) g(lambda_s)``, both from the
weights and readout before the step.
"""

from __future__ import annotations

import numpy as np
import pytest

from numerics.core.activations import activation_functions
from numerics.results.settings import RunSettings
from numerics.runtime.registry import resolve
from numerics.simulators.common import SimulationError, replica_streams
from numerics.simulators.weight_steps import STEP_BLOCK, WeightBlocks

P, K, N, REPLICAS = 2, 1, 64, 2


def _plain_sgd(W, W_star, a, b, settings, resolved, streams, block_lengths):
    sigma, sigma_prime = activation_functions(resolved.module, "STUDENT")
    sigma_star, _ = activation_functions(resolved.module, "TEACHER")
    noise_std = np.sqrt(resolved.noise_variance)
    batch = settings.batch_size
    W, a = W.copy(), a.copy()
    for i, st in enumerate(streams):
        for size in block_lengths:
            X = st.inputs.standard_normal((size * batch, N))
            noise = st.noise.standard_normal(size * batch) if noise_std > 0 else np.zeros(size * batch)
            for t in range(size):
                update, readout_step = np.zeros((P, N)), np.zeros(P)
                for x, xi in zip(X[t * batch : (t + 1) * batch], noise[t * batch : (t + 1) * batch]):
                    lam, nu = W[i] @ x / np.sqrt(N), W_star[i] @ x / np.sqrt(N)
                    residual = b[i] @ sigma_star(nu) + noise_std * xi - a[i] @ sigma(lam)
                    update += settings.eta / (np.sqrt(N) * batch) * np.outer(residual * a[i] * sigma_prime(lam), x)
                    readout_step += settings.eta_a / (N * batch) * residual * sigma(lam)
                W[i] += update
                a[i] += readout_step
    return W, a


@pytest.mark.parametrize("batch_size, eta_a", [(1, 0.0), (2, 0.0), (1, 0.5)])
def test_blocks_make_the_steps_of_plain_sgd(batch_size, eta_a):
    settings = RunSettings(eta=0.2, batch_size=batch_size, eta_a=eta_a)
    resolved = resolve(None)
    rng = np.random.default_rng(0)
    W, W_star = rng.standard_normal((REPLICAS, P, N)), rng.standard_normal((REPLICAS, K, N))
    a, b = np.ones((REPLICAS, P)) + 0.1 * rng.standard_normal((REPLICAS, P)), np.ones((REPLICAS, K))
    blocks = WeightBlocks(W, W_star, replica_streams(1, REPLICAS), settings, resolved, a.copy(), b)
    assert blocks.s == max(1, STEP_BLOCK // batch_size)
    lengths = [blocks.s, blocks.s, max(1, blocks.s - 3)]  # a last, shorter block
    done = 0
    for size in lengths:
        blocks.advance(size, done)
        done += size
    expected_W, expected_a = _plain_sgd(W, W_star, a, b, settings, resolved, replica_streams(1, REPLICAS), lengths)
    # rounding: every step adds products of length N (order N eps relative), over all the steps
    bound = done * N * np.finfo(float).eps * np.max(np.abs(expected_W))
    assert np.max(np.abs(blocks.W - expected_W)) < bound
    assert np.max(np.abs(blocks.a - expected_a)) < done * N * np.finfo(float).eps * np.max(np.abs(expected_a))
    Q, R = blocks.measure()
    np.testing.assert_allclose(Q, expected_W @ np.swapaxes(expected_W, 1, 2) / N, rtol=done * N * np.finfo(float).eps)
    np.testing.assert_allclose(R, expected_W @ np.swapaxes(W_star, 1, 2) / N, rtol=done * N * np.finfo(float).eps)
    # the squared norms tracked from the block products are those of the weights
    np.testing.assert_allclose(blocks.norms, np.einsum("bpn,bpn->bp", expected_W, expected_W),
                               rtol=done * N * np.finfo(float).eps)


def test_diverging_weights_raise_with_the_alpha():
    settings = RunSettings(eta=1e6)
    rng = np.random.default_rng(1)
    W, W_star = rng.standard_normal((1, P, N)), rng.standard_normal((1, K, N))
    blocks = WeightBlocks(W, W_star, replica_streams(2, 1), settings, resolve(None), np.ones((1, P)), np.ones((1, K)))
    with pytest.raises(SimulationError, match="alpha"), np.errstate(over="ignore", invalid="ignore"):
        for done in range(0, 400, blocks.s):
            blocks.advance(blocks.s, done)
