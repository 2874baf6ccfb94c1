"""Per-tuple kernels and their module (derive/codegen/tuples.py): slot functions, closed forms,
missing averages, hashes, and the committed erf module is what the printer writes."""

import math

import numpy as np
import pytest
import sympy as sp

from derive.codegen.tuples import (
    INCREMENT_KERNELS,
    KERNELS,
    generate_tuple_module,
    kernel_programs,
    kernel_vertices,
    module_input_hash,
    tuple_input_hash,
    tuple_result_hash,
)
from derive.gauss.kernels import MissingAverage, Program, covariance_symbols
from derive.generate import tuple_module_path
from derive.model.model import HE2, PAPER, SCM, Model

RELU = Model(student_activation="relu(x)", teacher_activation="relu(x)")


def _value(program: Program, C: np.ndarray) -> float:
    symbols = covariance_symbols(len(C))
    values = {symbols[a][b]: C[a, b] for a in range(len(C)) for b in range(len(C))}
    return float(sp.N(program.inline().xreplace(values), 30))


def test_slots_are_the_models_functions_and_their_derivatives():
    vertices = kernel_vertices(HE2, ("s", "ds", "t", "x", "d2s"))
    assert [v.order for v in vertices] == [0, 1, 0, 0, 2]
    assert vertices[0].activation.kind == "polynomial" and vertices[3].activation.coefficients == (0, 1)
    assert {len(slots) for slots in KERNELS.values()} <= {2, 3, 4, 5, 6}  # 5 and 6: the increment moments


def test_the_erf_noise_kernel_is_the_closed_form():
    # sigma = erf(x/sqrt 2): sigma' = sqrt(2/pi) exp(-x**2/2), <sigma'(z0) sigma'(z1)> = (2/pi) / sqrt(det(I + C))
    rng = np.random.default_rng(4)
    factor = rng.normal(size=(2, 3))
    C = factor @ factor.T
    program = kernel_programs(SCM)["noise"]
    assert _value(program, C) == pytest.approx(2 / math.pi / math.sqrt(np.linalg.det(np.eye(2) + C)), rel=1e-12)


def test_missing_averages_are_kept_with_their_message():
    programs = kernel_programs(RELU)
    assert set(programs) == set(KERNELS)
    missing = {name for name, program in programs.items() if isinstance(program, MissingAverage)}
    # relu''' and relu'''' are distributions: no closed form; the ODE kernels all exist (relu's increment
    # moments are truncated moments, numerics/kernels/relu_moments.py, not kernels)
    assert missing == {"hessian_13_ss", "hessian_31_st", "hessian_4_s", "hessian_4_t"} | INCREMENT_KERNELS
    assert all(str(programs[name]) for name in missing)


def test_hashes_tell_models_and_routes_apart():
    assert tuple_input_hash(PAPER) != PAPER.codegen_hash()
    assert module_input_hash(PAPER) == tuple_input_hash(PAPER)  # polynomial: the index-free module keeps the key
    assert module_input_hash(SCM) == SCM.codegen_hash()  # erf: the per-tuple module is its only module
    assert len({tuple_result_hash(model) for model in (PAPER, HE2, SCM)}) == 3


def test_the_committed_erf_module_is_the_printed_one():
    text = generate_tuple_module(SCM)
    assert text == tuple_module_path(SCM).read_text()
    assert f"INPUT_HASH = {SCM.codegen_hash()!r}" in text
