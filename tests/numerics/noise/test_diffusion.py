"""The packed noise covariance of the diffusion approximation (``numerics.noise.diffusion``).

Checked: the packed covariance ``Sigma`` equals ``increment_covariance`` packed, for every kind of
model and point, entry by entry in its layout; the first-use self-check falls back when the fast
path is wrong; the caller's label noise is used whichever model was seen first.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from sample_points import points_sharing_teachers, random_point

from derive.model.model import HE2, HE3, PAPER, Model
from numerics.noise.diffusion import PackedCovariance, packed_covariance
from numerics.noise.fluctuations import increment_covariance
from numerics.noise.packing import pack_covariance, packed_size
from numerics.runtime.registry import resolve

# an uncommitted model (generated on first use): a constant and an odd part, another readout
MIXED = Model(student_activation="x**2 - 1", teacher_activation="x**2 + x/2", student_readout="1/sqrt(p)")


def _relative(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want))) / max(1.0, float(np.max(np.abs(want))))


@pytest.mark.parametrize("model", [PAPER, HE2, MIXED.with_noise(sp.Rational(3, 10)).with_weight_decay(
    sp.Rational(1, 10))], ids=["paper", "he2", "mixed-noisy"])
def test_packed_covariance_equals_increment_covariance(model):
    rng = np.random.default_rng(12)
    for p, k in [(1, 1), (2, 1), (3, 2), (4, 3)]:
        points = [random_point(p, k, rng, kind) for kind in ("random", "singular", "near")]
        Q, R, T = (np.stack([point[i] for point in points]) for i in range(3))
        for second_order in (True, False):
            want = pack_covariance(*increment_covariance(Q, R, T, 0.45, model=model, second_order=second_order))
            got = packed_covariance(Q, R, T, 0.45, model=model, second_order=second_order)
            assert got.shape == (3, packed_size(p, k), packed_size(p, k))
            assert _relative(got, want) < 1e-12, (p, k, second_order)
            single = packed_covariance(Q[1], R[1], T[1], 0.45, model=model, second_order=second_order)
            assert _relative(single, want[1]) < 1e-12


def test_pack_covariance_layout():
    # entry by entry: rows and columns are (q_jl for j <= l in triu order, r_jr row-major)
    rng = np.random.default_rng(2)
    Q, R, T = random_point(3, 2, rng)
    QQ, QR, RR = increment_covariance(Q, R, T, 0.3)
    Sigma = pack_covariance(QQ, QR, RR)
    iu = list(zip(*np.triu_indices(3)))
    r_index = [(j, r) for j in range(3) for r in range(2)]
    assert Sigma[iu.index((0, 2)), iu.index((1, 1))] == QQ[0, 2, 1, 1]
    assert Sigma[iu.index((1, 2)), 6 + r_index.index((2, 1))] == QR[1, 2, 2, 1]
    assert Sigma[6 + r_index.index((0, 1)), iu.index((0, 1))] == QR[0, 1, 0, 1]
    assert Sigma[6 + r_index.index((1, 0)), 6 + r_index.index((2, 1))] == RR[1, 0, 2, 1]
    np.testing.assert_allclose(Sigma, np.swapaxes(Sigma, -1, -2), rtol=1e-13, atol=1e-13)
    assert np.linalg.eigvalsh(Sigma)[0] > -1e-12 * np.max(np.abs(Sigma))


def test_wrong_fast_path_is_caught_by_the_self_check():
    # corrupt the deferred evaluation (drop a term's sign): the first-use comparison with
    # increment_covariance must notice, warn and fall back to the exact path
    evaluator = PackedCovariance(None)
    original = evaluator.functions["second_order_moments"]

    def corrupted(Q, R, T, delta):
        LE, EN, EE = original(Q, R, T, delta)
        EE.value = EE.value - EE.value.right  # remove one outer-product term of <E E E E>
        return LE, EN, EE

    evaluator.functions["second_order_moments"] = corrupted
    rng = np.random.default_rng(5)
    Q, R, T = random_point(2, 1, rng)
    resolved = resolve(None)
    with pytest.warns(RuntimeWarning, match="increment_covariance"):
        got = evaluator(Q[None], R[None], T, 0.3, resolved, True)
    assert evaluator.fallback
    want = pack_covariance(*increment_covariance(Q, R, T, 0.3))
    assert _relative(got[0], want) < 1e-14


def test_packed_covariance_follows_the_callers_label_noise():
    # models that differ only in Delta share generated code; the fast path and its reference must
    # both use the caller's Delta whichever model was seen first
    from numerics import increment_covariance
    from numerics.noise.diffusion import EVALUATORS

    EVALUATORS.clear()
    calls = [(PAPER.with_noise(0.3), 2), (None, 3), (PAPER.with_noise(0.05), 4), (PAPER.with_noise(0.3), 3)]
    for model, p in calls:  # a new width makes the evaluator check itself against its reference
        Q, R, T = 0.8 * np.eye(p), np.full((p, 1), 0.2), np.eye(1)
        got = packed_covariance(Q[None], R[None], T, 0.4, model=model)[0]
        want = pack_covariance(*increment_covariance(Q, R, T, 0.4, model=model))
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_packed_covariance_and_sde_run_on_network_tables():
    """The SDE's packed covariance packs the network tables' output exactly; an He3 SDE runs."""
    from numerics import simulate_sde

    rng = np.random.default_rng(37)
    points = points_sharing_teachers(2, 1, rng, 3)
    Q, R, T = (np.stack([point[i] for point in points]) for i in range(3))
    packed = packed_covariance(Q, R, T, 0.2, model=HE3)
    for index in range(3):
        want = pack_covariance(*increment_covariance(Q[index], R[index], T[index], 0.2, model=HE3))
        assert _relative(packed[index], want) < 1e-12
    result = simulate_sde(np.eye(2), np.zeros((2, 1)), np.eye(1), N=1000, eta=0.02, alpha_max=0.5, model=HE3,
                          dalpha=0.05, replicas=3, seed=0, progress=False)
    assert result.model is HE3 and np.all(np.isfinite(result.Q)) and np.all(np.isfinite(result.R))
    # the noise moved the replicas apart
    assert np.ptp(result.R[:, -1, 0, 0]) > 0


def test_increment_covariance_names_an_eta_that_overflows_and_checks_second_order():
    Q, R, T = np.eye(2) * 0.5, np.zeros((2, 2)), np.eye(2)
    with pytest.raises(ValueError, match="eta = 1e\\+200"):
        increment_covariance(Q, R, T, eta=1e200)
    with pytest.raises(ValueError, match="second_order must be True or False"):
        increment_covariance(Q, R, T, eta=0.1, second_order=2)
