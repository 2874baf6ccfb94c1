"""Covariance of one SGD step's overlap increments: derived, generated, checked three ways.

1. against an independent exact quadrature over ``(lambda, nu) ~ N(0, C)`` and the label
   noise (``gauss_quadrature.exact_increment_covariance``);
2. against an explicit-index Wick expansion for p, k <= 2 (exact rational arithmetic);
3. against Monte Carlo of actual SGD steps from weight vectors at finite N.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp
from gauss_quadrature import exact_increment_covariance
from sample_points import random_point
from sgd_steps import PAPER_ACTIVATIONS, step_increments, z_scores

from derive.gauss.wick import expectation
from derive.model.model import HE2, PAPER, Model, x
from numerics.noise.fluctuations import increment_covariance

# an uncommitted model: odd and even parts, a constant, other readouts (generated into the cache)
MIXED = Model(student_activation="x**2 + x/2 - 1", teacher_activation="x**2 - x", student_readout="1/sqrt(p)")
MODELS = [PAPER, HE2, MIXED]
IDS = ["paper", "he2", "mixed"]


def _relative_error(got, want):
    return float(np.max(np.abs(got - want))) / max(1.0, float(np.max(np.abs(want))))


@pytest.mark.parametrize(
    "model",
    [pytest.param(m, id=i, marks=[pytest.mark.slow] if i == "mixed" else []) for m, i in zip(MODELS, IDS)],
)
def test_increment_covariance_equals_exact_quadrature(model):
    rng = np.random.default_rng(3)
    shapes = [(1, 1), (2, 1), (1, 2), (2, 2), (3, 2)] if model is PAPER else [(1, 1), (2, 1), (1, 2), (2, 2)]
    noisy = model.with_noise(sp.Rational(3, 10)).with_weight_decay(sp.Rational(1, 10))
    for (p, k), kind in itertools.product(shapes, ["random", "singular", "near"]):
        Q, R, T = random_point(p, k, rng, kind)
        for second_order in (True, False):
            got = increment_covariance(Q, R, T, 0.4, model=noisy, second_order=second_order)
            want = exact_increment_covariance(model, Q, R, T, 0.4, delta=0.3, second_order=second_order)
            for name, g, w in zip(("QQ", "QR", "RR"), got, want):
                assert g.shape == w.shape
                assert _relative_error(g, w) < 1e-10, (name, p, k, kind, second_order)


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_batched_covariance_equals_single_calls():
    rng = np.random.default_rng(9)
    points = [random_point(2, 2, rng, kind) for kind in ("random", "singular", "near")]
    Qb, Rb, Tb = (np.stack([point[i] for point in points]) for i in range(3))
    batched = increment_covariance(Qb, Rb, Tb, 0.3, model=MIXED)
    for index, (Q, R, T) in enumerate(points):
        single = increment_covariance(Q, R, T, 0.3, model=MIXED)
        for b, s in zip(batched, single):
            np.testing.assert_allclose(b[index], s, rtol=1e-12, atol=1e-12 * np.max(np.abs(s)))


def test_covariance_is_symmetric_and_positive_semidefinite():
    rng = np.random.default_rng(4)
    Q, R, T = random_point(3, 2, rng)
    QQ, QR, RR = increment_covariance(Q, R, T, 0.5, model=MIXED)
    p, k = R.shape
    # the covariance of the vector (q, r) as a matrix
    full = np.block(
        [[QQ.reshape(p * p, p * p), QR.reshape(p * p, p * k)], [QR.reshape(p * p, p * k).T, RR.reshape(p * k, p * k)]]
    )
    np.testing.assert_allclose(full, full.T, rtol=1e-12, atol=1e-12 * np.max(np.abs(full)))
    # q is symmetric: Cov(q_jl, .) = Cov(q_lj, .)
    np.testing.assert_allclose(QQ, np.swapaxes(QQ, 0, 1), rtol=1e-12, atol=1e-12 * np.max(np.abs(QQ)))
    assert np.linalg.eigvalsh(full)[0] > -1e-10 * np.max(np.abs(full))


def _explicit(model, Qm, Rm, Tm, eta, second_order):
    """Explicit-index Wick expansion with exact rational covariance entries (p, k <= 2)."""
    p, k = Rm.shape
    lam = sp.symbols(f"lam0:{p}")
    nu = sp.symbols(f"nu0:{k}")
    xi = sp.Symbol("xi")
    C = sp.diag(sp.Matrix(sp.BlockMatrix([[Qm, Rm], [Rm.T, Tm]])), sp.Integer(1))
    variables = list(lam) + list(nu) + [xi]
    sizes = {sp.Symbol("p", positive=True, integer=True): p, sp.Symbol("k", positive=True, integer=True): k}
    a = model.student_readout.subs(sizes)
    b = model.teacher_readout.subs(sizes)
    delta = model.noise_variance
    y = b * sum(model.teacher_activation.subs(x, v) for v in nu) + sp.sqrt(delta) * xi
    f = a * sum(model.student_activation.subs(x, v) for v in lam)
    slope = sp.diff(model.student_activation, x)
    E = [a * slope.subs(x, v) * (y - f) for v in lam]
    q = {
        (j, l): eta * (E[j] * lam[l] + E[l] * lam[j]) + (eta**2 * E[j] * E[l] if second_order else 0)
        for j in range(p)
        for l in range(p)
    }
    r = {(j, s): eta * E[j] * nu[s] for j in range(p) for s in range(k)}

    def mean(expr):
        return expectation(sp.expand(expr), variables, C)

    mq = {key: mean(v) for key, v in q.items()}
    mr = {key: mean(v) for key, v in r.items()}
    QQ = np.empty((p, p, p, p))
    QR = np.empty((p, p, p, k))
    RR = np.empty((p, k, p, k))
    for (j, l), (m, n) in itertools.product(q, q):
        QQ[j, l, m, n] = float(mean(q[j, l] * q[m, n]) - mq[j, l] * mq[m, n])
    for (j, l), (m, s) in itertools.product(q, r):
        QR[j, l, m, s] = float(mean(q[j, l] * r[m, s]) - mq[j, l] * mr[m, s])
    for (j, t), (m, s) in itertools.product(r, r):
        RR[j, t, m, s] = float(mean(r[j, t] * r[m, s]) - mr[j, t] * mr[m, s])
    return QQ, QR, RR


# the explicit expansion of the noisy mixed model beyond p = k = 1 takes minutes in sympy
@pytest.mark.parametrize(
    "model, size",
    [(PAPER, size) for size in [(1, 1), (2, 1), (1, 2), (2, 2)]]
    + [(MIXED.with_noise(sp.Rational(1, 5)), (1, 1)), (MIXED, (2, 1))],
    ids=["paper-1-1", "paper-2-1", "paper-1-2", "paper-2-2", "mixed-noisy-1-1", "mixed-2-1"],
)
def test_index_free_equals_explicit_index_expansion(model, size):
    p, k = size
    rng = np.random.default_rng(p + 10 * k)
    Q, R, T = random_point(p, k, rng)
    # exact rational overlaps close to the random point (still a covariance)
    Qm, Rm, Tm = (
        sp.Matrix(M.shape[0], M.shape[1], lambda i, j, M=M: sp.Rational(round(M[i, j] * 64), 64)) for M in (Q, R, T)
    )
    values = [np.array(M.tolist(), dtype=float) for M in (Qm, Rm, Tm)]
    eta = sp.Rational(2, 5)
    for second_order in (True, False):
        want = _explicit(model, Qm, Rm, Tm, eta, second_order)
        got = increment_covariance(*values, 0.4, model=model, second_order=second_order)
        for g, w in zip(got, want):
            assert _relative_error(g, w) < 1e-12


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_increment_covariance_matches_monte_carlo_of_sgd_steps_from_weights():
    """Exact one-step increments of finite-N SGD (paper model, N = 400) within 5 standard errors."""
    rng = np.random.default_rng(21)
    p, k, N, eta = 2, 1, 400, 0.5
    W = rng.standard_normal((p, N)) * 0.8
    W_star = rng.standard_normal((k, N))
    Q, R, T = W @ W.T / N, W @ W_star.T / N, W_star @ W_star.T / N
    q, r = step_increments(rng, W, W_star, eta, 200_000, a=1 / p, b=1 / k, **PAPER_ACTIVATIONS)
    QQ, QR, RR = increment_covariance(Q, R, T, eta)
    # the finite-N corrections (|x|^2/N = 1 + O(N^-1/2) and the O(1/N) terms of the step)
    # are O(1/N) relative: far below the Monte Carlo error here
    for samples_a, samples_b, predicted in ((q, q, QQ), (q, r, QR), (r, r, RR)):
        z = z_scores(samples_a, samples_b, predicted)
        assert np.max(np.abs(z)) < 5, np.max(np.abs(z))
    # power: the covariance without its eta**3 and eta**4 parts is many standard errors off
    QQ_first = increment_covariance(Q, R, T, eta, second_order=False)[0]
    assert np.max(np.abs(z_scores(q, q, QQ_first))) > 5


def test_bad_input_is_refused():
    Q, R, T = np.eye(2), np.zeros((2, 1)), np.eye(1)
    with pytest.raises(ValueError, match="eta"):
        increment_covariance(Q, R, T, -1.0)
    with pytest.raises(ValueError, match="positive semi-definite"):
        increment_covariance(Q, np.ones((2, 1)) * 3, T, 0.1)
    with pytest.raises(ValueError, match="degree <= 4"):
        increment_covariance(Q, R, T, 0.1, model=Model(student_activation="x**5", teacher_activation="x**5"))
