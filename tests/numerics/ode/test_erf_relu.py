"""erf and relu activations: closed-form kernels and ODE terms against independent quadratures and Monte Carlo.

erf integrands are analytic, so a tensor Gauss-Hermite rule (tests/gauss_quadrature.py)
converges to rounding for covariances of order one. relu integrands are piecewise
smooth and positively homogeneous: in whitened polar coordinates the radial integral
is a Gaussian moment and the angular one is split at the kinks and done by
Gauss-Legendre, exact to rounding (:func:`polar_average`).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from gauss_quadrature import gaussian_nodes
from scipy.special import erf, eval_hermite

import numerics
from derive.codegen.tuples import INCREMENT_KERNELS, KERNELS
from derive.model.model import SCM, Model
from derive.model.model import k as k_symbol
from derive.model.model import p as p_symbol
from numerics.runtime.registry import generated_module, tuple_module

SQRT2 = math.sqrt(2.0)
ERF_MIXED = Model(student_activation="erf(x/sqrt(2))", teacher_activation="x**2 - 1", name="erf_quadratic")
QUADRATIC_ERF = Model(student_activation="x**2", teacher_activation="erf(x/sqrt(2))", name="quadratic_erf")
PLAIN_ERF = Model(student_activation="erf(x)", teacher_activation="erf(2*x)", student_readout="1/sqrt(p)")
RELU = Model(student_activation="relu(x)", teacher_activation="relu(x)", name="relu")


# --------------------------------------------------------------------------
# activations as plain NumPy functions, read off the model independently of derive/
# --------------------------------------------------------------------------


def functions(expr: sp.Expr):
    """(f, f') of an activation expression as NumPy functions."""
    x = sp.Symbol("x")
    if isinstance(expr, sp.erf):
        c = float(expr.args[0] / x)
        return (lambda z: erf(c * z)), (lambda z: 2 * c / math.sqrt(math.pi) * np.exp(-((c * z) ** 2)))
    if str(expr) == "relu(x)":
        return (lambda z: np.maximum(z, 0.0)), (lambda z: (z > 0) * 1.0)
    poly = np.poly1d([float(c) for c in sp.Poly(expr, x).all_coeffs()])
    return poly, poly.deriv()


def derivative(expr: sp.Expr, n: int):
    """The n-th derivative of an erf or polynomial activation as a NumPy function.

    ``d^n/dz^n erf(c z) = c**n (2 / sqrt(pi)) (-1)**(n-1) H_{n-1}(c z) exp(-(c z)**2)`` (physicists' Hermite).
    """
    x = sp.Symbol("x")
    if n == 0:
        return functions(expr)[0]
    if isinstance(expr, sp.erf):
        c = float(expr.args[0] / x)
        return lambda z: (c**n * 2 / math.sqrt(math.pi) * (-1) ** (n - 1) * eval_hermite(n - 1, c * z)
                          * np.exp(-((c * z) ** 2)))
    poly = np.poly1d([float(c) for c in sp.Poly(expr, x).all_coeffs()])
    return poly.deriv(n)


#: The function of every slot name of derive.codegen.tuples.KERNELS, for a model.
SLOT_FUNCTIONS = {"x": lambda m: (lambda z: z)}
SLOT_FUNCTIONS.update({name: (lambda m, n=n: derivative(m.student_activation, n))
                       for name, n in (("s", 0), ("ds", 1), ("d2s", 2), ("d3s", 3), ("d4s", 4))})
SLOT_FUNCTIONS.update({name: (lambda m, n=n: derivative(m.teacher_activation, n))
                       for name, n in (("t", 0), ("dt", 1), ("d2t", 2))})


def block_args(C: np.ndarray) -> list[float]:
    n = C.shape[0]
    return [C[a, b] for a in range(n) for b in range(a, n)]


def random_covariance(rng: np.random.Generator, n: int, rank: int | None = None, top: float = 1.0) -> np.ndarray:
    """A PSD n x n matrix of the given rank with largest eigenvalue ``top``."""
    rank = n if rank is None else rank
    A = rng.standard_normal((n, rank))
    C = A @ A.T
    return top * C / np.linalg.eigvalsh(C)[-1]


def covariances(n: int, seed: int, top: float = 1.0) -> list[tuple[str, np.ndarray]]:
    """Random, singular (repeated unit; lower rank) and near-singular blocks, largest eigenvalue ``top``."""
    rng = np.random.default_rng(seed)
    cases = [("random", random_covariance(rng, n))]
    base = random_covariance(rng, n - 1) if n > 1 else np.ones((1, 1))
    index = [0] + list(range(n - 1))  # the first two slots are the same unit
    cases.append(("repeated", base[np.ix_(index, index)]))
    if n > 2:
        cases.append(("rank two", random_covariance(rng, n, rank=2)))
    near = cases[1][1] + 1e-7 * random_covariance(rng, n)
    cases.append(("near-singular", near))
    # Gauss-Hermite resolves erf(c z) to rounding when the variance of c z is of order one
    return [(label, top * C / np.linalg.eigvalsh(C)[-1]) for label, C in cases]


def erf_variance_scale(model: Model) -> float:
    """1 / (2 c**2) for the steepest erf(c x) of the model (1 for erf(x/sqrt(2)))."""
    scales = [float(e.args[0] / sp.Symbol("x")) for e in (model.student_activation, model.teacher_activation)
              if isinstance(e, sp.erf)]
    return 1 / (2 * max(scales) ** 2)


#: Nodes per dimension: with variances of order one the rules agree with 1.5x the nodes to 1e-13.
NODES = {1: 60, 2: 60, 3: 40, 4: 28}


def gauss_hermite(fs, C: np.ndarray) -> float:
    z, w = gaussian_nodes(C, NODES[C.shape[0]])
    return float(w @ np.prod([f(z[:, i]) for i, f in enumerate(fs)], axis=0))


# --------------------------------------------------------------------------
# erf kernels, every slot pattern of derive.codegen.tuples.KERNELS (the increment kernels, six-slot averages of
# erf networks, are checked through whole covariances in tests/numerics/noise/test_tuple_fluctuations.py)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("model", [SCM, ERF_MIXED, QUADRATIC_ERF, PLAIN_ERF], ids=["scm", "erf-x2", "x2-erf", "erf(x)"])
@pytest.mark.parametrize("name", [name for name in KERNELS if name not in INCREMENT_KERNELS])
def test_erf_kernels_against_gauss_hermite(model, name):
    module = tuple_module(model)
    slots = KERNELS[name]
    kernel = module.KERNELS[name]
    fs = [SLOT_FUNCTIONS[s](model) for s in slots]
    for label, C in covariances(len(slots), seed=len(name), top=erf_variance_scale(model)):
        expected = gauss_hermite(fs, C)
        value = float(kernel(*block_args(C)))
        assert abs(value - expected) < 1e-10 * max(1.0, abs(expected)), (label, value, expected)


def test_erf_kernels_vectorise_over_blocks():
    # the generated kernels are element-wise: a stack of blocks gives the stack of averages
    rng = np.random.default_rng(5)
    blocks = np.stack([random_covariance(rng, 4) for _ in range(6)])
    kernel = tuple_module(SCM).KERNELS["diffusion_st"]
    stacked = kernel(*[blocks[:, a, b] for a in range(4) for b in range(a, 4)])
    one_by_one = [kernel(*block_args(C)) for C in blocks]
    np.testing.assert_allclose(stacked, one_by_one, rtol=1e-14, atol=0)


# --------------------------------------------------------------------------
# whole ODE terms, with per-unit readouts, by quadrature over all p + k units
# --------------------------------------------------------------------------


def exact_terms(model: Model, Q, R, T, a, b, n_nodes: int = 50) -> dict[str, np.ndarray]:
    """Every term of derive/quantities/ode.py and the readout drift from its definition, by Gauss-Hermite."""
    p, k = R.shape
    sigma, sigma_prime = functions(model.student_activation)
    sigma_star, _ = functions(model.teacher_activation)
    z, w = gaussian_nodes(np.block([[Q, R], [R.T, T]]), n_nodes)
    lam, nu = z[:, :p], z[:, p:]
    residual = sigma_star(nu) @ b - sigma(lam) @ a
    slope = a * sigma_prime(lam)  # E_j / (y0 - f)
    weighted = (w * residual)[:, None] * slope
    half = weighted.T @ lam
    return {
        "drift_Q": half + half.T,
        "drift_R": weighted.T @ nu,
        "diffusion_Q": (slope * (w * residual**2)[:, None]).T @ slope,
        "noise_Q": (slope * w[:, None]).T @ slope,
        "residual_risk": 0.5 * float(w @ residual**2),
        "readout_drift": (w * residual) @ sigma(lam),
    }


def overlaps_cases(p: int, k: int, seed: int):
    rng = np.random.default_rng(seed)
    C = random_covariance(rng, p + k, top=1.2)
    yield "random", C[:p, :p], C[:p, p:], C[p:, p:]
    if p >= 2:
        # two identical students: a singular covariance
        C2 = C.copy()
        C2[1, :] = C2[0, :]
        C2[:, 1] = C2[:, 0]
        C2 = 1.2 * C2 / np.linalg.eigvalsh(C2)[-1]
        yield "identical students", C2[:p, :p], C2[:p, p:], C2[p:, p:]
    # a student equal to a teacher direction, up to 1e-7
    C3 = C.copy()
    C3[0, :] = C3[p, :]
    C3[:, 0] = C3[:, p]
    C3 = C3 + 1e-7 * np.eye(p + k)
    C3 = 1.2 * C3 / np.linalg.eigvalsh(C3)[-1]
    yield "near-singular", C3[:p, :p], C3[:p, p:], C3[p:, p:]


@pytest.mark.parametrize("model", [SCM, ERF_MIXED, QUADRATIC_ERF], ids=lambda m: m.name)
@pytest.mark.parametrize(("p", "k"), [(1, 1), (1, 2), (2, 1)])
def test_erf_terms_against_gauss_hermite(model, p, k):
    module = tuple_module(model)
    rng = np.random.default_rng(p + 10 * k)
    a = rng.uniform(-1.5, 1.5, p)
    b = rng.uniform(-1.5, 1.5, k)
    for label, Q, R, T in overlaps_cases(p, k, seed=p + 3 * k):
        expected = exact_terms(model, Q, R, T, a, b)
        drift_Q, drift_R, diffusion_Q, noise_Q = module.all_terms(Q, R, T, a, b)
        got = {
            "drift_Q": drift_Q,
            "drift_R": drift_R,
            "diffusion_Q": diffusion_Q,
            "noise_Q": noise_Q,
            "residual_risk": module.residual_risk(Q, R, T, a, b),
            "readout_drift": module.readout_drift(Q, R, T, a, b),
        }
        for name, value in got.items():
            np.testing.assert_allclose(value, expected[name], rtol=0, atol=1e-10, err_msg=f"{label}: {name}")


def test_scalar_readouts_are_the_models_readouts():
    # PLAIN_ERF has a = 1/sqrt(p): the default vectors must be that on every unit
    p, k = 2, 1
    rng = np.random.default_rng(8)
    C = random_covariance(rng, p + k)
    Q, R, T = C[:p, :p], C[:p, p:], C[p:, p:]
    module = generated_module(PLAIN_ERF)
    a = float(PLAIN_ERF.student_readout.subs({p_symbol: p, k_symbol: k})) * np.ones(p)
    b = float(PLAIN_ERF.teacher_readout.subs({p_symbol: p, k_symbol: k})) * np.ones(k)
    expected = exact_terms(PLAIN_ERF, Q, R, T, a, b)
    np.testing.assert_allclose(module.all_terms(Q, R, T)[2], expected["diffusion_Q"], atol=1e-10, rtol=0)
    assert abs(numerics.risk(Q, R, T, model=PLAIN_ERF) - expected["residual_risk"]) < 1e-10


def test_erf_terms_against_monte_carlo_wide_teacher():
    # p = 2, k = 3: five units, beyond the tensor quadrature; every term within 5 standard errors
    from numerics.analyses.montecarlo import generated_terms, monte_carlo_terms

    rng = np.random.default_rng(11)
    C = random_covariance(rng, 5, top=1.5)
    Q, R, T = C[:2, :2], C[:2, 2:], C[2:, 2:]
    estimates = monte_carlo_terms(Q, R, T, model=SCM, n_samples=400_000, seed=2)
    exact = generated_terms(Q, R, T, model=SCM)
    for name, (mean, se) in estimates.items():
        assert np.all(np.abs(np.asarray(mean) - exact[name]) <= 5 * np.asarray(se) + 1e-12), name


def test_erf_batched_overlaps():
    rng = np.random.default_rng(4)
    Cs = np.stack([random_covariance(rng, 4) for _ in range(3)])
    Q, R, T = Cs[:, :2, :2], Cs[:, :2, 2:], Cs[:, 2:, 2:]
    module = tuple_module(SCM)
    batched = module.all_terms(Q, R, T)
    for i in range(3):
        single = module.all_terms(Q[i], R[i], T[i])
        for x, y in zip(batched, single):
            np.testing.assert_allclose(x[i], y, rtol=1e-13, atol=1e-15)
    assert module.residual_risk(Q, R, T).shape == (3,)


# --------------------------------------------------------------------------
# relu: polar quadrature split at the kinks
# --------------------------------------------------------------------------


def polar_average(f, C: np.ndarray, degree: int, n_nodes: int = 40) -> float:
    """``E[f(z)]`` for ``z ~ N(0, C)`` (2 x 2, any rank) and ``f`` positively homogeneous of ``degree``.

    With ``z = L g``, ``g = r (cos phi, sin phi)``: ``E = E[r**degree] / (2 pi) int f(L u(phi)) dphi``
    (``E[r**m] = 2**(m/2) Gamma(1 + m/2)`` for the 2-d chi distribution). ``f(L u)`` has kinks
    where a coordinate of ``L u`` vanishes; the angular integral is split there.
    """
    w, V = np.linalg.eigh(C)
    L = V * np.sqrt(np.clip(w, 0.0, None))
    kinks = []
    for row in L:
        if np.hypot(*row) > 0:
            base = math.atan2(-row[0], row[1])  # row . u(phi) = 0
            kinks += [base % (2 * np.pi), (base + np.pi) % (2 * np.pi)]
    edges = np.unique(np.concatenate([[0.0, 2 * np.pi], kinks]))
    nodes, weights = np.polynomial.legendre.leggauss(n_nodes)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        phi = (hi - lo) / 2 * nodes + (hi + lo) / 2
        u = np.stack([np.cos(phi), np.sin(phi)])
        total += (hi - lo) / 2 * float(weights @ f(L @ u))
    radial = 2 ** (degree / 2) * math.gamma(1 + degree / 2)
    return radial * total / (2 * np.pi)


def relu(z):
    return np.maximum(z, 0.0)


def step(z):
    return (z > 0) * 1.0


def relu_blocks(seed: int):
    rng = np.random.default_rng(seed)
    C = random_covariance(rng, 2, top=1.3)
    yield "random", C
    yield "negatively correlated", np.array([[1.0, -0.6], [-0.6, 0.8]])
    yield "singular", np.array([[0.7, 0.7], [0.7, 0.7]])
    yield "anti-aligned", np.array([[0.5, -0.5], [-0.5, 0.5]])
    yield "near-singular", np.array([[0.7, 0.7 * (1 - 1e-9)], [0.7 * (1 - 1e-9), 0.7]])


def test_relu_two_slot_kernels_against_polar_quadrature():
    module = tuple_module(RELU)
    cases = {
        "pair_ss": (lambda z: relu(z[0]) * relu(z[1]), 2),
        "pair_st": (lambda z: relu(z[0]) * relu(z[1]), 2),
        "pair_tt": (lambda z: relu(z[0]) * relu(z[1]), 2),
        "noise": (lambda z: step(z[0]) * step(z[1]), 0),
    }
    for name, (f, degree) in cases.items():
        for label, C in relu_blocks(seed=len(name)):
            expected = polar_average(f, C, degree)
            value = float(module.KERNELS[name](*block_args(C)))
            assert abs(value - expected) < 1e-10, (name, label, value, expected)


def test_relu_drift_kernels_against_polar_quadrature():
    # E[theta(z0) z1 relu(z2)] = E[theta(z0) relu(z2) E[z1 | z0, z2]]: the regression of z1 on (z0, z2)
    # leaves a two-dimensional homogeneous integrand of degree 2
    module = tuple_module(RELU)
    rng = np.random.default_rng(21)
    blocks = [random_covariance(rng, 3, top=1.2), random_covariance(rng, 3, rank=2)]
    tied = random_covariance(rng, 2)
    blocks.append(tied[np.ix_([0, 1, 0], [0, 1, 0])])  # j = u: z2 = z0
    for C in blocks:
        outer = C[np.ix_([0, 2], [0, 2])]
        beta = np.linalg.pinv(outer) @ C[[0, 2], 1]

        def f(z, beta=beta):
            return step(z[0]) * relu(z[1]) * (beta[0] * z[0] + beta[1] * z[1])

        expected = polar_average(f, outer, 2)
        for name in ("drift_student", "drift_teacher"):
            value = float(module.KERNELS[name](*block_args(C)))
            assert abs(value - expected) < 1e-10, (name, value, expected)


def test_relu_first_order_terms_and_risk_p1_k1():
    # one student, one teacher: two units, every first-order term and the risk by polar quadrature
    module = tuple_module(RELU)
    a, b = np.array([0.7]), np.array([1.3])
    for label, C in relu_blocks(seed=3):
        Q, R, T = C[:1, :1], C[:1, 1:], C[1:, 1:]

        def residual(z):
            return b[0] * relu(z[1]) - a[0] * relu(z[0])

        drift_R = polar_average(lambda z: a[0] * step(z[0]) * z[1] * residual(z), C, 2)
        half_Q = polar_average(lambda z: a[0] * step(z[0]) * z[0] * residual(z), C, 2)
        risk = polar_average(lambda z: residual(z) ** 2 / 2, C, 2)
        readout = polar_average(lambda z: residual(z) * relu(z[0]), C, 2)
        noise = polar_average(lambda z: a[0] ** 2 * step(z[0]), C, 0)
        drift_Q, got_R = module.first_order_terms(Q, R, T, a, b)
        assert abs(got_R[0, 0] - drift_R) < 1e-10, label
        assert abs(drift_Q[0, 0] - 2 * half_Q) < 1e-10, label
        assert abs(module.residual_risk(Q, R, T, a, b) - risk) < 1e-10, label
        assert abs(module.readout_drift(Q, R, T, a, b)[0] - readout) < 1e-10, label
        assert abs(a[0] ** 2 * module.KERNELS["noise"](Q[0, 0], Q[0, 0], Q[0, 0]) - noise) < 1e-10, label


def test_relu_first_order_against_monte_carlo():
    from numerics.analyses.montecarlo import monte_carlo_rhs

    rng = np.random.default_rng(13)
    C = random_covariance(rng, 5, top=1.5)
    Q, R, T = C[:3, :3], C[:3, 3:], C[3:, 3:]
    estimates = monte_carlo_rhs(Q, R, T, eta=1e-4, model=RELU, n_samples=400_000, seed=1)
    dQ, dR = numerics.rhs(Q, R, T, 1e-4, model=RELU, second_order=False)
    for name, exact in (("dQ", dQ), ("dR", dR)):
        mean, se = estimates[name]
        # eta = 1e-4: the eta**2 part of the Monte Carlo estimate is far below its standard error
        assert np.all(np.abs(mean - exact) <= 5 * se + 1e-12), name


def test_missing_relu_average_is_named():
    # a relu student with a quadratic teacher: the eta**2 term needs E[theta(z0) theta(z1) z2**2 z3**2], which
    # the engine would contract into derivatives of delta; it refuses with the average's name instead
    model = Model(student_activation="relu(x)", teacher_activation="x**2")
    Q, R, T = 0.5 * np.eye(2), 0.1 * np.ones((2, 1)), np.eye(1)
    with pytest.raises(ValueError, match=r"no closed form for the Gaussian average of relu units E\[relu\(x\)'"):
        numerics.rhs(Q, R, T, 0.1, model=model)
    # the gradient-flow terms and the risk work
    numerics.rhs(Q, R, T, 0.1, model=model, second_order=False)
    assert numerics.risk(Q, R, T, model=model) > 0
    result = numerics.integrate(Q, R, T, eta=0.1, alpha_max=1.0, model=model, second_order=False, n_points=5)
    assert np.all(np.diff(result.risk) < 0)


def test_mixed_erf_relu_average_is_named():
    model = Model(student_activation="erf(x/sqrt(2))", teacher_activation="relu(x)")
    Q, R, T = 0.5 * np.eye(1), 0.1 * np.ones((1, 1)), np.eye(1)
    with pytest.raises(ValueError, match=r"no closed form .* erf and relu"):
        numerics.risk(Q, R, T, model=model)


# --------------------------------------------------------------------------
# the polynomial path: index-free and per-tuple routes agree
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        None,
        Model(student_activation="x**3 - 3*x", teacher_activation="x**3 - 3*x", name="he3"),
        Model(student_activation="x**3 + x", teacher_activation="x**2 - 1", student_readout="2/p", name="mixed"),
    ],
    ids=["paper", "he3", "mixed"],
)
def test_polynomial_per_tuple_route_equals_index_free(model):
    rng = np.random.default_rng(17)
    p, k = 3, 2
    C = random_covariance(rng, p + k, top=1.5)
    Q, R, T = C[:p, :p], C[:p, p:], C[p:, p:]
    index_free = generated_module(model)
    per_tuple = tuple_module(model)
    assert getattr(per_tuple, "PER_TUPLE", False) and not getattr(index_free, "PER_TUPLE", False)
    for x, y in zip(per_tuple.all_terms(Q, R, T), index_free.all_terms(Q, R, T)):
        np.testing.assert_allclose(x, y, rtol=1e-11, atol=1e-12)
    assert abs(per_tuple.residual_risk(Q, R, T) - index_free.residual_risk(Q, R, T)) < 1e-11
    from numerics.runtime.registry import hessian_module

    for x, y in zip(per_tuple.hessian_terms(Q, R, T), hessian_module(model).hessian_terms(Q, R, T)):
        np.testing.assert_allclose(x, y, rtol=1e-11, atol=1e-12)
    a, b = per_tuple.readouts(p, k)
    dQ, dR = numerics.rhs(Q, R, T, 0.3, model=model)
    dQ_vec, dR_vec = numerics.rhs(Q, R, T, 0.3, model=model, a=np.full(p, a), b=np.full(k, b))
    np.testing.assert_allclose(dQ_vec, dQ, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(dR_vec, dR, rtol=1e-11, atol=1e-12)


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("sin(x)", "the only functions are sqrt, erf, relu"),
        ("tanh(x)", "the only functions are sqrt, erf, relu"),
        ("erf(x) + x", "sums, products or powers"),
        ("2*erf(x)", "sums, products or powers"),
        ("erf(-x)", "sums, products or powers"),
        ("erf(x**2)", "argument of erf must be c\\*x"),
        ("erf(x + 1)", "argument of erf must be c\\*x"),
        ("relu(2*x)", "argument of relu must be x"),
        ("relu(x)**2", "sums, products or powers"),
        ("erf(relu(x))", "argument of erf"),
        ("erf(2)", "function of a constant"),
        ("erf(x, 2)", "exactly one argument"),
        ("erf(x=1)", "exactly one argument"),
        ("__import__('os').system('true')", "the only functions are sqrt, erf, relu"),
    ],
)
def test_unsupported_activations_are_refused(text, found):
    with pytest.raises(ValueError, match=found):
        Model(student_activation=text)


def test_plain_erf_is_a_scaled_erf():
    # erf(c x) with c > 0 is accepted and is erf(x/sqrt(2)) of the input sqrt(2) c x
    model = Model(student_activation="erf(x)", teacher_activation="erf(x)")
    scaled = Model(student_activation="erf(x/sqrt(2))", teacher_activation="erf(x/sqrt(2))")
    Q, R, T = np.array([[0.6]]), np.array([[0.2]]), np.array([[0.9]])
    plain_risk = numerics.risk(Q, R, T, model=model)
    assert abs(plain_risk - numerics.risk(2 * Q, 2 * R, 2 * T, model=scaled)) < 1e-14
    assert "erf(x)" == str(model.student_activation)
    assert Model(student_activation=str(SCM.student_activation)) == Model(student_activation="erf(x/sqrt(2))")
