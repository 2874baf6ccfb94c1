"""The layout of one packed-covariance evaluation: the matrices it forms, its term count, its layout check.

The terms are the paper model's recorded first- and second-order moments (as the packed evaluation
records them) and outer products of arbitrary drift matrices.
"""

from __future__ import annotations

import numpy as np
import pytest

from numerics.noise.covariance_plan import build_plan, materialise, pair_weights, same_layout
from numerics.noise.packing import covariance_contributions
from numerics.noise.traced_einsums import OUTER_PRODUCT, Leaf, deferred_functions, flatten_terms
from numerics.runtime.registry import fluctuation_module

P, K, BATCH = 2, 1, 3


def _sources(seed: int, second_order: bool) -> dict[str, list[Leaf]]:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((BATCH, P + K, P + K))
    C = A @ np.swapaxes(A, 1, 2) / (P + K) + np.eye(P + K)
    Q, R, T = C[:, :P, :P], C[:, :P, P:], C[:, P:, P:]
    functions = deferred_functions(fluctuation_module(None))
    outputs = dict(zip(("LL", "LN", "NN"), functions["first_order_moments"](Q, R, T, 0.0)))
    dQ, dR = rng.standard_normal((BATCH, P, P)), rng.standard_normal((BATCH, P, K))
    B = rng.standard_normal((BATCH, P, P))
    drifts = {"dQ*dQ": (dQ, dQ), "dQ*dR": (dQ, dR), "dR*dR": (dR, dR)}
    if second_order:
        outputs.update(zip(("LE", "EN", "EE"), functions["second_order_moments"](Q, R, T, 0.0)))
        drifts.update({"dQ*B": (dQ, B), "B*dQ": (B, dQ), "B*B": (B, B), "B*dR": (B, dR)})
    sources = {name: flatten_terms(value.value) for name, value in outputs.items()}
    sources.update({name: [Leaf(OUTER_PRODUCT, pair)] for name, pair in drifts.items()})
    return sources


def test_materialise_forms_a_matrix_its_transpose_and_an_outer_product():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((BATCH, 2, 3))
    column, row = rng.standard_normal((BATCH, 2, 1)), rng.standard_normal((1, 4))
    np.testing.assert_array_equal(materialise(("m", 0, False), (M,), (BATCH,)), M)
    np.testing.assert_array_equal(materialise(("m", 0, True), (M,), (BATCH,)), np.swapaxes(M, 1, 2))
    outer = materialise(("o", (0, 0), (1, 1)), (column, row), (BATCH,))
    assert outer.shape == (BATCH, 2, 4)
    for b in range(BATCH):
        np.testing.assert_array_equal(outer[b], np.outer(column[b, :, 0], row[0]))


@pytest.mark.parametrize("second_order", [False, True])
def test_every_recorded_term_is_in_the_plan_with_its_sign_and_power(second_order):
    sources = _sources(1, second_order)
    plan = build_plan(P, K, sources, set(), second_order)
    # one term per recorded leaf and per contribution (covariance_contributions) that reads its source
    contributions = covariance_contributions(second_order)
    expected_terms = sum(len(sources[source]) for _, source, *_ in contributions)
    assert plan.term_scale.size == expected_terms
    eta = 0.3
    expected_total = sum(sign * eta**power * sum(leaf.sign for leaf in sources[source])
                         for _, source, _, power, sign in contributions)
    # with every coefficient one, the pair weights add up to the signed powers of eta of all terms
    weights = pair_weights(plan, eta) @ np.ones(len(plan.coef_slots) + 1)
    assert weights.sum() == pytest.approx(expected_total, rel=len(weights) * np.finfo(float).eps)
    assert plan.pair_pointer[-1] == expected_terms


def test_same_layout_holds_at_other_overlaps_and_fails_when_the_terms_differ():
    plan = build_plan(P, K, _sources(1, True), set(), True)
    other = [leaf for group in _sources(2, True).values() for leaf in group]
    # the generated code is straight-line: new values, the same layout
    assert same_layout(plan, other)
    # one operand no longer shared with the terms that shared it
    changed = list(other)
    first = changed[0]
    changed[0] = Leaf(first.factors, tuple(np.array(o) for o in first.operands), first.coef, first.sign)
    assert not same_layout(plan, changed)
    # a leaf missing
    assert not same_layout(plan, other[1:])
