"""Exact reduced simulator on the overlaps (``simulate(..., method="overlaps")``).

Exactness is checked pathwise against weight-space SGD built from the same random draws
(one step with given z, rho, xi; one block with given input coordinates; the draws
``simulate`` takes from its streams), and in law against the weight simulator at N = 200
(means and variances of every overlap over 400 replicas), with negative controls showing
that the comparison has the power to see a wrong chain.

Measured (largest |difference| / standard error over entries and alphas, means / variances):
paper model 3.2 / 2.1, He3 with Delta and kappa 1.3 / 1.0, N = 8 3.0 / 2.1. Wrong chains:
the chi-square forgotten (rho = z^T C^+ z / N ~ P/N, so the eta**2 term is nearly lost)
22.7 on the means; the SGD noise amplitude halved (the chain run at 4N, same drift) 1.1 on
the means but 9.0 on the variances. Replacing the chi-square by its mean (rho = 1 exactly)
is *not* detectable here (2.4 / 2.2): it changes only the fluctuations of the eta**2 term,
a relative O(sqrt(2/N)) part of an O(eta**2) term, far below what 400 replicas resolve.
"""

import numpy as np
import pytest
from sample_points import largest_z
from scipy import stats

from derive.model.model import HE3, PAPER
from numerics import SimulationError, overlap_step, simulate
from numerics.core.validation import covariance
from numerics.runtime.registry import resolve
from numerics.simulators.chain_draws import BlockDraws
from numerics.simulators.chain_start import covariance_factor, haar_overlaps
from numerics.simulators.common import child_seed, record_steps, replica_seeds
from numerics.simulators.overlap_chain import STEP_BLOCK, StepKernel, block_sizes
from numerics.simulators.weights import orthonormal_rows, weights_from_overlaps

# a student equal to the teacher: C = [[Q, R], [R^T, T]] is singular (rank 2 of 3)
Q_SINGULAR = np.array([[1.0, 0.0], [0.0, 0.8]])
R_SINGULAR = np.array([[1.0], [0.0]])
T_ONE = np.eye(1)


def _paper_amplitude(lam, nu, xi, *, delta, p, k):
    # E_j = (y - f) a sigma'(lambda_j) for the paper model, written out
    y = (nu**2).sum() / k + np.sqrt(delta) * xi
    f = (lam**2).sum() / p
    return (2 / p) * (y - f) * lam


def _weight_sgd(W, W_star, X, xi, *, eta, delta, kappa):
    """Weight-space SGD (docs/model.md) through the rows of X; returns the final student."""
    p, N = W.shape
    k = W_star.shape[0]
    for x, noise in zip(X, xi):
        lam, nu = W @ x / np.sqrt(N), W_star @ x / np.sqrt(N)
        E = _paper_amplitude(lam, nu, noise, delta=delta, p=p, k=k)
        W = W + (eta / np.sqrt(N)) * np.outer(E, x) - (eta * kappa / N) * W
    return W


def _frame(F, V, rng):
    """Orthonormal rows E (P x N) with V / sqrt(N) = F E, completed where F is singular."""
    P, N = V.shape
    E = np.linalg.pinv(F, rcond=1e-12) @ V / np.sqrt(N)
    null = np.linalg.norm(E, axis=1) < 0.5
    if null.any():
        # orthonormal directions orthogonal to the weights for the zero columns of F
        basis, _ = np.linalg.qr(np.hstack([E[~null].T, rng.standard_normal((N, int(null.sum())))]))
        E[null] = basis[:, (~null).sum():].T
    np.testing.assert_allclose(E @ E.T, np.eye(P), atol=1e-12)
    np.testing.assert_allclose(F @ E, V / np.sqrt(N), atol=1e-12)
    return E


