"""The ODE in the solver's coordinates: the packed state ``(S, R)``, the PSD projection and the stopping events."""

from __future__ import annotations

import numpy as np
import pytest

from numerics.ode import flow as flow_module
from numerics.ode.flow import BLOWUP, OverlapFlow, psd_part
from numerics.ode.integrate import IntegrationError, integrate
from numerics.results.settings import RunSettings
from numerics.runtime.registry import resolve

P, K = 2, 1
Q0, R0, T = 0.5 * np.eye(P), np.array([[0.1], [0.05]]), np.eye(K)


def _flow(batch: tuple = (3,)) -> OverlapFlow:
    settings = RunSettings(eta=0.1)
    return OverlapFlow(T, settings, resolve(None, sizes=(P, K)), batch, P, K)


def _starts(batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((batch, P + K, P + K))
    C = A @ np.swapaxes(A, 1, 2) / (P + K) + np.eye(P + K)
    C[:, P:, P:] = T  # the flow's teacher
    C[:, :P, P:] *= 0.3
    C[:, P:, :P] *= 0.3
    return C[:, :P, :P], C[:, :P, P:]


def test_the_packed_state_gives_back_the_overlaps():
    Q, R = _starts(3, 0)
    flow = _flow()
    y0 = flow.start(Q, R)
    # (S upper triangle, R) per start: p (p + 1) / 2 + p k numbers each
    assert y0.shape == (3 * (P * (P + 1) // 2 + P * K),)
    main, a = flow.split(y0)
    assert a is None and main is y0
    Q_back, R_back = flow.overlaps(main)
    np.testing.assert_array_equal(R_back, R)
    np.testing.assert_allclose(Q_back, Q, rtol=0, atol=8 * np.finfo(float).eps * np.max(np.abs(Q)))
    Q_traj, R_traj, a_traj = flow.trajectory(np.stack([y0, y0]))
    assert Q_traj.shape == (2, 3, P, P) and R_traj.shape == (2, 3, P, K) and a_traj is None
    np.testing.assert_array_equal(Q_traj[1], Q_back)


def test_psd_part_clips_negative_eigenvalues_only():
    rng = np.random.default_rng(1)
    vectors = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    indefinite = (vectors * np.array([-0.2, 0.5, 2.0])) @ vectors.T
    projected = psd_part(indefinite)
    np.testing.assert_allclose(np.linalg.eigvalsh(projected), [0.0, 0.5, 2.0], rtol=0, atol=8 * np.finfo(float).eps)
    # what was removed is the negative eigendirection
    removed = indefinite - projected
    np.testing.assert_allclose(removed, -0.2 * np.outer(vectors[:, 0], vectors[:, 0]), rtol=0,
                               atol=8 * np.finfo(float).eps)
    definite = np.eye(3) + 0.1 * (indefinite + indefinite.T)
    assert psd_part(definite) is definite


def test_events_are_positive_inside_and_negative_outside():
    flow = _flow(batch=(1,))
    left_cone, blew_up = flow.events()
    assert left_cone.terminal and blew_up.terminal
    inside = flow.start(Q0[None], R0[None])
    assert left_cone(0.0, inside) > 0 and blew_up(0.0, inside) > 0
    # S = Q - R R^T with a negative eigenvalue far beyond round-off
    outside = flow.start((R0 @ R0.T - 1e-3 * np.eye(P))[None], R0[None])
    assert left_cone(0.0, outside) < 0 and blew_up(0.0, outside) > 0
    huge = flow.start(2 * BLOWUP * np.eye(P)[None], R0[None])
    assert blew_up(0.0, huge) < 0
    not_finite = np.full_like(inside, np.nan)
    assert left_cone(0.0, not_finite) < 0 and blew_up(0.0, not_finite) < 0


def test_the_blow_up_event_stops_the_integration_as_blown_up(monkeypatch):
    # along this run R grows from 0.1 towards the teacher: a low ceiling on |y| is crossed
    monkeypatch.setattr(flow_module, "BLOWUP", 0.6)
    with pytest.raises(IntegrationError, match="blew up") as error:
        integrate(Q0, R0, T, eta=0.1, alpha_max=50.0)
    assert error.value.kind == "blew up"


def test_the_cone_event_stops_the_integration_as_leaving_the_cone(monkeypatch):
    # along this run the smallest relative eigenvalue of S falls from 0.49 to below 0.01: with a
    # cone tolerance of -0.3 the event sees the state leave at 0.3
    monkeypatch.setattr(flow_module, "CONE_TOLERANCE", -0.3)
    with pytest.raises(IntegrationError, match="positive semi-definite") as error:
        integrate(Q0, R0, T, eta=0.1, alpha_max=50.0)
    assert error.value.kind == "left the PSD cone"


def test_the_same_run_ends_without_the_changed_thresholds():
    # the two stops above are the events, not the run: with the defaults it reaches the end
    result = integrate(Q0, R0, T, eta=0.1, alpha_max=50.0)
    assert result.alpha[-1] == 50.0
