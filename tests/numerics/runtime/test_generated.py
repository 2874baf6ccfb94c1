"""Stage 3: the printed NumPy modules evaluate the derived expressions correctly."""

import os
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

from derive.algebra.matrix_expr import evaluate
from derive.model.model import COMMITTED_MODELS, Model, x
from derive.quantities.ode import QUANTITY_NAMES, derive_quantities
from numerics.analyses.montecarlo import generated_terms, random_overlaps
from numerics.runtime.registry import generated_module


@pytest.mark.parametrize("model", COMMITTED_MODELS, ids=lambda m: m.name)
@pytest.mark.parametrize("size", [(1, 1), (3, 2), (4, 3)])
def test_generated_code_matches_symbolic_evaluation(model, size):
    rng = np.random.default_rng(1)
    Q, R, T = random_overlaps(*size, rng)
    generated = generated_terms(Q, R, T, model=model)
    derived = derive_quantities(model).as_dict()
    for name in QUANTITY_NAMES:
        exact = evaluate(derived[name], sp.Matrix(Q), sp.Matrix(R), sp.Matrix(T))
        exact = np.array(exact.tolist(), dtype=float)
        value = np.asarray(generated[name])
        # a constant derived term evaluates to 1 x 1; the generated one is full-shaped
        exact = exact[0, 0] if value.ndim == 0 else np.broadcast_to(exact, value.shape)
        np.testing.assert_allclose(value, exact, rtol=1e-11, atol=1e-12, err_msg=name)


def paper_closed_form(Q, R, T):
    """Independent hand-written closed form (Isserlis for quadratic forms).

    With z = (lambda, nu) ~ N(0, C) and the residual g = z^T K z,
    K = diag(-I_p / p, I_k / k): <g z z^T> = m C + 2 C K C (m = tr KC) and
    <g^2 z z^T> = (m^2 + 2 tr(KCKC)) C + 4 m CKC + 8 CKCKC.
    """
    p, k = R.shape
    C = np.block([[Q, R], [R.T, T]])
    K = np.diag(np.r_[-np.ones(p) / p, np.ones(k) / k])
    CK = C @ K
    m = np.trace(CK)
    CKC = CK @ C
    first = m * C + 2 * CKC
    second = (m**2 + 2 * np.trace(CK @ CK)) * C + 4 * m * CKC + 8 * CK @ CKC
    return {
        "drift_R": (2 / p) * first[:p, p:],
        "drift_Q": (4 / p) * first[:p, :p],
        "diffusion_Q": (4 / p**2) * second[:p, :p],
        "noise_Q": (4 / p**2) * Q,
        "residual_risk": 0.5 * (m**2 + 2 * np.trace(CK @ CK)),
    }


