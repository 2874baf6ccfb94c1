"""Every polynomial model of the family, not only the committed ones.

Models nobody committed are generated on first use (into one cache shared by this
test session), so these tests exercise the whole pipeline: derivation, planning,
one joint ``cse``, printing of both branches, loading. Each generated function is
compared with an independent exact quadrature (``gauss_quadrature``), and the
batched branch with the unbatched one.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from gauss_quadrature import exact_terms
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sample_points import random_point

import numerics
from derive.model.model import Model, hermite, x
from numerics.runtime.registry import generated_module

MONOMIAL_PAIRS = [(f"x**{a}", f"x**{b}") for a in range(1, 5) for b in range(1, 5)]

# one fixed random polynomial of each degree up to the limit (integer and rational coefficients)
RANDOM_POLYNOMIALS = [
    "3*x/2",
    "x**2 - x/3 + 1",
    "-x**3/2 + 2*x**2 - x",
    "x**4/5 - x**3 + 3*x/4 - 1/2",
    "x**5/7 + x**4/3 - 2*x**2 + x",
    "x**6/11 - x**5/4 + x**3 - 3*x**2/2 + 2",
]


def _models() -> list[Model]:
    models = [Model(student_activation=s, teacher_activation=t) for s, t in MONOMIAL_PAIRS]
    models.append(Model(student_activation=hermite(4), teacher_activation=hermite(2)))
    models.append(Model(student_activation=hermite(4), teacher_activation=hermite(4)))
    teachers = ["x**2", "x**3 - 3*x", "x**2 + x"]
    for degree, student in enumerate(RANDOM_POLYNOMIALS, start=1):
        models.append(Model(student_activation=student, teacher_activation=teachers[degree % 3]))
    return models


GRID = _models()


def _id(model: Model) -> str:
    return f"{model.student_activation}|{model.teacher_activation}".replace(" ", "")


@pytest.fixture(scope="module", autouse=True)
def shared_cache(tmp_path_factory):
    """One fresh cache for the whole module: every model is generated here, once."""
    patch = pytest.MonkeyPatch()
    patch.setenv("WICKODE_CACHE_DIR", str(tmp_path_factory.mktemp("wickode-cache")))
    yield
    patch.undo()




def _batch(points):
    return tuple(np.stack([point[i] for point in points]) for i in range(3))


@pytest.mark.parametrize("model", GRID, ids=_id)
def test_generated_for_every_model_batched_equals_unbatched(model):
    rng = np.random.default_rng(11)
    module = generated_module(model)
    points = [random_point(3, 2, rng, kind) for kind in ("random", "singular", "near")]
    Qb, Rb, Tb = _batch(points)
    noisy = model.with_noise("1/10").with_weight_decay("1/20")
    for index, (Q, R, T) in enumerate(points):
        scale_terms = [np.max(np.abs(term)) for term in module.all_terms(Q, R, T)]
        for name in ("first_order_terms", "all_terms"):
            single = getattr(module, name)(Q, R, T)
            batched = getattr(module, name)(Qb, Rb, Tb)
            for got, want, scale in zip(batched, single, scale_terms):
                np.testing.assert_allclose(got[index], want, rtol=1e-12, atol=1e-12 * scale, err_msg=name)
        single_risk = module.residual_risk(Q, R, T)
        np.testing.assert_allclose(module.residual_risk(Qb, Rb, Tb)[index], single_risk, rtol=1e-12)
        for second_order in (True, False):
            want = numerics.rhs(Q, R, T, 0.3, model=noisy, second_order=second_order)
            got = numerics.rhs(Qb, Rb, Tb, 0.3, model=noisy, second_order=second_order)
            for g, w in zip(got, want):
                scale = max(1.0, float(np.max(np.abs(w))))
                np.testing.assert_allclose(g[index], w, rtol=1e-12, atol=1e-12 * scale)
            # a batch of starts against one shared, unbatched teacher overlap T (shrinking R
            # keeps the covariance positive semi-definite)
            shrink = np.array([0.0, 0.5, 1.0])[:, None, None]
            shared = numerics.rhs(np.stack([Q] * 3), shrink * R, T, 0.3, model=noisy, second_order=second_order)
            for g, w in zip(shared, want):
                scale = max(1.0, float(np.max(np.abs(w))))
                np.testing.assert_allclose(g[2], w, rtol=1e-12, atol=1e-12 * scale)
            alone = numerics.rhs(Q, 0.5 * R, T, 0.3, model=noisy, second_order=second_order)
            for g, w in zip(shared, alone):
                np.testing.assert_allclose(g[1], w, rtol=1e-12, atol=1e-12 * max(1.0, float(np.max(np.abs(w)))))
            # dQ is symmetric in both branches
            np.testing.assert_allclose(got[0][index], got[0][index].T, rtol=0, atol=1e-12 * scale)


QUADRATURE_MODELS = [
    Model(name="paper"),
    Model(student_activation=hermite(3), teacher_activation=hermite(3)),
    Model(student_activation="x**3", teacher_activation="x**3"),
    Model(student_activation="x", teacher_activation="x**3"),
    Model(student_activation="x**2", teacher_activation="x**4"),
    Model(student_activation="x**4", teacher_activation="x**4"),
    Model(student_activation=hermite(4), teacher_activation=hermite(2)),
    Model(student_activation="x**4 - 2*x**2 + x", teacher_activation=hermite(3)),
    Model(student_activation="x**4/4 + x**2", teacher_activation="x**3 + x"),
    # the degree-5 and degree-6 models of GRID (generated once for both tests)
    Model(student_activation=RANDOM_POLYNOMIALS[4], teacher_activation="x**2 + x"),
    Model(student_activation=RANDOM_POLYNOMIALS[5], teacher_activation="x**2"),
    Model(
        student_activation="x**3 + x", teacher_activation="x**2", student_readout="3/2", teacher_readout="-2/(p + k)"
    ),
    Model(student_activation="x**2 - x/3 + 1", teacher_activation="x**3", student_readout="1/sqrt(p)"),
]

SHAPES = [(1, 1), (1, 2), (2, 3), (3, 2)]
# the tensor quadrature for degree 5-6 needs 11-12 nodes per dimension: smaller networks
HIGH_DEGREE_SHAPES = [(1, 2), (2, 2)]


@pytest.mark.parametrize("model", QUADRATURE_MODELS, ids=_id)
def test_every_generated_function_equals_exact_quadrature(model):
    rng = np.random.default_rng(5)
    module = generated_module(model)
    eta, delta, kappa = 0.3, 0.1, 0.05
    noisy = model.with_noise(sp.Rational(1, 10)).with_weight_decay(sp.Rational(1, 20))
    degree = max(sp.degree(model.student_activation, x), sp.degree(model.teacher_activation, x))
    for p, k in SHAPES if degree <= 4 else HIGH_DEGREE_SHAPES:
        for kind in ("random", "singular", "near"):
            Q, R, T = random_point(p, k, rng, kind)
            exact = exact_terms(model, Q, R, T)
            scale = max(1.0, max(float(np.max(np.abs(v))) for v in exact.values()))
            drift_Q, drift_R, diffusion_Q, noise_Q = module.all_terms(Q, R, T)
            generated = {
                "drift_Q": drift_Q,
                "drift_R": drift_R,
                "diffusion_Q": diffusion_Q,
                "noise_Q": noise_Q,
                "residual_risk": module.residual_risk(Q, R, T),
            }
            for name, value in generated.items():
                np.testing.assert_allclose(
                    value, exact[name], rtol=1e-10, atol=1e-10 * scale, err_msg=f"{name} p={p} k={k} {kind}"
                )
            first_Q, first_R = module.first_order_terms(Q, R, T)
            np.testing.assert_allclose(first_Q, exact["drift_Q"], rtol=1e-10, atol=1e-10 * scale)
            np.testing.assert_allclose(first_R, exact["drift_R"], rtol=1e-10, atol=1e-10 * scale)
            # the public right-hand side and risk: eta**2 term, label noise and weight decay on
            dQ, dR = numerics.rhs(Q, R, T, eta, model=noisy)
            second = exact["diffusion_Q"] + delta * exact["noise_Q"]
            want_Q = eta * exact["drift_Q"] + eta**2 * second - 2 * eta * kappa * Q
            want_R = eta * exact["drift_R"] - eta * kappa * R
            np.testing.assert_allclose(dQ, want_Q, rtol=1e-10, atol=1e-10 * scale)
            np.testing.assert_allclose(dR, want_R, rtol=1e-10, atol=1e-10 * scale)
            np.testing.assert_allclose(
                numerics.risk(Q, R, T, model=noisy), exact["residual_risk"] + delta / 2, rtol=1e-10, atol=1e-10 * scale
            )


def test_quadrature_detects_a_wrong_term():
    """The comparison can fail: a generated term with one coefficient changed is caught."""
    model = QUADRATURE_MODELS[8]
    Q, R, T = random_point(2, 1, np.random.default_rng(2))
    exact = exact_terms(model, Q, R, T)
    drift_Q = generated_module(model).all_terms(Q, R, T)[0]
    np.testing.assert_allclose(drift_Q, exact["drift_Q"], rtol=1e-10)
    wrong = Model(student_activation="x**4/4 + 1001*x**2/1000", teacher_activation="x**3 + x")
    assert not np.allclose(drift_Q, exact_terms(wrong, Q, R, T)["drift_Q"], rtol=1e-6)


_coefficient = st.fractions(min_value=-2, max_value=2, max_denominator=6)


@st.composite
def polynomials(draw, max_degree: int = 4):
    degree = draw(st.integers(1, max_degree))
    coefficients = [draw(_coefficient) for _ in range(degree)]
    leading = draw(_coefficient.filter(lambda c: c != 0))
    expr = sum((sp.Rational(c.numerator, c.denominator) * x**n for n, c in enumerate(coefficients)), sp.Integer(0))
    return sp.expand(expr + sp.Rational(leading.numerator, leading.denominator) * x**degree)


_readouts = st.sampled_from(["1/p", "1/k", "2/(p + k)", "1/sqrt(p)", "-1/2", "3/(2*k)"])


@settings(max_examples=12, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    student=polynomials(),
    teacher=polynomials(),
    student_readout=_readouts,
    teacher_readout=_readouts,
    p=st.integers(1, 3),
    k=st.integers(1, 3),
    seed=st.integers(0, 2**16),
    kind=st.sampled_from(["random", "singular", "near"]),
)
@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_random_polynomial_models_equal_exact_quadrature(
    student, teacher, student_readout, teacher_readout, p, k, seed, kind
):
    model = Model(
        student_activation=student,
        teacher_activation=teacher,
        student_readout=student_readout,
        teacher_readout=teacher_readout,
    )
    Q, R, T = random_point(p, k, np.random.default_rng(seed), kind)
    exact = exact_terms(model, Q, R, T)
    scale = max(1.0, max(float(np.max(np.abs(v))) for v in exact.values()))
    module = generated_module(model)
    drift_Q, drift_R, diffusion_Q, noise_Q = module.all_terms(Q, R, T)
    for name, value in zip(("drift_Q", "drift_R", "diffusion_Q", "noise_Q"), (drift_Q, drift_R, diffusion_Q, noise_Q)):
        np.testing.assert_allclose(value, exact[name], rtol=1e-10, atol=1e-10 * scale, err_msg=name)
    np.testing.assert_allclose(module.residual_risk(Q, R, T), exact["residual_risk"], rtol=1e-10, atol=1e-10 * scale)
    # batched branch on the same point twice
    batched = module.all_terms(*_batch([(Q, R, T), (Q, R, T)]))
    for got, want in zip(batched, (drift_Q, drift_R, diffusion_Q, noise_Q)):
        np.testing.assert_allclose(got[1], want, rtol=1e-12, atol=1e-12 * scale)


HESSIAN_MODELS = [GRID[10], GRID[3], GRID[16], GRID[-2]]  # x**3|x**3, x|x**4, He4|He2, degree 5


@pytest.mark.parametrize("model", HESSIAN_MODELS, ids=_id)
def test_generated_gradient_and_hessian_equal_finite_differences(model):
    rng = np.random.default_rng(4)
    W, W_star = 0.6 * rng.standard_normal((2, 4)), 0.6 * rng.standard_normal((2, 4))

    def risk_of(weights):
        N = weights.shape[1]
        return numerics.risk(weights @ weights.T / N, weights @ W_star.T / N, W_star @ W_star.T / N, model=model)

    gradient = numerics.gradient(W, W_star, model=model)
    hessian = numerics.hessian(W, W_star, model=model)
    h = 1e-5
    fd_gradient = np.zeros_like(W)
    fd_hessian = np.zeros_like(hessian)
    for index in range(W.size):
        step = np.zeros(W.size)
        step[index] = h
        step = step.reshape(W.shape)
        fd_gradient.flat[index] = (risk_of(W + step) - risk_of(W - step)) / (2 * h)
        difference = numerics.gradient(W + step, W_star, model=model) - numerics.gradient(W - step, W_star, model=model)
        fd_hessian[:, index] = difference.ravel() / (2 * h)
    # central differences: truncation O(h**2) relative, rounding O(eps / h)
    assert np.max(np.abs(gradient - fd_gradient)) < 1e-7 * np.max(np.abs(gradient))
    assert np.max(np.abs(hessian - fd_hessian)) < 1e-7 * np.max(np.abs(hessian))
