"""The shared-factor route of the network tables (numerics/kernels/network_plan.py, network_shared.py).

Checked against the route that contracts every group of networks on its own (``route="groups"``,
itself checked against exact quadrature and Monte Carlo in test_fluctuation_networks.py), to
1e-12 relative, batched and unbatched, with scalar and per-unit readouts, with and without label
noise; the staged symmetrisation against the plain sum over the permutations; the canonical keys
against renamed letters.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sample_points import points_sharing_teachers, random_point

from derive.model.model import HE3, Model
from numerics.kernels.network_moments import symmetrise
from numerics.kernels.network_plan import OpenGroups, canonical_key
from numerics.noise.readout_fluctuations import network_moments, trained_readout_moments

INCREMENT_NAMES = ("LL", "LN", "NN", "LE", "EN", "EE")
READOUT_NAMES = ("AL", "AN", "AE", "AA")
# the quartic model of test_fluctuation_networks.py (its tables are generated into the cache once)
MIXED_QUARTIC = Model(student_activation="x**4 - 6*x**2 + 3", teacher_activation="x**2 + x")


def _relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want))) / max(1e-300, float(np.max(np.abs(want))))


def _assert_routes_agree(evaluator, names, *args):
    shared = evaluator.evaluate(names, *args)
    groups = evaluator.evaluate(names, *args, route="groups")
    for name, got, want in zip(names, shared, groups):
        assert got.shape == want.shape, name
        assert np.max(np.abs(want)) > 0, name  # the comparison is not vacuous
        assert _relative_error(got, want) < 1e-12, (name, _relative_error(got, want))


@pytest.mark.parametrize("p, k", [(1, 1), (2, 1), (1, 2), (3, 2)])
def test_he3_shared_route_equals_group_route(p, k):
    rng = np.random.default_rng(101 + 10 * p + k)
    evaluator = network_moments(HE3)
    Q, R, T = random_point(p, k, rng)
    _assert_routes_agree(evaluator, INCREMENT_NAMES, Q, R, T, 0.3)
    _assert_routes_agree(evaluator, INCREMENT_NAMES, Q, R, T, 0.0)
    points = points_sharing_teachers(p, k, rng, 3)
    Qb, Rb, Tb = (np.stack([point[i] for point in points]) for i in range(3))
    _assert_routes_agree(evaluator, INCREMENT_NAMES, Qb, Rb, Tb[0], 0.2)  # T shared, broadcast
    a, b = rng.normal(size=(3, p)), rng.normal(size=k)
    _assert_routes_agree(evaluator, INCREMENT_NAMES, Qb, Rb, Tb, 0.2, a, b)


def test_readout_tables_shared_route_equals_group_route():
    # the trained readout's tables (a padded constant vertex, other free symmetries) of a cubic model
    rng = np.random.default_rng(107)
    p, k = 2, 2
    Q, R, T = random_point(p, k, rng)
    _assert_routes_agree(trained_readout_moments(HE3), READOUT_NAMES, Q, R, T, 0.3, rng.normal(size=p), None)


def test_batched_shared_route_equals_single_points():
    rng = np.random.default_rng(109)
    evaluator = network_moments(HE3)
    points = [random_point(3, 1, rng) for _ in range(4)]
    Qb, Rb, Tb = (np.stack([point[i] for point in points]) for i in range(3))
    batched = evaluator.evaluate(INCREMENT_NAMES, Qb.reshape(2, 2, 3, 3), Rb.reshape(2, 2, 3, 1),
                                 Tb.reshape(2, 2, 1, 1), 0.3)
    for index, point in enumerate(points):
        single = evaluator.evaluate(INCREMENT_NAMES, *point, 0.3)
        for got, want in zip(batched, single):
            assert got.shape == (2, 2, *want.shape)
            assert _relative_error(got.reshape(4, *want.shape)[index], want) < 1e-12


@pytest.mark.slow  # the quartic tables are generated into the cache on first use (about half a minute)
def test_quartic_shared_route_equals_group_route():
    rng = np.random.default_rng(113)
    evaluator = network_moments(MIXED_QUARTIC)
    Q, R, T = random_point(1, 2, rng)
    _assert_routes_agree(evaluator, INCREMENT_NAMES, Q, R, T, 0.3)
    points = points_sharing_teachers(2, 1, rng, 2)
    Qb, Rb, Tb = (np.stack([point[i] for point in points]) for i in range(3))
    _assert_routes_agree(evaluator, INCREMENT_NAMES, Qb, Rb, Tb, 0.0)


def test_unknown_route_is_refused():
    Q, R, T = random_point(1, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="route"):
        network_moments(HE3).evaluate(("LL",), Q, R, T, 0.0, route="fast")


@pytest.mark.parametrize("symmetries", [
    tuple(itertools.permutations(range(4))),  # S4 (EE)
    ((0, 1, 2, 3), (2, 1, 0, 3)),  # S2 on axes 0, 2 (LN)
    ((0, 1, 2, 3), (0, 3, 2, 1), (2, 1, 0, 3), (2, 3, 0, 1)),  # S2 x S2 (LL)
    ((0, 1, 2, 3), (1, 2, 3, 0), (2, 3, 0, 1), (3, 0, 1, 2)),  # cyclic: not a product of symmetric groups
])
def test_staged_symmetrisation_equals_the_sum_over_permutations(symmetries):
    rng = np.random.default_rng(127)
    total = rng.normal(size=(2, 3, 3, 3, 3))
    want = sum(np.transpose(total, (0,) + tuple(1 + a for a in perm)) for perm in symmetries) / len(symmetries)
    got = symmetrise(total, symmetries, 1)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    assert np.max(np.abs(got - total)) > 0.1  # the symmetrisation does something


def test_canonical_key_does_not_depend_on_letter_names():
    kinds = {"j": "student", "l": "student", "m": "unit", "n": "unit", "o": "unit"}
    operands = [(("E", 1, ("student", "unit")), ("j", "m")), (("E", 2, ("unit", "unit")), ("m", "n")),
                (("V", "unit", "residual", 3), ("m",)), (("E", 1, ("student", "unit")), ("l", "m"))]
    key, order = canonical_key(operands, "m", kinds)
    renamed = {"j": "l", "l": "j", "m": "o", "n": "n"}
    moved = [(k, tuple(renamed[c] for c in letters)) for k, letters in reversed(operands)]
    moved_key, moved_order = canonical_key(moved, "o", kinds)
    assert moved_key == key
    assert len(moved_order) == len(order) == 3  # j, l and n kept
    # a different multiplicity is a different node
    changed = [operands[0], (("E", 3, ("unit", "unit")), ("m", "n"))] + operands[2:]
    assert canonical_key(changed, "m", kinds)[0] != key


def test_node_contraction_schemes_agree(monkeypatch):
    """Nodes by one einsum, by one broadcast product and one matrix product, and by pairwise matrix products
    (chosen by size) give the same averages."""
    import numerics.kernels.network_shared as network_shared

    rng = np.random.default_rng(131)
    points = points_sharing_teachers(3, 2, rng, 3)
    Q, R, T = (np.stack([point[i] for point in points]) for i in range(3))
    results = {}
    schemes = {"pairwise": (0, 0), "broadcast": (10**12, 0), "einsum": (10**12, 10**12)}
    for scheme, (matmul_threshold, einsum_threshold) in schemes.items():
        monkeypatch.setattr(network_shared, "NODE_MATMUL_THRESHOLD", matmul_threshold)
        monkeypatch.setattr(network_shared, "NODE_EINSUM_THRESHOLD", einsum_threshold)
        results[scheme] = network_moments(HE3).evaluate(INCREMENT_NAMES, Q, R, T, 0.3)
    for scheme in ("pairwise", "broadcast"):
        for got, want in zip(results[scheme], results["einsum"]):
            assert _relative_error(got, want) < 1e-13, scheme


def test_sparse_and_dense_couplings_agree(monkeypatch):
    """Every split's coupling applied as a sparse matrix, or every one dense: the same sums (batched, with
    label noise, whose powers enter the couplings)."""
    import numerics.kernels.network_shared as network_shared
    from numerics.kernels.network_operands import NetworkOperands

    rng = np.random.default_rng(149)
    points = points_sharing_teachers(3, 2, rng, 2)
    C = np.stack([np.block([[Q, R], [R.T, T]]) for Q, R, T in points])
    he3 = network_moments(HE3)
    results = {}
    for factor in (0, 10**12):  # always sparse, never
        monkeypatch.setattr(network_shared, "SPARSE_COUPLING", factor)
        evaluator = network_shared.SharedEvaluator(he3.shared_plan)  # a fresh one: couplings are cached
        operands = NetworkOperands(he3.derivative_moments, C, 3, 2, *he3.readouts(3, 2))
        results[factor] = evaluator.evaluate(INCREMENT_NAMES, operands, 0.3)
    for name in INCREMENT_NAMES:
        assert _relative_error(results[0][name], results[10**12][name]) < 1e-13, name


def test_grouping_by_the_factors_without_the_open_index_changes_nothing(monkeypatch):
    """Every open split's X grouped by their factors without the open index (pulled out of its sum), or none:
    the same sums (batched, per-unit readouts, label noise)."""
    import numerics.kernels.network_shared as network_shared
    from numerics.kernels.network_operands import NetworkOperands

    rng = np.random.default_rng(151)
    points = points_sharing_teachers(3, 2, rng, 2)
    C = np.stack([np.block([[Q, R], [R.T, T]]) for Q, R, T in points])
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(2, 2))
    he3 = network_moments(HE3)
    grouped_splits = []

    class CountedGroups(OpenGroups):
        def __init__(self, keys: list, min_size: int = 1) -> None:
            super().__init__(keys, min_size)
            grouped_splits.append(any(self.free_keys))

    monkeypatch.setattr(network_shared, "OpenGroups", CountedGroups)
    results = {}
    for size in (0, 10**12):  # always grouped, never
        monkeypatch.setattr(network_shared, "MIN_GROUP_SIZE", size)
        evaluator = network_shared.SharedEvaluator(he3.shared_plan)  # a fresh one: the groups are cached
        operands = NetworkOperands(he3.derivative_moments, C, 3, 2, a, b)
        results[size] = evaluator.evaluate(INCREMENT_NAMES, operands, 0.3)
    assert any(grouped_splits)  # some factors were pulled out
    for name in INCREMENT_NAMES:
        assert _relative_error(results[0][name], results[10**12][name]) < 1e-13, name


def test_operands_are_block_powers_and_derivative_moments():
    from numerics.kernels.network_operands import NetworkOperands

    rng = np.random.default_rng(137)
    Q, R, T = random_point(2, 1, rng)
    C = np.block([[Q, R], [R.T, T]])
    moments = {"slope": [np.array([-3.0, 3.0]), np.array([]), np.array([6.0])]}  # He3' = 3x**2 - 3
    operands = NetworkOperands(moments, C, 2, 1, 0.5, 1.0)
    np.testing.assert_allclose(operands.edge("student", "teacher", 3), R**3 / 6)
    np.testing.assert_allclose(operands.edge("unit", "unit", 2), C**2 / 2)
    v = np.diag(Q)
    np.testing.assert_allclose(operands.vector("student", "slope", 0), 0.5 * (3 * v - 3))  # a E[He3'(u)]
    np.testing.assert_allclose(operands.vector("student", "slope", 2), np.full(2, 0.5 * 6.0))
    np.testing.assert_array_equal(operands.vector("student", "slope", 5), np.zeros(2))  # above the degree


def test_stacking_in_chunks_changes_nothing(monkeypatch):
    import numerics.kernels.network_shared as network_shared

    rng = np.random.default_rng(139)
    Q, R, T = random_point(3, 1, rng)
    whole = network_moments(HE3).evaluate(INCREMENT_NAMES, Q, R, T, 0.3)
    monkeypatch.setattr(network_shared, "STACK_ENTRIES", 1)  # one product per chunk
    chunked = network_moments(HE3).evaluate(INCREMENT_NAMES, Q, R, T, 0.3)
    for got, want in zip(chunked, whole):
        assert _relative_error(got, want) < 1e-13


def test_products_are_moved_only_by_symmetries_that_form_a_group():
    # the plan takes a product in any image under the free symmetries, which is exact only when they form a
    # group: with a set that is not closed (a transposition pair without its product) the averages of
    # both routes must still agree
    from numerics.kernels.network_moments import NetworkMoments

    he3 = network_moments(HE3)
    free, _, parts = he3.tables["LL"]
    not_a_group = ((0, 1, 2, 3), (2, 1, 0, 3), (0, 3, 2, 1))
    evaluator = NetworkMoments({"LL": (free, not_a_group, parts)}, he3.derivative_moments, he3.readouts)
    rng = np.random.default_rng(149)
    _assert_routes_agree(evaluator, ("LL",), *random_point(2, 1, rng), 0.3)
