"""LaTeX rendering of index-free expressions (derive/algebra/render.py): signs of the grouped terms."""

import re

import pytest
import sympy as sp

from derive.algebra.matrix_expr import Q, R, T, rowsum, total, tp, tr
from derive.algebra.render import latex
from derive.model.model import PAPER, Model, k, p
from derive.quantities.ode import derive_quantities

# a prefactor fraction directly followed by a minus sign reads as a subtraction of the next term
_FRACTION = r"\\frac\{(?:[^{}]|\{[^{}]*\})*\}\{(?:[^{}]|\{[^{}]*\})*\}"
_AMBIGUOUS = re.compile(_FRACTION + r" -")

LINEAR = Model(student_activation="x", teacher_activation="x", name="linear")


def test_a_one_term_negative_group_carries_its_sign_in_front_of_the_prefactor():
    # the linear model's drift of R is (T 1^T / k - R^T 1^T / p) / p: it used to print as
    # "\frac{1}{p^{2}} - R^{\top} \mathbf{1}^{\top} + ...", which reads as 1/p^2 minus a matrix
    drift_R = derive_quantities(LINEAR).as_dict()["drift_R"]
    rendered = latex(drift_R)
    # (the transpose of a product is grouped: \left(R^{\top} \mathbf{1}\right)^{\top}, see test_latex_compiles.py)
    assert rendered == (
        r"- \frac{1}{p^{2}} \left(R^{\top} \mathbf{1}\right)^{\top} + \frac{1}{k p} \left(T \mathbf{1}\right)^{\top}"
    )


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (-R / p**2, r"- \frac{1}{p^{2}} R"),
        (
            2 * R / (k * p) - 3 * tr(Q) * R / p**2,
            r"- \frac{3}{p^{2}} \operatorname{tr}\left(Q\right) R + \frac{2}{k p} R",
        ),
        (-2 * total(R) / (k * p**3), r"- \frac{2}{k p^{3}} \operatorname{sum}\left(R\right)"),
        # a group of several terms keeps its signs inside the parentheses
        ((tp(rowsum(R)) - R) / p, r"\frac{1}{p} \left(- R + \left(R \mathbf{1}\right)^{\top}\right)"),
        (-Q, "- Q"),
        (T - Q, r"\left(T - Q\right)"),
        (sp.Integer(0) * Q, "0"),
    ],
)
def test_signs_of_grouped_terms(expr, expected):
    assert latex(expr) == expected


@pytest.mark.parametrize(
    "model",
    [
        LINEAR,
        PAPER,
        Model(student_activation="x**3 - 3*x", teacher_activation="x**3 - 3*x", name="he3"),
        Model(student_activation="x**2 + x", teacher_activation="x", name="mixed"),
    ],
    ids=lambda m: m.name,
)
def test_no_prefactor_is_followed_by_a_minus_sign(model):
    for name, expr in derive_quantities(model).as_dict().items():
        rendered = latex(expr)
        assert not _AMBIGUOUS.search(rendered), (name, rendered)
        assert "+ -" not in rendered and "} -1" not in rendered, (name, rendered)
