"""plateau_noise with label flips and with a trained readout: the spectrum, the noise and the escape they predict."""

import dataclasses

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from derive import SCM, Model
from numerics import integrate, jacobian, plateau_fixed_point, plateau_noise
from numerics.analyses.fixed_points import symmetric_ansatz
from numerics.analyses.linear_noise import ROUGH_PATH_TOLERANCE, escape_crossing, symmetric_path
from numerics.ode.jacobian import drift_at, unpack_state

PAPER_S = 0.6289760999649026  # plateau_noise(2, 2, 0.25) of the paper model, no flips
FLIPPED_SCM = Model(student_activation="erf(x/sqrt(2))", teacher_activation="erf(x/sqrt(2))", student_readout=1,
                    teacher_readout=1, label_flip="0.05")


def largest_eigenvalue_at_the_plateau(p, k, eta, **settings):
    """The largest real part of numerics.jacobian's eigenvalues at the run's plateau."""
    plateau = plateau_fixed_point(p, k, eta, **settings)
    readout = {} if plateau.a is None else {"a": plateau.a}
    matrix = jacobian(plateau.Q, plateau.R, np.eye(k), eta, **settings, **readout).matrix
    return float(np.max(np.linalg.eigvals(matrix).real))


def escape_consistency(noise, N, threshold):
    """``(law, ode)``: the predicted mean escape at N at |Z| = 1, and the ODE's from start +- sqrt(S/N) w."""
    at_one = float(noise.escape_alpha(N, threshold=threshold)) + noise.mean_log_amplitude() / noise.growth_R
    starts = noise.start + np.sqrt(noise.variance / N) * np.array([[1.0], [-1.0]]) * noise.start_direction
    trained = noise.settings.eta_a > 0
    Q0, R0, a0 = unpack_state(starts, noise.p, noise.k, trained)
    settings = dataclasses.replace(noise.settings, a=a0) if trained else noise.settings
    horizon = 1.5 * at_one
    run = integrate(Q0, R0, np.eye(noise.k), settings, alpha_max=horizon, alpha_eval=np.linspace(0, horizon, 4001))
    times = escape_crossing(np.asarray(run.alpha), np.asarray(run.risk), threshold * noise.plateau_risk)
    return at_one, times


# ---- label flips ------------------------------------------------------------------------------------------------


def test_flip_zero_is_the_unflipped_model_and_flips_change_the_paper_plateau():
    unflipped = plateau_noise(2, 2, 0.25, model=Model(label_flip=0))
    assert unflipped.variance == pytest.approx(PAPER_S, rel=1e-12, abs=0)
    flipped = plateau_noise(2, 2, 0.25, model=Model(label_flip=0.1))
    # an R = 0 plateau still, now with the flipped drift's rate, which the exact Jacobian confirms
    assert flipped.kind == "R = 0" and flipped.multiplicity == 4
    assert flipped.growth_R == pytest.approx(largest_eigenvalue_at_the_plateau(2, 2, 0.25, model=Model(label_flip=0.1)),
                                             rel=1e-9)
    # power: the flips are seen (a model that ignored them would give the unflipped numbers)
    assert abs(flipped.growth_R / unflipped.growth_R - 1) > 0.1 and abs(flipped.variance / PAPER_S - 1) > 0.1


@pytest.fixture(scope="module")
def flipped_noise():
    return plateau_noise(2, 2, 1.0, model=FLIPPED_SCM)


def test_flipped_erf_committee_rate_is_the_jacobians_eigenvalue(flipped_noise):
    assert flipped_noise.kind == "symmetric" and flipped_noise.multiplicity == 1
    assert flipped_noise.growth_R == pytest.approx(largest_eigenvalue_at_the_plateau(2, 2, 1.0, model=FLIPPED_SCM),
                                                   rel=1e-10)
    # power: the flips are seen (the unflipped committee's rate is 0.059, the flipped one 0.029)
    assert flipped_noise.growth_R < 0.6 * plateau_fixed_point(2, 2, 1.0, model=SCM).growth_rate