@pytest.mark.parametrize("size", [(1, 1), (2, 1), (4, 2), (7, 3)])
def test_paper_model_against_hand_written_closed_form(size):
    rng = np.random.default_rng(7)
    Q, R, T = random_overlaps(*size, rng)
    generated = generated_terms(Q, R, T)
    closed = paper_closed_form(Q, R, T)
    for name in QUANTITY_NAMES:
        np.testing.assert_allclose(generated[name], closed[name], rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("model", COMMITTED_MODELS, ids=lambda m: m.name)
def test_batched_call_equals_individual_calls(model):
    rng = np.random.default_rng(3)
    points = [random_overlaps(3, 2, rng) for _ in range(4)]
    Qb, Rb, Tb = (np.stack([pt[i] for pt in points]) for i in range(3))
    module = generated_module(model)
    batched = module.all_terms(Qb, Rb, Tb)
    risks = module.residual_risk(Qb, Rb, Tb)
    for b, (Q, R, T) in enumerate(points):
        single = module.all_terms(Q, R, T)
        for got, want in zip(batched, single):
            np.testing.assert_allclose(got[b], want, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(risks[b], module.residual_risk(Q, R, T), rtol=1e-13)


def test_uncommitted_model_is_generated_into_cache_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("WICKODE_CACHE_DIR", str(tmp_path))
    # a linear student makes noise_Q a constant: it must still broadcast to (p, p)
    model = Model(student_activation=x, teacher_activation=x**2 + x, name="linear")
    module = generated_module(model)
    files = list(tmp_path.glob("model_*.py"))
    assert [f.name for f in files] == [f"model_{model.codegen_hash()}.py"]
    assert "GENERATED FILE - DO NOT EDIT" in files[0].read_text()
    Q, R, T = random_overlaps(3, 2, np.random.default_rng(0))
    _, _, _, noise_Q = module.all_terms(Q, R, T)
    assert noise_Q.shape == (3, 3)
    np.testing.assert_allclose(noise_Q, np.full((3, 3), 1 / 9))
    mtime = files[0].stat().st_mtime_ns
    assert generated_module(model) is module
    assert files[0].stat().st_mtime_ns == mtime


def test_numerics_does_not_import_sympy_for_committed_models():
    code = (
        "import sys, numpy as np, numerics\n"
        "Q0, R0, T = numerics.initial_conditions(3, 2, N=100, seed=0)\n"
        "numerics.rhs(Q0, R0, T, 0.1); numerics.risk(Q0, R0, T)\n"
        "numerics.integrate(Q0, R0, T, eta=0.1, alpha_max=1.0)\n"
        "assert 'sympy' not in sys.modules, 'sympy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy())


def _combined(module, Q, R, T, c_drift, c_diffusion, c_noise):
    drift_Q, drift_R, diffusion_Q, noise_Q = module.all_terms(Q, R, T)
    return c_drift * drift_Q + c_diffusion * diffusion_Q + c_noise * noise_Q, c_drift * drift_R


@pytest.mark.parametrize("model", COMMITTED_MODELS, ids=lambda m: m.name)
@pytest.mark.parametrize("size", [(1, 1), (3, 2), (6, 3)])
def test_rhs_terms_is_the_combination_of_the_terms(model, size):
    # rhs_terms regroups every monomial (Horner form, thin products, symmetrised sums):
    # it must equal the plain combination, on the unbatched and on the batched branch
    rng = np.random.default_rng(11)
    module = generated_module(model)
    points = [random_overlaps(*size, rng) for _ in range(3)]
    for Q, R, T in points:
        got = module.rhs_terms(Q, R, T, 0.3, 0.09, 0.02)
        for g, w in zip(got, _combined(module, Q, R, T, 0.3, 0.09, 0.02)):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-13)
    Qb, Rb, Tb = (np.stack([pt[i] for pt in points]) for i in range(3))
    batched = module.rhs_terms(Qb, Rb, Tb, 0.3, 0.09, 0.02)
    for b, (Q, R, T) in enumerate(points):
        for g, w in zip(batched, module.rhs_terms(Q, R, T, 0.3, 0.09, 0.02)):
            np.testing.assert_allclose(g[b], w, rtol=1e-12, atol=1e-13)


def test_large_p_branches_agree_with_the_batched_code():
    # p = 300 takes the Gram (syrk) and blocked symmetric products of the unbatched branch
    rng = np.random.default_rng(12)
    module = generated_module(None)
    Q, R, T = random_overlaps(300, 4, rng)
    for name, args in [("all_terms", ()), ("first_order_terms", ()), ("rhs_terms", (0.4, 0.16, 0.0))]:
        single = getattr(module, name)(Q, R, T, *args)
        batched = getattr(module, name)(Q[None], R[None], T[None], *args)
        for g, w in zip(single, batched):
            np.testing.assert_allclose(g, w[0], rtol=1e-11, atol=1e-13 * np.max(np.abs(w)), err_msg=name)


def test_blocked_symmetric_product():
    rng = np.random.default_rng(13)
    module = generated_module(None)
    A = rng.standard_normal((301, 301))
    Q = A @ A.T / 301
    M = 0.3 * Q @ Q - 0.7 * Q + 0.1 * np.eye(301)
    Y = rng.standard_normal((301, 301))
    got = module._sym(Q, M, Y)
    np.testing.assert_allclose(got, Q @ M + Y + Y.T, rtol=1e-12, atol=1e-12)
    # off the diagonal blocks the lower triangle is the mirror of the upper one
    assert np.array_equal(got[76:, :75], got[:75, 76:].T)
    np.testing.assert_allclose(module._sym(Q, M), Q @ M, rtol=1e-12, atol=1e-12)


def test_public_rhs_equals_the_eta_combination_with_noise_and_weight_decay():
    import numerics

    model = Model(student_activation="x**3 - 3*x", teacher_activation="x**2 - 1", noise_variance=0.2,
                  weight_decay=0.1, name="he3_he2")
    Q, R, T = random_overlaps(3, 2, np.random.default_rng(14))
    eta = 0.05
    dQ, dR = numerics.rhs(Q, R, T, eta, model=model)
    drift_Q, drift_R, diffusion_Q, noise_Q = generated_module(model).all_terms(Q, R, T)
    expected_Q = eta * drift_Q + eta**2 * (diffusion_Q + 0.2 * noise_Q) - 2 * eta * 0.1 * Q
    np.testing.assert_allclose(dQ, expected_Q, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dR, eta * drift_R - eta * 0.1 * R, rtol=1e-12, atol=1e-14)
