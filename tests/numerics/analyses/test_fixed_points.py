"""Fixed points, their stability and the plateau of every model (numerics/analyses/fixed_points.py, plateau_search)."""

from __future__ import annotations

import numpy as np
import pytest

import derive.model.model as symbols
import derive.paper.plateau as closed_forms
from derive.model.model import HE3, SCM, Model
from numerics import escape_time, initial_conditions, integrate, plateau_noise, run_plateaus
from numerics.analyses.fixed_points import fixed_point, stability
from numerics.analyses.plateau import plateau_fixed_point
from numerics.analyses.plateau_search import Plateau

RELU = Model(student_activation="relu(x)", teacher_activation="relu(x)", student_readout=1, teacher_readout=1)
LINEAR = Model(student_activation="x", teacher_activation="x")


def _closed_form(expression, p, k, eta):
    return float(expression.subs({symbols.p: p, symbols.k: k, closed_forms.eta: eta}))


@pytest.mark.parametrize("second_order", [True, False])
def test_the_paper_plateau_and_its_escape_rate_are_the_closed_forms(second_order):
    p, k, eta = 3, 2, 0.1
    plateau = plateau_fixed_point(p, k, eta, second_order=second_order)
    q_star = _closed_form(closed_forms.norm_learning(second_order=second_order).fixed_point, p, k, eta)
    g_R = _closed_form(closed_forms.plateau_at_fixed_point(second_order=second_order).growth_R, p, k, eta)
    np.testing.assert_allclose(plateau.Q, q_star * np.eye(p), rtol=1e-13, atol=1e-15)
    assert plateau.kind == "R = 0" and np.all(plateau.R == 0)
    assert plateau.growth_rate == pytest.approx(g_R, rel=1e-12)
    assert plateau.log_slope == pytest.approx(1 / (2 * g_R), rel=1e-12)
    # every R entry grows at g_R, nothing else grows: the overlaps that escape are named
    assert plateau.stability.n_unstable == p * k
    for eigenvalue, direction in plateau.stability.unstable_directions():
        assert eigenvalue.real == pytest.approx(g_R, rel=1e-12)
        assert sum(value**2 for name, value in direction if name.startswith("R[")) == pytest.approx(1.0)


def test_a_mini_batch_plateau_is_the_single_sample_one_escaping_B_times_faster():
    p, k, eta, B = 3, 2, 0.2, 4
    batched = plateau_fixed_point(p, k, eta, batch_size=B)
    single = plateau_fixed_point(p, k, eta / B)
    np.testing.assert_allclose(batched.Q, single.Q, rtol=1e-12)
    assert batched.eta == single.eta == eta / B
    assert batched.growth_rate == pytest.approx(B * single.growth_rate, rel=1e-12)


@pytest.mark.parametrize(
    ("p", "k", "eta", "settings", "kind"),
    [
        (2, 2, 0.02, {"model": HE3}, "R = 0"),
        (2, 2, 0.1, {"model": SCM}, "symmetric"),  # Saad and Solla's symmetric plateau
        (2, 2, 0.1, {"model": RELU, "second_order": False}, "symmetric"),
        (2, 2, 0.05, {"model": SCM, "eta_a": 0.05}, "symmetric"),
        (2, 2, 0.1, {"model": SCM, "a": [0.5, 0.5], "b": [2.0, 2.0]}, "symmetric"),
    ],
    ids=["he3", "erf", "relu", "erf-trained-readout", "erf-readout-vectors"],
)
def test_plateaus_are_found_again_from_perturbed_starts(p, k, eta, settings, kind):
    plateau = plateau_fixed_point(p, k, eta, **settings)
    assert isinstance(plateau, Plateau) and plateau.kind == kind
    assert plateau.residual < 1e-12 and plateau.risk > plateau.noise_floor + 1e-3
    if kind == "symmetric":
        # one direction breaks the symmetry: it moves the teacher-student overlaps apart
        assert plateau.stability.n_unstable == 1 and plateau.growth_rate > 0
        direction = dict(plateau.stability.direction(0))
        assert set(direction) == {"R[0,0]", "R[0,1]", "R[1,0]", "R[1,1]"}
        assert direction["R[0,0]"] * direction["R[1,1]"] > 0 > direction["R[0,0]"] * direction["R[0,1]"]
    rng = np.random.default_rng(3)
    kick = 1e-3 * rng.standard_normal((p, p))
    start = {"a": plateau.a + 1e-3} if plateau.a is not None else {}
    found = fixed_point(plateau.Q + (kick + kick.T) / 2, plateau.R + 1e-3 * rng.standard_normal((p, k)), plateau.T,
                        eta, **(settings | start))
    assert found.residual < 1e-12
    np.testing.assert_allclose(found.Q, plateau.Q, atol=1e-9)
    np.testing.assert_allclose(found.R, plateau.R, atol=1e-9)
    assert found.risk == pytest.approx(plateau.risk, rel=1e-9)


