"""Increment moments as tables of networks (derive/quantities/network_tables.py): the noise expansion,
the derivative moments and the networks of the linear model against Isserlis' theorem by hand."""

import math

import pytest
import sympy as sp

from derive.model.model import HE3, PAPER, Model, x
from derive.quantities.network_tables import (
    MOMENT_LAYOUT,
    NOISE_EXPANSION,
    Group,
    Part,
    derivative_moment_table,
    free_symmetries,
    network_count,
    network_result_hash,
    network_tables,
)

LINEAR = Model(student_activation="x", teacher_activation="x")


@pytest.mark.parametrize("order", sorted(NOISE_EXPANSION))
def test_noise_expansion_is_the_gaussian_moment_of_g_plus_s_xi(order):
    # <(g + s xi)**n> = sum_i binom(n, i) g**(n-i) s**i <xi**i>, <xi**2j> = (2j-1)!!, s**2 = Delta
    g, delta = sp.symbols("g delta", positive=True)
    want = sum(math.comb(order, 2 * j) * math.prod(range(1, 2 * j, 2)) * g ** (order - 2 * j) * delta**j
               for j in range(order // 2 + 1))
    got = sum(coefficient * g**power * delta**delta_power for power, coefficient, delta_power in NOISE_EXPANSION[order])
    assert sp.expand(got - want) == 0


def test_derivative_moments_of_a_hermite_polynomial():
    # f = x**3 - 3x, u ~ N(0, v): E[f] = 0, E[f'] = E[3u**2 - 3] = 3v - 3, E[f''] = E[6u] = 0, E[f'''] = 6
    assert derivative_moment_table(x**3 - 3 * x) == ((), (-3, 3), (), (6,))
    assert derivative_moment_table(x**2) == ((0, 1), (), (2,))


def test_free_symmetries_keep_kind_and_polynomial():
    assert free_symmetries(MOMENT_LAYOUT["LL"][0]) == ((0, 1, 2, 3), (0, 3, 2, 1), (2, 1, 0, 3), (2, 3, 0, 1))
    assert len(free_symmetries(MOMENT_LAYOUT["EE"][0])) == 24  # four sigma' slopes
    assert len(free_symmetries(MOMENT_LAYOUT["NN"][0])) == 4


def test_linear_model_networks_are_the_isserlis_pairings():
    # sigma' = 1: the slopes are constants (vertices 0, 2 of LL), the identities 1, 3, residuals 4, 5, ...
    tables = network_tables(LINEAR)
    # LL = <lambda_l lambda_h (g**2 + Delta)>: (l h)(g g) once, (l g)(h g) twice (the two residuals swap);
    # the Delta part is (l h) alone
    assert tables["LL"] == (
        Part(1, 0, 2, (Group(((1, 3), (4, 5)), ((1, (1, 1)),)), Group(((1, 5), (3, 4)), ((2, (1, 1)),)))),
        Part(1, 1, 0, (Group(((1, 3),), ((1, (1,)),)),)),
    )
    # EE = <g**4 + 6 Delta g**2 + 3 Delta**2>: 3 pairings of four residuals, 1 of two, the empty one
    assert tables["EE"] == (
        Part(1, 0, 4, (Group(((4, 5), (6, 7)), ((3, (1, 1)),)),)),
        Part(6, 1, 2, (Group(((4, 5),), ((1, (1,)),)),)),
        Part(3, 2, 0, (Group((), ((1, ()),)),)),
    )
    assert network_count(LINEAR) == {"LL": 3, "LN": 3, "NN": 3, "LE": 2, "EN": 2, "EE": 3}


def test_weights_count_every_labelled_pairing():
    # with constant slopes and linear residuals, LL's part with two residuals pairs four linear vertices:
    # 3!! = 3 labelled pairings, which the orbit weights must add up to
    part = network_tables(LINEAR)["LL"][0]
    assert part.residuals == 2
    assert sum(weight for group in part.groups for weight, _ in group.networks) == 3


def test_cubic_models_have_more_networks_and_their_own_hash():
    assert all(network_count(HE3)[name] > network_count(LINEAR)[name] for name in MOMENT_LAYOUT)
    assert network_result_hash(HE3) != network_result_hash(PAPER)
    assert network_result_hash(HE3) == network_result_hash(HE3)
