"""Stage 2: index-free derivation equals the explicit-index expansion, exactly."""

import pytest
import sympy as sp

from derive.model.model import COMMITTED_MODELS, Model, k, p
from derive.paper.explicit import explicit_quantities, index_free_evaluated, mismatches
from derive.quantities.ode import derive_quantities

SIZES = [(P, K) for P in (1, 2, 3) for K in (1, 2, 3)]


# He3 (degree 3, the heaviest explicit expansion) takes 10-50 s per size: slow
@pytest.mark.parametrize(
    "model",
    [pytest.param(m, id=m.name, marks=[pytest.mark.slow] if m.name == "he3" else []) for m in COMMITTED_MODELS],
)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"p{s[0]}k{s[1]}")
def test_index_free_equals_explicit(model, size):
    assert mismatches(model, *size) == []


@pytest.mark.parametrize(
    "size", [(1, 1), (2, 1), pytest.param((2, 2), marks=pytest.mark.slow), pytest.param((3, 2), marks=pytest.mark.slow)]
)
def test_mixed_polynomial_model(size):
    model = Model(
        student_activation="x**3 + x/2 - 1",
        teacher_activation="2*x**2 - x",
        student_readout=1,
        teacher_readout="1/sqrt(k)",
        name="mixed",
    )
    assert mismatches(model, *size) == []


def test_paper_drift_reads_as_matrix_algebra():
    from derive.algebra.matrix_expr import Q, R, T, mm, tr

    drift_R = derive_quantities(COMMITTED_MODELS[0]).drift_R
    expected = -(2 / p**2) * (tr(Q) * R + 2 * mm(Q, R)) + (2 / (k * p)) * (tr(T) * R + 2 * mm(R, T))
    assert sp.expand(drift_R - expected) == 0


def test_comparison_detects_a_wrong_term():
    # negative control: perturb one coefficient of the index-free result
    from derive.algebra.matrix_expr import Q, R, evaluate, mm
    from derive.paper.explicit import overlap_symbols

    model = COMMITTED_MODELS[0]
    wrong = derive_quantities(model).drift_R + mm(Q, R) / p**2
    Qm, Rm, Tm = overlap_symbols(2, 2)
    explicit = explicit_quantities(model, 2, 2)["drift_R"]
    assert evaluate(wrong, Qm, Rm, Tm) != explicit
    assert index_free_evaluated(model, 2, 2)["drift_R"] == explicit
