"""The fast path of the public API: ``check=False``, the PSD test by Cholesky, the per-object model cache."""

import numpy as np
import pytest

import numerics
from derive.model.model import HE3, Model
from numerics.core.validation import PSD_RTOL, check_overlaps, is_positive_semidefinite, min_relative_eigenvalue
from numerics.runtime import registry as models


def point(p, k, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((p + k, 3 * (p + k))) / np.sqrt(3 * (p + k))
    C = W @ W.T
    return C[:p, :p].copy(), C[:p, p:].copy(), C[p:, p:].copy()


@pytest.mark.parametrize("model", [None, HE3, Model("x**3 + x", "x**2", noise_variance="0.1", weight_decay="0.01")])
@pytest.mark.parametrize("second_order", [True, False])
def test_unchecked_rhs_and_risk_equal_the_checked_ones(model, second_order):
    for batch in ((), (3,)):
        Q, R, T = point(4, 2)
        if batch:
            Q, R, T = (np.broadcast_to(a, batch + a.shape).copy() for a in (Q, R, T))
        checked = numerics.rhs(Q, R, T, 0.4, model=model, second_order=second_order)
        unchecked = numerics.rhs(Q, R, T, 0.4, model=model, second_order=second_order, check=False)
        for a, b in zip(checked, unchecked):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(numerics.risk(Q, R, T, model=model),
                                      numerics.risk(Q, R, T, model=model, check=False))


def test_checked_rhs_still_refuses_what_unchecked_skips():
    Q, R, T = point(3, 1)
    bad_Q = Q.copy()
    bad_Q[0, 0] = -1.0
    with pytest.raises(ValueError, match="positive semi-definite"):
        numerics.rhs(bad_Q, R, T, 0.3)
    numerics.rhs(bad_Q, R, T, 0.3, check=False)  # no validation: returns numbers for a non-covariance


def random_symmetric(rng, n, batch=()):
    A = rng.standard_normal(batch + (n, n))
    return (A + np.swapaxes(A, -1, -2)) / 2


@pytest.mark.parametrize("batch", [(), (4,)])
def test_cholesky_psd_test_decides_like_the_eigenvalues(batch):
    rng = np.random.default_rng(1)
    n = 6
    for _ in range(200):
        # spectra straddling the threshold -PSD_RTOL * scale from both sides, and singular ones
        vectors, _ = np.linalg.qr(rng.standard_normal(batch + (n, n)))
        eigenvalues = rng.uniform(0.0, 3.0, batch + (n,))
        shift = rng.choice([0.0, -0.3 * PSD_RTOL, -3 * PSD_RTOL, -1e-3, 1e-12])
        eigenvalues[..., 0] = shift * np.maximum(1.0, np.abs(eigenvalues).max(-1))
        C = (vectors * eigenvalues[..., None, :]) @ np.swapaxes(vectors, -1, -2)
        C = (C + np.swapaxes(C, -1, -2)) / 2
        expected = bool(np.min(min_relative_eigenvalue(C)) >= -PSD_RTOL)
        assert is_positive_semidefinite(C) == expected, (shift, batch)
    assert not is_positive_semidefinite(random_symmetric(rng, n, batch) - 10 * np.eye(n))


def test_singular_covariances_pass():
    # tabula rasa (Q = 0, R = 0) and a rank-deficient teacher: PSD, not positive definite
    check_overlaps(np.zeros((3, 3)), np.zeros((3, 2)), np.zeros((2, 2)))
    check_overlaps(np.eye(2), np.zeros((2, 2)), np.array([[1.0, 1.0], [1.0, 1.0]]))


def test_asymmetric_and_nonfinite_inputs_keep_their_messages():
    Q, R, T = point(3, 2)
    asym = Q.copy()
    asym[0, 1] += 1e-3
    with pytest.raises(ValueError, match="Q must be symmetric"):
        check_overlaps(asym, R, T)
    asym_T = T.copy()
    asym_T[0, 1] += 1e-3
    with pytest.raises(ValueError, match="T must be symmetric"):
        check_overlaps(Q, R, asym_T)
    for name, arrays in (("Q", (Q.copy(), R, T)), ("R", (Q, R.copy(), T))):
        arrays[0 if name == "Q" else 1][0, 1] = np.nan
        with pytest.raises(ValueError, match=f"{name} contains NaN"):
            check_overlaps(*arrays)


def test_large_finite_entries_are_not_mistaken_for_overflow():
    # the scale of the PSD test must not overflow either
    Q = np.full((2, 2), 1e308)
    Q[0, 1] = Q[1, 0] = 0.0
    check_overlaps(Q, np.zeros((2, 1)), np.eye(1))


def test_resolve_hashes_each_model_object_once(monkeypatch):
    model = Model("x**2", "x**2", noise_variance="0.2")
    calls = []
    original = Model.codegen_hash

    def counting(self):
        calls.append(self)
        return original(self)

    monkeypatch.setattr(Model, "codegen_hash", counting)
    first = models.resolve(model, sizes=(3, 1))
    for _ in range(5):
        assert models.resolve(model, sizes=(3, 1)) is first
    assert len(calls) == 1
    assert first.noise_variance == pytest.approx(0.2)
    # an equal but distinct object resolves to the same generated module
    assert models.resolve(Model("x**2", "x**2", noise_variance="0.2")).module is first.module


def test_readouts_checked_at_each_new_width():
    model = Model(student_readout="1/(p - 9)")
    models.resolve(model, sizes=(3, 1))
    with pytest.raises(ValueError, match="p = 9"):
        models.resolve(model, sizes=(9, 1))
    with pytest.raises(ValueError, match="p = 9"):  # still refused the second time
        models.resolve(model, sizes=(9, 1))


def blas_thread_counts():
    from threadpoolctl import threadpool_info

    return [entry["num_threads"] for entry in threadpool_info() if entry["user_api"] == "blas"]


def test_integrate_and_simulate_run_with_one_blas_thread(monkeypatch):
    import importlib
    import inspect

    integrate_module = importlib.import_module("numerics.ode.flow")  # where the solver calls the right-hand side

    seen = []
    original = integrate_module.rhs_unchecked

    def spy(*args):
        seen.append(set(blas_thread_counts()))
        return original(*args)

    monkeypatch.setattr(integrate_module, "rhs_unchecked", spy)
    Q, R, T = point(3, 1)
    numerics.integrate(Q, R, T, eta=0.3, alpha_max=0.1, n_points=3)
    assert seen and all(counts == {1} for counts in seen)
    for function in (numerics.integrate, numerics.simulate):
        assert "blas_threads" in inspect.signature(function).parameters
    with pytest.raises(ValueError, match="blas_threads"):
        numerics.integrate(Q, R, T, eta=0.3, alpha_max=0.1, blas_threads=0)
    with pytest.raises(ValueError, match="blas_threads"):
        numerics.simulate(N=20, p=2, k=1, eta=0.1, alpha_max=0.1, progress=False, blas_threads="many")
