"""Planning the einsum fallback into matrix products (derive/codegen/contraction.py): the printed planned code
equals the old multi-operand einsum to 1e-12 relative, unbatched, batched and with a shared (unbatched) teacher
overlap, on the networks of random polynomial models of degrees 3-6 and on synthetic networks; no printed
einsum has more than three operands."""

import re

import numpy as np
import pytest
import sympy as sp
from sample_points import random_point

from derive.algebra.matrix_expr import Q, R, T, dg, es, mm, tp
from derive.codegen.contraction import GemmForm, PairwiseContraction, plan_contraction
from derive.codegen.module import generate_module
from derive.codegen.printer import RUNTIME_HELPERS, NumpyPrinter
from derive.model.model import HE3, Model
from derive.quantities.ode import derive_quantities
from numerics.kernels import helpers
from numerics.runtime.registry import generated_module

# the degree-3 to degree-6 models of tests/numerics/runtime/test_every_model.py (derived once per session)
RANDOM_MODELS = [
    Model(student_activation="-x**3/2 + 2*x**2 - x", teacher_activation="x**2"),
    Model(student_activation="x**4/5 - x**3 + 3*x/4 - 1/2", teacher_activation="x**3 - 3*x"),
    Model(student_activation="x**5/7 + x**4/3 - 2*x**2 + x", teacher_activation="x**2 + x"),
    Model(student_activation="x**6/11 - x**5/4 + x**3 - 3*x**2/2 + 2", teacher_activation="x**2"),
]
EINSUM_CALL = re.compile(r"einsum\('([^']*)'")


def _evaluate(expr: sp.Expr, overlaps: tuple, *, unbatched: bool) -> np.ndarray:
    namespace = {"np": np, "Q": overlaps[0], "R": overlaps[1], "T": overlaps[2]}
    namespace |= {"p": overlaps[0].shape[-1], "k": overlaps[2].shape[-1]}
    namespace |= {f"_{name}": getattr(helpers, name) for name in RUNTIME_HELPERS}
    return eval(NumpyPrinter(unbatched=unbatched).doprint(expr), namespace)


def _points(p_value: int, k_value: int, seed: int) -> list[tuple[tuple, bool]]:
    """(overlaps, unbatched) cases: one point, a batch of three, a batch with one shared T."""
    rng = np.random.default_rng(seed)
    points = [random_point(p_value, k_value, rng, kind) for kind in ("random", "singular", "near")]
    batch = tuple(np.stack([point[i] for point in points]) for i in range(3))
    return [(points[0], True), (points[0], False), (batch, False), (batch[:2] + (points[0][2],), False)]


def _operand_counts(code: str) -> list[int]:
    return [len(subscripts.split("->")[0].split(",")) for subscripts in EINSUM_CALL.findall(code)]


def _assert_planned_equals_einsum(einsum: es, p_value: int, k_value: int, seed: int = 0) -> sp.Expr:
    planned = plan_contraction(einsum, list(einsum.args[2:]))
    for printer in (NumpyPrinter(), NumpyPrinter(unbatched=True)):
        assert max(_operand_counts(printer.doprint(planned))) <= 3
    for overlaps, unbatched in _points(p_value, k_value, seed):
        want = _evaluate(einsum, overlaps, unbatched=unbatched)
        got = _evaluate(planned, overlaps, unbatched=unbatched)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.max(np.abs(want)))
    return planned


@pytest.mark.parametrize("model", RANDOM_MODELS, ids=lambda m: str(m.student_activation).replace(" ", ""))
def test_every_network_of_a_random_model_is_planned_into_one_matrix_product(model):
    diffusion = derive_quantities(model).diffusion_Q
    networks = sorted(diffusion.atoms(es), key=sp.default_sort_key)
    assert networks  # cubic and higher students have networks without a matrix-product form
    for index, einsum in enumerate(networks):
        planned = _assert_planned_equals_einsum(einsum, 4, 3, seed=index)
        assert len(planned.atoms(GemmForm)) == 1


def test_the_committed_he3_module_equals_the_einsum_route():
    old_source = generate_module(HE3, planned_contractions=False).source
    assert max(_operand_counts(old_source)) == 5  # the baseline really is the old route
    old = {}
    exec(compile(old_source, "he3_einsum", "exec"), old)
    new = generated_module(HE3)
    assert max(_operand_counts(open(new.__file__).read())) <= 3
    for (Qv, Rv, Tv), _ in _points(5, 3, seed=7):
        for name, args in (("all_terms", ()), ("rhs_terms", (0.3, 0.09, 0.02))):
            for got, want in zip(getattr(new, name)(Qv, Rv, Tv, *args), old[name](Qv, Rv, Tv, *args)):
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.max(np.abs(want)))


#: Q R R^T: a p x p operand that is not symmetric, so an edge read the wrong way round changes the value
SKEW = mm(Q, R, tp(R))


def test_a_complete_graph_with_vectors_and_a_free_edge_keeps_every_orientation():
    # summed nodes of both sizes (m student, t teacher), edges given in both orientations,
    # vectors on all four nodes, an edge between the free nodes
    subscripts = "jm,ml,jt,tl,mt,lj,jz,lz,mz,tz->jl"
    operands = [SKEW, SKEW, R, tp(mm(Q, R)), R * mm(Q, R), SKEW, dg(Q), mm(R, T, tp(R), dg(Q)), mm(Q, dg(Q)), dg(T)]
    planned = _assert_planned_equals_einsum(es(sp.Symbol(subscripts), sp.Symbol("pp"), *operands), 4, 3)
    assert len(planned.atoms(GemmForm)) == 1


@pytest.mark.parametrize(
    "subscripts, code, operands",
    [
        # three summed nodes (two students, one teacher), free j student and l teacher: a pairwise path
        ("jm,mn,no,lo,mo,jn->jl", "pk", [Q, Q, R, T, R, SKEW]),
        # a scalar network
        ("mn,no,om,mz->", "11", [SKEW, R, tp(R), dg(Q)]),
    ],
)
def test_other_networks_take_a_pairwise_path_of_two_operand_einsums(subscripts, code, operands):
    einsum = es(sp.Symbol(subscripts), sp.Symbol(code), *operands)
    planned = _assert_planned_equals_einsum(einsum, 4, 3)
    assert not planned.atoms(GemmForm)
    steps = planned.atoms(PairwiseContraction)
    assert len(steps) == len(operands) - 1
    assert all(len(str(step.args[0]).split("->")[0].split(",")) == 2 for step in steps)


def test_the_comparison_detects_a_transposed_operand():
    """The check can fail: one edge read in the wrong orientation changes the planned value."""
    right = es(sp.Symbol("jm,lm,jt,lt,mt->jl"), sp.Symbol("pp"), SKEW, Q, R, R, R * mm(Q, R))
    wrong = es(sp.Symbol("mj,lm,jt,lt,mt->jl"), sp.Symbol("pp"), SKEW, Q, R, R, R * mm(Q, R))
    (overlaps, _), *_ = _points(4, 3, 0)
    values = [_evaluate(plan_contraction(e, list(e.args[2:])), overlaps, unbatched=True) for e in (right, wrong)]
    assert np.max(np.abs(values[0] - values[1])) > 1e-6 * np.max(np.abs(values[0]))


def test_a_wrong_operand_count_is_refused():
    einsum = es(sp.Symbol("jm,lm,jn,ln,mn->jl"), sp.Symbol("pp"), Q, Q, Q, Q, Q)
    with pytest.raises(ValueError, match="4 operands for an einsum of 5"):
        plan_contraction(einsum, [Q, Q, Q, Q])
