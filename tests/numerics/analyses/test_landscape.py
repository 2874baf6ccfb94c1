"""Landscape: generated gradient / Hessian, exact spectra, stationary points, closed forms, degrees of freedom."""

import numpy as np
import pytest
from scipy.linalg import expm

import numerics
from derive.model.model import HE3, Model, k, p
from derive.paper.landscape import N as N_SYM
from derive.paper.landscape import degrees_of_freedom
from numerics.analyses.closed_forms import (
    predicted_counts,
    predicted_spectrum,
    solution_manifold_dimension,
    student_expressivity,
)
from numerics.analyses.gradient_hessian import gradient, hessian, hessian_matvec, weight_overlaps
from numerics.analyses.solution_manifold import (
    expressivity_rank,
    manifold_rank,
    null_direction_split,
    tangent_directions,
)
from numerics.analyses.spectra import count_signs, hessian_spectrum
from numerics.analyses.stationary_points import POINT_NAMES, plateau, stationary_point, zero_error

MIXED = Model(student_activation="x**4/4 + x**2", teacher_activation="x**3 + x", name="mixed")
MODELS = [None, HE3, MIXED]


def risk_of(W, W_star, model=None):
    Q, R, T = weight_overlaps(W, W_star)
    return numerics.risk(Q, R, T, model=model)


