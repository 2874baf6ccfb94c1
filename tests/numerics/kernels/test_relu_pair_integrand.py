"""The pieces of the relu eta**2 path integral (numerics/kernels/relu_pair_integrand.py): node rules, start values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from numerics.kernels import unit_tuples
from numerics.kernels.relu_pair_integrand import (
    GRADED,
    ONE_PANEL,
    THREE_PANELS,
    TWO_PANELS,
    node_rules,
    node_set,
    pair_statics,
    theta_relu_square,
)
from numerics.kernels.relu_quadrature import NODES, theta_theta_relu_relu


@pytest.mark.parametrize("rule", [ONE_PANEL, TWO_PANELS, THREE_PANELS, GRADED])
def test_every_rule_integrates_the_end_point_singularities(rule):
    s, weight = node_set(NODES, rule)
    t = 1 - s * s
    assert np.all((s > 0) & (s < 1))
    # int_0^1 dt = 1, int (1 - t)**-1/2 dt = 2, int sqrt(1 - t**2) dt = pi / 4: smooth in s and in arccos(t)
    assert abs(weight.sum() - 1) < 1e-14
    assert abs(weight @ (1 / s) - 2) < 1e-13
    assert abs(weight @ (s * np.sqrt(2 - s * s)) - math.pi / 4) < 1e-13
    assert abs(weight @ t**5 - 1 / 6) < 1e-14


def rules_of(C: np.ndarray, count: int) -> np.ndarray:
    """The node rule of every student pair (j, l), j <= l."""
    statics = pair_statics(C[None], np.ones((1, C.shape[-1])), count)
    j, l = np.triu_indices(count)
    return node_rules(statics, np.zeros(j.size, dtype=int), j, l)


def test_node_rules_follow_the_dependence_of_the_units():
    rng = np.random.default_rng(2)
    weak = rng.standard_normal((6, 60))
    assert np.all(rules_of(weak @ weak.T / 60, 3) == ONE_PANEL)
    # students 0, 1 and unit 4 nearly dependent, no pair nearly parallel: graded panels where the copied
    # student l is one of them, whatever j
    A = rng.standard_normal((6, 7))
    A[1] = (A[0] + A[4]) / np.sqrt(2) + 1e-2 * rng.standard_normal(7)
    rules = rules_of(A @ A.T / 7, 3)
    j, l = np.triu_indices(3)
    assert np.all(rules[l < 2] == GRADED)
    assert np.all(rules[l == 2] != GRADED)
    # rank 2: every unit is exactly in the span of two others (the singularity at t = 1, where s smooths it)
    low = rng.standard_normal((5, 2))
    assert np.all(rules_of(low @ low.T, 3) == THREE_PANELS)


@pytest.mark.parametrize("rank", [None, 3])
def test_start_values_equal_the_per_block_route(rank):
    # E[theta(z_J) h**2] = sum_{u,v} c_u c_v E[theta(z_J) theta(z_J) relu(z_u) relu(z_v)]
    rng = np.random.default_rng(5)
    A = rng.standard_normal((5, rank or 6))
    C = A @ A.T / A.shape[1]
    weights = rng.standard_normal(5)
    start = theta_relu_square(pair_statics(C[None], weights[None], 2), 2, NODES)[0]
    units = np.arange(5)
    blocks = unit_tuples.gather(C, theta_theta_relu_relu, [units[:2], units[:2], units, units])
    old = np.einsum("jjuv,u,v->j", blocks, weights, weights)
    assert np.max(np.abs(start - old)) <= 1e-10 * np.sum(np.abs(weights)) ** 2
