"""Per-unit and trained second-layer readouts: ODE, simulation, persistence, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from gauss_quadrature import gaussian_nodes
from scipy.special import erf

import numerics
from derive.model.model import SCM, Model
from numerics.simulators.weights import compare_ode_simulation, simulate

P, K = 2, 3


def overlaps(seed: int = 0, p: int = P, k: int = K):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((p + k, p + k + 2))
    C = A @ A.T
    C = C / np.linalg.eigvalsh(C)[-1]
    return C[:p, :p], C[:p, p:], C[p:, p:]


def test_trained_readout_drift_against_quadrature():
    # da_j/dalpha = eta_a <(y - f) sigma(lambda_j)>, with label noise (zero mean: no effect on da)
    Q, R, T = overlaps(1, p=1, k=2)
    a, b = np.array([0.8]), np.array([1.1, -0.4])
    model = SCM.with_noise("0.3")
    z, w = gaussian_nodes(np.block([[Q, R], [R.T, T]]), 50)
    sigma = erf(z / np.sqrt(2))
    residual = sigma[:, 1:] @ b - sigma[:, :1] @ a
    expected = 0.7 * (w * residual) @ sigma[:, :1]
    _, _, da = numerics.rhs(Q, R, T, 0.5, model=model, a=a, b=b, eta_a=0.7)
    np.testing.assert_allclose(da, expected, rtol=0, atol=1e-10)
    # eta_a = 0: a fixed readout, zero derivative
    _, _, still = numerics.rhs(Q, R, T, 0.5, model=model, a=a, b=b, eta_a=0.0)
    assert np.all(still == 0)


def test_vector_readouts_change_the_terms_like_a_quadrature():
    # a committee with signs: the index-free route cannot express it
    Q, R, T = overlaps(2)
    a, b = np.array([1.0, -1.0]), np.array([1.0, 1.0, -1.0])
    model = Model(student_activation="x**2", teacher_activation="x**2")
    z, w = gaussian_nodes(np.block([[Q, R], [R.T, T]]), 4)
    lam, nu = z[:, :P], z[:, P:]
    residual = nu**2 @ b - lam**2 @ a
    E = residual[:, None] * a * 2 * lam
    dR = 0.3 * (w[:, None] * E).T @ nu
    half = (w[:, None] * E).T @ lam
    dQ = 0.3 * (half + half.T) + 0.09 * (w[:, None] * E).T @ E
    got_Q, got_R = numerics.rhs(Q, R, T, 0.3, model=model, a=a, b=b)
    np.testing.assert_allclose(got_R, dR, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_Q, dQ, rtol=1e-12, atol=1e-12)
    risk = 0.5 * w @ residual**2
    assert abs(numerics.risk(Q, R, T, model=model, a=a, b=b) - risk) < 1e-12


def test_integrate_with_a_trained_readout_conserves_the_fixed_point_and_batches():
    Q, R, T = overlaps(3, p=2, k=2)
    a0 = np.array([0.6, 1.2])
    single = numerics.integrate(Q, R, T, eta=0.4, alpha_max=3.0, model=SCM, a=a0, eta_a=0.5, n_points=6)
    assert single.a.shape == (6, 2) and single.eta_a == 0.5
    np.testing.assert_array_equal(single.a[0], a0)
    assert not np.allclose(single.a[-1], a0)
    batched = numerics.integrate(
        np.stack([Q, Q]), np.stack([R, R]), T, eta=0.4, alpha_max=3.0, model=SCM, a=np.stack([a0, a0]),
        eta_a=0.5, n_points=6,
    )
    assert batched.a.shape == (2, 6, 2)
    np.testing.assert_allclose(batched.a[1], single.a, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(batched.risk[0], single.risk, rtol=1e-7, atol=1e-10)
    # the risk along the run is the per-tuple risk at the recorded readout
    for i in (0, 3, 5):
        expected = numerics.risk(single.Q[i], single.R[i], T, model=SCM, a=single.a[i])
        assert abs(single.risk[i] - expected) < 1e-12


def test_fixed_readout_vectors_equal_the_scalar_route():
    Q, R, T = overlaps(4, p=2, k=2)
    scalar = numerics.integrate(Q, R, T, eta=0.5, alpha_max=5.0, model=SCM, n_points=8)
    vector = numerics.integrate(Q, R, T, eta=0.5, alpha_max=5.0, model=SCM, n_points=8, a=np.ones(2), b=np.ones(2))
    np.testing.assert_allclose(vector.risk, scalar.risk, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(vector.Q, scalar.Q, rtol=1e-9, atol=1e-12)
    assert np.all(vector.a == 1.0) and scalar.a is None


def test_saved_result_keeps_the_readout(tmp_path):
    Q, R, T = overlaps(5, p=2, k=2)
    result = numerics.integrate(Q, R, T, eta=0.3, alpha_max=1.0, model=SCM, a=np.ones(2), eta_a=0.2, n_points=4)
    dataset = result.to_xarray()
    assert dataset["a"].dims == ("alpha", "student")
    loaded = numerics.load(result.save(tmp_path / "run.nc"))
    np.testing.assert_array_equal(loaded.a, result.a)
    assert loaded.eta_a == 0.2 and loaded.model == SCM and loaded.b is None


def test_simulate_trains_the_readout_like_hand_computed_steps():
    # two steps of the weight simulator against the update rules written out
    N, p, k, eta, eta_a = 40, 2, 1, 0.7, 0.9
    sim = simulate(N=N, p=p, k=k, eta=eta, alpha_max=2 / N, model=SCM, seed=5, record=[0, 2 / N], progress=False,
                   a=np.array([0.5, -1.0]), b=np.array([1.5]), eta_a=eta_a)
    from numerics.simulators.common import replica_streams
    from numerics.simulators.weights import orthonormal_rows

    stream = replica_streams(5, 1)[0]
    W_star = np.sqrt(N) * orthonormal_rows(stream.init, k, N)
    W = np.sqrt(N) * orthonormal_rows(stream.init, p, N)
    a, b = np.array([0.5, -1.0]), np.array([1.5])
    sigma = lambda z: erf(z / np.sqrt(2))  # noqa: E731
    for _ in range(2):
        x = stream.inputs.standard_normal(N)
        lam, nu = W @ x / np.sqrt(N), W_star @ x / np.sqrt(N)
        residual = b @ sigma(nu) - a @ sigma(lam)
        E = residual * a * np.sqrt(2 / np.pi) * np.exp(-(lam**2) / 2)
        W = W + eta / np.sqrt(N) * np.outer(E, x)
        a = a + eta_a / N * residual * sigma(lam)
    np.testing.assert_allclose(sim.a[-1], a, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sim.Q[-1], W @ W.T / N, rtol=1e-12, atol=1e-14)


@pytest.mark.slow  # > 5 s
def test_ode_against_simulation_with_a_trained_second_layer():
    # finite-size convergence of the distance, as in tests/numerics/simulators/test_simulate.py: slope -1/2 in log-log
    Ns = np.array([250, 1000, 4000])
    means, errors = [], []
    for N in Ns:
        sim = simulate(N=int(N), p=2, k=2, eta=0.5, alpha_max=3.0, model=SCM, q0=0.5, seed=7, replicas=8, record=12,
                       a=np.array([0.7, 0.9]), eta_a=0.5, progress=False)
        comparison = compare_ode_simulation(sim)
        distance = np.maximum(comparison.risk_distance, comparison.a_distance)
        means.append(distance.mean())
        errors.append(distance.std(ddof=1) / np.sqrt(distance.size))
    means, errors = np.array(means), np.array(errors)
    assert np.all(np.diff(means) < 0), means
    weights = 1 / (errors / means) ** 2
    x, y = np.log(Ns), np.log(means)
    xm, ym = np.average(x, weights=weights), np.average(y, weights=weights)
    slope = np.sum(weights * (x - xm) * (y - ym)) / np.sum(weights * (x - xm) ** 2)
    slope_error = 1 / np.sqrt(np.sum(weights * (x - xm) ** 2))
    assert abs(slope + 0.5) < 4 * slope_error, (slope, slope_error, means)
    assert means[-1] < 0.02, means


def test_reduced_simulator_runs_erf():
    sim = simulate(N=300, p=2, k=2, eta=0.5, alpha_max=0.5, model=SCM, seed=3, record=5, method="overlaps",
                   progress=False)
    assert np.all(np.isfinite(sim.risk))
    with pytest.raises(ValueError, match="method='weights' only"):
        simulate(N=300, p=2, k=2, eta=0.5, alpha_max=0.5, model=SCM, method="overlaps", eta_a=0.1, progress=False)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"a": np.ones(3)}, r"a must have length p = 2"),
        ({"b": np.ones(1)}, r"b must have length k = 3"),
        ({"a": np.array([1.0, np.nan])}, r"a contains NaN"),
        ({"eta_a": -0.1}, r"eta_a"),
        ({"a": "ones"}, r"\ba\b"),
    ],
)
def test_bad_readouts_are_refused(changes, match):
    Q, R, T = overlaps(6)
    with pytest.raises(ValueError, match=match):
        numerics.rhs(Q, R, T, 0.1, model=SCM, **changes)
    with pytest.raises(ValueError, match=match):
        numerics.integrate(Q, R, T, eta=0.1, alpha_max=1.0, model=SCM, **changes)
    with pytest.raises(ValueError, match=match):
        simulate(N=20, p=P, k=K, eta=0.1, alpha_max=0.1, model=SCM, progress=False, **changes)


def test_per_tuple_modules_go_through_the_verified_cache(tmp_path, monkeypatch):
    # an uncommitted erf model and the per-tuple module of an uncommitted polynomial model are written
    # to the cache with their header, verified on load, and regenerated after a hand edit
    from derive.codegen.artefacts import verify_generated_text
    from derive.codegen.tuples import tuple_input_hash
    from numerics.runtime import registry as models
    from numerics.runtime.cache import cache_path

    monkeypatch.setenv("WICKODE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(models, "_LOADED", {})
    erf_model = Model(student_activation="erf(x/sqrt(2))", teacher_activation="x**2", name="erf_x2")
    polynomial = Model(student_activation="x**2 + x", teacher_activation="x**2")
    Q, R, T = overlaps(9)
    expected = numerics.risk(Q, R, T, model=erf_model)
    numerics.risk(Q, R, T, model=polynomial, a=np.ones(P))
    for kind, key in (("model", erf_model.codegen_hash()), ("tuples", tuple_input_hash(polynomial))):
        path = cache_path(kind, key)
        verify_generated_text(path.read_text(), key)
    path = cache_path("model", erf_model.codegen_hash())
    edited = path.read_text().replace("\n    return ", "\n    return 1.5 * ", 1)
    assert edited != path.read_text()
    path.write_text(edited)
    monkeypatch.setattr(models, "_LOADED", {})
    assert numerics.risk(Q, R, T, model=erf_model) == expected
    assert path.read_text() != edited
    verify_generated_text(path.read_text(), erf_model.codegen_hash())


@pytest.mark.parametrize("model", [None, SCM], ids=["paper", "scm"])
def test_gradient_and_hessian_with_readout_vectors_against_finite_differences(model):
    # eps(W) = risk(W W^T / N, W W*^T / N, T; a, b): its gradient and Hessian in weight space
    from numerics.analyses import landscape

    rng = np.random.default_rng(12)
    p, k, N = 2, 2, 5
    W, W_star = 0.6 * rng.standard_normal((p, N)), rng.standard_normal((k, N))
    a, b = np.array([1.2, -0.7]), np.array([0.9, 0.4])

    def eps(weights):
        return numerics.risk(weights @ weights.T / N, weights @ W_star.T / N, W_star @ W_star.T / N,
                             model=model, a=a, b=b)

    h = 1e-5
    numeric = np.zeros((p, N))
    for index in np.ndindex(p, N):
        step = np.zeros((p, N))
        step[index] = h
        numeric[index] = (eps(W + step) - eps(W - step)) / (2 * h)
    gradient = landscape.gradient(W, W_star, model=model, a=a, b=b)
    np.testing.assert_allclose(gradient, numeric, rtol=0, atol=1e-8)
    # the Hessian: central differences of the exact gradient
    hessian = landscape.hessian(W, W_star, model=model, a=a, b=b)
    columns = []
    for index in np.ndindex(p, N):
        step = np.zeros((p, N))
        step[index] = h
        plus = landscape.gradient(W + step, W_star, model=model, a=a, b=b)
        minus = landscape.gradient(W - step, W_star, model=model, a=a, b=b)
        columns.append(((plus - minus) / (2 * h)).ravel())
    np.testing.assert_allclose(hessian, np.array(columns).T, rtol=0, atol=1e-7)
    # uniform readouts equal the model's own (index-free for the paper model)
    scalar = landscape.gradient(W, W_star, model=model)
    a0, b0 = numerics.runtime.registry.tuple_module(model).readouts(p, k)
    np.testing.assert_allclose(landscape.gradient(W, W_star, model=model, a=np.full(p, a0), b=np.full(k, b0)), scalar,
                               rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="a must have length p = 2"):
        landscape.hessian(W, W_star, model=model, a=np.ones(3))


def test_readout_batches_must_match_the_starts_and_replicas():
    Q, R, T = overlaps(10, p=2, k=2)
    with pytest.raises(ValueError, match=r"a has shape \(3, 2\).* the batch of starts \(2,\)"):
        numerics.integrate(np.stack([Q, Q]), np.stack([R, R]), T, eta=0.1, alpha_max=1.0, model=SCM,
                           a=np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"b has shape \(3, 2\).* the replicas \(2,\)"):
        simulate(N=20, p=2, k=2, eta=0.1, alpha_max=0.1, model=SCM, replicas=2, b=np.ones((3, 2)), progress=False)
    # one row per replica is accepted, and so is a single replica given with a leading axis
    sim = simulate(N=20, p=2, k=2, eta=0.1, alpha_max=0.2, model=SCM, replicas=2, a=np.ones((2, 2)), eta_a=0.1,
                   record=[0.0, 0.1, 0.2], progress=False)
    assert sim.a.shape == (2, 3, 2)
    single = simulate(N=20, p=2, k=2, eta=0.1, alpha_max=0.2, model=SCM, a=np.ones((1, 2)), record=[0.0, 0.1, 0.2],
                      progress=False)
    assert single.a.shape == (3, 2)


def test_readout_checks_of_the_module():
    from numerics.ode.readouts import check_readout_batch, check_readout_vector, check_readouts

    np.testing.assert_array_equal(check_readout_vector([1, 2], "a", 2, "p"), [1.0, 2.0])
    assert check_readout_vector(np.ones((4, 3)), "b", 3, "k").shape == (4, 3)
    with pytest.raises(ValueError, match=r"b must have length k = 3 .* got shape \(2,\)"):
        check_readout_vector(np.ones(2), "b", 3, "k")
    assert check_readouts(None, None, None, 2, 3) == (None, None, 0.0)
    with pytest.raises(ValueError, match="eta_a"):
        check_readouts(None, None, -1.0, 2, 3)
    check_readout_batch(np.ones((4, 2)), np.ones(3), (4,), "the replicas")  # b broadcasts
    with pytest.raises(ValueError, match=r"a has shape \(3, 2\).*the replicas \(4,\)"):
        check_readout_batch(np.ones((3, 2)), None, (4,), "the replicas")


def test_readout_rhs_scales_its_parts_like_the_scalar_rhs():
    # the eta**2 part divided by the batch size, weight decay on the first layer, da = eta_a * readout_drift
    from numerics.ode.readouts import readout_rhs
    from numerics.runtime.registry import tuple_module

    module = tuple_module(SCM)
    Q, R, T = overlaps(7)
    a, b = np.array([0.7, -0.4]), np.array([1.0, 0.5, 2.0])
    common = dict(noise_variance=0.2, second_order=True)
    dQ, dR, da = readout_rhs(module, Q, R, T, 0.3, a, b, 0.0, weight_decay=0.0, **common)
    np.testing.assert_array_equal(da, np.zeros(P))
    first = readout_rhs(module, Q, R, T, 0.3, a, b, 0.0, weight_decay=0.0, noise_variance=0.2, second_order=False)
    halved = readout_rhs(module, Q, R, T, 0.3, a, b, 0.0, weight_decay=0.0, batch_size=2, **common)
    np.testing.assert_allclose(halved[0] - first[0], (dQ - first[0]) / 2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(first[1], dR, rtol=1e-12)  # dR has no eta**2 part
    decayed = readout_rhs(module, Q, R, T, 0.3, a, b, 0.0, weight_decay=0.1, **common)
    np.testing.assert_allclose(decayed[0], dQ - 2 * 0.3 * 0.1 * Q, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(decayed[1], dR - 0.3 * 0.1 * R, rtol=1e-12, atol=1e-15)
    trained = readout_rhs(module, Q, R, T, 0.3, a, b, 0.5, weight_decay=0.0, **common)
    np.testing.assert_allclose(trained[2], 0.5 * module.readout_drift(Q, R, T, a, b), rtol=1e-12)
