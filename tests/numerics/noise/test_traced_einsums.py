"""The deferred evaluation of the generated moments: every recorded term, summed plainly, gives the moment.

Each recorded leaf is evaluated here with ``numpy.einsum`` from its parsed subscripts, and the sum over
the leaves is compared with the plainly evaluated generated function.
"""

from __future__ import annotations

import numpy as np
import pytest

from numerics.noise.traced_einsums import (
    OUTER_PRODUCT,
    Leaf,
    Output,
    Unsupported,
    deferred_einsum,
    deferred_functions,
    flatten_terms,
    parse_subscripts,
)
from numerics.runtime.registry import fluctuation_module


def _leaf_value(leaf: Leaf) -> np.ndarray:
    # operand j's letters: an output axis (0..3) or, for a contracted size-one axis, a label of its own
    operands_and_labels = []
    fresh = 4
    for factor, operand in zip(leaf.factors, leaf.operands):
        labels = []
        for axis in factor:
            if axis >= 0:
                labels.append(axis)
            else:
                labels.append(fresh)
                fresh += 1
        operands_and_labels += [operand, [Ellipsis] + labels]
    value = np.einsum(*operands_and_labels, [Ellipsis, 0, 1, 2, 3])
    coef = 1.0 if leaf.coef is None else np.asarray(leaf.coef)
    if np.ndim(coef) >= 2:
        coef = coef[..., None, None]
    return leaf.sign * coef * value


def _overlaps(p: int, k: int, batch: int, seed: int):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((batch, p + k, p + k))
    C = A @ np.swapaxes(A, 1, 2) / (p + k) + np.eye(p + k)
    return C[:, :p, :p], C[:, :p, p:], C[:, p:, p:]


def test_parse_subscripts_gives_the_output_axis_of_every_letter():
    assert parse_subscripts("...ab,...cd->...abcd") == ((0, 1), (2, 3))
    assert parse_subscripts("...ca,...bd->...abcd") == ((2, 0), (1, 3))
    # a contracted (size-one) letter is -1
    assert parse_subscripts("...ax,...bc,...xd->...abcd") == ((0, -1), (1, 2), (-1, 3))
    assert OUTER_PRODUCT == ((0, 1), (2, 3))


@pytest.mark.parametrize("subscripts", ["...ab,...cd", "...ab,...cd->...abc", "...ab,...ac->...abca",
                                        "ab,cd->abcd", "...ab,...ab->...abcd"])
def test_parse_subscripts_refuses_what_is_not_an_outer_product(subscripts):
    with pytest.raises(Unsupported):
        parse_subscripts(subscripts)


def test_sums_of_deferred_terms_flatten_to_signed_leaves():
    rng = np.random.default_rng(0)
    X, Y, Z = rng.standard_normal((3, 2, 2, 2))
    first = deferred_einsum("...ab,...cd->...abcd", X, Y)
    second = deferred_einsum("...ac,...bd->...abcd", Y, Z)
    third = deferred_einsum("...ad,...bc->...abcd", Z, X)
    total = 0 + first - 2.5 * second + (-third) * 3.0
    expected = (np.einsum("...ab,...cd->...abcd", X, Y) - 2.5 * np.einsum("...ac,...bd->...abcd", Y, Z)
                - 3.0 * np.einsum("...ad,...bc->...abcd", Z, X))
    leaves = flatten_terms(total)
    assert len(leaves) == 3
    np.testing.assert_allclose(sum(_leaf_value(leaf) for leaf in leaves), expected, rtol=1e-14, atol=1e-14)


def test_what_is_not_a_sum_of_outer_products_is_unsupported():
    X = np.ones((2, 2))
    term = deferred_einsum("...ab,...cd->...abcd", X, X)
    with pytest.raises(Unsupported):
        term * term
    with pytest.raises(Unsupported):
        term + np.ones((2, 2, 2, 2))


@pytest.mark.parametrize("p, k", [(2, 1), (3, 2)])
@pytest.mark.parametrize("which", ["first_order_moments", "second_order_moments"])
def test_recorded_terms_of_the_paper_model_sum_to_the_generated_moments(which, p, k):
    module = fluctuation_module(None)
    Q, R, T = _overlaps(p, k, batch=3, seed=p + k)
    plain = getattr(module, which)(Q, R, T, 0.1)
    deferred = deferred_functions(module)[which](Q, R, T, 0.1)
    for expected, recorded in zip(plain, deferred, strict=True):
        assert isinstance(recorded, Output) and recorded.shape == np.shape(expected)
        terms = [_leaf_value(leaf) for leaf in flatten_terms(recorded.value)]
        # the rounding bound of summing the terms in any order
        bound = len(terms) * np.finfo(float).eps * sum(np.abs(term) for term in terms)
        assert np.all(np.abs(sum(terms) - expected) <= bound)
    # the module itself still sums
    assert not isinstance(getattr(module, which)(Q, R, T, 0.1)[0], Output)
