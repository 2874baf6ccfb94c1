"""plateau_noise as a linear-noise approximation: R = 0 plateaus as before, the erf committee's symmetric plateau."""

import dataclasses

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from derive import SCM, Model
from derive.model.model import HE2
from numerics import RunSettings, integrate, plateau_fixed_point, plateau_noise
from numerics.analyses.linear_noise import batched_expm, escape_crossing, growth_covectors, trapezoid_cumulative
from numerics.ode.jacobian import unpack_state

RELU = Model(student_activation="relu(x)", teacher_activation="relu(x)", student_readout=1, teacher_readout=1)


@pytest.mark.parametrize(("model", "eta", "scalar_formula"), [(None, 0.25, 0.6289760999649026),
                                                              (HE2, 0.1, 0.19502319374095806)], ids=["paper", "he2"])
def test_r_zero_plateaus_keep_the_scalar_formula(model, eta, scalar_formula):
    # the numbers of int exp(-2 Gamma) sigma^2 with Gamma from d(dR_00)/dR_00 and sigma^2 = Var(r_00),
    # as plateau_noise computed them before it handled symmetric plateaus
    noise = plateau_noise(2, 2, eta, model=model)
    assert noise.variance == pytest.approx(scalar_formula, rel=1e-6)
    assert noise.kind == "R = 0" and noise.multiplicity == 4
    assert noise.named("start_direction", 1) == (("R[0,0]", 1.0),)
    assert noise.effective_variance(1.0) == pytest.approx(noise.variance + 1.0)


def test_batched_expm_matches_the_series_of_a_diagonalisable_matrix():
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(4, 5, 5))
    rates = rng.normal(scale=3.0, size=(4, 5))
    matrices = vectors @ (rates[..., None] * np.linalg.inv(vectors))
    expected = vectors @ (np.exp(rates)[..., None] * np.linalg.inv(vectors))
    assert np.allclose(batched_expm(matrices), expected, rtol=1e-10, atol=1e-10 * np.max(np.abs(expected)))


def test_growth_covector_integral_is_the_propagated_covariance_along_u():
    """int exp(-2 g s) b^T Sigma b ds = lim exp(-2 g alpha) u^T P u, P' = J P + P J^T + Sigma, P(0) = 0."""
    rng = np.random.default_rng(5)
    basis = np.eye(3) + 0.4 * rng.normal(size=(3, 3))  # non-normal: left and right eigenvectors differ
    J_star = basis @ np.diag([0.5, -1.0, -2.0]) @ np.linalg.inv(basis)
    K, root = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))

    def J(alpha):
        return J_star + np.exp(-alpha) * K

    def Sigma(alpha):
        return np.eye(3) + np.exp(-alpha) * (root @ root.T)

    u = np.linalg.inv(basis)[0] / np.linalg.norm(np.linalg.inv(basis)[0])  # left eigenvector for g = 0.5
    alpha = np.linspace(0.0, 40.0, 8001)
    Sigmas = np.stack([Sigma(a) for a in alpha])

    def noise_integral(jacobians):
        b = growth_covectors(jacobians, alpha, 0.5, u)
        return trapezoid_cumulative(np.exp(-alpha) * np.einsum("ai,aij,aj->a", b, Sigmas, b), alpha)[-1]

    by_covectors = noise_integral(np.stack([J(a) for a in alpha]))

    def lyapunov(a, P):
        P = P.reshape(3, 3)
        return (J(a) @ P + P @ J(a).T + Sigma(a)).ravel()

    P = solve_ivp(lyapunov, (0.0, 40.0), np.zeros(9), rtol=1e-11, atol=1e-12).y[:, -1].reshape(3, 3)
    propagated = np.exp(-40.0) * u @ P @ u
    assert by_covectors == pytest.approx(propagated, rel=1e-4)
    # power: propagating with the transposed Jacobian (right instead of left eigen-directions) is far off
    assert abs(noise_integral(np.stack([J(a).T for a in alpha])) / propagated - 1) > 0.05


@pytest.fixture(scope="module")
def erf_noise():
    return plateau_noise(2, 2, 0.5, model=SCM)


def test_erf_symmetric_plateau_noise_is_along_the_specialising_direction(erf_noise):
    plateau = plateau_fixed_point(2, 2, 0.5, model=SCM)
    assert erf_noise.kind == "symmetric" and erf_noise.multiplicity == 1
    assert erf_noise.growth_R == plateau.growth_rate and erf_noise.log_slope == pytest.approx(15.81, abs=0.01)
    # the students specialise: R[0,0], R[1,1] against R[0,1], R[1,0], nothing on Q
    for vector in ("unstable", "start_direction"):
        named = dict(erf_noise.named(vector, 7))
        assert [np.sign(named[f"R[{j},{r}]"]) for j in range(2) for r in range(2)] == [1, -1, -1, 1]
        assert all(abs(named[name]) == pytest.approx(0.5, abs=1e-9) for name in named if name.startswith("R["))
        assert all(abs(named[name]) < 1e-9 for name in named if name.startswith("Q["))
    assert 0.05 < erf_noise.variance < 0.07
    # on the plateau the growth covector is u itself, and Gamma grows at g_R
    assert np.all(np.diff(erf_noise.gamma[-100:]) / np.diff(erf_noise.alpha[-100:])
                  == pytest.approx(erf_noise.growth_R, rel=1e-6))


