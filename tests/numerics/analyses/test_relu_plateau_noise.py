"""plateau_noise for a relu committee's symmetric plateau (numerics/analyses/finite_n.py, linear_noise.py).

relu units on both sides, readouts 1, p = k = 2, label noise 0.5, eta = 1: a symmetric plateau (risk 0.82)
whose slowest stable mode (-0.021) is close enough to the escape rate (0.017) for a short noise grid (536
points, 630 before the grid beyond 20 / g_R followed the path), so that the whole prediction costs a few
seconds. After the escape the students specialise and the risk settles 4.4% lower: the escape is timed where
the risk falls below 0.97 of the plateau's.

Without label noise (eta = 1) the plateau's slowest stable mode (-0.006) is far slower than its escape (0.136):
the candidate grid runs to alpha ~ 2000 in steps of 0.05 / g_R, thousands of points, but beyond 20 / g_R the
symmetric path has stopped and the grid follows it (linear_noise.settled_thinning): the run fits the default
cost guard.
"""

import numpy as np
import pytest

from derive import Model
from numerics import integrate, plateau_noise
from numerics.analyses.linear_noise import INTEGRAND_HORIZON, escape_crossing
from numerics.ode.jacobian import unpack_state

RELU_NOISE_FREE = Model(student_activation="relu(x)", teacher_activation="relu(x)", student_readout=1,
                        teacher_readout=1)
RELU = RELU_NOISE_FREE.with_noise(0.5)
ETA, THRESHOLD = 1.0, 0.97


@pytest.fixture(scope="module")
def relu_noise():
    return plateau_noise(2, 2, ETA, model=RELU, points_per_unit=2)


def test_relu_symmetric_plateau_noise_is_along_the_specialising_direction(relu_noise):
    assert relu_noise.kind == "symmetric" and relu_noise.multiplicity == 1
    assert relu_noise.growth_R > 0 and relu_noise.plateau_risk > 0.5  # a plateau well above the noise floor
    named = dict(relu_noise.named("start_direction", 7))
    assert [np.sign(named[f"R[{j},{r}]"]) for j in range(2) for r in range(2)] == [1, -1, -1, 1]
    assert all(abs(named[name]) < 1e-9 for name in named if name.startswith("Q["))
    assert np.isfinite(relu_noise.variance) and relu_noise.variance > 0


def ode_escapes(noise, model, N, threshold):
    """``(law, times)``: the log law's escape for ``|Z| = 1`` and the ODE's from start +- sqrt(S/N) w (two signs)."""
    at_one = float(noise.escape_alpha(N, threshold=threshold)) + noise.mean_log_amplitude() / noise.growth_R
    starts = noise.start + np.sqrt(noise.variance / N) * np.array([[1.0], [-1.0]]) * noise.start_direction
    Q0, R0, _ = unpack_state(starts, 2, 2, False)
    horizon = 1.5 * at_one
    run = integrate(Q0, R0, np.eye(2), eta=ETA, model=model, alpha_max=horizon,
                    alpha_eval=np.linspace(0, horizon, 1501))
    return at_one, escape_crossing(np.asarray(run.alpha), np.asarray(run.risk), threshold * noise.plateau_risk)


def test_relu_escape_law_agrees_with_the_ode_from_the_noise_equivalent_start(relu_noise):
    """At N = 1e6 the ODE from start +- sqrt(S/N) w escapes where the log law says, for that amplitude."""
    at_one, times = ode_escapes(relu_noise, RELU, 1e6, THRESHOLD)
    # both signs leave alike (exchanging the students maps one to the other)
    assert times[0] == pytest.approx(times[1], abs=0.5)
    # within 1% (measured: 3e-6): a twofold error in the amplitude would shift the escape by ln(2) / g_R = 40 (12%)
    assert np.mean(times) == pytest.approx(at_one, rel=0.01)
    assert np.log(2.0) / relu_noise.growth_R > 0.08 * at_one


@pytest.fixture(scope="module")
def noise_free():
    return plateau_noise(2, 2, ETA, model=RELU_NOISE_FREE, points_per_unit=2)  # the default max_seconds


def test_noise_free_relu_plateau_runs_on_a_grid_that_follows_the_path(noise_free):
    assert noise_free.kind == "symmetric" and noise_free.multiplicity == 1 and noise_free.growth_R > 0.1
    named = dict(noise_free.named("start_direction", 7))
    assert [np.sign(named[f"R[{j},{r}]"]) for j in range(2) for r in range(2)] == [1, -1, -1, 1]
    assert np.isfinite(noise_free.variance) and noise_free.variance > 0
    # the grid still reaches the settled plateau (20 / g_R + 12 / |slowest| ~ 2000), with few points beyond 20 / g_R
    far = noise_free.alpha > INTEGRAND_HORIZON / noise_free.growth_R
    assert noise_free.alpha[-1] > 10 * INTEGRAND_HORIZON / noise_free.growth_R
    assert np.sum(far) < 200 and noise_free.alpha.size < 600


def test_noise_free_relu_escape_law_agrees_with_the_ode_from_the_noise_equivalent_start(noise_free):
    """At N = 1e6 the ODE from start +- sqrt(S/N) w escapes where the log law says; the risk then falls to 0."""
    at_one, times = ode_escapes(noise_free, RELU_NOISE_FREE, 1e6, 0.5)
    assert times[0] == pytest.approx(times[1], abs=0.5)
    # within 1% (measured: 1e-8): a twofold error in the amplitude would shift the escape by ln(2) / g_R = 5.1 (9%)
    assert np.mean(times) == pytest.approx(at_one, rel=0.01)
    assert np.log(2.0) / noise_free.growth_R > 0.08 * at_one
