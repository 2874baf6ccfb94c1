"""The printed Hessian module (derive/codegen/hessian_module.py): the committed one is what the printer
writes, and a printed module computes the symbolic averages it was printed from."""

import types

import numpy as np
import pytest
import sympy as sp

from derive.algebra.matrix_expr import evaluate
from derive.codegen.hessian_module import generate_hessian_module
from derive.generate import hessian_module_path
from derive.model.model import HE3, PAPER, Model
from derive.quantities.hessian import HESSIAN_TERM_NAMES, derive_hessian_terms, hessian_result_hash

MIXED = Model(student_activation="x**3 - x", teacher_activation="x**2 + x")


def _load(text: str) -> types.ModuleType:
    module = types.ModuleType("printed_hessian")
    exec(compile(text, "printed_hessian", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("model", [PAPER, HE3], ids=["paper", "he3"])
def test_the_committed_module_is_the_printed_one(model):
    assert generate_hessian_module(model) == hessian_module_path(model).read_text()


def test_printed_module_equals_the_symbolic_averages():
    module = _load(generate_hessian_module(MIXED))
    assert module.INPUT_HASH == MIXED.codegen_hash() and module.RESULT_HASH == hessian_result_hash(MIXED)
    rng = np.random.default_rng(3)
    p, k = 3, 2
    factor = rng.integers(-2, 3, size=(p + k, p + k + 1))
    C = factor @ factor.T
    Q, R, T = C[:p, :p], C[:p, p:], C[p:, p:]
    got = module.hessian_terms(Q.astype(float), R.astype(float), T.astype(float))
    assert len(got) == len(HESSIAN_TERM_NAMES)
    shapes = {"ss": (p, p), "st": (p, k), "V2": (p, 1), "V4": (p, 1)}
    for name, value in zip(HESSIAN_TERM_NAMES, got):
        shape = shapes.get(name, shapes[name[-2:]])
        assert value.shape == shape, name
        expr = derive_hessian_terms(MIXED)[name]
        want = np.array(evaluate(expr, sp.Matrix(Q), sp.Matrix(R), sp.Matrix(T)).tolist(), dtype=float)
        np.testing.assert_allclose(value, np.broadcast_to(want, shape), rtol=1e-12, atol=1e-12, err_msg=name)
    # batched inputs: one leading axis
    batched = module.hessian_terms(np.stack([Q, Q]).astype(float), np.stack([R, R]).astype(float), T.astype(float))
    for value, single in zip(batched, got):
        np.testing.assert_allclose(value[1], single, rtol=1e-13, atol=1e-13)