@pytest.mark.parametrize("delta, kappa", [(0.0, 0.0), (0.3, 0.2)])
def test_one_step_equals_the_weight_space_update_at_a_singular_covariance(delta, kappa):
    N, eta = 40, 0.7
    model = PAPER.with_noise(delta).with_weight_decay(kappa)
    W, W_star = weights_from_overlaps(Q_SINGULAR, R_SINGULAR, N=N, seed=3)
    np.testing.assert_allclose(W[0], W_star[0], atol=1e-12)
    V = np.vstack([W, W_star])
    C = V @ V.T / N
    # given draws: z in the range of C (lambda_1 = nu), a chi-square and the label noise
    z = np.array([0.8, -1.3, 0.8])
    chi2, xi = 35.5, -0.6
    # an input with exactly these pre-activations and |x|^2 = z^T C^+ z + chi2
    x_span = V.T @ np.linalg.pinv(C) @ z / np.sqrt(N)
    rng = np.random.default_rng(0)
    other = rng.standard_normal(N)
    other -= V.T @ np.linalg.lstsq(V.T, other, rcond=None)[0]
    x = x_span + np.sqrt(chi2) * other / np.linalg.norm(other)
    np.testing.assert_allclose(V @ x / np.sqrt(N), z, atol=1e-12)
    rho = x @ x / N
    np.testing.assert_allclose(rho, (z @ np.linalg.pinv(C) @ z + chi2) / N, rtol=1e-12)

    W1 = _weight_sgd(W, W_star, [x], [xi], eta=eta, delta=delta, kappa=kappa)
    Q1, R1 = overlap_step(Q_SINGULAR, R_SINGULAR, T_ONE, z, rho, xi, eta=eta, N=N, model=model)
    np.testing.assert_allclose(Q1, W1 @ W1.T / N, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(R1, W1 @ W_star.T / N, rtol=1e-12, atol=1e-13)
    # the formula of the docstring, with every factor of N written out
    d = 1 - eta * kappa / N
    E = _paper_amplitude(z[:2], z[2:], xi, delta=delta, p=2, k=1)
    Q_hand = d**2 * Q_SINGULAR + (eta * d / N) * (np.outer(E, z[:2]) + np.outer(z[:2], E))
    Q_hand += (eta**2 / N) * rho * np.outer(E, E)
    np.testing.assert_allclose(Q1, Q_hand, rtol=1e-13)
    np.testing.assert_allclose(R1, d * R_SINGULAR + (eta / N) * np.outer(E, z[2:]), rtol=1e-13)


def test_overlap_step_is_batched():
    rng = np.random.default_rng(1)
    z, rho, xi = rng.standard_normal((4, 3)), 1 + 0.1 * rng.standard_normal(4), rng.standard_normal(4)
    Q = np.broadcast_to(Q_SINGULAR, (4, 2, 2))
    R = np.broadcast_to(R_SINGULAR, (4, 2, 1))
    model = PAPER.with_noise(0.2)
    Qb, Rb = overlap_step(Q, R, T_ONE, z, rho, xi, eta=0.4, N=30, model=model)
    for i in range(4):
        Qi, Ri = overlap_step(Q_SINGULAR, R_SINGULAR, T_ONE, z[i], rho[i], xi[i], eta=0.4, N=30, model=model)
        np.testing.assert_allclose(Qb[i], Qi, rtol=1e-14)
        np.testing.assert_allclose(Rb[i], Ri, rtol=1e-14)


@pytest.mark.parametrize("singular", [False, True], ids=["generic", "student=teacher"])
@pytest.mark.parametrize("delta, kappa", [(0.0, 0.0), (0.3, 0.2)])
def test_block_equals_weight_space_sgd(singular, delta, kappa):
    # one block of steps from given input coordinates: the block recursion against s weight-space steps
    N, p, k, eta, size = 30, 2, 1, 0.6, 7
    model = PAPER.with_noise(delta).with_weight_decay(kappa)
    rng = np.random.default_rng(2)
    if singular:
        W, W_star = weights_from_overlaps(Q_SINGULAR, R_SINGULAR, N=N, seed=4)
        C = covariance(Q_SINGULAR, R_SINGULAR, T_ONE)
    else:
        W, W_star = rng.standard_normal((p, N)), rng.standard_normal((k, N))
        C = covariance(W @ W.T / N, W @ W_star.T / N, W_star @ W_star.T / N)
    V = np.vstack([W, W_star])
    F = covariance_factor(C)
    E = _frame(F, V, rng)
    X = rng.standard_normal((size, N))
    xi = rng.standard_normal(size)
    G = X @ E.T
    orthogonal = X - G @ E
    inputs = np.hstack([G, np.linalg.cholesky(orthogonal @ orthogonal.T)])[None]
    state = C[None].copy()
    StepKernel(resolve(model), eta, N, p, k).advance(state, inputs, xi[None])
    W1 = _weight_sgd(W, W_star, X, xi, eta=eta, delta=delta, kappa=kappa)
    np.testing.assert_allclose(state[0, :p, :p], W1 @ W1.T / N, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(state[0, :p, p:], W1 @ W_star.T / N, rtol=1e-11, atol=1e-12)
    np.testing.assert_array_equal(state[0, p:, p:], C[p:, p:])
    np.testing.assert_array_equal(state[0], state[0].T)


def _first_block_draws(seed, size, P, dof, noise):
    # the layout documented in numerics.simulators.chain_draws.BlockDraws, for one replica and one block
    sequence = replica_seeds(seed, 1)[0]
    normals, noise_rng, chi2 = (np.random.default_rng(child_seed(sequence, j)) for j in (1, 2, 3))
    G = normals.standard_normal(size * P).reshape(size, P)
    factor = np.zeros((size, size))
    factor[np.tril_indices(size, -1)] = normals.standard_normal(size * (size - 1) // 2)
    factor[np.diag_indices(size)] = np.sqrt(chi2.chisquare(dof - np.arange(size)))
    xi = noise_rng.standard_normal(size) if noise else np.zeros(size)
    return G, factor, xi


@pytest.mark.parametrize("singular", [False, True], ids=["generic", "student=teacher"])
def test_simulate_draws_are_the_documented_ones(singular):
    # simulate's first block, rebuilt from the replica's streams as weight-space SGD
    N, p, k, eta, size, delta, kappa = 40, 2, 1, 0.5, 9, 0.3, 0.2
    model = PAPER.with_noise(delta).with_weight_decay(kappa)
    Q0 = Q_SINGULAR if singular else np.array([[1.0, 0.2], [0.2, 0.7]])
    R0 = R_SINGULAR if singular else np.array([[0.3], [-0.4]])
    result = simulate(N=N, p=p, k=k, eta=eta, alpha_max=size / N, model=model, seed=5, record=[0, size / N],
                      Q0=Q0, R0=R0, T=T_ONE, method="overlaps", progress=False)
    G, factor, xi = _first_block_draws(5, size, p + k, N - p - k, noise=True)
    rng = np.random.default_rng(6)
    W, W_star = weights_from_overlaps(Q0, R0, N=N, seed=7)
    V = np.vstack([W, W_star])
    E = _frame(covariance_factor(covariance(Q0, R0, T_ONE)), V, rng)
    # inputs with coordinates G on the frame and orthogonal parts of Gram factor @ factor^T
    complement, _ = np.linalg.qr(np.hstack([E.T, rng.standard_normal((N, size))]))
    X = G @ E + factor @ complement[:, p + k :].T
    W1 = _weight_sgd(W, W_star, X, xi, eta=eta, delta=delta, kappa=kappa)
    np.testing.assert_allclose(result.Q[1], W1 @ W1.T / N, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.R[1], W1 @ W_star.T / N, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.Q[0], Q0, rtol=1e-15)


def test_covariance_factor_of_psd_matrices_singular_included():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((5, 4, 2))
    C = A @ np.swapaxes(A, 1, 2)  # rank 2 of 4: Cholesky fails
    C[0] += np.eye(4)  # one regular matrix in the batch
    F = covariance_factor(C)
    np.testing.assert_allclose(F @ np.swapaxes(F, 1, 2), C, atol=1e-13)
    np.testing.assert_allclose(np.tril(F[0]), F[0])  # Cholesky where it exists
    for i in range(5):
        np.testing.assert_array_equal(covariance_factor(C[i]), F[i])  # independent of the batch
    # exactly singular: samples lie exactly in the range (a student equal to the teacher)
    F = covariance_factor(covariance(Q_SINGULAR, R_SINGULAR, T_ONE))
    z = F @ rng.standard_normal((3, 1000))
    assert np.max(np.abs(z[0] - z[2])) < 1e-14


def test_haar_overlaps_have_the_law_of_random_orthonormal_frames():
    # N = 6 (far from Gaussian): U^T V of QR frames against the N-free construction
    N, p, k, n = 6, 2, 2, 4000
    rng = np.random.default_rng(4)
    direct = np.stack([orthonormal_rows(rng, p, N) @ orthonormal_rows(rng, k, N).T for _ in range(n)])
    reduced_draws = np.stack([haar_overlaps(rng, p, k, N) for _ in range(n)])
    for statistic in (lambda H: np.linalg.svd(H, compute_uv=False)[:, 0],
                      lambda H: np.linalg.svd(H, compute_uv=False)[:, 1],
                      lambda H: H[:, 0, 1]):
        assert stats.ks_2samp(statistic(direct), statistic(reduced_draws)).pvalue > 1e-3
    # E[H^2] = 1/N, E[H^4] = 3/(N (N+2)) exactly for Haar frames
    assert abs((reduced_draws**2).mean() * N - 1) < 5 * np.sqrt(2 / reduced_draws.size)
    # a Gaussian R0 (Eq. 8) would fail: its fourth moment is 3/N^2, 33 % above
    fourth = (reduced_draws**4).mean() * N * (N + 2) / 3
    assert abs(fourth - 1) < 0.1 < abs((N + 2) / N - 1)


def test_default_start_and_explicit_starts():
    N, p, k = 400, 4, 2
    result = simulate(N=N, p=p, k=k, eta=0.5, alpha_max=1 / N, seed=3, replicas=60, method="overlaps",
                      progress=False)
    np.testing.assert_allclose(result.Q[:, 0], np.broadcast_to(np.eye(p), (60, p, p)), atol=1e-14)
    np.testing.assert_allclose(result.T, np.broadcast_to(np.eye(k), (60, k, k)), atol=1e-14)
    assert abs(result.R[:, 0].var() * N - 1.0) < 5 * np.sqrt(2 / result.R[:, 0].size)
    assert result.extra["method"] == "overlaps" and result.extra["N"] == N and "W" not in result.extra
    # explicit overlaps, batched ones, and the overlaps of given weights
    Q0, R0 = 0.5 * np.eye(2), np.array([[0.1], [0.2]])
    T = np.array([[2.0]])
    start = simulate(N=50, p=2, k=1, eta=0.1, alpha_max=0.1, Q0=Q0, R0=R0, T=T, method="overlaps",
                     record=[0, 0.1], progress=False)
    np.testing.assert_array_equal(start.Q[0], Q0)
    np.testing.assert_array_equal(start.R[0], R0)
    np.testing.assert_array_equal(start.T, T)
    W0, W_star = np.random.default_rng(0).standard_normal((2, 50)), np.random.default_rng(1).standard_normal((1, 50))
    start = simulate(N=50, p=2, k=1, eta=0.1, alpha_max=0.1, W0=W0, W_star=W_star, method="overlaps", replicas=2,
                     record=[0, 0.1], progress=False)
    np.testing.assert_allclose(start.Q[:, 0], np.broadcast_to(W0 @ W0.T / 50, (2, 2, 2)), rtol=1e-14)
    np.testing.assert_allclose(start.R[:, 0], np.broadcast_to(W0 @ W_star.T / 50, (2, 2, 1)), rtol=1e-14)
    # Q0 alone: random R(0) = F_Q H F_T^T, still a valid covariance with the given Q and T
    start = simulate(N=50, p=2, k=1, eta=0.1, alpha_max=0.1, Q0=np.stack([Q0, 2 * Q0]), T=T, replicas=2,
                     method="overlaps", record=[0, 0.1], progress=False)
    np.testing.assert_array_equal(start.Q[1, 0], 2 * Q0)
    assert np.all(np.abs(start.R[:, 0]) > 0)


def test_batched_replicas_equal_single_runs():
    # N = 20 (N - P = 15 < STEP_BLOCK) with 25 records: blocks of several sizes, Bartlett and direct draws
    kwargs = dict(N=20, p=3, k=2, eta=0.3, alpha_max=3.0, record=25, progress=False, method="overlaps",
                  model=PAPER.with_noise(0.1).with_weight_decay(0.1))
    sizes = block_sizes(record_steps(20, 3.0, 25), 60)
    assert min(sizes) <= 15 < max(sizes)
    batched = simulate(seed=7, replicas=3, **kwargs)
    seeds = replica_seeds(7, 3)
    for i in range(3):
        alone = simulate(seed=[seeds[i]], replicas=1, **kwargs)
        np.testing.assert_array_equal(batched.Q[i], alone.Q)
        np.testing.assert_array_equal(batched.R[i], alone.R)
        np.testing.assert_array_equal(batched.risk[i], alone.risk)
    assert not np.allclose(batched.risk[0], batched.risk[1])


def test_step_cost_does_not_involve_N():
    # N = 1e12: nothing of size N is ever allocated (the weight method could not run this)
    result = simulate(N=10**12, p=4, k=2, eta=0.5, alpha_max=200 / 10**12, seed=0, replicas=2, record=[0, 2e-10],
                      method="overlaps", progress=False)
    assert result.nfev == 200 and np.all(np.isfinite(result.Q))
    assert np.max(np.abs(result.R)) < 1e-4  # R(0) ~ N^-1/2 and 200 steps move it by O(1/N)


def test_divergence_raises_with_alpha():
    with pytest.raises(SimulationError, match="alpha = "):
        simulate(N=100, p=2, k=1, eta=5.0, alpha_max=20.0, seed=0, method="overlaps", progress=False)


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(method="exact"), "method must be"),
        (dict(Q0=np.eye(2)), "Q0, R0 and T are starts of method='overlaps'"),
        (dict(method="overlaps", N=2), "N must be >= p \\+ k"),
        (dict(method="overlaps", eta=0.0), "eta must be positive"),
        (dict(method="overlaps", R0=np.zeros((2, 1))), "R0 needs Q0"),
        (dict(method="overlaps", Q0=np.eye(2), W0=np.ones((2, 20))), "either W0 or Q0"),
        (dict(method="overlaps", T=np.eye(1), W_star=np.ones((1, 20))), "either W_star or T"),
        (dict(method="overlaps", Q0=np.eye(3)), "Q0 must have shape"),
        (dict(method="overlaps", W0=np.ones((2, 21))), "W0 must have shape"),
        (dict(method="overlaps", Q0=np.eye(2), R0=np.full((2, 1), 2.0)), "not positive semi-definite"),
        (dict(method="overlaps", T=np.full((1, 1), np.nan)), "T contains NaN"),
        (dict(method="overlaps", record=[0.0, 5.0]), "record goes beyond"),
        (dict(method="overlaps", seed=[1, 2]), "seed is a sequence"),
    ],
)
def test_bad_input(changes, match):
    kwargs = dict(N=20, p=2, k=1, eta=0.5, alpha_max=1.0, seed=0, progress=False)
    kwargs.update(changes)
    with pytest.raises(ValueError, match=match):
        simulate(**kwargs)


