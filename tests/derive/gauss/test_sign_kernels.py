"""Gaussian averages with a sign teacher slot (derive/gauss/kernels.py): quadrature, closed forms, Monte Carlo.

One sign slot: against a one-dimensional adaptive quadrature over the sign's variable of the
conditional average of the other slots (tensor Gauss-Hermite, exact for the smooth slots), to
1e-9. Two sign slots: the arcsine law, and Monte Carlo within 5 standard errors, with a power
check (the erf regularisation kept on the sign slot is rejected).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from gauss_quadrature import gaussian_nodes
from scipy.special import erf

from derive.gauss.kernels import MissingAverage, Vertex, block_average
from derive.model.activations import Activation
from derive.model.model import Model

ERF = Activation("erf", scale=1 / sp.sqrt(2))
SIGN = Activation("sign")


def polynomial(*coefficients: int) -> Activation:
    return Activation("polynomial", coefficients=tuple(sp.Integer(c) for c in coefficients))


def sigma(w, order=0):
    """erf(w / sqrt 2) and its derivatives (Hermite form)."""
    if order == 0:
        return erf(w / np.sqrt(2))
    hermite = np.polynomial.hermite_e.hermeval(w, [0] * (order - 1) + [1])
    return np.sqrt(2 / np.pi) * (-1) ** (order - 1) * hermite * np.exp(-w * w / 2)


def numeric(vertex: Vertex):
    activation, order = vertex.activation, vertex.order
    if activation.kind == "erf":
        return lambda w: sigma(w, order)
    if activation.kind == "sign":
        assert order == 0
        return np.sign
    coefficients = [float(c) for c in activation.coefficients]
    for _ in range(order):
        coefficients = [n * c for n, c in enumerate(coefficients)][1:] or [0.0]
    return lambda w: np.polynomial.polynomial.polyval(w, coefficients)


def kernel_value(vertices, C):
    program = block_average(tuple(vertices))
    n = len(vertices)
    values = {sp.Symbol(f"c{a}{b}", real=True): C[a, b] for a in range(n) for b in range(a, n)}
    return float(program.inline().xreplace(values).evalf(20))


def one_sign_quadrature(vertices, C, s):
    """E[prod f_a(z_a)] with a plain sign at slot s: integral over z_s of the conditional average."""
    rest = [a for a in range(len(vertices)) if a != s]
    variance = C[s, s]
    slopes = C[rest, s] / variance
    conditional = C[np.ix_(rest, rest)] - np.outer(C[rest, s], C[rest, s]) / variance
    nodes, weights = gaussian_nodes(conditional, 40 if len(rest) <= 2 else 28)
    functions = [numeric(vertices[a]) for a in rest]
    # u = z_s / sqrt(K_ss) on [0, 12] (the Gaussian tail beyond is below 1e-30), 160 Gauss-Legendre nodes
    u, u_weights = np.polynomial.legendre.leggauss(160)
    u, u_weights = 6.0 * (u + 1.0), 6.0 * u_weights
    w = np.sqrt(variance) * u

    def inner(shift):
        z = nodes[None, :, :] + slopes[None, None, :] * shift[:, None, None]
        return np.prod([f(z[..., i]) for i, f in enumerate(functions)], axis=0) @ weights

    odd_part = np.exp(-u * u / 2) / np.sqrt(2 * np.pi) * (inner(w) - inner(-w))
    return float(u_weights @ odd_part)


def random_covariance(n, seed, rank=None):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, rank or n + 1))
    return A @ A.T / A.shape[1] + (0 if rank else 0.05 * np.eye(n))


ONE_SIGN = [
    ((Vertex(ERF), Vertex(SIGN)), 1),
    ((Vertex(ERF, 1), Vertex(polynomial(0, 1)), Vertex(SIGN)), 2),
    ((Vertex(ERF, 1), Vertex(ERF, 1), Vertex(ERF), Vertex(SIGN)), 3),
    ((Vertex(ERF, 2), Vertex(SIGN)), 1),
    ((Vertex(polynomial(0, 0, 2)), Vertex(polynomial(0, 1)), Vertex(SIGN)), 2),
    ((Vertex(polynomial(-3, 0, 3)), Vertex(polynomial(0, 1)), Vertex(SIGN)), 2),
    ((Vertex(polynomial(0, 0, 2)), Vertex(polynomial(0, 0, 2)), Vertex(ERF), Vertex(SIGN)), 3),
]


# two random blocks for the small kernels, one for the four-slot ones (their quadrature is the slow part)
ONE_SIGN_CASES = [
    pytest.param(vertices, s, seed, id="-".join(v.describe() for v in vertices) + f"-seed{seed}")
    for vertices, s in ONE_SIGN
    for seed in ((0,) if len(vertices) == 4 else (0, 1))
]


@pytest.mark.parametrize(("vertices", "s", "seed"), ONE_SIGN_CASES)
def test_one_sign_slot_against_quadrature(vertices, s, seed):
    C = random_covariance(len(vertices), seed)
    assert kernel_value(vertices, C) == pytest.approx(one_sign_quadrature(vertices, C, s), abs=1e-9, rel=1e-9)


def test_one_sign_slot_on_a_singular_block():
    # the student slot equal to the teacher's direction: rank-deficient covariance
    vertices = (Vertex(ERF, 1), Vertex(polynomial(0, 1)), Vertex(SIGN))
    C = random_covariance(3, 4, rank=2)
    assert kernel_value(vertices, C) == pytest.approx(one_sign_quadrature(vertices, C, 2), abs=1e-9, rel=1e-9)


def test_closed_forms():
    C = random_covariance(2, 5)
    rho = C[0, 1] / np.sqrt(C[0, 0] * C[1, 1])
    assert kernel_value((Vertex(SIGN), Vertex(SIGN)), C) == pytest.approx(2 / np.pi * np.arcsin(rho), rel=1e-13)
    # E[z0 sign(z1)] = sqrt(2/pi) C01 / sqrt(C11)
    expected = np.sqrt(2 / np.pi) * C[0, 1] / np.sqrt(C[1, 1])
    assert kernel_value((Vertex(polynomial(0, 1)), Vertex(SIGN)), C) == pytest.approx(expected, rel=1e-13)
    # sign(z)^2 = 1
    same = np.array([[2.0, 2.0], [2.0, 2.0]])
    assert kernel_value((Vertex(SIGN), Vertex(SIGN)), same) == pytest.approx(1.0, rel=1e-13)


def test_two_sign_slots_against_monte_carlo_with_power():
    vertices = (Vertex(ERF, 1), Vertex(ERF, 1), Vertex(SIGN), Vertex(SIGN))
    C = random_covariance(4, 6)
    rng = np.random.default_rng(7)
    z = rng.standard_normal((2_000_000, 4)) @ np.linalg.cholesky(C).T
    samples = sigma(z[:, 0], 1) * sigma(z[:, 1], 1) * np.sign(z[:, 2]) * np.sign(z[:, 3])
    mean, error = samples.mean(), samples.std() / np.sqrt(samples.size)
    assert abs(kernel_value(vertices, C) - mean) < 5 * error
    # power: the erf regularisation kept on the sign slot (an erf teacher) is rejected
    three = (Vertex(ERF, 1), Vertex(ERF), Vertex(SIGN))
    samples3 = sigma(z[:, 0], 1) * sigma(z[:, 1]) * np.sign(z[:, 2])
    mean3, error3 = samples3.mean(), samples3.std() / np.sqrt(samples3.size)
    C3 = C[:3, :3]
    assert abs(kernel_value(three, C3) - mean3) < 5 * error3
    assert abs(kernel_value((Vertex(ERF, 1), Vertex(ERF), Vertex(ERF)), C3) - mean3) > 20 * error3


def test_second_derivative_of_sign_with_a_smooth_partner():
    # E[delta'(z1) g(z0)] terms arise for polynomial students; check E[z0^2 z1 sign(z2)] by quadrature
    vertices = (Vertex(polynomial(0, 0, 1)), Vertex(polynomial(0, 1)), Vertex(SIGN))
    C = random_covariance(3, 8)
    assert kernel_value(vertices, C) == pytest.approx(one_sign_quadrature(vertices, C, 2), abs=1e-9, rel=1e-9)


def test_sign_only_for_teachers():
    with pytest.raises(ValueError, match="student must be differentiable"):
        Model(student_activation="sign(x)", teacher_activation="sign(x)")
    with pytest.raises(ValueError, match="supported with erf students"):
        Model(student_activation="x**2", teacher_activation="sign(x)")
    with pytest.raises(ValueError, match="argument of sign must be x"):
        Model(student_activation="erf(x)", teacher_activation="sign(2*x + 1)")
    model = Model(student_activation="erf(x/sqrt(2))", teacher_activation="sign(x)", student_readout="1",
                  teacher_readout="1")
    assert str(model.teacher_activation) == "sign(x)"


def test_sign_with_relu_is_named_as_missing():
    with pytest.raises(MissingAverage, match="relu and sign units"):
        block_average((Vertex(Activation("relu")), Vertex(SIGN)))
