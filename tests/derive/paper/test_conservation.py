"""Conservation of Omega = R (R^T R)^(-1/2): the derivation of derive/paper/conservation.py and the numbers.

Omega is computed here from the SVD (``R = U S V^T`` -> ``Omega = U V^T``), independently
of any numerics module.
"""

import numpy as np
import pytest
import scipy.linalg
import sympy as sp

import numerics
from derive import HE2, HE3, PAPER
from derive.algebra.matrix_expr import Q, R, T, mm, tp, tr
from derive.model.model import k, p
from derive.paper.conservation import (
    Delta,
    NotOfThisForm,
    commuting_but_not_conserved,
    diagonal_closure,
    dR_form,
    full_rhs,
    kappa,
    persistence,
    polar_identities,
    sylvester_form,
    trace_polynomial_obstructions,
)
from derive.paper.plateau import eta

# ----------------------------------------------------------------------------
# numerical helpers
# ----------------------------------------------------------------------------


def omega(R_: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(R_, full_matrices=False)
    return u @ vt


def domega_general(R_: np.ndarray, dR: np.ndarray) -> np.ndarray:
    """(I - Omega Omega^T) dR P^-1 + Omega X,  X P + P X = Omega^T dR - dR^T Omega."""
    u, s, vt = np.linalg.svd(R_, full_matrices=False)
    O = u @ vt
    P = vt.T @ np.diag(s) @ vt
    X = scipy.linalg.solve_sylvester(P, P, O.T @ dR - dR.T @ O)
    return (np.eye(R_.shape[0]) - O @ O.T) @ dR @ np.linalg.inv(P) + O @ X


def A_B(Q_: np.ndarray, T_: np.ndarray, eta_: float, kappa_: float) -> tuple[np.ndarray, np.ndarray]:
    """A(Q), B(T) of the derived form, evaluated numerically."""
    form = dR_form(PAPER)
    values = {tr(Q): np.trace(Q_), tr(T): np.trace(T_), p: Q_.shape[0], k: T_.shape[0], eta: eta_, kappa: kappa_}

    def poly(side: str, M: np.ndarray) -> np.ndarray:
        out = np.zeros_like(M)
        for power, c in getattr(form, side):
            out = out + float(c.subs(values)) * np.linalg.matrix_power(M, power)
        return out

    return poly("left", Q_), poly("right", T_)


def domega_substituted(Q_: np.ndarray, R_: np.ndarray, T_: np.ndarray, eta_: float, kappa_: float) -> np.ndarray:
    """(I - Omega Omega^T) A Omega + Omega X,  X P + P X = [Omega^T A Omega - B, P]."""
    A, B = A_B(Q_, T_, eta_, kappa_)
    u, s, vt = np.linalg.svd(R_, full_matrices=False)
    O = u @ vt
    P = vt.T @ np.diag(s) @ vt
    S = O.T @ A @ O - B
    X = scipy.linalg.solve_sylvester(P, P, S @ P - P @ S)
    return (np.eye(R_.shape[0]) - O @ O.T) @ A @ O + O @ X


def random_overlaps(rng, p_: int, k_: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generic overlaps from random weights (a PSD covariance, R of full rank)."""
    n = p_ + k_ + 3
    W, Ws = rng.normal(size=(p_, n)), rng.normal(size=(k_, n))
    return W @ W.T / n, W @ Ws.T / n, Ws @ Ws.T / n


def random_orthogonal(rng, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def commuting_start(rng, p_: int, k_: int, scale: float = 0.1):
    """A start in the invariant set: rotated jointly diagonal overlaps, anisotropic Q and T."""
    U, V = random_orthogonal(rng, p_), random_orthogonal(rng, k_)
    D = np.zeros((p_, k_))
    D[np.arange(min(p_, k_)), np.arange(min(p_, k_))] = scale * rng.uniform(0.5, 1.5, min(p_, k_))
    Q_ = U @ np.diag(rng.uniform(0.6, 1.4, p_)) @ U.T
    T_ = V @ np.diag(rng.uniform(0.5, 1.5, k_)) @ V.T
    return Q_, U @ D @ V.T, T_


def omega_drift(run) -> float:
    O0 = omega(run.R[0])
    return max(float(np.abs(omega(R_) - O0).max()) for R_ in run.R)


NOISY = PAPER.with_noise(0.05).with_weight_decay(0.01)
TIGHT = {"rtol": 1e-11, "atol": 1e-13}

# ----------------------------------------------------------------------------
# 1. dR = A(Q) R + R B(T)
# ----------------------------------------------------------------------------


def test_paper_dR_is_A_of_Q_R_plus_R_B_of_T():
    form = dR_form(PAPER)
    _, dR = full_rhs(PAPER)
    A = eta * (2 * tr(T) / (k * p) - 2 * tr(Q) / p**2 - kappa)
    assert sp.expand(form.reconstruct() - dR) == 0
    # the expected closed form, written by hand, reproduces the derived dR exactly
    by_hand = A * R - 4 * eta / p**2 * mm(Q, R) + 4 * eta / (k * p) * mm(R, T)
    assert sp.expand(by_hand - dR) == 0
    assert sp.simplify(form.coefficient("left", 0) - A) == 0
    assert sp.simplify(form.coefficient("left", 1) + 4 * eta / p**2) == 0
    assert sp.simplify(form.coefficient("right", 1) - 4 * eta / (k * p)) == 0
    assert {n for n, _ in form.left} == {0, 1} and {n for n, _ in form.right} == {1}
    assert dR_form(HE2) == form
    # dR carries neither the eta**2 term nor the label noise
    assert not dR.has(Delta) and sp.degree(sp.expand(dR), eta) == 1


def test_he3_and_planted_terms_are_not_of_this_form():
    with pytest.raises(NotOfThisForm):
        dR_form(HE3)
    _, dR = full_rhs(PAPER)
    # higher powers on either side keep the form
    form = sylvester_form(dR + mm(Q, Q, R) + mm(R, T, T))
    assert form.coefficient("left", 2) == 1 and form.coefficient("right", 2) == 1
    # mixed, Hadamard, repeated-R and broadcast terms do not
    for planted in (mm(Q, R, T), R * R, mm(R, tp(R), R), tr(Q) + 0 * R):
        with pytest.raises(NotOfThisForm):
            sylvester_form(dR + planted)


def test_trace_polynomial_detector():
    for name, (n_terms, bad) in persistence(PAPER).items():
        assert n_terms > 0 and bad == (), name
    he3 = persistence(HE3)
    assert all(len(bad) > 0 for _, bad in he3.values())
    assert trace_polynomial_obstructions(mm(Q, Q) + Q * Q) == [Q * Q]
    assert trace_polynomial_obstructions(mm(Q, Q) + 3) == [3]
    assert trace_polynomial_obstructions(tr(mm(Q, Q)) * mm(R, T)) == []


# ----------------------------------------------------------------------------
# 2. the derivative of the polar factor
# ----------------------------------------------------------------------------


def test_polar_identities_symbolic():
    assert all(polar_identities().values())
    flipped = polar_identities(commutator_sign=-1)
    assert not flipped["commutator"] and flipped["sylvester"]


@pytest.mark.parametrize("widths", [(4, 2), (3, 3), (5, 1), (6, 3)])
def test_domega_formula_against_finite_differences(widths):
    rng = np.random.default_rng(sum(widths))
    p_, k_ = widths
    eta_ = 0.3
    Q_, R_, T_ = random_overlaps(rng, p_, k_)
    _, dR = numerics.rhs(Q_, R_, T_, eta_, model=NOISY)
    A, B = A_B(Q_, T_, eta_, 0.01)
    np.testing.assert_allclose(A @ R_ + R_ @ B, dR, rtol=1e-12, atol=1e-14)
    h = 1e-5 / np.abs(dR).max()
    fd = (omega(R_ + h * dR) - omega(R_ - h * dR)) / (2 * h)
    scale = np.abs(fd).max()
    assert scale > 1e-3  # a generic point: Omega moves
    assert np.abs(domega_general(R_, dR) - fd).max() < 1e-6 * scale
    assert np.abs(domega_substituted(Q_, R_, T_, eta_, 0.01) - fd).max() < 1e-6 * scale


def test_domega_vanishes_exactly_on_the_condition():
    rng = np.random.default_rng(7)
    eta_ = 0.4
    for p_, k_ in ((4, 2), (3, 3), (5, 2)):
        Q_, R_, T_ = commuting_start(rng, p_, k_)
        assert np.abs(domega_substituted(Q_, R_, T_, eta_, 0.0)).max() < 1e-13
        # paper-style T = I, anisotropic Q commuting with R R^T
        Q_iso = 0.8 * np.eye(p_) + 5.0 * R_ @ R_.T
        assert np.abs(domega_substituted(Q_iso, R_, np.eye(k_), eta_, 0.0)).max() < 1e-13
        # break (i) / [Q, R R^T] = 0: rotate Q only
        Q_bad = random_orthogonal(rng, p_) @ Q_ @ random_orthogonal(rng, p_).T
        Q_bad = (Q_bad + Q_bad.T) / 2 + p_ * np.eye(p_)
        assert np.abs(domega_substituted(Q_bad, R_, np.eye(k_), eta_, 0.0)).max() > 1e-3
        # break (ii) with T alone
        T_bad = random_orthogonal(rng, k_) @ T_ @ random_orthogonal(rng, k_).T
        T_bad = (T_bad + T_bad.T) / 2 + k_ * np.eye(k_)
        if k_ > 1:
            assert np.abs(domega_substituted(0.8 * np.eye(p_), R_, T_bad, eta_, 0.0)).max() > 1e-4


# ----------------------------------------------------------------------------
# 3. persistence of the commuting set
# ----------------------------------------------------------------------------


def test_jointly_diagonal_form_is_closed_symbolically():
    for widths in ((2, 2), (3, 2), (2, 3)):
        assert not any(diagonal_closure(PAPER, *widths).values()), widths
    broken = diagonal_closure(HE3, 2, 2)
    assert broken["noise_Q"] == [(0, 1), (1, 0)] and broken["drift_R"]


def test_third_commutator_is_needed_symbolically():
    q1, q2, c, r = sp.symbols("q_1 q_2 c r", positive=True)
    assert sp.expand(commuting_but_not_conserved(PAPER) - 4 * c * eta * r**2 * (q1 - q2)) == 0


def test_rhs_equivariance_paper_not_he3():
    rng = np.random.default_rng(3)
    Q_, R_, T_ = random_overlaps(rng, 4, 2)
    U, V = random_orthogonal(rng, 4), random_orthogonal(rng, 2)
    dQ, dR = numerics.rhs(Q_, R_, T_, 0.3, model=NOISY)
    dQr, dRr = numerics.rhs(U @ Q_ @ U.T, U @ R_ @ V.T, V @ T_ @ V.T, 0.3, model=NOISY)
    np.testing.assert_allclose(dQr, U @ dQ @ U.T, atol=1e-12)
    np.testing.assert_allclose(dRr, U @ dR @ V.T, atol=1e-12)
    dQ3, _ = numerics.rhs(Q_, R_, T_, 0.3, model=HE3)
    dQ3r, _ = numerics.rhs(U @ Q_ @ U.T, U @ R_ @ V.T, V @ T_ @ V.T, 0.3, model=HE3)
    assert np.abs(dQ3r - U @ dQ3 @ U.T).max() > 1e-3


# ----------------------------------------------------------------------------
# numbers: Omega along the integrated flow (p = 4, k = 2)
# ----------------------------------------------------------------------------

P_, K_, ETA, ALPHA = 4, 2, 0.5, 80.0


def _R0() -> np.ndarray:
    _, R0, _ = numerics.initial_conditions(P_, K_, N=100, seed=0)
    return R0


@pytest.mark.parametrize(
    "model, second_order", [(PAPER, True), (PAPER, False), (NOISY, True)], ids=["paper", "gradient-flow", "noise+decay"]
)
def test_omega_conserved_from_anisotropic_commuting_start(model, second_order):
    R0 = _R0()
    Q0 = 0.8 * np.eye(P_) + 5.0 * R0 @ R0.T  # not isotropic, commutes with R0 R0^T
    run = numerics.integrate(Q0, R0, np.eye(K_), eta=ETA, alpha_max=ALPHA, model=model,
                             second_order=second_order, **TIGHT)
    assert np.linalg.norm(run.R[-1]) > 5 * np.linalg.norm(R0)  # escaped: R grew far beyond its start
    assert omega_drift(run) < 1e-8


def test_omega_conserved_with_commuting_non_identity_teacher():
    R0 = _R0()
    _, _, vt = np.linalg.svd(R0, full_matrices=False)
    T0 = vt.T @ np.diag([1.5, 0.6]) @ vt  # commutes with R0^T R0 and R0^T Q0 R0
    Q0 = 0.8 * np.eye(P_) + 5.0 * R0 @ R0.T
    run = numerics.integrate(Q0, R0, T0, eta=ETA, alpha_max=ALPHA, **TIGHT)
    assert omega_drift(run) < 1e-8


def test_omega_drifts_from_non_commuting_starts():
    R0 = _R0()
    Q_aniso = np.diag([0.6, 0.8, 1.0, 1.2])
    run = numerics.integrate(Q_aniso, R0, np.eye(K_), eta=ETA, alpha_max=ALPHA, **TIGHT)
    assert omega_drift(run) > 1e-2
    T_tilted = np.array([[1.5, 0.3], [0.3, 0.5]])
    run = numerics.integrate(np.eye(P_), R0, T_tilted, eta=ETA, alpha_max=ALPHA, **TIGHT)
    assert omega_drift(run) > 1e-2


def test_first_two_commutators_are_not_enough():
    # p = k = 2, R0 = r I: [Q, R R^T] = [T, R^T R] = 0 and dOmega(0) = 0, but [T, R^T Q R] != 0
    Q0, R0, T0 = np.diag([0.8, 1.2]), 0.1 * np.eye(2), np.array([[1.0, 0.4], [0.4, 1.0]])
    assert np.abs(domega_substituted(Q0, R0, T0, 0.2, 0.0)).max() < 1e-14
    run = numerics.integrate(Q0, R0, T0, eta=0.2, alpha_max=ALPHA, **TIGHT)
    assert omega_drift(run) > 1e-2


def test_he3_omega_drifts_from_isotropic_start():
    R0 = _R0()
    run = numerics.integrate(np.eye(P_), R0, np.eye(K_), eta=0.05, alpha_max=60.0, model=HE3, **TIGHT)
    assert omega_drift(run) > 1e-2
