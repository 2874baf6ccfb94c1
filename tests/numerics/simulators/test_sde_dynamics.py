"""The diffusion approximation's default step against its documented rule.

``h = min(DRIFT_STEP / rate, N (NOISE_STEP s)**2 / tr Sigma, alpha_max / MIN_STEPS)`` over the
replicas, ``s = max(|Q|, |T|)`` (Frobenius), written out here per replica from the
:mod:`numerics.simulators.sde` module docstring.
"""

from __future__ import annotations

import numpy as np
import pytest

from numerics.results.settings import RunSettings
from numerics.runtime.registry import resolve
from numerics.simulators import sde_dynamics
from numerics.simulators.sde_dynamics import DRIFT_STEP, MIN_STEPS, NOISE_STEP, default_step, drift_rate

P, K = 2, 1


def _start(seed: int, replicas: int = 3):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((replicas, P + K, P + K))
    C = A @ np.swapaxes(A, 1, 2) / (P + K) + 0.5 * np.eye(P + K)
    Q, R = C[:, :P, :P], C[:, :P, P:]
    X = rng.standard_normal((replicas, 5, 5))
    Sigma = X @ np.swapaxes(X, 1, 2)
    return Q, R, np.eye(K), Sigma


def _documented_step(Q, T, Sigma, rate, N, alpha_max):
    candidates = [alpha_max / MIN_STEPS]
    if rate > 0:
        candidates.append(DRIFT_STEP / rate)
    for b in range(Q.shape[0]):
        trace = sum(Sigma[b, i, i] for i in range(Sigma.shape[-1]))
        scale = max(np.sqrt(np.sum(Q[b] ** 2)), np.sqrt(np.sum(T**2)))
        if trace > 0:
            candidates.append(N * (NOISE_STEP * scale) ** 2 / trace)
    return min(candidates)


@pytest.mark.parametrize(
    "rates, N, alpha_max",
    [
        ([0.5, 2.0, 1.0], 1e6, 10.0),  # the drift binds
        ([0.01, 0.02, 0.01], 3.0, 10.0),  # the noise binds (small N)
        ([0.01, 0.02, 0.01], 1e6, 0.5),  # the minimum number of steps binds
        ([0.0, 0.0, 0.0], 1e6, 10.0),  # no drift rate
    ],
)
def test_default_step_follows_the_documented_rule(monkeypatch, rates, N, alpha_max):
    Q, R, T, Sigma = _start(0)
    monkeypatch.setattr(sde_dynamics, "drift_rate", lambda *args, **kwargs: np.array(rates))
    settings = RunSettings(eta=0.5)
    step = default_step(Q, R, T, Sigma, N=N, alpha_max=alpha_max, settings=settings, resolved=resolve(None))
    assert step == pytest.approx(_documented_step(Q, T, Sigma, max(rates), N, alpha_max), rel=1e-14)


def test_without_noise_the_step_is_set_by_the_drift_and_the_minimum_steps(monkeypatch):
    Q, R, T, _ = _start(1)
    monkeypatch.setattr(sde_dynamics, "drift_rate", lambda *args, **kwargs: np.array([4.0, 1.0, 0.5]))
    settings = RunSettings(eta=0.5)
    zero = np.zeros((3, 5, 5))
    step = default_step(Q, R, T, zero, N=10.0, alpha_max=10.0, settings=settings, resolved=resolve(None))
    assert step == pytest.approx(DRIFT_STEP / 4.0, rel=1e-14)


def test_drift_rate_is_a_rate_per_replica_and_scales_with_eta_at_first_order():
    # without the eta**2 term the drift is linear in eta, and so is its Jacobian
    Q, R, T, _ = _start(2)
    resolved = resolve(None)
    slow = drift_rate(Q, R, T, RunSettings(eta=0.1, second_order=False), resolved)
    fast = drift_rate(Q, R, T, RunSettings(eta=0.3, second_order=False), resolved)
    assert slow.shape == (3,) and np.all(slow > 0)
    # central differences with relative step 1e-6: rounding of order eps / 1e-6 in either rate
    np.testing.assert_allclose(fast, 3 * slow, rtol=16 * np.finfo(float).eps / 1e-6)