# ---------------------------------------------------------------- agreement in law with the weight simulator






REPLICAS = 400
N_COMPARE = 200


def _pair(model, eta, record, *, fixed_start=None, N=N_COMPARE, q0=1.0, reduced_N=None):
    """(weight simulator, overlap simulator), 400 replicas each, independent seeds."""
    kwargs = dict(p=2, k=1, eta=eta, alpha_max=record[-1], model=model, replicas=REPLICAS, record=record,
                  progress=False)
    weights_kwargs, overlaps_kwargs = dict(q0=q0), dict(q0=q0)
    if fixed_start is not None:
        # the same start for every replica, so the spread at alpha > 0 is the SGD noise alone
        W0, W_star = weights_from_overlaps(q0 * np.eye(2), fixed_start, N=N, seed=5)
        weights_kwargs = dict(W0=W0, W_star=W_star)
        overlaps_kwargs = dict(Q0=W0 @ W0.T / N, R0=W0 @ W_star.T / N, T=W_star @ W_star.T / N)
    full = simulate(N=N, seed=1, method="weights", **weights_kwargs, **kwargs)
    chain = simulate(N=reduced_N or N, seed=2, method="overlaps", **overlaps_kwargs, **kwargs)
    return full, chain


@pytest.fixture
def without_the_chi_square(monkeypatch):
    """A wrong chain: rho = z^T C^+ z / N (the chi-square of the orthogonal part forgotten)."""
    original = BlockDraws.__iter__

    def draws(self):
        for inputs, xi in original(self):
            inputs[:, :, self.P :] = 0.0
            yield inputs, xi

    monkeypatch.setattr(BlockDraws, "__iter__", draws)


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_paper_model_agrees_with_the_weight_simulator(request):
    # default (random, Haar) start: the law of R(0) is compared too; Q(0) = I in both exactly
    record = [0.5, 1.0, 2.0, 3.0]
    full, chain = _pair(None, 0.2, [0.0] + record)
    z_mean, z_var = largest_z(full, chain)
    assert z_mean < 5 and z_var < 5, (z_mean, z_var)
    # negative control: the chain without the chi-square (rho ~ P/N instead of ~1) loses the eta**2 term
    request.getfixturevalue("without_the_chi_square")
    _, wrong = _pair(None, 0.2, [0.0] + record)
    z_mean_wrong, _ = largest_z(full, wrong)
    assert z_mean_wrong > 10, z_mean_wrong


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_he3_with_noise_and_decay_agrees_with_the_weight_simulator():
    # cubic activations, label noise and weight decay, from one fixed start
    model = HE3.with_noise(0.5).with_weight_decay(0.5)
    record = [0.5, 1.0, 2.0, 3.0]
    start = np.array([[0.3], [-0.2]])
    full, chain = _pair(model, 0.02, record, fixed_start=start, q0=0.5)
    z_mean, z_var = largest_z(full, chain)
    assert z_mean < 5 and z_var < 5, (z_mean, z_var)
    # negative control: SGD noise amplitude off by a factor 2 (the chain run at 4N, same drift):
    # the means still agree, the variances do not
    _, wrong = _pair(model, 0.02, record, fixed_start=start, q0=0.5, reduced_N=4 * N_COMPARE)
    z_mean_wrong, z_var_wrong = largest_z(full, wrong)
    assert z_mean_wrong < 5 and z_var_wrong > 5, (z_mean_wrong, z_var_wrong)


