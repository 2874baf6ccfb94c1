"""The SDE's adaptive step, per-replica status and step cap (``numerics.simulate_sde``).

* Weak order one by step halving, on the linear model (student and teacher ``x``): its drift is
  affine in the overlaps, so the mean of the diffusion follows the ODE exactly at any N and the
  error of the mean is the scheme's alone. Measured (N = 1e4, 400 replicas, alpha = 2):
  error of E R 1.30e-2, 6.4e-3, 3.4e-3 at step_scale 8, 4, 2 (standard errors 2.5e-4).
* A replica that diverges is frozen and reported; the others are the runs they are alone.
* The step cap stops a run with a clear error.
* A cubic student learning a He3 teacher (p = 3, k = 1; information exponent 3, zero drift rate at
  R = 0): the adaptive step follows the escape's time scale, and the law of R agrees with the exact
  overlap chain at N = 1000 (KS), a chain with a quarter of the diffusion being rejected.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

import numerics
from derive.model.model import Model, hermite
from numerics import SimulationError, simulate, simulate_sde
from numerics.ode.integrate import default_grid
from numerics.results.settings import RunSettings
from numerics.runtime.registry import resolve
from numerics.simulators.common import replica_seeds
from numerics.simulators.sde_dynamics import BLOCK_STEP, SdeDynamics, step_bounds

LINEAR = Model(student_activation="x", teacher_activation="x")
CUBIC_HE3 = Model(student_activation="x**3", teacher_activation=hermite(3))


def test_weak_order_one_by_step_halving():
    Q0, R0, T = np.eye(1), np.zeros((1, 1)), np.eye(1)
    eta, alpha, N, replicas = 0.5, 2.0, 1e4, 400
    exact = numerics.integrate(Q0, R0, T, eta=eta, model=LINEAR, alpha_max=alpha, alpha_eval=np.array([0.0, alpha]),
                               rtol=1e-12, atol=1e-14)
    errors, standard_errors = [], []
    for index, scale in enumerate([8.0, 4.0, 2.0]):
        run = simulate_sde(Q0, R0, T, N=N, eta=eta, model=LINEAR, alpha_max=alpha, replicas=replicas, seed=index,
                           record=[0.0, alpha], step_scale=scale, progress=False)
        assert run.extra["projections"] == 0  # no boundary: the mean is the affine drift's exactly
        R = run.R[:, -1, 0, 0]
        errors.append(R.mean() - exact.R[-1, 0, 0])
        standard_errors.append(R.std(ddof=1) / np.sqrt(replicas))
    errors, standard_errors = np.array(errors), np.array(standard_errors)
    assert errors[0] > 10 * standard_errors[0]  # the discretisation error is resolved
    for coarse in range(2):
        # halving the step halves the error (weak order one): within 5 standard errors of the difference
        gap = errors[coarse + 1] - errors[coarse] / 2
        assert abs(gap) < 5 * np.hypot(standard_errors[coarse + 1], standard_errors[coarse] / 2), errors
        assert errors[coarse] - errors[coarse + 1] > 5 * np.hypot(*standard_errors[coarse : coarse + 2])


def _three_starts():
    # two tame starts and one so large that eta = 0.3 blows it up (paper model, p = 2, k = 1)
    Q = np.stack([0.5 * np.eye(2), 0.6 * np.eye(2), 6.0 * np.eye(2)])
    R = np.stack([np.zeros((2, 1)), np.full((2, 1), 0.1), np.array([[2.0], [0.0]])])
    return Q, R, np.eye(1)


def test_a_diverging_replica_is_reported_and_the_others_kept():
    Q, R, T = _three_starts()
    kwargs = dict(N=1e4, eta=0.3, alpha_max=2.0, record=11, progress=False, dalpha=0.01)
    with pytest.warns(RuntimeWarning, match="1 of 3 replicas diverged"):
        run = simulate_sde(Q, R, T, replicas=3, seed=5, **kwargs)
    status, where = run.extra["status"], run.extra["status_alpha"]
    assert list(status) == ["completed", "completed", "diverged"]
    assert 0 < where[2] < 2.0 and list(where[:2]) == [2.0, 2.0]
    after = run.alpha > where[2]
    assert np.all(np.isnan(run.Q[2][after])) and np.all(np.isfinite(run.Q[2][~after]))
    assert np.all(np.isfinite(run.Q[:2])) and np.all(np.isfinite(run.risk[:2]))
    # the survivors are the runs they are alone, with their own seeds
    alone = simulate_sde(Q[1], R[1], T, seed=[replica_seeds(5, 3)[1]], **kwargs)
    np.testing.assert_allclose(alone.Q, run.Q[1], rtol=1e-10, atol=1e-13)
    # on request the divergence is an error, and it is one when every replica diverges
    with pytest.raises(SimulationError, match=r"between alpha = [0-9.]+ and alpha = [0-9.]+ \(1 of 3"):
        simulate_sde(Q, R, T, replicas=3, seed=5, on_divergence="raise", **kwargs)
    with pytest.raises(SimulationError, match="diverged"):
        simulate_sde(Q[2], R[2], T, seed=1, **kwargs)


def test_the_adaptive_step_reports_statuses_and_escapes():
    # the adaptive step approaches a finite-time blow-up in ever shorter steps: reported as diverged
    Q, R, T = _three_starts()
    with pytest.warns(RuntimeWarning, match="1 of 3 replicas diverged"):
        run = simulate_sde(Q, R, T, N=1e4, eta=0.3, alpha_max=20.0, replicas=3, seed=5, record=5, escape_risk=0.1,
                           progress=False)
    status, escape = run.extra["status"], run.extra["escape_alpha"]
    assert run.extra["adaptive"] and status[2] == "diverged" and 0 < run.extra["status_alpha"][2] < 1.0
    for i in range(2):  # escaped exactly when the risk crossed the level, at an alpha inside the run
        assert status[i] in ("completed", "escaped") and (status[i] == "escaped") == np.isfinite(escape[i])
    assert status[1] == "escaped" and 0 < escape[1] < 20.0 and run.risk[1, -1] < 0.1
    # the records are at the requested alphas exactly
    np.testing.assert_array_equal(run.alpha, np.unique(np.append(default_grid(20.0, 5, "log"), 20.0)))
    assert run.nfev == int(np.max(run.extra["steps_taken"]))


def test_the_step_cap_stops_the_run_with_a_clear_error():
    Q0, R0, T = 0.5 * np.eye(2), np.zeros((2, 1)), np.eye(1)
    with pytest.raises(SimulationError, match="every replica stalled .* max_steps"):
        simulate_sde(Q0, R0, T, N=1e4, eta=0.1, alpha_max=10.0, max_steps=20, progress=False)
    with pytest.raises(ValueError, match="more than max_steps = 20"):
        simulate_sde(Q0, R0, T, N=1e4, eta=0.1, alpha_max=10.0, dalpha=0.1, max_steps=20, progress=False)
    with pytest.raises(ValueError, match="MAX_STEPS"):
        simulate_sde(Q0, R0, T, N=1e4, eta=0.1, alpha_max=10.0, dalpha=1e-300, progress=False)
    for bad, match in [(dict(step_scale=0.0), "step_scale"), (dict(max_steps=0), "max_steps"),
                       (dict(escape_risk=-1.0), "escape_risk"), (dict(on_divergence="ignore"), "on_divergence")]:
        with pytest.raises(ValueError, match=match):
            simulate_sde(Q0, R0, T, N=1e4, eta=0.1, alpha_max=10.0, progress=False, **bad)


def test_a_long_fixed_step_is_warned_about():
    Q0, R0, T = 0.5 * np.eye(2), np.array([[0.3], [0.2]]), np.eye(1)
    with pytest.warns(RuntimeWarning, match="longer than 10 times the drift's time scale"):
        simulate_sde(Q0, R0, T, N=1e4, eta=0.1, alpha_max=20.0, dalpha=2.0, record=3, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        simulate_sde(Q0, R0, T, N=1e4, eta=0.1, alpha_max=2.0, record=3, progress=False)


def test_without_a_drift_rate_the_step_is_the_escape_time_scale():
    # a cubic student and a He3 teacher near R = 0: the drift of R is O(R**2), so a linearisation sees no
    # escape; the step is bounded by the time the drift takes to move R by its own size instead
    N = 1e3
    settings = RunSettings(eta=0.01, model=CUBIC_HE3)
    resolved = resolve(CUBIC_HE3, sizes=(3, 1))
    dynamics = SdeDynamics(settings, resolved, 1, 3, 1)
    Q, T = 0.3 * np.eye(3)[None], np.eye(1)
    R = (np.array([1.0, -1.0, 0.5]) / np.sqrt(N))[None, :, None]
    drift = dynamics.drift(Q, R, T, None)
    no_rate = np.zeros(1)  # what the Jacobian gives at R = 0 when Q sits at its own fixed point
    drift_bound, _ = step_bounds(Q, R, T, drift, dynamics.covariance(Q, R, T, None), no_rate, N=N)
    escape_scale = np.linalg.norm(R) / np.linalg.norm(drift[1])
    relaxation_scale = 1.0 / np.linalg.norm(drift[0])
    assert np.isfinite(escape_scale)
    np.testing.assert_allclose(drift_bound, BLOCK_STEP * min(escape_scale, relaxation_scale), rtol=1e-12)
    # at R = 0 exactly the scale of R is its size at a random start, sqrt(tr Q tr T / N)
    zero = np.zeros((1, 3, 1))
    drift0 = dynamics.drift(Q, zero, T, None)
    bound0, _ = step_bounds(Q, zero, T, drift0, dynamics.covariance(Q, zero, T, None), no_rate, N=N)
    assert np.isfinite(bound0) and bound0 > 0


@pytest.mark.slow  # about 20 s: the increment covariance of the cubic model at p = 3 costs 5 ms per replica-step
def test_cubic_student_he3_teacher_agrees_with_the_exact_chain():
    Q0, R0, T = np.eye(3), np.zeros((3, 1)), np.eye(1)
    N, eta, alpha = 1000, 0.02, 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default step, no warning
        sde = simulate_sde(Q0, R0, T, N=N, eta=eta, model=CUBIC_HE3, alpha_max=alpha, replicas=40, seed=1,
                           record=[0.0, alpha], progress=False)
    assert set(sde.extra["status"]) == {"completed"}
    kwargs = dict(p=3, k=1, eta=eta, model=CUBIC_HE3, alpha_max=alpha, replicas=300, record=[0.0, alpha],
                  method="overlaps", Q0=Q0, R0=R0, T=T, progress=False)
    chain = simulate(N=N, seed=2, **kwargs)
    quiet = simulate(N=4 * N, seed=3, **kwargs)  # a quarter of the diffusion coefficient

    def spread(result, n):  # N |R|^2 at alpha: about chi-square with p k degrees of freedom, scaled
        return n * np.sum(result.R[:, -1] ** 2, axis=(-2, -1))

    assert stats.ks_2samp(spread(sde, N), spread(chain, N)).pvalue > 0.01
    assert stats.ks_2samp(spread(sde, N), spread(quiet, N)).pvalue < 0.01
