"""Mini-batch one-pass SGD: exact updates (weights and overlap chain), the ODE's 1/B, the covariance, the SDE."""

import numpy as np
import pytest
from sample_points import largest_z

from derive.model.model import PAPER
from numerics import compare_ode_simulation, increment_covariance, integrate, load, rhs, simulate, simulate_sde
from numerics.analyses.plateau import plateau_fixed_point, run_plateaus
from numerics.runtime.registry import resolve
from numerics.simulators.chain_start import covariance_factor
from numerics.simulators.common import replica_streams
from numerics.simulators.overlap_chain import StepKernel
from numerics.simulators.weights import weights_from_overlaps


def _steps_by_hand(W0, W_star, inputs, noise, *, eta, delta, kappa, batch):
    """Mini-batch SGD of the paper model, one step per ``batch`` rows of ``inputs``, written plainly."""
    p, N = W0.shape
    k = W_star.shape[0]
    W = W0.copy()
    for step in range(len(inputs) // batch):
        update = np.zeros_like(W)
        for b in range(step * batch, (step + 1) * batch):
            x = inputs[b]
            lam, nu = W @ x / np.sqrt(N), W_star @ x / np.sqrt(N)
            y = (nu**2).sum() / k + np.sqrt(delta) * noise[b]
            E = (2 / p) * (y - (lam**2).sum() / p) * lam
            update += np.outer(E, x)
        W = W + (eta / (batch * np.sqrt(N))) * update - (eta * kappa / N) * W
    return W


@pytest.mark.parametrize("batch, steps", [(3, 1), (3, 5), (16, 2)])
def test_steps_equal_hand_computed_updates(batch, steps):
    # (3, 5): steps within one block see each other's updates; (16, 2): one step per block
    N, p, k, eta, seed, delta, kappa = 60, 3, 2, 0.7, 4, 0.3, 0.2
    model = PAPER.with_noise(delta).with_weight_decay(kappa)
    rng = np.random.default_rng(1)
    W0, W_star = rng.standard_normal((p, N)), rng.standard_normal((k, N))
    result = simulate(N=N, p=p, k=k, eta=eta, alpha_max=steps / N, model=model, seed=seed,
                      record=[0, steps / N], W0=W0, W_star=W_star, progress=False, batch_size=batch)
    streams = replica_streams(seed, 1)[0]
    inputs = streams.inputs.standard_normal((steps * batch, N))
    noise = streams.noise.standard_normal(steps * batch)
    W = _steps_by_hand(W0, W_star, inputs, noise, eta=eta, delta=delta, kappa=kappa, batch=batch)
    np.testing.assert_allclose(result.extra["W"], W, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(result.Q[-1], W @ W.T / N, rtol=1e-11)
    assert result.batch_size == batch and result.nfev == steps


def test_rhs_divides_only_the_eta_squared_term():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((3, 7))
    C = W @ W.T / 7
    Q, R, T = C[:2, :2], C[:2, 2:], C[2:, 2:]
    model = PAPER.with_noise(0.2).with_weight_decay(0.1)
    eta = 0.6
    first_Q, first_R = rhs(Q, R, T, eta, model=model, second_order=False)
    full_Q, full_R = rhs(Q, R, T, eta, model=model)
    for B in (1, 4, 16):
        dQ, dR = rhs(Q, R, T, eta, model=model, batch_size=B)
        np.testing.assert_allclose(dR, first_R, rtol=1e-14)
        np.testing.assert_allclose(dQ, first_Q + (full_Q - first_Q) / B, rtol=1e-12, atol=1e-15)
    # the per-tuple route (readout vectors, a trained readout) scales the same way; da is a mean
    a, b_vec = np.array([0.3, 0.6]), np.array([1.0])
    first_Q = rhs(Q, R, T, eta, model=model, second_order=False, a=a, b=b_vec)[0]
    full_Q, _, full_da = rhs(Q, R, T, eta, model=model, a=a, b=b_vec, eta_a=0.5)
    dQ, _, da = rhs(Q, R, T, eta, model=model, a=a, b=b_vec, eta_a=0.5, batch_size=4)
    np.testing.assert_allclose(dQ, first_Q + (full_Q - first_Q) / 4, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(da, full_da, rtol=1e-14)
    # checked and unchecked paths agree
    np.testing.assert_allclose(rhs(Q, R, T, eta, model=model, batch_size=4, check=False)[0],
                               rhs(Q, R, T, eta, model=model, batch_size=4)[0], rtol=1e-15)


@pytest.mark.parametrize("batch", [1, 4, 16])
@pytest.mark.slow  # > 5 s for B = 16 on a busy machine: outside `pytest -m "not slow"`
def test_ode_matches_the_mini_batch_simulation(batch):
    """Replica-mean risk of finite-N mini-batch SGD against the ODE with eta**2 / B, within 5 standard errors.

    Power: the same means are far (> 10 standard errors) from the ODE with the wrong batch size.
    """
    p, k, N, eta, replicas, alpha_max = 4, 2, 500, 0.5, 16, 3.0
    direction = np.random.default_rng(0).standard_normal((p, k))
    R0 = 0.3 * direction / np.abs(direction).max()  # macroscopic: the escape is deterministic
    W0, W_star = weights_from_overlaps(np.eye(p), R0, N=N, seed=5)
    sim = simulate(N=N, p=p, k=k, eta=eta, alpha_max=alpha_max, seed=2, replicas=replicas,
                   record=np.linspace(0, alpha_max, 4), W0=W0, W_star=W_star, progress=False, batch_size=batch)
    ode = compare_ode_simulation(sim).ode  # integrated with the run's batch size
    assert ode.batch_size == batch
    mean = sim.risk.mean(axis=0)[1:]
    standard_error = sim.risk.std(axis=0, ddof=1)[1:] / np.sqrt(replicas)
    # the finite-N bias of the mean is O(1/N), well below the O(N^-1/2 / sqrt(replicas)) error here
    z = (mean - ode.risk[0, 1:]) / standard_error
    assert np.max(np.abs(z)) < 5, z
    wrong = integrate(sim.Q[0, 0], sim.R[0, 0], sim.T[0], eta=eta, alpha_max=alpha_max, alpha_eval=sim.alpha,
                      batch_size=4 if batch == 1 else 1)
    assert np.max(np.abs((mean - wrong.risk[1:]) / standard_error)) > 10


def _mini_batch_increments(rng, W, W_star, eta, batch, steps):
    """``q = N (Q' - Q)``, ``r = N (R' - R)`` of exact mini-batch steps of the paper model from fixed weights."""
    p, N = W.shape
    k = W_star.shape[0]
    q_all, r_all = [], []
    for _ in range(steps // 1000):
        X = rng.standard_normal((1000, batch, N))
        lam, nu = X @ W.T / np.sqrt(N), X @ W_star.T / np.sqrt(N)
        E = (2 / p) * ((nu**2).sum(-1) / k - (lam**2).sum(-1) / p)[..., None] * lam  # (steps, batch, p)
        update = np.einsum("sbp,sbn->spn", E, X) * eta / (batch * np.sqrt(N))  # the change of W
        W_new = W + update
        q_all.append(np.einsum("spn,sqn->spq", W_new, W_new) - W @ W.T)
        r_all.append(update @ W_star.T)
    return np.concatenate(q_all), np.concatenate(r_all)


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_increment_covariance_matches_exact_mini_batch_steps():
    """Covariance of exact mini-batch steps (B = 4, N = 1000) within 5 standard errors of increment_covariance."""
    rng = np.random.default_rng(8)
    p, k, N, eta, batch = 2, 1, 1000, 0.8, 4
    W, W_star = 0.8 * rng.standard_normal((p, N)), rng.standard_normal((k, N))
    Q, R, T = W @ W.T / N, W @ W_star.T / N, W_star @ W_star.T / N
    q, r = _mini_batch_increments(rng, W, W_star, eta, batch, 40_000)
    q, r = q.reshape(len(q), -1), r.reshape(len(r), -1)  # already multiplied by N: W W^T, not / N

    def z_scores(predicted_qq, predicted_rr):
        out = []
        for samples, predicted in ((q, predicted_qq), (r, predicted_rr)):
            centred = samples - samples.mean(axis=0)
            products = centred[:, :, None] * centred[:, None, :]
            error = products.std(axis=0) / np.sqrt(len(samples))
            out.append((products.mean(axis=0) - predicted.reshape(products.shape[1:])) / error)
        return np.concatenate([z.ravel() for z in out])

    QQ, _, RR = increment_covariance(Q, R, T, eta, batch_size=batch)
    assert np.max(np.abs(z_scores(QQ, RR))) < 5
    # power: the single-sample covariance divided by B (ignoring that the eta**2 part shrinks too)
    QQ1, _, RR1 = increment_covariance(Q, R, T, eta)
    assert np.max(np.abs(z_scores(QQ1 / batch, RR1 / batch))) > 5


def test_sde_at_batch_b_is_the_single_sample_sde_at_eta_over_b_sped_up():
    Q0, R0, T = 0.7 * np.eye(2), np.array([[0.2], [0.1]]), np.eye(1)
    record = np.array([0.0, 0.5, 1.0, 2.0])
    kwargs = dict(N=2000, replicas=3, seed=9, progress=False, model=PAPER.with_noise(0.1))
    batched = simulate_sde(Q0, R0, T, eta=0.8, alpha_max=2.0, dalpha=0.01, record=record, batch_size=4, **kwargs)
    single = simulate_sde(Q0, R0, T, eta=0.2, alpha_max=8.0, dalpha=0.04, record=4 * record, **kwargs)
    np.testing.assert_allclose(batched.alpha, record, atol=1e-12)
    np.testing.assert_array_equal(batched.Q, single.Q)
    assert batched.eta == 0.8 and batched.batch_size == 4
    assert batched.extra["dalpha"] == pytest.approx(0.01)
    # and its mean follows the mini-batch ODE (not the single-sample one at the same eta)
    ode = integrate(Q0, R0, T, eta=0.8, alpha_max=2.0, alpha_eval=record[1:], batch_size=4,
                    model=PAPER.with_noise(0.1))
    assert np.max(np.abs(batched.risk[:, 1:].mean(axis=0) - ode.risk)) < 0.02


def test_escape_analysis_uses_the_runs_batch_size():
    # on the plateau the mini-batch ODE sits at the fixed point of eta / B, not of eta
    Q0, R0, T = np.eye(4), 1e-6 * np.ones((4, 2)), np.eye(2)
    run = integrate(Q0, R0, T, eta=1.6, alpha_max=20.0, batch_size=16, n_points=50)
    plateau = run_plateaus(run)[0]
    assert plateau.eta == pytest.approx(0.1)
    assert np.min(np.abs(run.risk / plateau.risk - 1)) < 1e-6
    # power: the plateau of eta = 1.6 / 4 lies 1 % away
    assert abs(plateau_fixed_point(4, 2, 0.4).risk / plateau.risk - 1) > 1e-3
    single = integrate(Q0, R0, T, eta=0.1, alpha_max=320.0, alpha_eval=16 * run.alpha[1:])
    np.testing.assert_allclose(run.risk[1:], single.risk, rtol=1e-6)


def test_batch_size_is_saved_and_loaded(tmp_path):
    run = integrate(np.eye(2), 0.1 * np.ones((2, 1)), np.eye(1), eta=0.3, alpha_max=1.0, batch_size=8, n_points=5)
    assert load(run.save(tmp_path / "run.nc")).batch_size == 8


BAD_BATCH = [0, -2, 1.5, True, "4", np.nan]


@pytest.mark.parametrize("value", BAD_BATCH)
def test_bad_batch_sizes_are_refused_by_name(value):
    Q, R, T = np.eye(2), 0.1 * np.ones((2, 1)), np.eye(1)
    calls = [
        lambda: rhs(Q, R, T, 0.3, batch_size=value),
        lambda: integrate(Q, R, T, eta=0.3, alpha_max=1.0, batch_size=value),
        lambda: simulate(N=20, p=2, k=1, eta=0.3, alpha_max=0.1, progress=False, batch_size=value),
        lambda: simulate_sde(Q, R, T, N=100, eta=0.3, alpha_max=0.1, progress=False, batch_size=value),
        lambda: increment_covariance(Q, R, T, 0.3, batch_size=value),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="batch_size"):
            call()


@pytest.mark.parametrize("value", BAD_BATCH)
def test_overlap_chain_refuses_bad_batch_sizes(value):
    with pytest.raises(ValueError, match="batch_size"):
        simulate(N=50, p=2, k=1, eta=0.3, alpha_max=0.1, method="overlaps", batch_size=value, progress=False)


@pytest.mark.parametrize("batch, steps", [(3, 2), (4, 4)])
def test_overlap_chain_block_equals_mini_batch_sgd(batch, steps):
    # one block of the exact overlap chain, from given inputs, against the plainly written mini-batch SGD
    N, p, k, eta, delta, kappa = 40, 2, 1, 0.6, 0.3, 0.2
    model = PAPER.with_noise(delta).with_weight_decay(kappa)
    rng = np.random.default_rng(12)
    W, W_star = rng.standard_normal((p, N)), rng.standard_normal((k, N))
    V = np.vstack([W, W_star])
    C = V @ V.T / N
    F = covariance_factor(C)
    frame = np.linalg.solve(F, V) / np.sqrt(N)  # orthonormal rows with V / sqrt(N) = F frame
    X = rng.standard_normal((steps * batch, N))
    xi = rng.standard_normal(steps * batch)
    G = X @ frame.T
    orthogonal = X - G @ frame
    inputs = np.hstack([G, np.linalg.cholesky(orthogonal @ orthogonal.T)])[None]
    state = C[None].copy()
    StepKernel(resolve(model), eta, N, p, k, batch).advance(state, inputs, xi[None])
    W1 = _steps_by_hand(W, W_star, X, xi, eta=eta, delta=delta, kappa=kappa, batch=batch)
    np.testing.assert_allclose(state[0, :p, :p], W1 @ W1.T / N, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(state[0, :p, p:], W1 @ W_star.T / N, rtol=1e-11, atol=1e-12)


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_overlap_chain_agrees_with_the_weight_simulator_for_mini_batches():
    """Means and variances of every overlap (400 replicas each, N = 200, B = 4) within 5 standard errors.

    Power: the chain with one sample per step has about B times the variance (same drift at this eta).
    """
    record = [0.0, 0.5, 1.0, 2.0]
    kwargs = dict(N=200, p=2, k=1, eta=0.3, alpha_max=record[-1], replicas=400, record=record, progress=False,
                  model=PAPER.with_noise(0.2))
    full = simulate(seed=1, batch_size=4, **kwargs)
    chain = simulate(seed=2, method="overlaps", batch_size=4, **kwargs)
    z_mean, z_var = largest_z(full, chain)
    assert z_mean < 5 and z_var < 5, (z_mean, z_var)
    single = simulate(seed=2, method="overlaps", **kwargs)
    assert largest_z(full, single)[1] > 5


def test_trained_readout_steps_with_mini_batches_equal_hand_computed_updates():
    # per-unit readouts, a trained student readout and B = 3: the readout step averages the step's samples
    N, p, k, eta, eta_a, batch, steps, seed = 40, 3, 2, 0.6, 0.4, 3, 3, 6
    rng = np.random.default_rng(4)
    W0, W_star = rng.standard_normal((p, N)), rng.standard_normal((k, N))
    a0, b = np.array([0.5, -0.2, 0.3]), np.array([0.7, 0.4])
    result = simulate(N=N, p=p, k=k, eta=eta, alpha_max=steps / N, seed=seed, record=[0, steps / N], W0=W0,
                      W_star=W_star, progress=False, batch_size=batch, a=a0, b=b, eta_a=eta_a)
    inputs = replica_streams(seed, 1)[0].inputs.standard_normal((steps * batch, N))
    W, a = W0.copy(), a0.copy()
    for step in range(steps):
        update, readout_update = np.zeros_like(W), np.zeros(p)
        for x in inputs[step * batch : (step + 1) * batch]:
            lam, nu = W @ x / np.sqrt(N), W_star @ x / np.sqrt(N)
            residual = b @ nu**2 - a @ lam**2
            update += np.outer(residual * a * 2 * lam, x)
            readout_update += residual * lam**2
        W = W + eta / (batch * np.sqrt(N)) * update
        a = a + eta_a / (batch * N) * readout_update
    np.testing.assert_allclose(result.extra["W"], W, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(result.a[-1], a, rtol=1e-12)
    # and the ODE of the run divides the eta**2 term by B with the readout trained
    ode = compare_ode_simulation(result).ode
    assert ode.batch_size == batch and ode.eta_a == eta_a
