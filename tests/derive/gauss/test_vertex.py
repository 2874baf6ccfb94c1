"""Averages by multigraphs of whole polynomials (derive/gauss/vertex.py) against monomials and pair counts
(derive/gauss/indexed.py): two expansions of the same Gaussian averages, equal exactly."""

import pytest
import sympy as sp

from derive.model.model import HE3, PAPER, Model


@pytest.mark.parametrize(
    "model", [PAPER, HE3, Model(student_activation="x**3 + x**2 - 1", teacher_activation="x**2 + x")], ids=str
)
@pytest.mark.parametrize("name", ["LL", "LN", "NN"])
def test_multigraph_expansion_equals_monomial_wick_expansion(model, name):
    """derive/gauss/vertex.py (whole polynomials per slot) against derive/gauss/indexed.py (monomials, pair counts)."""
    from derive.gauss.indexed import IndexedPolynomial, average
    from derive.gauss.vertex import function_average
    from derive.quantities.increments import FREE, moment_integrands

    for coefficient, factors in moment_integrands(model)[name]:
        summed = [slot for slot, _ in factors if slot not in FREE[name]]
        by_multigraphs = function_average(factors, summed, FREE[name], coefficient)
        product = IndexedPolynomial.constant(coefficient)
        for slot, polynomial in factors:
            product = product * IndexedPolynomial.of_slot(polynomial, slot, summed=slot in summed)
        by_monomials = average(product, FREE[name])
        assert by_multigraphs.keys() == by_monomials.keys()
        for network, value in by_multigraphs.items():
            assert sp.simplify(value - by_monomials[network]) == 0