def test_erf_escape_law_agrees_with_the_ode_from_the_noise_equivalent_start(erf_noise):
    """At N = 1e6 the ODE from start +- sqrt(S/N) w escapes where the log law says, for that amplitude."""
    N = 1e6
    law = float(erf_noise.escape_alpha(N))
    # the law is the mean over the Gaussian amplitude Z; at |Z| = 1 the escape is E ln|Z| / g_R later
    at_one = law + erf_noise.mean_log_amplitude() / erf_noise.growth_R
    amplitude = np.sqrt(erf_noise.variance / N)
    starts = erf_noise.start + amplitude * np.array([[1.0], [-1.0]]) * erf_noise.start_direction
    Q0, R0, _ = unpack_state(starts, 2, 2, False)
    run = integrate(Q0, R0, np.eye(2), eta=0.5, model=SCM, alpha_max=500, alpha_eval=np.linspace(0, 500, 2001))
    times = escape_crossing(np.asarray(run.alpha), np.asarray(run.risk), 0.5 * erf_noise.plateau_risk)
    # both signs leave alike (exchanging the students maps one to the other)
    assert times[0] == pytest.approx(times[1], abs=0.5)
    # within 1%: a twofold error in the amplitude would shift the escape by ln(2) / g_R = 22 (7%)
    assert np.mean(times) == pytest.approx(at_one, rel=0.01)


def test_plateau_noise_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="no plateau"):
        plateau_noise(1, 1, 0.5, model=SCM)  # one erf student learns without a plateau
    with pytest.raises(ValueError, match="s per point"):
        plateau_noise(2, 2, 0.1, model=RELU, max_seconds=1.0)  # 4,300 points before 20 / g_R alone


# ---- the run's settings: mini-batches, readout vectors, refusals -------------------------------------------------

PAPER_S = 0.6289760999649026  # plateau_noise(2, 2, 0.25) before it took settings


def test_default_settings_give_the_same_noise():
    by_keyword = plateau_noise(2, 2, 0.25)
    by_settings = plateau_noise(2, 2, settings=RunSettings(eta=0.25))
    assert by_keyword.variance == pytest.approx(PAPER_S, rel=1e-12, abs=0)
    assert by_settings.variance == by_keyword.variance and by_settings.growth_R == by_keyword.growth_R
    assert by_keyword.settings == RunSettings(eta=0.25)


def test_mini_batch_divides_the_noise_by_b_at_fixed_drift():
    # without the eta**2 term the drift does not depend on B and the covariance is eta**2 C / B: S -> S / B
    single = plateau_noise(2, 2, 0.25, second_order=False)
    batched = plateau_noise(2, 2, 0.25, second_order=False, batch_size=4)
    assert batched.growth_R == pytest.approx(single.growth_R, rel=1e-12)
    assert batched.variance == pytest.approx(single.variance / 4, rel=1e-9)
    # with it, the drift changes with B too (the plateau and g_R of the mini-batch ODE): not simply S / B
    full = plateau_noise(2, 2, 0.25, batch_size=4)
    assert full.growth_R == pytest.approx(plateau_fixed_point(2, 2, 0.25, batch_size=4).growth_rate, rel=1e-9)
    assert abs(full.variance / (PAPER_S / 4) - 1) > 0.1
    # the escape runs the mini-batch ODE: without the settings the offset differs
    unbatched = dataclasses.replace(full, settings=None, _offsets={})
    assert abs(full.escape_offset() - unbatched.escape_offset()) > 1.0


def test_uniform_readout_vectors_are_the_scalar_readout():
    readout = plateau_noise(2, 2, 0.25, a=np.full(2, 0.5), b=np.full(2, 0.5))  # the paper model's 1/p, 1/k
    assert readout.variance == pytest.approx(PAPER_S, rel=1e-9)
    assert readout.growth_R == pytest.approx(plateau_noise(2, 2, 0.25).growth_R, rel=1e-9)
    assert readout.multiplicity == 4


def test_non_uniform_readout_gives_a_finite_noise_along_the_fastest_unit():
    a = np.array([0.5, 0.3])
    noise = plateau_noise(2, 1, 0.25, a=a)
    assert np.isfinite(noise.variance) and noise.variance > 0
    assert noise.growth_R == pytest.approx(plateau_fixed_point(2, 1, 0.25, a=a).growth_rate, rel=1e-9)
    # one unit grows fastest: a simple g_R along its R entry, unlike the uniform readout's repeated one
    assert noise.multiplicity == 1 and noise.named("start_direction", 1) == (("R[0,0]", 1.0),)
    uniform = plateau_noise(2, 1, 0.25)  # a = (0.5, 0.5): unit 0 alike, so close, but the readout is not ignored
    assert uniform.multiplicity == 2 and abs(noise.variance / uniform.variance - 1) > 0.005


# a trained readout is taken where the full state has a plateau; the paper model's readout decays while Q grows,
# so there is none, said by name. Label flips are taken (tests/numerics/analyses/test_plateau_noise_settings.py)
@pytest.mark.parametrize(("settings", "named"), [
    ({"eta_a": 0.1}, "trained readout is still moving"), ({"spherical": True}, "spherical"),
    ({"sam_radius": 0.1}, "sam_radius"),
])
def test_plateau_noise_refuses_settings_it_cannot_honour(settings, named):
    with pytest.raises(ValueError, match=named):
        plateau_noise(2, 2, 0.25, **settings)
    with pytest.raises(TypeError, match="learning rate"):
        plateau_noise(2, 2)
