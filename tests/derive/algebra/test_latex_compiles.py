"""The LaTeX of derive/algebra/render.py compiles: explicit grouping, typeset with KaTeX (tests/tex_engine.py).

A superscript goes on a symbol or a function application only (anything larger is put in
parentheses), and matrix products inside an entry-wise product are parenthesised; every
derived quantity of a grid of models then typesets in KaTeX's strict mode.
"""

import pytest
import sympy as sp
from tex_engine import assert_typesets, markdown_formulas, typeset_errors

from derive.algebra.matrix_expr import Q, R, T, dg, mm, rowsum, total, tp
from derive.algebra.render import PRECEDENCE, latex
from derive.model.model import HE2, HE3, PAPER, Model, hermite, k, p
from derive.quantities.ode import QUANTITY_NAMES, derive_quantities

#: Polynomial models whose equations are typeset: the committed ones and custom pairs that
#: produce transposed factors under entry-wise powers (x**3 vs x**2 gave ``R R^{\top}^{\circ 2}``).
GRID = (
    PAPER,
    HE2,
    HE3,
    Model(student_activation="x**3", teacher_activation="x**2", name="cube_square"),
    Model(student_activation="x**2 + x", teacher_activation="x", name="mixed"),
    Model(student_activation="x**2", teacher_activation="x**3", name="square_cube"),
    Model(student_activation=hermite(4), teacher_activation=hermite(4), name="he4"),
    Model(student_activation="x**4", teacher_activation=hermite(3), name="quartic_he3"),
    Model(
        student_activation="x**3 + x**2",
        teacher_activation="x**2 - 1",
        student_readout="1/sqrt(p)",
        noise_variance="1/2",
        weight_decay="1/10",
        name="readout_noise_decay",
    ),
)


def test_the_engine_rejects_a_double_superscript_and_accepts_the_grouped_form():
    errors = typeset_errors(
        [r"R R^{\top}^{\circ 2}", r"\left(R R^{\top}\right)^{\circ 2}", r"\operatorname{dg}\left(Q"]
    )
    assert "Double superscript" in errors[0]
    assert errors[1] is None
    assert errors[2] is not None


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # an entry-wise power of a product or of a transpose: the base in parentheses
        (mm(R, tp(R)) ** 2, r"\left(R R^{\top}\right)^{\circ 2}"),
        (mm(R, tp(R) ** 2), r"R \left(R^{\top}\right)^{\circ 2}"),
        (mm(tp(dg(T)), tp(R) ** 2), r"\operatorname{dg}\left(T\right)^{\top} \left(R^{\top}\right)^{\circ 2}"),
        (tp(rowsum(Q)) ** 2, r"\left(\left(Q \mathbf{1}\right)^{\top}\right)^{\circ 2}"),
        (rowsum(Q) ** 3, r"\left(Q \mathbf{1}\right)^{\circ 3}"),
        # a transpose of a product; the matrix power of something that carries a superscript
        (tp(rowsum(tp(R))), r"\left(R^{\top} \mathbf{1}\right)^{\top}"),
        (mm(Q**2, Q**2), r"\left(Q^{\circ 2}\right)^{2}"),
        # symbols and function applications take a superscript as they are
        (Q**2, r"Q^{\circ 2}"),
        (tp(R), r"R^{\top}"),
        (dg(Q) ** 2, r"\operatorname{dg}\left(Q\right)^{\circ 2}"),
        (mm(Q, Q), r"Q^{2}"),
        # matrix products inside an entry-wise product are parenthesised, plain factors are not
        (R * rowsum(Q), r"R \circ \left(Q \mathbf{1}\right)"),
        (Q * mm(Q, Q**2), r"Q \circ \left(Q Q^{\circ 2}\right)"),
        (dg(Q) * tp(dg(Q)), r"\operatorname{dg}\left(Q\right) \circ \operatorname{dg}\left(Q\right)^{\top}"),
        (total(R**2) * Q, r"\operatorname{sum}\left(R^{\circ 2}\right) Q"),
    ],
)
def test_grouping(expr, expected):
    assert latex(expr) == expected


def test_the_stated_grouping_typesets():
    # PRECEDENCE is Markdown with inline math: every $...$ must compile too
    formulas = markdown_formulas(PRECEDENCE, "PRECEDENCE")
    assert len(formulas) >= 5
    assert_typesets(formulas)


def test_every_derived_quantity_of_the_grid_typesets():
    formulas = {}
    for model in GRID:
        derived = derive_quantities(model).as_dict()
        for name in QUANTITY_NAMES:
            formulas[f"{model.name} {name}"] = latex(derived[name])
    assert_typesets(formulas)


def test_scalar_powers_keep_their_ordinary_form():
    assert latex(sp.Integer(3) * Q / (k * p**2)) == r"\frac{3}{k p^{2}} Q"
