"""The result of a replica simulation (numerics/simulators/replicas.py): the risk of the recorded
overlaps, the replica axis kept for several replicas and dropped for one."""

import numpy as np
import pytest
from sample_points import random_point

from derive.model.model import PAPER
from numerics.ode.overlaps import risk
from numerics.results.settings import RunSettings
from numerics.runtime.registry import resolve
from numerics.simulators.replicas import replica_result

P, K, N_REC = 2, 1, 3


def _records(replicas: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    points = [[random_point(P, K, rng) for _ in range(N_REC)] for _ in range(replicas)]
    Q = np.array([[point[0] for point in run] for run in points])
    R = np.array([[point[1] for point in run] for run in points])
    T = np.array([run[0][2] for run in points])
    return Q, R, T


def _result(replicas: int, model=None, **more):
    Q, R, T = _records(replicas)
    settings = RunSettings(eta=0.1, model=model, second_order=True)
    return replica_result(alpha=np.arange(N_REC, dtype=float), Q=Q, R=R, T=T, resolved=resolve(model),
                          settings=settings, nfev=5, **more)


def test_the_risk_of_every_record_is_the_models_risk():
    noisy = PAPER.with_noise(0.2)
    result = _result(2, model=noisy, extra={})
    Q, R, T = _records(2)
    assert result.Q.shape == (2, N_REC, P, P) and result.risk.shape == (2, N_REC) and result.T.shape == (2, K, K)
    for b in range(2):
        for n in range(N_REC):
            assert result.risk[b, n] == pytest.approx(risk(Q[b, n], R[b, n], T[b], model=noisy, check=False), rel=1e-12)
    assert result.model is noisy and result.nfev == 5


def test_one_replica_loses_its_replica_axis_and_so_do_the_squeezed_entries():
    result = _result(1, extra={"per_replica": np.array([[1.0, 2.0]]), "shared": np.array([3.0])},
                     squeeze=("per_replica",))
    assert result.Q.shape == (N_REC, P, P) and result.risk.shape == (N_REC,) and result.T.shape == (K, K)
    np.testing.assert_array_equal(result.extra["per_replica"], [1.0, 2.0])
    np.testing.assert_array_equal(result.extra["shared"], [3.0])


def test_a_given_risk_is_broadcast_over_the_replicas():
    result = _result(3, extra={}, risk=np.array([0.5, 0.4, 0.3]))
    np.testing.assert_array_equal(result.risk, np.tile([0.5, 0.4, 0.3], (3, 1)))
    result.risk[0, 0] = 9.0  # its own array
    assert result.risk[1, 0] == 0.5
