"""The exact Jacobian of the drift (numerics/ode/jacobian.py) against central differences of numerics.rhs."""

from __future__ import annotations

import numpy as np
import pytest

import derive.model.model as symbols
import derive.paper.plateau as plateau_symbols
import numerics
from derive.model.model import HE2, HE3, SCM, Model
from derive.paper.plateau import norm_learning, plateau_at_fixed_point
from numerics.ode.jacobian import COMPLEX_METHOD, RICHARDSON_METHOD, coordinate_names, jacobian, pack_state

RELU = Model(student_activation="relu(x)", teacher_activation="relu(x)", student_readout=1, teacher_readout=1)
RELU_QUADRATIC = Model(student_activation="relu(x)", teacher_activation="x**2")
QUADRATIC_ERF = Model(student_activation="x**2", teacher_activation="erf(x)")
MIXED = Model(student_activation="x**3 + x", teacher_activation="x**2 - 1")
NOISY_DECAY = HE2.with_noise("1/4").with_weight_decay("1/10")
SIGN_FLIPS = Model(student_activation="erf(x/sqrt(2))", teacher_activation="sign(x)", student_readout=1,
                   teacher_readout=1, label_flip="1/10")

#: (model, settings, expected method): every activation kind, readout vectors, trained readouts, mini-batches.
#: relu's closed-form kernels sit on a branch point of sqrt for repeated units: complex steps are kept only
#: where they agree at two step sizes (None: either method), its eta**2 quadrature always needs Richardson.
CASES = [
    (None, {}, COMPLEX_METHOD),
    (HE2, {}, COMPLEX_METHOD),
    (HE3, {}, COMPLEX_METHOD),
    (MIXED, {}, COMPLEX_METHOD),
    (NOISY_DECAY, {"batch_size": 3}, COMPLEX_METHOD),
    (SCM, {}, COMPLEX_METHOD),
    (QUADRATIC_ERF, {}, COMPLEX_METHOD),
    (RELU_QUADRATIC, {"second_order": False}, None),
    (RELU, {"second_order": False}, None),
    (RELU, {}, RICHARDSON_METHOD),
    (HE3, {"a": [0.7, -0.4, 1.1], "b": [1.0, 0.5]}, COMPLEX_METHOD),
    (SCM, {"eta_a": 0.4, "a": [0.5, 1.5, 1.0]}, COMPLEX_METHOD),
    (None, {"eta_a": 0.2, "batch_size": 4, "a": [0.3, 0.3, 0.4]}, COMPLEX_METHOD),
    (SCM, {"batch_size": 5, "b": [1.0, 2.0]}, COMPLEX_METHOD),
    # the variants: label flips (a sign teacher), a decaying trained readout, the sphere
    (SIGN_FLIPS, {}, None),  # the sign kernels are not analytic in the complex plane
    (SCM, {"eta_a": 0.4, "a": [0.5, 1.5, 1.0], "readout_decay": 0.3}, COMPLEX_METHOD),
    (None, {"spherical": True}, COMPLEX_METHOD),
    (SCM, {"spherical": True, "b": [1.0, 0.5]}, COMPLEX_METHOD),
]


