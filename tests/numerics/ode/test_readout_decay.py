"""Weight decay of the trained readout (``readout_decay``) and the mean-field preset (``RunSettings.mean_field``).

Both are checked against a plainly written finite-N SGD loop (below, independent of the
simulators): replica means of the overlaps and readouts against the ODE integrated from each
replica's own start, within 5 standard errors, with a power check that the ODE without the
decay term (or without the preset's scaling) is rejected by the same test.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

import numerics
from derive.model.model import SCM
from numerics import RunSettings

P, K, N = 2, 2, 1000
REPLICAS = 48
ALPHA = 2.0


def sigma(x):
    return erf(x / np.sqrt(2))


def sigma_prime(x):
    return np.sqrt(2 / np.pi) * np.exp(-x * x / 2)


def teacher(seed: int) -> np.ndarray:
    # k orthogonal rows of norm sqrt(N): T = I exactly
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((N, K)))
    return np.sqrt(N) * basis.T


def plain_sgd(W, W_star, a, b, eta, eta_a, decay, steps, rng):
    """SGD written out: w_j += (eta/sqrt N)(y-f) a_j sigma'(lambda_j) x, a_j += (eta_a/N)((y-f) sigma_j - decay a_j)."""
    W, a = W.copy(), np.broadcast_to(a, W.shape[:2]).copy()
    for _ in range(steps):
        x = rng.standard_normal((W.shape[0], N))
        lam = np.einsum("bpn,bn->bp", W, x) / np.sqrt(N)
        nu = np.einsum("kn,bn->bk", W_star, x) / np.sqrt(N)
        error = sigma(nu) @ b - np.sum(a * sigma(lam), axis=-1)  # (B,)
        W += (eta / np.sqrt(N)) * (error[:, None] * a * sigma_prime(lam))[:, :, None] * x[:, None, :]
        a += (eta_a / N) * (error[:, None] * sigma(lam) - decay * a)
    return W, a


def replica_z_scores(W_end, a_end, W_star, ode):
    """(mean of simulation - ODE) / its standard error, for every entry of Q, R and a."""
    Q_sim = W_end @ np.swapaxes(W_end, 1, 2) / N
    R_sim = W_end @ W_star.T / N
    rows = []
    for sim, theory in ((Q_sim, ode.Q[:, -1]), (R_sim, ode.R[:, -1]), (a_end, ode.a[:, -1])):
        difference = (sim - theory).reshape(REPLICAS, -1)
        rows.append(difference.mean(0) / (difference.std(0, ddof=1) / np.sqrt(REPLICAS)))
    return np.concatenate(rows)


def starts(seed: int):
    rng = np.random.default_rng(seed)
    W0 = 0.5 * rng.standard_normal((REPLICAS, P, N))
    return W0, rng


def ode_from(W0, W_star, settings):
    Q0 = W0 @ np.swapaxes(W0, 1, 2) / N
    R0 = W0 @ W_star.T / N
    return numerics.integrate(Q0, R0, np.eye(K), settings, alpha_max=ALPHA, alpha_eval=[0.0, ALPHA],
                              rtol=1e-9, atol=1e-11)


def test_readout_decay_in_the_ode_and_against_plain_sgd():
    W_star = teacher(1)
    W0, rng = starts(2)
    a0, b = np.array([0.3, 0.9]), np.array([1.0, 0.6])
    settings = RunSettings(eta=0.5, model=SCM, a=a0, b=b, eta_a=1.0, readout_decay=0.8)
    W_end, a_end = plain_sgd(W0, W_star, a0, b, 0.5, 1.0, 0.8, int(ALPHA * N), rng)
    with_decay = replica_z_scores(W_end, a_end, W_star, ode_from(W0, W_star, settings))
    assert np.max(np.abs(with_decay)) < 5, with_decay
    # power: the ODE without the decay term is rejected by the same statistics
    without = replica_z_scores(W_end, a_end, W_star, ode_from(W0, W_star, settings.replace(readout_decay=0.0)))
    assert np.max(np.abs(without)) > 10, without


def test_readout_decay_in_the_weight_simulator():
    # numerics.simulate with the decay against the ODE from each replica's start
    W_star = teacher(3)
    W0, _ = starts(4)
    settings = RunSettings(eta=0.5, model=SCM, a=np.array([0.3, 0.9]), b=np.array([1.0, 0.6]), eta_a=1.0,
                           readout_decay=0.8)
    run = numerics.simulate(settings, N=N, p=P, k=K, alpha_max=ALPHA, replicas=REPLICAS, seed=5, record=[0.0, ALPHA],
                            W0=W0, W_star=np.broadcast_to(W_star, (REPLICAS, K, N)), progress=False)
    ode = ode_from(W0, W_star, settings)
    for sim, theory in ((run.Q[:, -1], ode.Q[:, -1]), (run.R[:, -1], ode.R[:, -1]), (run.a[:, -1], ode.a[:, -1])):
        difference = (sim - theory).reshape(REPLICAS, -1)
        z = difference.mean(0) / (difference.std(0, ddof=1) / np.sqrt(REPLICAS))
        assert np.max(np.abs(z)) < 5, z
    assert run.settings.readout_decay == 0.8


