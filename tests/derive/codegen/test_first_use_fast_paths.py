"""The first-use fast paths of the generator print the module the plain sympy operations print.

Deriving and printing a typed model skips work sympy would repeat: products of factors that
are already sorted are assembled without sorting (``plan.product_of_factors``), coefficient
sums with nothing to expand are not expanded (``indexed.expanded_sum``), shared
sub-expressions are walked once (``plan.distinct_nodes``), transposed pairs are found without
building transposes (``plan.pair_transposes``), texts without function calls are printed once
for both branches (``module.calls_functions``) and the garbage collector is paused. Each is
swapped here for the plain operation it replaces, and the module of a dense typed polynomial
must come out byte for byte the same, with the same numbers.
"""

from __future__ import annotations

import gc
import types

import numpy as np
import pytest
import sympy as sp
from sample_points import random_point

from derive.algebra.contract import network_to_expression, networks_to_expression
from derive.algebra.matrix_expr import tp
from derive.codegen import module, plan
from derive.codegen.module import generate_module
from derive.gauss import indexed
from derive.model.model import Model, k, p
from derive.quantities.ode import derive_quantities, indexed_integrands

#: A dense cubic student (the bench's degree-3 first-use model) and a teacher with a linear part:
#: the smallest degree whose diffusion has a tensor network without a matrix-product form.
DENSE = Model(student_activation="-x**3/2 + 2*x**2 - x", teacher_activation="x**2 + x")


def plain_pair_transposes(terms):
    """``pair_transposes`` as first written: a look-up of each ``tp(X)``, built for it."""
    position = {(coefficient, monomial): i for i, (coefficient, monomial) in enumerate(terms)}
    merged, used = [], set()
    for i, (coefficient, monomial) in enumerate(terms):
        if i in used:
            continue
        if coefficient != 0:
            candidates = [tp(monomial, evaluate=False)]
            if isinstance(monomial, tp):
                candidates.append(monomial.args[0])
            partners = [position.get((coefficient, c)) for c in candidates]
            partners = [j for j in partners if j is not None and j > i and j not in used]
            if partners:
                j = min(partners)
                monomial = sp.Add(monomial, terms[j][1], evaluate=False)
                used.add(j)
        merged.append((coefficient, monomial))
    return merged


def plain_distinct_nodes(exprs):
    return list(dict.fromkeys(node for expr in exprs for node in sp.preorder_traversal(expr)))


def _load(source: str, name: str) -> types.ModuleType:
    loaded = types.ModuleType(name)
    exec(compile(source, name, "exec"), loaded.__dict__)
    return loaded


def test_fast_paths_print_the_module_of_plain_sympy(monkeypatch):
    layout = "compact"  # its functions are those of the full layout, plus noise_terms
    derive_quantities.cache_clear()
    fast = generate_module(DENSE, layout).source
    with monkeypatch.context() as patch:
        patch.setattr(plan, "product_of_factors", lambda factors: sp.Mul(*factors))
        patch.setattr(indexed, "expanded_sum", lambda terms: sp.expand(sp.Add(*terms)))
        patch.setattr(plan, "distinct_nodes", plain_distinct_nodes)
        patch.setattr(module, "pair_transposes", plain_pair_transposes)
        patch.setattr(module, "calls_functions", lambda expr: True)  # nothing shared between the branches
        derive_quantities.cache_clear()
        plain = generate_module(DENSE, layout).source
    derive_quantities.cache_clear()
    assert fast == plain
    fast_module, plain_module = _load(fast, "fast"), _load(plain, "plain")
    rng = np.random.default_rng(3)
    for kind in ("random", "singular", "near"):
        Q, R, T = random_point(3, 2, rng, kind)
        for got, want in zip(fast_module.all_terms(Q, R, T), plain_module.all_terms(Q, R, T)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * float(np.max(np.abs(want))))


def test_the_fast_paths_agree_term_by_term():
    """Each helper against the plain operation on the sums of the dense model (equal ``srepr``)."""
    derived = derive_quantities(DENSE).as_dict()
    for name in ("drift_Q", "diffusion_Q"):
        for term in sp.Add.make_args(derived[name]):
            factors = list(sp.Mul.make_args(term))
            for part in (factors, factors[1:], factors[:-1], factors[:1], []):
                assert sp.srepr(plan.product_of_factors(part)) == sp.srepr(sp.Mul(*part))
        terms = [(sp.Integer(1), monomial) for monomial in sp.Add.make_args(derived[name])]
        terms += [(sp.Integer(1), tp(monomial, evaluate=False)) for _, monomial in terms[::3]]
        assert plan.pair_transposes(terms) == plain_pair_transposes(terms)
        parts = list(sp.Add.make_args(derived[name]))
        assert plan.distinct_nodes(parts) == plain_distinct_nodes(parts)
    for poly, free in indexed_integrands(DENSE).values():
        networks = indexed.average(poly, free)
        plain_sum = sp.Add(*[c * network_to_expression(n) for n, c in networks.items()])
        assert sp.srepr(networks_to_expression(networks)) == sp.srepr(plain_sum)
    for terms in ([sp.Rational(3, 11) / (k * p), -sp.Rational(1, 2) / p**2], [1 / sp.sqrt(p), 2 / p], [(p + 1) / k]):
        assert sp.srepr(indexed.expanded_sum(terms)) == sp.srepr(sp.expand(sp.Add(*terms)))


def test_the_garbage_collector_is_restored():
    assert gc.isenabled()
    generate_module(Model(student_activation="x**3", teacher_activation="x**2"), "full")
    assert gc.isenabled()
    with pytest.raises(ValueError, match="unknown module layout"):
        generate_module(DENSE, "dense")
    assert gc.isenabled()
    gc.disable()
    try:
        generate_module(Model(student_activation="x**3", teacher_activation="x**2"), "full")
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()


def test_the_comparison_can_fail(monkeypatch):
    """A helper that drops a factor is caught by the byte comparison."""
    model = Model(student_activation="x**3 - x", teacher_activation="x**2")
    want = generate_module(model, "full").source
    monkeypatch.setattr(plan, "product_of_factors", lambda factors: sp.Mul(*factors[:1]))
    derive_quantities.cache_clear()
    try:
        assert generate_module(model, "full").source != want
    finally:
        derive_quantities.cache_clear()
