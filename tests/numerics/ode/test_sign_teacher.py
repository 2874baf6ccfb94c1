"""Classification teachers: sign(x) labels with label flips, through the ODE, the simulator and the risk."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

import numerics
from derive.model.model import Model

P, K = 2, 2
FLIP = 0.15


def sign_model(flip=FLIP) -> Model:
    return Model(student_activation="erf(x/sqrt(2))", teacher_activation="sign(x)", student_readout="1",
                 teacher_readout="1", label_flip=str(flip))


def overlaps(seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((P + K, P + K + 2))
    C = A @ A.T / (P + K + 2)
    return C[:P, :P], C[:P, P:], C[P:, P:], C


def monte_carlo_rhs(C, eta, flip, n=1_000_000, seed=1):
    """Sample means (and standard errors) of eta E_j nu_r and eta (E_j l_l + E_l l_j) + eta^2 E_j E_l."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, P + K)) @ np.linalg.cholesky(C).T
    lam, nu = z[:, :P], z[:, P:]
    y = np.sign(nu).sum(1) * np.where(rng.random(n) < flip, -1.0, 1.0)
    error = y - erf(lam / np.sqrt(2)).sum(1)
    E = error[:, None] * np.sqrt(2 / np.pi) * np.exp(-lam * lam / 2)
    dR = eta * E[:, :, None] * nu[:, None, :]
    first = E[:, :, None] * lam[:, None, :]
    dQ = eta * (first + np.swapaxes(first, 1, 2)) + eta**2 * E[:, :, None] * E[:, None, :]
    return [(x.mean(0), x.std(0) / np.sqrt(n)) for x in (dQ, dR)]


def test_rhs_with_label_flips_against_monte_carlo_with_power():
    Q, R, T, C = overlaps()
    (mQ, sQ), (mR, sR) = monte_carlo_rhs(C, 0.5, FLIP)
    dQ, dR = numerics.rhs(Q, R, T, 0.5, model=sign_model())
    assert np.max(np.abs(dQ - mQ) / sQ) < 5 and np.max(np.abs(dR - mR) / sR) < 5
    # power: the same labels without flips are rejected
    _, clean = numerics.rhs(Q, R, T, 0.5, model=sign_model(0))
    assert np.max(np.abs(clean - mR) / sR) > 10


def test_risk_against_monte_carlo():
    Q, R, T, C = overlaps(2)
    rng = np.random.default_rng(3)
    n = 2_000_000
    z = rng.standard_normal((n, P + K)) @ np.linalg.cholesky(C).T
    y = np.sign(z[:, P:]).sum(1) * np.where(rng.random(n) < FLIP, -1.0, 1.0)
    loss = (y - erf(z[:, :P] / np.sqrt(2)).sum(1)) ** 2 / 2
    assert abs(numerics.risk(Q, R, T, model=sign_model()) - loss.mean()) < 5 * loss.std() / np.sqrt(n)


def test_integrate_against_the_weight_simulator_with_flips():
    N, replicas, alpha = 1000, 24, 1.5
    model = sign_model()
    run = numerics.simulate(eta=0.5, model=model, N=N, p=P, k=K, alpha_max=alpha, replicas=replicas, seed=4,
                            record=[0.0, alpha], progress=False)
    ode = numerics.integrate(run.Q[:, 0], run.R[:, 0], run.T, eta=0.5, model=model, alpha_max=alpha,
                             alpha_eval=[0.0, alpha], rtol=1e-9)

    def largest_z(theory_R):
        difference = (run.R[:, -1] - theory_R).reshape(replicas, -1)
        return np.max(np.abs(difference.mean(0) / (difference.std(0, ddof=1) / np.sqrt(replicas))))

    assert largest_z(ode.R[:, -1]) < 5
    clean = numerics.integrate(run.Q[:, 0], run.R[:, 0], run.T, eta=0.5, model=sign_model(0), alpha_max=alpha,
                               alpha_eval=[0.0, alpha], rtol=1e-9)
    assert largest_z(clean.R[:, -1]) > 5  # power: the flips are seen
    # the simulator's risk is the mixture too
    np.testing.assert_allclose(run.risk[:, 0], numerics.risk(run.Q[:, 0], run.R[:, 0], run.T, model=model),
                               rtol=1e-12)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="must be a probability in"):
        sign_model(0.6)
    with pytest.raises(ValueError, match="label_flip"):
        sign_model(-0.1)
    Q, R, T, _ = overlaps()
    with pytest.raises(ValueError, match="increment covariance of a sign teacher with a trained readout"):
        numerics.simulate_sde(Q, R, T, eta=0.5, eta_a=0.1, model=sign_model(), N=100, alpha_max=1, progress=False)