def test_mean_field_preset_against_plain_sgd_in_its_own_parametrisation():
    # f = (1/p) sum a~_j sigma(lambda_j), teacher (1/k) sum sigma(nu_r); every unit steps with p eta (k irrelevant)
    W_star = teacher(6)
    W0, rng = starts(7)
    eta_mf, eta_a_mf, a_tilde = 0.4, 0.6, np.array([0.5, 1.5])
    W, at = W0.copy(), np.broadcast_to(a_tilde, (REPLICAS, P)).copy()
    for _ in range(int(ALPHA * N)):
        x = rng.standard_normal((REPLICAS, N))
        lam = np.einsum("bpn,bn->bp", W, x) / np.sqrt(N)
        nu = np.einsum("kn,bn->bk", W_star, x) / np.sqrt(N)
        error = sigma(nu).mean(-1) - (at * sigma(lam)).mean(-1)
        # the gradients carry 1/p; the mean-field learning rates p eta cancel it
        W += (P * eta_mf / np.sqrt(N)) * (error[:, None] * at / P * sigma_prime(lam))[:, :, None] * x[:, None, :]
        at += (P * eta_a_mf / N) * error[:, None] * sigma(lam) / P
    settings = RunSettings.mean_field(P, K, eta_mf, eta_a=eta_a_mf, student_readout=a_tilde, model=SCM)
    z = replica_z_scores(W, at / P, W_star, ode_from(W0, W_star, settings))
    assert np.max(np.abs(z)) < 5, z
    # power: forgetting the learning-rate scaling is detected
    plain = settings.replace(eta=eta_mf, eta_a=eta_a_mf)
    assert np.max(np.abs(replica_z_scores(W, at / P, W_star, ode_from(W0, W_star, plain)))) > 10


def test_rhs_decay_term_batched_and_with_the_models_readout():
    rng = np.random.default_rng(8)
    A = rng.standard_normal((3, P + K, P + K + 2))
    C = A @ np.swapaxes(A, 1, 2) / (P + K + 2)
    Q, R, T = C[:, :P, :P], C[:, :P, P:], C[:, P:, P:]
    a = rng.standard_normal((3, P))
    _, _, plain = numerics.rhs(Q, R, T, 0.5, model=SCM, a=a, eta_a=0.7)
    dQ, dR, decayed = numerics.rhs(Q, R, T, 0.5, model=SCM, a=a, eta_a=0.7, readout_decay=0.3)
    np.testing.assert_allclose(decayed, plain - 0.7 * 0.3 * a, rtol=1e-13, atol=1e-15)
    for i in range(3):  # batched = one by one
        single = numerics.rhs(Q[i], R[i], T[i], 0.5, model=SCM, a=a[i], eta_a=0.7, readout_decay=0.3)
        np.testing.assert_allclose(single[2], decayed[i], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(single[0], dQ[i], rtol=1e-13, atol=1e-15)
    # without a vector: the model's scalar readout (1 for the soft committee machine) decays
    _, _, own = numerics.rhs(Q[0], R[0], T[0], 0.5, model=SCM, eta_a=0.7)
    _, _, own_decayed = numerics.rhs(Q[0], R[0], T[0], 0.5, model=SCM, eta_a=0.7, readout_decay=0.3)
    np.testing.assert_allclose(own_decayed, own - 0.7 * 0.3 * np.ones(P), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: RunSettings(eta=0.5, readout_decay=0.1), "acts on a trained student readout"),
        (lambda: RunSettings(eta=0.5, eta_a=1.0, readout_decay=-0.1), "readout_decay"),
        (lambda: RunSettings(eta=0.5, eta_a=1.0, readout_decay=float("nan")), "readout_decay"),
        (lambda: numerics.rhs(np.eye(2), np.zeros((2, 2)), np.eye(2), 0.5, model=SCM, readout_decay=0.1),
         "acts on a trained student readout"),
        (lambda: RunSettings.mean_field(2, 2, 0.5, student_readout=[1.0, 2.0, 3.0]), r"shape \(p,\) = \(2,\)"),
        (lambda: RunSettings.mean_field(0, 2, 0.5), "p"),
        (lambda: RunSettings.mean_field(2, 2, -0.5), "eta"),
    ],
)
def test_bad_settings_are_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_settings_round_trip_and_repr():
    settings = RunSettings.mean_field(4, 2, 0.5, eta_a=0.5, readout_decay=0.2)
    assert RunSettings.from_dict(settings.to_dict()) == settings
    assert "readout_decay=0.2" in repr(settings)


def test_readout_decay_in_the_sde_drift():
    # at N = 1e12 the noise is negligible: Euler steps h and h/2 converge to the ODE at first order
    settings = RunSettings(eta=0.3, a=np.array([0.5, 0.4]), eta_a=0.5, readout_decay=0.5)
    Q0, R0, T = np.eye(2), np.full((2, 1), 0.3), np.eye(1)
    ode = numerics.integrate(Q0, R0, T, settings, alpha_max=2.0, alpha_eval=[0.0, 2.0], rtol=1e-10, atol=1e-12)
    errors = []
    for h in (0.02, 0.01):
        sde = numerics.simulate_sde(Q0, R0, T, settings, N=1e12, alpha_max=2.0, seed=0, dalpha=h, record=[0.0, 2.0],
                                    progress=False)
        errors.append(np.max(np.abs(sde.a[-1] - ode.a[-1])))
    assert errors[1] < 0.6 * errors[0]
    # the decay's own effect is far larger than the step error
    without = numerics.integrate(Q0, R0, T, settings.replace(readout_decay=0.0), alpha_max=2.0, alpha_eval=[0.0, 2.0])
    assert np.max(np.abs(without.a[-1] - ode.a[-1])) > 20 * errors[0]
