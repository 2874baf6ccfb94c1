"""The ODE right-hand side and the risk (numerics/ode/overlaps.py) of the paper model against their
closed forms (Isserlis' theorem for sigma = x**2, readouts 1/p and 1/k), batch axes and bad input."""

import numpy as np
import pytest
from sample_points import random_point

from derive.model.model import PAPER
from numerics.ode.overlaps import rhs, rhs_unchecked, risk
from numerics.runtime.registry import resolve

P, K = 3, 2


def paper_risk(Q, R, T, p=P, k=K):
    # (1/2) E[(A - B)**2], A = (1/k) sum nu**2, B = (1/p) sum lambda**2, E[x**2 y**2] = C_xx C_yy + 2 C_xy**2
    A2 = (np.trace(T) ** 2 + 2 * np.sum(T**2)) / k**2
    B2 = (np.trace(Q) ** 2 + 2 * np.sum(Q**2)) / p**2
    AB = (np.trace(Q) * np.trace(T) + 2 * np.sum(R**2)) / (p * k)
    return (A2 - 2 * AB + B2) / 2


def paper_drift_R(Q, R, T, p=P, k=K):
    # (2/p) E[lambda_j nu_r (A - B)], E[lambda_j nu_r nu_s**2] = R_jr T_ss + 2 R_js T_sr
    return 2 / p * ((R * np.trace(T) + 2 * R @ T) / k - (R * np.trace(Q) + 2 * Q @ R) / p)


def test_risk_is_the_closed_form_plus_half_the_label_noise():
    Q, R, T = random_point(P, K, np.random.default_rng(0))
    assert risk(Q, R, T) == pytest.approx(paper_risk(Q, R, T), rel=1e-12)
    assert risk(Q, R, T, model=PAPER.with_noise(0.3)) == pytest.approx(paper_risk(Q, R, T) + 0.15, rel=1e-12)
    assert risk(Q, R, T, check=False) == pytest.approx(paper_risk(Q, R, T), rel=1e-12)


def test_first_order_drift_of_R_is_the_closed_form():
    Q, R, T = random_point(P, K, np.random.default_rng(1))
    dQ, dR = rhs(Q, R, T, 0.25, second_order=False)
    np.testing.assert_allclose(dR, 0.25 * paper_drift_R(Q, R, T), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dQ, dQ.T, rtol=1e-13, atol=1e-15)


def test_second_order_term_scales_with_eta_squared_over_the_batch_size():
    Q, R, T = random_point(P, K, np.random.default_rng(2))
    first_Q = rhs(Q, R, T, 0.4, second_order=False)[0]
    second = {B: rhs(Q, R, T, 0.4, batch_size=B)[0] - first_Q for B in (1, 4)}
    np.testing.assert_allclose(second[4], second[1] / 4, rtol=1e-12, atol=1e-15)
    doubled = rhs(Q, R, T, 0.8)[0] - rhs(Q, R, T, 0.8, second_order=False)[0]
    np.testing.assert_allclose(doubled, 4 * second[1], rtol=1e-12, atol=1e-15)


def test_weight_decay_and_the_unchecked_path():
    Q, R, T = random_point(P, K, np.random.default_rng(3))
    decayed = PAPER.with_weight_decay(0.1)
    plain, with_decay = rhs(Q, R, T, 0.3), rhs(Q, R, T, 0.3, model=decayed)
    np.testing.assert_allclose(with_decay[0], plain[0] - 2 * 0.3 * 0.1 * Q, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(with_decay[1], plain[1] - 0.3 * 0.1 * R, rtol=1e-12, atol=1e-15)
    unchecked = rhs_unchecked(Q, R, T, 0.3, resolve(decayed), True)
    for got, want in zip(unchecked, with_decay):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_batch_axes_give_the_single_results():
    rng = np.random.default_rng(4)
    points = [random_point(P, K, rng) for _ in range(3)]
    Q, R, T = (np.stack([point[i] for point in points]) for i in range(3))
    dQ, dR = rhs(Q, R, T, 0.2)
    risks = risk(Q, R, T)
    assert dQ.shape == (3, P, P) and dR.shape == (3, P, K) and risks.shape == (3,)
    for index, point in enumerate(points):
        single = rhs(*point, 0.2)
        np.testing.assert_allclose(dQ[index], single[0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(dR[index], single[1], rtol=1e-12, atol=1e-15)
        assert risks[index] == pytest.approx(paper_risk(*point), rel=1e-12)


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(eta=-0.1), "eta"),
        (dict(Q=np.array([[1.0, 0.2, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])), "symmetric"),
        (dict(R=np.ones((3, 3))), "R"),
        (dict(batch_size=0), "batch_size"),
        (dict(second_order="yes"), "second_order"),
    ],
)
def test_bad_input_is_named(changes, match):
    Q, R, T = random_point(P, K, np.random.default_rng(5))
    arguments = dict(Q=Q, R=R, T=T, eta=0.1) | changes
    with pytest.raises(ValueError, match=match):
        rhs(arguments.pop("Q"), arguments.pop("R"), arguments.pop("T"), arguments.pop("eta"), **arguments)


def test_a_zero_readout_gives_float_derivatives():
    # every term is identically zero: the printed module returns the integer 0 expanded
    from derive import Model

    model = Model(student_readout="0")
    Q, R, T = np.eye(2), np.full((2, 1), 0.1), np.eye(1)
    dQ, dR = rhs(Q, R, T, 0.1, model=model)
    assert dQ.dtype == np.float64 and dR.dtype == np.float64
    # a silent student: the risk is E[y**2] / 2 = E[z**4] / 2 = 3/2 for one x**2 teacher at T = 1
    assert risk(Q, R, T, model=model) == pytest.approx(1.5)
