"""Planning the matrix products of a generated function (derive/codegen/plan.py): shapes of every planned
product agree, each product is computed once, ``c X + c X^T`` is paired."""

import pytest
import sympy as sp

from derive.algebra.matrix_expr import Q, R, T, mm, tp
from derive.codegen.functions import FUNCTIONS, OUTPUT_SHAPES
from derive.codegen.plan import (
    PRODUCTS,
    PlannedGram,
    PlannedMatmul,
    PlannedSymmetric,
    PlannedThinGram,
    pair_transposes,
    plan_function,
    planned_shape,
)
from derive.model.model import HE3, PAPER, k, p
from derive.quantities.ode import derive_quantities


@pytest.mark.parametrize("model", [PAPER, HE3], ids=["paper", "he3"])
@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_planned_products_have_matching_shapes_and_are_distinct(model, spec):
    plan = plan_function(spec, derive_quantities(model).as_dict())
    assert len(plan.collected) == len(plan.full) == len(spec.outputs)
    # every output is a coefficient and a monomial per term, each reduced once by the joint cse
    assert len(plan.reduced) == 2 * sum(len(terms) for terms in plan.collected)
    assert len(plan.products) == len(set(plan.products))
    for node in plan.products:
        assert isinstance(node, PRODUCTS)
        rows, cols = planned_shape(node)
        assert {rows, cols} <= {p, k, sp.Integer(1)}
        if isinstance(node, (PlannedMatmul, PlannedSymmetric)):
            assert planned_shape(node.args[0])[1] == planned_shape(node.args[1])[0], node
        if isinstance(node, (PlannedGram, PlannedThinGram, PlannedSymmetric)):
            assert rows == cols  # a symmetric result
    for (output, _), terms in zip(spec.outputs, plan.collected):
        rows, cols = OUTPUT_SHAPES[output]
        for coefficient, monomial in terms:
            if coefficient != 0:
                shape = planned_shape(monomial)
                assert shape[0] in (rows, 1) and shape[1] in (cols, 1), (output, monomial)


def test_the_paper_model_plans_its_gram_products():
    plan = plan_function(next(s for s in FUNCTIONS if s.name == "all_terms"), derive_quantities(PAPER).as_dict())
    kinds = {type(node) for node in plan.products}
    assert PlannedGram in kinds and PlannedSymmetric in kinds


def test_a_term_and_its_transpose_with_one_coefficient_are_paired():
    X = mm(Q, R, tp(R))
    c, d = sp.Symbol("c"), sp.Symbol("d")
    terms = [(c, X), (d, mm(R, T, tp(R))), (c, tp(X, evaluate=False)), (d, tp(X, evaluate=False))]
    paired = pair_transposes(terms)
    assert len(paired) == 3
    assert paired[0] == (c, sp.Add(X, tp(X, evaluate=False), evaluate=False))
    assert paired[1:] == terms[1:2] + terms[3:]  # another coefficient: kept apart
    assert pair_transposes([(0, X), (0, tp(X, evaluate=False))]) == [(0, X), (0, tp(X, evaluate=False))]