def _point(p: int = 3, k: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((p + k, p + k + 3))
    C = A @ A.T / (p + k + 3)
    return C[:p, :p], C[:p, p:], C[p:, p:]


def _central_differences(Q, R, T, eta, model, settings, h=1e-3):
    """Fourth-order central differences of numerics.rhs over the coordinates, column by column."""
    p, k = R.shape
    trained = settings.get("eta_a", 0) > 0
    a = np.asarray(settings["a"], dtype=float) if trained else None  # the trained cases give their start

    def drift(x):
        iu = np.triu_indices(p)
        Qx = np.zeros((p, p))
        Qx[iu] = x[: len(iu[0])]
        Qx = Qx + np.triu(Qx, 1).T
        Rx = x[len(iu[0]) : len(iu[0]) + p * k].reshape(p, k)
        overrides = dict(settings)
        if trained:
            overrides["a"] = x[len(iu[0]) + p * k :]
        out = numerics.rhs(Qx, Rx, T, eta, model=model, **overrides)
        return pack_state(out[0], out[1], out[2] if trained else None)

    x = pack_state(Q, R, a)
    columns = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h
        columns.append((8 * (drift(x + e) - drift(x - e)) - (drift(x + 2 * e) - drift(x - 2 * e))) / (12 * h))
    return np.stack(columns, axis=1)


@pytest.mark.parametrize(("model", "settings", "method"), CASES,
                         ids=lambda case: getattr(case, "name", None) if isinstance(case, Model) else None)
def test_jacobian_matches_central_differences(model, settings, method):
    Q, R, T = _point()
    eta = 0.3
    result = jacobian(Q, R, T, eta, model=model, **settings)
    reference = _central_differences(Q, R, T, eta, model, settings)
    assert result.method == method or method is None
    assert result.matrix.shape == reference.shape
    scale = np.max(np.abs(reference))
    # a sign teacher's kernels are not analytic (no complex steps): Richardson against differences, both
    # carrying the drift's rounding, agree to about 2e-6 there (the reference drifts as its step shrinks)
    tolerance = 1e-5 if model is SIGN_FLIPS else 1e-7
    assert np.max(np.abs(result.matrix - reference)) <= tolerance * scale


def test_jacobian_is_batched_and_names_its_coordinates():
    Q, R, T = _point(seed=1)
    Q2, R2, _ = _point(seed=2)
    batch = jacobian(np.stack([Q, Q2]), np.stack([R, R2]), T, 0.2, model=SCM, eta_a=0.1)
    assert batch.matrix.shape == (2, 15, 15)
    np.testing.assert_array_equal(batch.matrix[1], jacobian(Q2, R2, T, 0.2, model=SCM, eta_a=0.1).matrix)
    assert batch.coordinates == coordinate_names(3, 2, True)
    assert batch.coordinates[:4] == ("Q[0,0]", "Q[0,1]", "Q[0,2]", "Q[1,1]")
    assert batch.coordinates[-1] == "a[2]"
    assert batch.block("R", "Q").shape == (2, 6, 6)
    with pytest.raises(ValueError, match="rows and columns"):
        batch.block("S", "Q")


@pytest.mark.parametrize("second_order", [True, False])
def test_jacobian_at_the_paper_plateau_is_the_closed_form(second_order):
    # Eqs. 10-12 at Q = q* I, R = 0: dR = g_R R, the norm relaxes at growth_D + p coupling_D
    p, k, eta = 3, 2, 0.1
    values = {symbols.p: p, symbols.k: k, plateau_symbols.eta: eta}
    q_star = float(norm_learning(second_order=second_order).fixed_point.subs(values))
    linear = plateau_at_fixed_point(second_order=second_order)
    g_R = float(linear.growth_R.subs(values))
    result = jacobian(q_star * np.eye(p), np.zeros((p, k)), np.eye(k), eta, second_order=second_order)
    assert result.method == COMPLEX_METHOD
    np.testing.assert_allclose(result.block("R", "R"), g_R * np.eye(p * k), rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(result.block("R", "Q"), 0.0)
    np.testing.assert_array_equal(result.block("Q", "R"), 0.0)
    # the isotropic norm mode: Q = (q* + d) I moves every diagonal entry at the rate of tr(D)
    diagonal = [i for i, name in enumerate(result.coordinates) if name[2] == name[4] and name[0] == "Q"]
    norm_rate = result.matrix[np.ix_(diagonal, diagonal)].sum(axis=1)
    expected = float((linear.growth_D + p * linear.coupling_D).subs(values))
    np.testing.assert_allclose(norm_rate, expected, rtol=1e-12)


def test_bad_input_is_named():
    Q, R, T = _point()
    with pytest.raises(TypeError, match="learning rate"):
        jacobian(Q, R, T)
    with pytest.raises(ValueError, match="eta"):
        jacobian(Q, R, T, -1.0)
    with pytest.raises(ValueError, match="length p"):
        jacobian(Q, R, T, 0.1, model=SCM, a=[1.0, 2.0])


def test_a_stiff_trained_readout_is_cheap_for_the_implicit_method():
    # eta_a = 1e3: the readout relaxes on alpha ~ 1e-3, which caps the explicit step there; BDF with the
    # exact Jacobian steps over it. The explicit solver is run over a tenth of the range only.
    settings = {"eta": 0.5, "model": SCM, "eta_a": 1e3, "second_order": False}
    Q0, R0, T = 0.5 * np.eye(1), np.full((1, 1), 0.1), np.eye(1)
    implicit = numerics.integrate(Q0, R0, T, alpha_eval=[0.0, 2.0, 20.0], alpha_max=20.0, method="BDF", **settings)
    explicit = numerics.integrate(Q0, R0, T, alpha_eval=[0.0, 2.0], alpha_max=2.0, **settings)
    assert implicit.nfev < explicit.nfev  # ten times the range for fewer evaluations
    np.testing.assert_allclose(implicit.R[1], explicit.R[1], rtol=1e-5)
    np.testing.assert_allclose(implicit.a[1], explicit.a[1], rtol=1e-5)
    assert implicit.risk[-1] < 1e-2 * implicit.risk[0]  # and it learns


@pytest.mark.parametrize("method", ["Radau", "BDF", "LSODA"])
def test_implicit_methods_agree_with_the_explicit_default_on_a_batch(method):
    Q0 = np.stack([np.eye(2), 0.5 * np.eye(2)])
    R0 = np.stack([np.full((2, 1), 0.3), np.full((2, 1), 0.2)])
    reference = numerics.integrate(Q0, R0, np.eye(1), eta=0.1, model=HE2, alpha_max=5.0, n_points=5)
    result = numerics.integrate(Q0, R0, np.eye(1), eta=0.1, model=HE2, alpha_max=5.0, n_points=5, method=method,
                                rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.risk, reference.risk, rtol=1e-6)
