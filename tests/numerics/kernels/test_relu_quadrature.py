"""The relu eta**2 kernel E[theta theta relu relu] against an independent adaptive quadrature, Monte Carlo, itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy.special import ndtr, owens_t

import numerics
from derive.model.model import Model
from numerics.kernels.relu_quadrature import theta_theta_relu_relu

RELU = Model(student_activation="relu(x)", teacher_activation="relu(x)", name="relu")


def entries(C: np.ndarray) -> list[float]:
    return [C[a, b] for a in range(4) for b in range(a, 4)]


def bivariate_upper(h: float, k: float, rho: float) -> float:
    """``P(X > -h, Y > -k)`` for standard normals with correlation ``rho`` (Owen's T; |rho| = 1 exactly)."""
    if rho >= 1 - 1e-14:
        return float(ndtr(min(h, k)))
    if rho <= -1 + 1e-14:
        return max(0.0, float(ndtr(h) - ndtr(-k)))
    # P(X > -h, Y > -k) = Phi2(h, k; rho) by symmetry
    root = math.sqrt(1 - rho * rho)
    if h == 0 and k == 0:
        return 0.25 + math.asin(rho) / (2 * math.pi)
    if h == 0:
        h = 1e-300
    if k == 0:
        k = 1e-300
    beta = 0.5 if h * k < 0 else 0.0
    value = (
        0.5 * ndtr(h) + 0.5 * ndtr(k)
        - owens_t(h, (k - rho * h) / (h * root))
        - owens_t(k, (h - rho * k) / (k * root))
        - beta
    )
    return float(value)


def reference(C: np.ndarray) -> float:
    """``E[z2 z3 1{z0, z1, z2, z3 > 0}]`` by adaptive quadrature over (z2, z3), exact inner probability.

    Conditional on ``w = (z2, z3)``, ``(z0, z1)`` is Gaussian with mean ``B w`` and covariance
    ``S``; its orthant probability is Owen's bivariate normal (or a univariate one when ``S`` is
    singular). When ``z2`` and ``z3`` are the same unit the outer integral is one-dimensional.
    """
    outer = C[2:, 2:]
    cross = C[:2, 2:]
    if abs(outer[0, 0] * outer[1, 1] - outer[0, 1] ** 2) < 1e-14 * outer[0, 0] * outer[1, 1]:
        # z3 = (c23 / c22) z2 with c23 > 0 in the cases used here
        ratio = outer[0, 1] / outer[0, 0]
        variance = outer[0, 0]
        B = cross[:, :1] / variance
        S = C[:2, :2] - B @ cross[:, :1].T

        def one(z):
            mean = B[:, 0] * z
            density = math.exp(-z * z / (2 * variance)) / math.sqrt(2 * math.pi * variance)
            return ratio * z * z * inner(mean, S) * density

        value, _ = integrate.quad(one, 0, math.inf, epsabs=1e-14, epsrel=1e-13, limit=200)
        return value
    inverse = np.linalg.inv(outer)
    B = cross @ inverse
    S = C[:2, :2] - B @ cross.T
    det = np.linalg.det(outer)

    def two(z3, z2):
        w = np.array([z2, z3])
        density = math.exp(-0.5 * w @ inverse @ w) / (2 * math.pi * math.sqrt(det))
        return z2 * z3 * density * inner(B @ w, S)

    value, _ = integrate.dblquad(two, 0, math.inf, 0, math.inf, epsabs=1e-14, epsrel=1e-12)
    return value


def inner(mean: np.ndarray, S: np.ndarray) -> float:
    s0, s1 = S[0, 0], S[1, 1]
    tiny = 1e-13 * max(1.0, abs(S).max())
    if s0 <= tiny and s1 <= tiny:
        return float(mean[0] > 0) * float(mean[1] > 0)
    if s0 <= tiny:
        return float(mean[0] > 0) * float(ndtr(mean[1] / math.sqrt(s1)))
    if s1 <= tiny:
        return float(mean[1] > 0) * float(ndtr(mean[0] / math.sqrt(s0)))
    rho = S[0, 1] / math.sqrt(s0 * s1)
    return bivariate_upper(mean[0] / math.sqrt(s0), mean[1] / math.sqrt(s1), rho)


def random_block(rng: np.random.Generator, rank: int = 4) -> np.ndarray:
    A = rng.standard_normal((4, rank))
    C = A @ A.T
    return C / np.max(np.diag(C))


#: Patterns of repeated units in the slots (j, l, u, v) of the eta**2 term.
PATTERNS = [[0, 0, 1, 2], [0, 1, 0, 2], [0, 1, 2, 0], [0, 1, 1, 2], [0, 0, 1, 1], [0, 1, 0, 1], [0, 0, 0, 1]]


def singular_blocks(seed: int):
    rng = np.random.default_rng(seed)
    for pattern in PATTERNS:
        B = rng.standard_normal((3, 3))
        base = B @ B.T / 3 + 0.2 * np.eye(3)
        yield str(pattern), base[np.ix_(pattern, pattern)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_blocks_against_adaptive_quadrature(seed):
    C = random_block(np.random.default_rng(seed))
    assert abs(theta_theta_relu_relu(*entries(C)) - reference(C)) < 1e-10


@pytest.mark.parametrize("eps", [1e-3, 1e-6, 1e-9])
def test_near_singular_blocks_against_adaptive_quadrature(eps):
    rng = np.random.default_rng(7)
    # a student within eps of a teacher direction; two students within eps of each other
    base = random_block(rng)
    for a, b in ((0, 2), (0, 1), (1, 3)):
        C = base.copy()
        C[b, :] = C[a, :]
        C[:, b] = C[:, a]
        C = C + eps * random_block(rng)
        assert abs(theta_theta_relu_relu(*entries(C)) - reference(C)) < 1e-10, (a, b)


@pytest.mark.slow  # about 10 s: one dblquad per pattern
def test_repeated_units_against_adaptive_quadrature():
    for label, C in singular_blocks(3):
        assert abs(theta_theta_relu_relu(*entries(C)) - reference(C)) < 1e-10, label


def test_node_count_error_is_below_the_stated_bound():
    rng = np.random.default_rng(11)
    blocks = [random_block(rng) for _ in range(20)] + [random_block(rng, rank=2) for _ in range(5)]
    blocks += [C for _, C in singular_blocks(5)]
    for eps in (1e-2, 1e-4, 1e-8, 1e-12):
        C = blocks[0].copy()
        C[1, :], C[:, 1] = C[0, :], C[:, 0]
        blocks.append(C + eps * random_block(rng))
    blocks += [5 * random_block(rng) + 0.05 * np.eye(4)]
    stacked = np.stack(blocks)
    args = [stacked[:, a, b] for a in range(4) for b in range(a, 4)]
    default = theta_theta_relu_relu(*args)
    fine = theta_theta_relu_relu(*args, nodes=40)  # per panel
    assert np.max(np.abs(default - fine)) < 1e-10


def test_against_monte_carlo():
    rng = np.random.default_rng(5)
    for label, C in [("random", random_block(rng))] + list(singular_blocks(9))[:3]:
        z = rng.multivariate_normal(np.zeros(4), C, size=1_000_000, method="eigh")
        values = (z[:, 0] > 0) * (z[:, 1] > 0) * np.maximum(z[:, 2], 0) * np.maximum(z[:, 3], 0)
        se = values.std() / math.sqrt(values.size)
        assert abs(theta_theta_relu_relu(*entries(C)) - values.mean()) < 5 * se, label


def test_relu_diffusion_term_against_monte_carlo():
    from numerics.analyses.montecarlo import generated_terms, monte_carlo_terms

    rng = np.random.default_rng(13)
    A = rng.standard_normal((4, 6))
    C = A @ A.T / 6
    Q, R, T = C[:2, :2], C[:2, 2:], C[2:, 2:]
    estimates = monte_carlo_terms(Q, R, T, model=RELU, n_samples=400_000, seed=3)
    exact = generated_terms(Q, R, T, model=RELU)
    for name in ("diffusion_Q", "noise_Q", "drift_Q", "drift_R", "residual_risk"):
        mean, se = estimates[name]
        assert np.all(np.abs(np.asarray(mean) - exact[name]) <= 5 * np.asarray(se) + 1e-12), name


def test_relu_ode_runs_with_the_eta_squared_term():
    Q, R, T = 0.6 * np.eye(2), 0.05 * np.eye(2), np.eye(2)
    full = numerics.integrate(Q, R, T, eta=0.5, alpha_max=20.0, model=RELU, n_points=6)
    flow = numerics.integrate(Q, R, T, eta=0.5, alpha_max=20.0, model=RELU, n_points=6, second_order=False)
    assert np.all(np.isfinite(full.risk)) and full.risk[-1] < full.risk[0]
    # the eta**2 term adds a positive semi-definite part to dQ: the norms grow faster with it
    assert np.trace(full.Q[1]) > np.trace(flow.Q[1])


@pytest.mark.slow  # about 12 s
def test_relu_ode_against_simulation_needs_the_eta_squared_term():
    from numerics.simulators.weights import compare_ode_simulation, simulate

    model = Model(student_activation="relu(x)", teacher_activation="relu(x)", student_readout=1, teacher_readout=1)
    distances = {}
    for N in (250, 4000):
        sim = simulate(N=N, p=2, k=2, eta=0.5, alpha_max=3.0, model=model, q0=0.5, seed=7, replicas=8, record=12,
                       progress=False)
        full = compare_ode_simulation(sim).Q_distance
        flow = compare_ode_simulation(sim, second_order=False).Q_distance
        distances[N] = (full.mean(), full.std(ddof=1) / np.sqrt(full.size), flow.mean())
    # measured: 0.054 at N = 250, 0.018 at N = 4000; the gradient-flow ODE stays about 0.15 away
    (small, small_se, _), (large, large_se, flow_large) = distances[250], distances[4000]
    assert large + 3 * large_se < small - 3 * small_se, distances
    assert large < flow_large / 4, distances