def test_flipped_erf_committee_escape_agrees_with_the_ode_from_the_noise_equivalent_start(flipped_noise):
    # flipped labels keep the risk high after the escape: the escape is the risk below 0.95 of the plateau's
    law, times = escape_consistency(flipped_noise, 1e6, 0.95)
    assert times[0] == pytest.approx(times[1], abs=0.5)
    # within 1%: a twofold error in the amplitude would shift the escape by ln(2) / g_R = 24 (about 10%)
    assert np.mean(times) == pytest.approx(law, rel=0.01)


# ---- a trained readout ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_noise():
    # the covariance's cost estimate from two points is pessimistic on a loaded machine: the limit is lifted
    return plateau_noise(2, 2, 1.0, model=SCM, eta_a=1.0, max_seconds=600)


def test_trained_readout_joins_the_state_and_its_rate_is_the_jacobians(trained_noise):
    assert trained_noise.coordinates[-2:] == ("a[0]", "a[1]") and trained_noise.start[-2:] == pytest.approx([1, 1])
    assert trained_noise.growth_R == pytest.approx(
        largest_eigenvalue_at_the_plateau(2, 2, 1.0, model=SCM, eta_a=1.0), rel=1e-10)
    # the students specialise: the unstable direction is antisymmetric, the (symmetric) readout does not move
    named = dict(trained_noise.named("unstable", 9))
    assert [np.sign(named[f"R[{j},{r}]"]) for j in range(2) for r in range(2)] == [1, -1, -1, 1]
    assert abs(named["a[0]"]) < 1e-9 and abs(named["a[1]"]) < 1e-9
    assert np.isfinite(trained_noise.variance) and trained_noise.variance > 0


def test_trained_readout_escape_agrees_with_the_ode_from_the_noise_equivalent_start(trained_noise):
    law, times = escape_consistency(trained_noise, 1e6, 0.5)
    assert times[0] == pytest.approx(times[1], abs=0.5)
    assert np.mean(times) == pytest.approx(law, rel=0.01)


def test_a_readout_too_slow_to_settle_is_refused_quickly():
    # eta_a far below eta: the readout would take alpha ~ 1e7 to settle; said at once, not after a long search
    with pytest.raises(ValueError, match=r"readout is still moving.*eta_a = 1e-06"):
        plateau_noise(2, 2, 0.25, eta_a=1e-6)
    with pytest.raises(ValueError, match=r"readout is still moving.*eta_a = 1e-06"):
        plateau_noise(2, 2, 0.5, model=SCM, eta_a=1e-6)


# ---- the symmetric path of a drift evaluated coarser than round-off ----------------------------------------------


def test_symmetric_path_keeps_the_fine_tolerance_for_smooth_drifts_and_follows_a_coarse_one():
    sign_teacher = Model(student_activation="erf(x/sqrt(2))", teacher_activation="sign(x)", student_readout=1,
                         teacher_readout=1, label_flip="0.1")
    alpha = np.linspace(0.0, 30.0, 61)
    for model, rtol in ((SCM, 1e-11), (sign_teacher, ROUGH_PATH_TOLERANCE)):
        drift, _ = drift_at(np.eye(2), np.zeros((2, 2)), np.eye(2), 0.5, None, {"model": model}, "test")
        _, reduced = symmetric_ansatz(drift)
        reference = solve_ivp(reduced, (0.0, 30.0), [1.0, 0.0, 0.0], method="LSODA", t_eval=alpha, rtol=rtol,
                              atol=1e-3 * rtol if rtol > 1e-11 else 1e-13).y.T
        path = unpack_state(symmetric_path(drift, 1.0, alpha), 2, 2, False)
        # the erf committee's path is the fine integration itself; the sign teacher's (whose eta**2 term is
        # evaluated to about 1e-9) the coarse one, which a fine integration could not follow in reasonable time
        assert np.array_equal(path[0][:, 0, 0], reference[:, 0]) and np.array_equal(path[1][:, 0, 0], reference[:, 2])
