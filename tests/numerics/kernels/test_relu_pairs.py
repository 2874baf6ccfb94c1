"""The relu eta**2 term by one path integral per student pair (numerics/kernels/relu_pairs.py), against the
per-block quadrature it replaces, an independent adaptive quadrature, itself with more nodes, and batching."""

from __future__ import annotations

import numpy as np
import pytest

from derive.model.model import Model
from numerics.kernels import relu_pairs, unit_tuples
from numerics.kernels.relu_pairs import diffusion_term, is_quadrature_kernel, is_relu_diffusion, theta_pairs_relu_square
from numerics.kernels.relu_quadrature import theta_theta_relu_relu
from numerics.runtime.registry import artefact

RELU = Model(student_activation="relu(x)", teacher_activation="relu(x)", name="relu")
#: The per-block quadrature's stated error per block (numerics/kernels/relu_quadrature.py).
BLOCK_ERROR = 1e-10


def per_block(C: np.ndarray, weights: np.ndarray, count: int) -> np.ndarray:
    """The route before: the 4-slot average at every block (j, l, u, v), contracted with the weights."""
    units = np.arange(C.shape[-1])
    blocks = unit_tuples.gather(C, theta_theta_relu_relu, [units[:count], units[:count], units, units])
    return np.einsum("...jluv,...u,...v->...jl", blocks, weights, weights)


def random_covariance(rng: np.random.Generator, n: int, rank: int | None = None) -> np.ndarray:
    A = rng.standard_normal((n, rank or n + 1))
    return A @ A.T / A.shape[1]


def cases():
    """(label, C, weights, count): random, rank-deficient, repeated units, nearly collinear units, p = 1, k > p."""
    rng = np.random.default_rng(3)
    for p, k in ((1, 1), (1, 3), (2, 3), (3, 2)):
        yield f"random p={p} k={k}", random_covariance(rng, p + k), rng.standard_normal(p + k), p
        yield f"rank 2 p={p} k={k}", random_covariance(rng, p + k, rank=2), rng.standard_normal(p + k), p
    base = random_covariance(rng, 3)
    # student 2 is student 0, teacher 4 is student 0 and teacher 3 is student 1
    repeated = base[np.ix_([0, 1, 0, 1, 0], [0, 1, 0, 1, 0])]
    yield "repeated units", repeated, rng.standard_normal(5), 3
    for eps in (1e-3, 1e-6):
        A = rng.standard_normal((5, 6))
        A[2] = A[0] + eps * rng.standard_normal(6)  # a student near another
        A[4] = A[1] * (1 + eps) + eps * rng.standard_normal(6)  # a teacher nearly parallel to a student
        yield f"near eps={eps}", A @ A.T / 6, rng.standard_normal(5), 3
    # the node rules (relu_pairs.ONE_PANEL, ...): the cases above take two panels in theta (random), three in s
    # (rank 2) and graded panels (near); weakly correlated units take one panel in theta, and a student nearly
    # in the span of two other units, with no nearly parallel pair, graded panels (one panel errs by 1e-9 there)
    for p, k, dimension in ((4, 4, 24), (4, 3, 8)):
        A = rng.standard_normal((p + k, dimension))
        yield f"wishart p={p} k={k} d={dimension}", A @ A.T / dimension, rng.standard_normal(p + k), p
    for eps in (1e-2, 1e-4):
        A = rng.standard_normal((6, 7))
        A[1] = (A[0] + A[4]) / np.sqrt(2) + eps * rng.standard_normal(7)
        yield f"nearly dependent eps={eps}", A @ A.T / 7, rng.standard_normal(6), 3
    # student 1 mostly two teachers, student 0 not: the pair (0, 1) is integrated with a copy of student 0
    A = np.random.default_rng(9).standard_normal((5, 8))
    A[1] = 0.7 * A[3] + 0.7 * A[4] + 0.25 * rng.standard_normal(8)
    yield "copy of the other student", A @ A.T / 8, rng.standard_normal(5), 2


CASES = list(cases())


@pytest.mark.parametrize("label, C, weights, count", CASES, ids=[case[0] for case in CASES])
def test_equals_the_per_block_route(label, C, weights, count):
    shared = theta_pairs_relu_square(C, weights, count)
    old = per_block(C, weights, count)
    # within the per-block route's own error, summed over the (u, v) blocks with their weights
    assert np.max(np.abs(shared - old)) <= BLOCK_ERROR * np.sum(np.abs(weights)) ** 2, label
    np.testing.assert_array_equal(shared, np.swapaxes(shared, -1, -2))