def random_weights(p_, k_, N_, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((p_, N_)), rng.standard_normal((k_, N_))


@pytest.mark.parametrize("model", MODELS, ids=["paper", "he3", "mixed"])
def test_gradient_and_hessian_equal_finite_differences(model):
    W, W_star = random_weights(3, 2, 5, seed=1)
    h = 1e-5
    grad = gradient(W, W_star, model=model)
    dense = hessian(W, W_star, model=model)
    fd_grad = np.zeros_like(W)
    fd_hess_from_grad = np.zeros_like(dense)
    fd_hess_from_risk = np.zeros_like(dense)
    size = W.size
    for index in range(size):
        step = np.zeros(size)
        step[index] = h
        step = step.reshape(W.shape)
        fd_grad.flat[index] = (risk_of(W + step, W_star, model) - risk_of(W - step, W_star, model)) / (2 * h)
        fd_hess_from_grad[:, index] = (
            (gradient(W + step, W_star, model=model) - gradient(W - step, W_star, model=model)) / (2 * h)
        ).ravel()
    hh = 1e-3  # second differences of the risk: larger step, truncation O(hh**2)
    for a in range(size):
        for b in range(a, size):
            ea = np.zeros(size)
            eb = np.zeros(size)
            ea[a] = hh
            eb[b] = hh
            ea, eb = ea.reshape(W.shape), eb.reshape(W.shape)
            value = (
                risk_of(W + ea + eb, W_star, model) - risk_of(W + ea - eb, W_star, model)
                - risk_of(W - ea + eb, W_star, model) + risk_of(W - ea - eb, W_star, model)
            ) / (4 * hh**2)
            fd_hess_from_risk[a, b] = fd_hess_from_risk[b, a] = value
    scale_g, scale_h = np.max(np.abs(grad)), np.max(np.abs(dense))
    assert np.max(np.abs(grad - fd_grad)) < 1e-7 * scale_g
    assert np.max(np.abs(dense - fd_hess_from_grad)) < 1e-7 * scale_h
    assert np.max(np.abs(dense - fd_hess_from_risk)) < 1e-4 * scale_h
    # the structured product agrees with the dense matrix
    direction = np.random.default_rng(2).standard_normal(W.shape)
    assert np.allclose(hessian_matvec(W, W_star, direction, model=model).ravel(), dense @ direction.ravel())


def _assert_spectrum_matches_dense(W, W_star, model=None):
    spectrum = hessian_spectrum(W, W_star, model=model)
    dense = np.linalg.eigvalsh(hessian(W, W_star, model=model))
    assert spectrum.multiplicities.sum() == dense.size
    scale = np.max(np.abs(dense))
    assert np.max(np.abs(np.sort(spectrum.expanded()) - dense)) < 1e-10 * scale
    assert spectrum.counts() == count_signs(dense)
    # multiplicities: the dense eigenvalues cluster exactly as the distinct values say
    for value, multiplicity in zip(spectrum.eigenvalues, spectrum.multiplicities):
        assert np.sum(np.abs(dense - value) <= 1e-8 * scale) == multiplicity


@pytest.mark.parametrize("N_, p_, k_", [(4, 1, 1), (6, 2, 1), (7, 3, 2), (9, 4, 2), (5, 3, 3), (4, 4, 2)])
@pytest.mark.parametrize("model", [None, HE3], ids=["paper", "he3"])
def test_spectrum_equals_dense_eigenvalues_at_random_points(N_, p_, k_, model):
    W, W_star = random_weights(p_, k_, N_, seed=N_ * 10 + p_)
    _assert_spectrum_matches_dense(W, W_star, model)


@pytest.mark.parametrize("name", POINT_NAMES)
@pytest.mark.parametrize("N_, p_, k_", [(8, 3, 2), (10, 4, 2), (9, 3, 3), (7, 2, 1), (12, 5, 3)])
def test_stationary_points_have_zero_gradient_and_dense_spectrum(name, N_, p_, k_):
    point = stationary_point(name, N_, p_, k_, seed=3)
    scale = np.linalg.norm(hessian(point.W, point.W_star)) * np.linalg.norm(point.W_star)
    assert point.gradient_norm < 1e-13 * max(scale, 1.0)
    _assert_spectrum_matches_dense(point.W, point.W_star)
    expected = predicted_counts(name, N_, p_, k_)
    assert hessian_spectrum(point.W, point.W_star).counts() == expected


def test_a_wrong_closed_form_is_detected():
    point = plateau(10, 3, 2, seed=0)
    counts = hessian_spectrum(point.W, point.W_star).counts()
    assert counts != predicted_counts("plateau", 11, 3, 2)
    assert counts != predicted_counts("aligned", 10, 3, 2)


@pytest.mark.parametrize("N_", [50, 1000, 100_000])
@pytest.mark.parametrize("p_, k_", [(1, 1), (3, 2), (4, 2), (5, 3)])
@pytest.mark.parametrize("name", POINT_NAMES)
def test_closed_form_spectra_equal_numerical_ones_up_to_large_N(name, N_, p_, k_):
    point = stationary_point(name, N_, p_, k_, seed=4)
    spectrum = hessian_spectrum(point.W, point.W_star)
    assert spectrum.counts() == predicted_counts(name, N_, p_, k_)
    predicted = predicted_spectrum(name, N_, p_, k_)
    assert [c for _, c in predicted] == list(spectrum.multiplicities)
    assert np.allclose([v for v, _ in predicted], spectrum.eigenvalues, rtol=1e-7, atol=1e-12 / N_)


@pytest.mark.parametrize("rank", [0, 1, 2, 3])
def test_lower_rank_plateaus(rank):
    N_, p_, k_ = 40, 3, 2
    point = plateau(N_, p_, k_, rank=rank, seed=5)
    assert point.gradient_norm < 1e-12
    spectrum = hessian_spectrum(point.W, point.W_star)
    assert spectrum.counts() == predicted_counts("plateau", N_, p_, k_, rank=rank)


def test_hessian_spectrum_for_a_million_inputs():
    point = plateau(10**6, 4, 2, seed=6)
    spectrum = hessian_spectrum(point.W, point.W_star)
    assert spectrum.counts() == predicted_counts("plateau", 10**6, 4, 2)
    assert spectrum.multiplicities.sum() == 4 * 10**6


def test_zero_error_null_split_and_curves_on_the_manifold():
    N_, p_, k_ = 12, 4, 2
    point = zero_error(N_, p_, k_, seed=7)
    split = null_direction_split(point.W, point.W_star)
    assert split.tangent == p_ * k_ - k_ * (k_ + 1) // 2
    assert split.flat == (p_ - k_) * (N_ - k_)
    assert split.tangent_residual < 1e-12
    # rotations exp(t A): the risk stays zero
    rng = np.random.default_rng(8)
    generator = rng.standard_normal((p_, p_))
    generator = generator - generator.T
    for t in (0.1, 0.5, 1.0):
        assert abs(risk_of(expm(t * generator) @ point.W, point.W_star)) < 1e-13
    # moving O into its orthogonal complement: O(t) = O cos t + P sin t
    O = np.sqrt(k_ / p_) * point.W @ point.W_star.T / N_
    complement = np.linalg.qr(np.concatenate([O, rng.standard_normal((p_, p_ - k_))], axis=1))[0][:, k_:]
    P = complement @ np.linalg.qr(rng.standard_normal((p_ - k_, k_)))[0][:, :k_] if p_ - k_ >= k_ else None
    if P is not None:
        for t in (0.2, 0.7):
            W_t = np.sqrt(p_ / k_) * (O * np.cos(t) + P * np.sin(t)) @ point.W_star
            assert abs(risk_of(W_t, point.W_star)) < 1e-13
    # the velocities of those curves are tangent directions
    tangents = tangent_directions(point.W).reshape(split.tangent, -1)
    velocity = (generator @ point.W).ravel()
    residual = velocity - tangents.T @ (tangents @ velocity)
    assert np.linalg.norm(residual) < 1e-10 * np.linalg.norm(velocity)


def test_risk_grows_like_t4_along_flat_non_tangent_directions():
    N_, p_, k_ = 12, 4, 2
    point = zero_error(N_, p_, k_, seed=9)
    O = np.sqrt(k_ / p_) * point.W @ point.W_star.T / N_
    rng = np.random.default_rng(10)
    # student-space vector in ker(O^T), input-space vector orthogonal to the teacher span
    v = rng.standard_normal(p_)
    v -= O @ (O.T @ v)
    z = rng.standard_normal(N_)
    z -= point.W_star.T @ (point.W_star @ z) / N_
    direction = np.outer(v, z)
    direction /= np.linalg.norm(direction)
    assert np.max(np.abs(hessian_matvec(point.W, point.W_star, direction))) < 1e-13
    ts = np.array([0.5, 1.0, 2.0, 4.0])
    risks = np.array([risk_of(point.W + t * direction, point.W_star) for t in ts])
    coefficients = risks / ts**4
    # a unit rank-one move v z^T adds t**2 (z.x)**2 / (pN) to the output: eps = 3 t**4 / (2 p**2 N**2)
    assert np.allclose(coefficients, 3 / (2 * p_**2 * N_**2), rtol=1e-9)
    assert np.all(coefficients > 0.5 * 3 / (2 * p_**2 * N_**2))


@pytest.mark.parametrize("N_, p_", [(4, 1), (4, 2), (4, 4), (4, 6), (5, 3)])
def test_student_expressivity_matches_jacobian_rank(N_, p_):
    expressivity, _ = degrees_of_freedom()
    assert expressivity_rank(N_, p_) == student_expressivity(N_, p_)
    if p_ <= N_:
        assert int(expressivity.subs({N_SYM: N_, p: p_})) == student_expressivity(N_, p_)


@pytest.mark.parametrize("N_, p_, k_", [(6, 1, 1), (6, 3, 1), (6, 3, 2), (8, 5, 3), (8, 4, 4)])
def test_manifold_dimension_matches_orbit_rank(N_, p_, k_):
    _, manifold = degrees_of_freedom()
    assert manifold_rank(N_, p_, k_) == solution_manifold_dimension(N_, p_, k_)
    assert int(manifold.subs({p: p_, k: k_})) == solution_manifold_dimension(N_, p_, k_)
    assert solution_manifold_dimension(N_, 1, 2) is None


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="W_star"):
        gradient(np.zeros((2, 5)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="tol"):
        hessian_spectrum(np.ones((2, 5)), np.ones((1, 5)), tol=2.0)
    with pytest.raises(ValueError, match="p >= k"):
        zero_error(10, 1, 2)
    with pytest.raises(ValueError, match="name"):
        stationary_point("saddle", 10, 2, 1)


def test_the_landscape_module_gathers_the_public_names_of_its_five_modules():
    from numerics.analyses import (
        closed_forms,
        gradient_hessian,
        landscape,
        solution_manifold,
        spectra,
        stationary_points,
    )

    defining = (closed_forms, gradient_hessian, solution_manifold, spectra, stationary_points)
    for name in landscape.__all__:
        sources = [module for module in defining if name in vars(module)]
        assert len(sources) >= 1, name
        assert all(getattr(landscape, name) is getattr(module, name) for module in sources), name