def test_a_model_with_information_exponent_one_has_no_plateau_and_says_why():
    with pytest.raises(ValueError, match=r"R = 0 is not invariant .*information exponent 1.*without stalling"):
        plateau_fixed_point(2, 1, 0.1, model=LINEAR)
    with pytest.raises(ValueError, match="needs T = I"):
        plateau_fixed_point(2, 2, 0.1, model=SCM, T=np.diag([1.0, 2.0]))


def test_stability_names_the_directions_at_any_point_and_refuses_bad_input():
    p, k, eta = 2, 1, 0.1
    result = stability(0.5 * np.eye(p), np.zeros((p, k)), np.eye(k), eta)
    assert result.eigenvalues.shape == (5,) and np.all(np.diff(result.eigenvalues.real) <= 1e-15)
    assert result.jacobian.coordinates == ("Q[0,0]", "Q[0,1]", "Q[1,1]", "R[0,0]", "R[1,0]")
    with pytest.raises(ValueError, match="index"):
        result.direction(5)
    with pytest.raises(ValueError, match="one point"):
        stability(np.stack([np.eye(p)] * 2), np.zeros((2, p, k)), np.eye(k), eta)
    with pytest.raises(ValueError, match="did not converge|stalled"):
        fixed_point(np.eye(p), np.zeros((p, k)), np.eye(k), eta, max_iterations=1)


def test_saad_solla_escape_is_measured_against_the_symmetric_plateau_and_shifts_at_the_rate_g_R():
    # the classic run of integrate's docstring, from three sizes of the same R(0) direction
    direction = np.random.default_rng(0).standard_normal((2, 2))
    R0 = np.stack([1e-3 * direction, 1e-4 * direction, 1e-5 * direction])
    run = integrate(0.5 * np.eye(2), R0, np.eye(2), eta=0.5, model=SCM, alpha_max=700, n_points=700, grid="linear")
    plateau = run_plateaus(run)[0]
    assert plateau.kind == "symmetric" and plateau.risk == pytest.approx(0.014645, abs=1e-6)
    times = escape_time(run)
    assert np.all(np.isfinite(times)) and times[0] == pytest.approx(298.3, abs=0.5)
    # a tenfold smaller symmetry-breaking overlap is amplified at g_R: ln(10) / g_R later (N a hundredfold larger)
    shifts = np.diff(times)
    assert shifts[1] == pytest.approx(np.log(10) / plateau.growth_rate, rel=0.03)
    assert shifts[1] == pytest.approx(2 * np.log(10) * plateau.log_slope, rel=0.03)


def test_plateau_noise_says_precisely_why_it_does_not_apply():
    with pytest.raises(ValueError, match="does not grow at linear order"):
        plateau_noise(2, 2, 0.02, model=HE3)  # information exponent 3
    with pytest.raises(ValueError, match="no plateau"):
        plateau_noise(1, 1, 0.5, model=SCM)  # one erf student: R != 0 from the start and no symmetric plateau


@pytest.mark.parametrize("settings", [{"eta": 0.6, "batch_size": 2}, {"eta": 0.3, "a": [0.3, 0.3, 0.4]}],
                         ids=["mini-batch", "readout-vector"])
def test_escape_time_of_mini_batch_and_readout_vector_runs_uses_their_own_plateau(settings):
    Q0, R0, T = initial_conditions(3, 2, N=1e4, seed=4)
    run = integrate(Q0, R0, T, alpha_max=200, n_points=400, grid="linear", **settings)
    plateau = run_plateaus(run)[0]
    escape = escape_time(run)
    assert np.isfinite(escape)
    before = run.risk[run.alpha < escape]
    assert np.min(np.abs(before / plateau.risk - 1)) < 1e-2  # the run sits on this plateau before leaving it