@pytest.mark.parametrize("label, C, weights, count", CASES, ids=[case[0] for case in CASES])
def test_more_nodes_change_nothing(label, C, weights, count):
    shared = theta_pairs_relu_square(C, weights, count)
    fine = theta_pairs_relu_square(C, weights, count, nodes=30)
    # measured: 1e-15 relative without nearly collinear units, 5e-12 absolute with 1 - rho = 1e-6
    assert np.max(np.abs(shared - fine)) <= 1e-12 * np.sum(np.abs(weights)) ** 2, label


def test_against_adaptive_quadrature():
    # p = k = 1: blocks (0, 0, u, v); the reference integrates each (two outer variables, exact inner probability)
    from test_relu_quadrature import reference

    C = np.array([[1.3, 0.55], [0.55, 0.8]])
    weights = np.array([-0.7, 1.1])
    blocks = {(u, v): C[np.ix_([0, 0, u, v], [0, 0, u, v])] for u in (0, 1) for v in (0, 1)}
    exact = sum(weights[u] * weights[v] * reference(block) for (u, v), block in blocks.items())
    assert abs(theta_pairs_relu_square(C, weights, 1)[0, 0] - exact) < 1e-12 * abs(exact)


def test_batched_equals_unbatched():
    rng = np.random.default_rng(8)
    near = next(C for label, C, _, _ in CASES if label == "near eps=1e-06")
    weak = rng.standard_normal((5, 15))  # pairs on one panel in theta, next to pairs on other rules
    C = np.stack([random_covariance(rng, 5), random_covariance(rng, 5, rank=3), near, weak @ weak.T / 15])
    weights = rng.standard_normal((2, 1, 5))  # broadcast against C's batch of 3
    batched = theta_pairs_relu_square(C, weights, 2)
    assert batched.shape == (2, 4, 2, 2)
    for i in range(2):
        for m in range(4):
            single = theta_pairs_relu_square(C[m], weights[i, 0], 2)
            np.testing.assert_allclose(batched[i, m], single, rtol=1e-12, atol=0)


def test_relu_model_takes_the_shared_route_with_the_same_numbers():
    module = artefact("model", RELU)
    assert is_relu_diffusion(module.KERNELS)
    assert [is_quadrature_kernel(module.KERNELS[name]) for name in relu_pairs.DIFFUSION_KERNELS] == [True] * 3
    rng = np.random.default_rng(4)
    p, k = 2, 3
    C = random_covariance(rng, p + k)
    Q, R, T = C[:p, :p], C[:p, p:], C[p:, p:]
    a, b = rng.standard_normal(p), rng.standard_normal(k)
    # wrapped kernels are not recognised: the per-tuple route
    wrapped = {name: (lambda *c, f=f: f(*c)) for name, f in module.KERNELS.items()}
    assert not is_relu_diffusion(wrapped)
    shared = module.all_terms(Q, R, T, a, b)
    old = unit_tuples.all_terms(wrapped, module.readouts, Q, R, T, a, b)
    for new_term, old_term in zip(shared, old):
        assert np.max(np.abs(new_term - old_term)) <= BLOCK_ERROR * np.sum(np.abs(np.r_[a, b])) ** 2 * np.max(a * a)
    np.testing.assert_allclose(shared[2], diffusion_term(C, a, b), rtol=0, atol=0)


def test_other_kernels_are_not_recognised():
    erf = artefact("model", Model(student_activation="erf(x)", teacher_activation="erf(x)", name="erf"))
    assert not is_relu_diffusion(erf.KERNELS)
    assert not is_relu_diffusion({})

    def scaled(c00, c01, c02, c03, c11, c12, c13, c22, c23, c33):
        return 2 * theta_theta_relu_relu(c00, c01, c02, c03, c11, c12, c13, c22, c23, c33)

    assert not is_quadrature_kernel(scaled)
    assert not is_quadrature_kernel(len)


@pytest.mark.parametrize(
    "C, weights, count, message",
    [
        (np.eye(3)[:2], np.ones(3), 1, "shape"),
        (np.eye(3), np.ones(2), 1, "weights"),
        (np.eye(3), np.ones(3), 4, "count"),
        (np.diag([1.0, 0.0, 1.0]), np.ones(3), 1, "diagonal"),
    ],
)
def test_bad_input_is_refused(C, weights, count, message):
    with pytest.raises(ValueError, match=message):
        theta_pairs_relu_square(C, weights, count)
