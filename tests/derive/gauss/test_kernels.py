"""Closed-form Gaussian averages over a small block (derive/gauss/kernels.py) against known results.

Polynomials: Isserlis' theorem; erf: the arcsine law; relu: the arc-cosine kernel of degree 1;
every program evaluated at a random covariance block.
"""

import math

import numpy as np
import pytest
import sympy as sp

from derive.gauss.kernels import MAX_SLOTS, Program, Vertex, block_average, covariance_symbols
from derive.model.activations import classify, relu, x

ERF = Vertex(classify(sp.erf(x / sp.sqrt(2))))
RELU = Vertex(classify(relu(x)))


def _block(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=(n, n + 2)) / np.sqrt(n + 2)
    return factor @ factor.T + 0.2 * np.eye(n)


def _value(program: Program, C: np.ndarray) -> float:
    symbols = covariance_symbols(len(C))
    values = {symbols[a][b]: C[a, b] for a in range(len(C)) for b in range(len(C))}
    return float(sp.N(program.inline().xreplace(values), 30))


def test_covariance_symbols_are_symmetric():
    symbols = covariance_symbols(3)
    assert all(symbols[a][b] is symbols[b][a] for a in range(3) for b in range(3))
    assert len({s for row in symbols for s in row}) == 6


def test_polynomial_averages_are_isserlis():
    C = _block(3, 0)
    square, linear = Vertex(classify(x**2)), Vertex(classify(x))
    assert _value(block_average((square, square)), C[:2, :2]) == pytest.approx(
        C[0, 0] * C[1, 1] + 2 * C[0, 1] ** 2, rel=1e-12)
    assert _value(block_average((square, linear, linear)), C) == pytest.approx(
        C[0, 0] * C[1, 2] + 2 * C[0, 1] * C[0, 2], rel=1e-12)
    # a derivative: (x**3)' = 3 x**2, so E[3 z0**2] = 3 c00
    assert _value(block_average((Vertex(classify(x**3), order=1),)), C[:1, :1]) == pytest.approx(3 * C[0, 0])


def test_erf_pair_is_the_arcsine_law():
    C = _block(2, 1)
    want = 2 / math.pi * math.asin(C[0, 1] / math.sqrt((1 + C[0, 0]) * (1 + C[1, 1])))
    assert _value(block_average((ERF, ERF)), C) == pytest.approx(want, rel=1e-12)


def test_erf_times_a_linear_unit_is_stein():
    # E[z1 erf(z0/sqrt 2)] = c01 E[erf'(z0/sqrt 2)] = c01 sqrt(2/pi) / sqrt(1 + c00)
    C = _block(2, 2)
    want = C[0, 1] * math.sqrt(2 / math.pi) / math.sqrt(1 + C[0, 0])
    assert _value(block_average((ERF, Vertex(classify(x)))), C) == pytest.approx(want, rel=1e-12)


def test_relu_pair_is_the_arc_cosine_kernel():
    C = _block(2, 3)
    rho = C[0, 1] / math.sqrt(C[0, 0] * C[1, 1])
    theta = math.acos(rho)
    want = math.sqrt(C[0, 0] * C[1, 1]) / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * math.cos(theta))
    assert _value(block_average((RELU, RELU)), C) == pytest.approx(want, rel=1e-12)


def test_pruned_program_keeps_only_what_the_result_uses():
    program = Program()
    used = program.fresh(sp.Symbol("a") + 1)
    program.fresh(sp.Symbol("b") * 2)  # unused
    program.result = used**2
    assert len(program.pruned().assignments) == 1
    assert program.pruned().inline() == (sp.Symbol("a") + 1) ** 2
    assert program.fresh(sp.Symbol("c")) == sp.Symbol("c")  # a symbol needs no assignment


@pytest.mark.parametrize("slots", [0, MAX_SLOTS + 1])
def test_slot_count_outside_the_range_is_refused(slots):
    with pytest.raises(ValueError, match=f"1 to {MAX_SLOTS} slots, got {slots}"):
        block_average((ERF,) * slots)