def test_small_N_agrees_with_the_weight_simulator():
    # N = 8: rho is far from 1, R(0) far from Gaussian, and N - P < STEP_BLOCK (orthogonal
    # coordinates drawn directly) while the record cuts short blocks (Bartlett draws)
    assert 8 - 3 < STEP_BLOCK
    N, record = 8, [0.0, 0.5, 1.0, 2.0, 4.0]
    kwargs = dict(N=N, p=2, k=1, eta=0.05, alpha_max=record[-1], replicas=4000, record=record, progress=False)
    full = simulate(seed=1, **kwargs)
    chain = simulate(seed=2, method="overlaps", **kwargs)
    z_mean, z_var = largest_z(full, chain)
    assert z_mean < 5 and z_var < 5, (z_mean, z_var)
    for alpha in range(len(record)):  # the whole law of R at every alpha
        assert stats.ks_2samp(full.R[:, alpha, 0, 0], chain.R[:, alpha, 0, 0]).pvalue > 1e-4


@pytest.mark.parametrize("N, alpha_max", [(200, 2.0), (37, 3.0), (20, 5.0), (1000, 1.3)])
def test_blocks_of_every_length_mix_in_one_run(N, alpha_max):
    """Record grids whose chunks mix Bartlett blocks and short blocks (the buffers fit each chunk)."""
    sim = simulate(N=N, p=2, k=1, eta=0.02, alpha_max=alpha_max, replicas=3, seed=0, method="overlaps",
                            progress=False)
    assert np.all(np.isfinite(sim.Q)) and np.all(np.isfinite(sim.R))
    assert int(np.max(sim.extra["steps"])) == int(round(alpha_max * N))


def test_results_carry_their_model():
    """escape_time and compare_ode_simulation read the model from the result."""
    from numerics import simulate_sde

    sim = simulate(N=50, p=2, k=1, eta=0.02, alpha_max=0.5, model=HE3, seed=0, method="overlaps", progress=False)
    assert sim.model is HE3
    sde = simulate_sde(np.eye(2), np.zeros((2, 1)), np.eye(1), N=1000, eta=0.05, alpha_max=0.5, model=PAPER, seed=0,
                       progress=False)
    assert sde.model is PAPER
