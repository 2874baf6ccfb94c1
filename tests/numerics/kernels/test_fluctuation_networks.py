"""Increment covariance above degree 2: network tables (derive/quantities/network_tables.py) contracted numerically.

Checked (the network route against the printed route: tests/derive/codegen/test_network_module.py;
the orbit enumeration: tests/derive/gauss/test_orbits.py):

1. against an independent exact Gauss-Hermite quadrature (tests/gauss_quadrature.py) for
   He3, a cubic mixed model and a quartic mixed model, label noise and weight decay on;
2. against Monte Carlo of actual SGD steps from weight vectors at finite N (He3);
3. the two contraction schemes of numerics/kernels/network_moments.py against each other.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp
from gauss_quadrature import exact_increment_covariance
from sample_points import points_sharing_teachers, random_point
from sgd_steps import HE3_ACTIVATIONS, step_increments, z_scores

from derive.model.model import HE3, Model
from numerics.noise.fluctuations import increment_covariance

# uncommitted models (generated into the cache on first use)
MIXED_CUBIC = Model(student_activation="x**3 - 3*x", teacher_activation="x**2 + x", student_readout="1/sqrt(p)")
MIXED_QUARTIC = Model(student_activation="x**4 - 6*x**2 + 3", teacher_activation="x**2 + x")


def _relative_error(got, want):
    return float(np.max(np.abs(got - want))) / max(1.0, float(np.max(np.abs(want))))


SHAPES = [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (3, 1)]


@pytest.mark.parametrize(
    "model, shapes",
    [
        pytest.param(HE3, SHAPES + [(3, 2)], id="he3"),
        pytest.param(MIXED_CUBIC, SHAPES, id="mixed-cubic", marks=pytest.mark.slow),
        pytest.param(MIXED_QUARTIC, [(1, 2), (2, 1)], id="mixed-quartic", marks=pytest.mark.slow),
    ],
)
def test_increment_covariance_equals_exact_quadrature(model, shapes):
    rng = np.random.default_rng(13)
    noisy = model.with_noise(sp.Rational(3, 10)).with_weight_decay(sp.Rational(1, 10))
    for (p, k), kind in itertools.product(shapes, ["random", "singular", "near"]):
        if p + k == 5 and kind != "random":
            continue  # the quadrature grid of rank 5 is the slow part; one point is enough
        Q, R, T = random_point(p, k, rng, kind)
        for second_order in (True, False):
            got = increment_covariance(Q, R, T, 0.4, model=noisy, second_order=second_order)
            want = exact_increment_covariance(model, Q, R, T, 0.4, delta=0.3, second_order=second_order)
            for name, g, w in zip(("QQ", "QR", "RR"), got, want):
                assert g.shape == w.shape
                assert _relative_error(g, w) < 1e-10, (name, p, k, kind, second_order)


@pytest.mark.parametrize("model", [HE3, pytest.param(MIXED_CUBIC, marks=pytest.mark.slow)], ids=["he3", "mixed-cubic"])
def test_batched_covariance_equals_single_calls(model):
    rng = np.random.default_rng(17)
    points = points_sharing_teachers(2, 3, rng, 3)
    Qb, Rb, Tb = (np.stack([point[i] for point in points]) for i in range(3))
    noisy = model.with_noise(0.2)
    batched = increment_covariance(Qb, Rb, Tb, 0.3, model=noisy)
    # the shared T unbatched, broadcast against the batched Q and R
    shared = increment_covariance(Qb, Rb, Tb[0], 0.3, model=noisy)
    for index, (Q, R, T) in enumerate(points):
        single = increment_covariance(Q, R, T, 0.3, model=noisy)
        for b, c, s in zip(batched, shared, single):
            assert b.shape == c.shape == (3, *s.shape)
            np.testing.assert_allclose(b[index], s, rtol=1e-12, atol=1e-12 * np.max(np.abs(s)))
            np.testing.assert_allclose(c[index], s, rtol=1e-12, atol=1e-12 * np.max(np.abs(s)))


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_he3_covariance_matches_monte_carlo_of_sgd_steps_from_weights():
    """Exact one-step increments of finite-N He3 SGD (p = 2, k = 1, N = 400) within 5 standard errors.

    Measured: largest |z| 0.7 (QQ), 1.1 (QR), 1.3 (RR). The heavy tails of the He3 increments
    limit the power: a missing eta**3, eta**4 part is 5.3 standard errors off, the paper
    model's covariance 11.6, but a 10 % error in every entry stays below 2 (the exact
    quadrature tests are the precise ones).
    """
    rng = np.random.default_rng(23)
    p, k, N, eta = 2, 1, 400, 0.5
    W = rng.standard_normal((p, N)) * 0.7
    W_star = rng.standard_normal((k, N))
    Q, R, T = W @ W.T / N, W @ W_star.T / N, W_star @ W_star.T / N
    q, r = step_increments(rng, W, W_star, eta, 200_000, a=1 / p, b=1 / k, **HE3_ACTIVATIONS)
    QQ, QR, RR = increment_covariance(Q, R, T, eta, model=HE3)
    # the finite-N corrections (|x|^2/N = 1 + O(N^-1/2) and O(1/N) terms) are far below the MC error
    for samples_a, samples_b, predicted in ((q, q, QQ), (q, r, QR), (r, r, RR)):
        z = z_scores(samples_a, samples_b, predicted)
        assert np.max(np.abs(z)) < 5, np.max(np.abs(z))
    # power: the covariance without its eta**3 and eta**4 parts is many standard errors off
    QQ_first = increment_covariance(Q, R, T, eta, model=HE3, second_order=False)[0]
    assert np.max(np.abs(z_scores(q, q, QQ_first))) > 5
    # and so is the covariance of the paper model (another activation) at the same overlaps
    assert np.max(np.abs(z_scores(r, r, increment_covariance(Q, R, T, eta)[2]))) > 5


def test_degree_above_the_limit_is_refused():
    from derive.quantities.increments import MAX_FLUCTUATION_DEGREE

    quintic = Model(student_activation="x**5", teacher_activation="x**2")
    Q, R, T = np.eye(2), np.zeros((2, 1)), np.eye(1)
    with pytest.raises(ValueError, match=f"degree <= {MAX_FLUCTUATION_DEGREE}"):
        increment_covariance(Q, R, T, 0.1, model=quintic)


def test_matrix_product_contraction_equals_einsum_contraction(monkeypatch):
    """The two contraction schemes of the group route (chosen by output size) agree."""
    import numerics.kernels.network_moments as network_moments
    from numerics.noise.readout_fluctuations import network_moments as evaluator

    rng = np.random.default_rng(29)
    points = points_sharing_teachers(3, 2, rng, 4)
    Q, R, T = (np.stack([point[i] for point in points]) for i in range(3))
    results = {}
    for threshold in (0, 10**12):  # always matrix products, never
        monkeypatch.setattr(network_moments, "MATMUL_THRESHOLD", threshold)
        results[threshold] = evaluator(HE3).evaluate(("LL", "LN", "NN", "LE", "EN", "EE"), Q, R, T, 0.3,
                                                     route="groups")
    for by_matmul, by_einsum in zip(results[0], results[10**12]):
        assert by_matmul.shape == by_einsum.shape == (4, *by_einsum.shape[1:])
        assert _relative_error(by_matmul, by_einsum) < 1e-13


def test_pairwise_folds_equal_einsum_on_random_networks():
    from numerics.kernels.pairwise import fold_plan, run_plan

    rng = np.random.default_rng(31)
    sizes = {"g": 3, "j": 2, "l": 3, "m": 4, "n": 2, "o": 3}
    for _ in range(20):
        letters = list(sizes)
        terms = ["g" + "".join(rng.choice(letters[1:], size=rng.integers(1, 3), replace=False)) for _ in range(5)]
        output = "".join(sorted({"j", "l"} & set("".join(terms)))) or "j"
        if output not in "".join(terms):
            terms.append("gj")
        operands = [rng.normal(size=(2,) + tuple(sizes[c] for c in t)) for t in terms]
        want = np.einsum(",".join("..." + t for t in terms) + "->..." + output, *operands)
        got = run_plan(operands, terms, fold_plan(terms, output, sizes, common="g"), output, 1)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
