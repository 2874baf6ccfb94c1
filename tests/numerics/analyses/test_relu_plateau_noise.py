"""plateau_noise for a relu committee's symmetric plateau (numerics/analyses/finite_n.py, linear_noise.py).

relu units on both sides, readouts 1, p = k = 2, label noise 0.5, eta = 1: a symmetric plateau (risk 0.82)
whose slowest stable mode (-0.021) is close enough to the escape rate (0.017) for a short noise grid (630
points), so that the whole prediction costs a few seconds. After the escape the students specialise and the
risk settles 4.4% lower: the escape is timed where the risk falls below 0.97 of the plateau's.
"""

import numpy as np
import pytest

from derive import Model
from numerics import integrate, plateau_noise
from numerics.analyses.linear_noise import escape_crossing
from numerics.ode.jacobian import unpack_state

RELU = Model(student_activation="relu(x)", teacher_activation="relu(x)", student_readout=1,
             teacher_readout=1).with_noise(0.5)
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


def test_relu_escape_law_agrees_with_the_ode_from_the_noise_equivalent_start(relu_noise):
    """At N = 1e6 the ODE from start +- sqrt(S/N) w escapes where the log law says, for that amplitude."""
    N = 1e6
    at_one = float(relu_noise.escape_alpha(N, threshold=THRESHOLD)) + (
        relu_noise.mean_log_amplitude() / relu_noise.growth_R)
    amplitude = np.sqrt(relu_noise.variance / N)
    starts = relu_noise.start + amplitude * np.array([[1.0], [-1.0]]) * relu_noise.start_direction
    Q0, R0, _ = unpack_state(starts, 2, 2, False)
    horizon = 1.5 * at_one
    run = integrate(Q0, R0, np.eye(2), eta=ETA, model=RELU, alpha_max=horizon,
                    alpha_eval=np.linspace(0, horizon, 1501))
    times = escape_crossing(np.asarray(run.alpha), np.asarray(run.risk), THRESHOLD * relu_noise.plateau_risk)
    # both signs leave alike (exchanging the students maps one to the other)
    assert times[0] == pytest.approx(times[1], abs=0.5)
    # within 1% (measured: 3e-6): a twofold error in the amplitude would shift the escape by ln(2) / g_R = 40 (12%)
    assert np.mean(times) == pytest.approx(at_one, rel=0.01)
    assert np.log(2.0) / relu_noise.growth_R > 0.08 * at_one
