"""The learning-rate scan (``numerics.sweeps.learning_rate``): the fastest escape from the plateau."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from numerics import initial_conditions, integrate, optimal_learning_rate, plateau_fixed_point


def test_optimal_learning_rate_rejects_an_eta_that_stalls():
    # p = 4, k = 1: at eta = 0.5 sqrt 2 the run crosses 3/4 of the plateau risk, then stalls at a
    # finite-risk fixed point held by the eta**2 term; the former rule picked it as the fastest escape
    pv, kv, etas = 4, 1, np.array([0.5, 0.5 * np.sqrt(2)])
    scan = optimal_learning_rate(pv, kv, seeds=2, etas=etas)
    assert scan.best_eta == etas[0]
    assert scan.reasons == ("", "did not learn") and scan.stop_reason == "did not learn"
    assert scan.boundary and "boundary optimum" in scan.summary()
    # the old rule (a final risk below the escape threshold suffices) picks the stalled eta
    assert optimal_learning_rate(pv, kv, seeds=2, etas=etas, learned_fraction=0.75).best_eta == etas[1]
    for eta, learns in zip(etas, (True, False)):
        Q0, R0, T = initial_conditions(pv, kv, N=1000, seed=0)
        final = integrate(Q0, R0, T, eta=eta, alpha_max=500, alpha_eval=np.array([0.0, 500.0])).risk[-1]
        level = plateau_fixed_point(pv, kv, eta).risk
        assert (final < 0.1 * level) == learns, (eta, final / level)
        assert final < 0.75 * level


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_optimal_learning_rate_over_p_is_constant_for_one_teacher():
    # scan resolution sqrt 2 around the optimum; the former rule, which counted runs stalling at a
    # finite risk as escapes, gave eta/p = 0.177 for p >= 3 (see docs/paper_claims.md)
    ratios = []
    for pv in (1, 2, 4, 8):
        scan = optimal_learning_rate(pv, 1, seeds=2, etas=pv * 2.0 ** (np.arange(-7, -3) / 2))
        assert scan.failed[-1] and scan.stop_reason in ("did not learn", "solver stopped")
        ratios.append(scan.best_eta / pv)
    np.testing.assert_allclose(ratios, 0.125)


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_optimal_learning_rate_scales_linearly_with_p_for_two_teachers():
    ratios, resolution = [], None
    for pv in (1, 2, 4, 8):
        # coarse geometric scan, resolution 2; at k = 2 the optimum drifts genuinely with p (no
        # stalled runs involved: a sqrt 2 scan gives eta/p = 1/8 at p = 1 and 1/4 at p = 8)
        scan = optimal_learning_rate(pv, 2, seeds=2, etas=pv * 2.0 ** np.arange(-4, 1),
                                     learned_fraction=0.6 if pv < 2 else 0.1)
        resolution = scan.resolution
        assert scan.failed[-1]  # the scan reached the failing learning rates
        ratios.append(scan.best_eta / pv)
    # the best eta is known to one scan step: eta / p constant within it
    assert max(ratios) / min(ratios) <= resolution * (1 + 1e-9), ratios


def test_optimal_learning_rate_on_a_sweep_equals_the_serial_scan(tmp_path, monkeypatch):
    # the scan as a numerics.sweep over eta (serial engine and a process pool) gives the serial scan's numbers;
    # a rerun with the store computes nothing
    from concurrent.futures import ProcessPoolExecutor

    from numerics.sweeps import learning_rate as escape

    etas = np.array([0.25, 0.5, 0.5 * np.sqrt(2), 1.0])  # the last two fail: the cut at the first failure
    serial = optimal_learning_rate(4, 1, seeds=2, etas=etas)
    assert serial.reasons[2:] == ("did not learn", "not run")
    on_sweep = optimal_learning_rate(4, 1, seeds=2, etas=etas, executor="serial", store=tmp_path)
    with ProcessPoolExecutor(2) as pool:
        pooled = optimal_learning_rate(4, 1, seeds=2, etas=etas, executor=pool)
    for scan in (on_sweep, pooled):
        np.testing.assert_array_equal(scan.mean_escape, serial.mean_escape)
        assert scan.best_eta == serial.best_eta and scan.stop_reason == serial.stop_reason
        assert scan.reasons[:3] == serial.reasons[:3] and scan.reasons[3] == "beyond the first failure"
    assert len(list(tmp_path.glob("*.nc"))) == etas.size

    def computed(*args, **kwargs):
        raise AssertionError("a stored eta was computed again")

    monkeypatch.setattr(escape, "_escape_times_for", computed)
    again = optimal_learning_rate(4, 1, seeds=2, etas=etas, executor="serial", store=tmp_path)
    np.testing.assert_array_equal(again.mean_escape, serial.mean_escape)
    with pytest.raises(ValueError, match="store needs an executor"):
        optimal_learning_rate(4, 1, seeds=2, etas=etas, store=tmp_path)


@pytest.mark.parametrize("progress", [True, False])
def test_optimal_learning_rate_reports_its_progress(caplog, progress):
    with caplog.at_level(logging.INFO):
        scan = optimal_learning_rate(2, 2, seeds=1, N=100, etas=[0.25, 0.35, 0.5], progress=progress)
    etas_logged = [r for r in caplog.records if r.name == "numerics.sweeps.learning_rate"]
    assert len(etas_logged) == 3 and "solver stopped" in etas_logged[-1].getMessage()
    tenths = [r for r in caplog.records if r.name == "numerics.simulators"]
    assert bool(tenths) == progress
    assert scan.stop_reason == "solver stopped"
