"""Which activations a model may use (derive/model/activations.py): classification and refusals."""

import pytest
import sympy as sp

from derive.model.activations import Activation, check_special, classify, is_special, relu, x


def test_polynomials_are_classified_by_their_coefficients():
    activation = classify(x**3 - 3 * x + sp.Rational(1, 2))
    assert activation == Activation("polynomial", coefficients=(sp.Rational(1, 2), -3, 0, 1))
    assert classify(sp.Integer(2)).coefficients == (2,)
    assert not is_special(x**4 - 6 * x**2 + 3)


def test_erf_keeps_its_scale_and_relu_is_relu():
    activation = classify(sp.erf(x / sp.sqrt(2)))
    assert activation.kind == "erf" and sp.simplify(activation.scale - 1 / sp.sqrt(2)) == 0
    assert classify(sp.erf(3 * x)).scale == 3
    assert classify(relu(x)) == Activation("relu")
    assert is_special(sp.erf(x)) and is_special(relu(x)) and is_special(x + sp.erf(x))


@pytest.mark.parametrize("expr", [sp.erf(x), sp.erf(2 * x), sp.erf(x / sp.sqrt(2)), relu(x)])
def test_allowed_special_activations_pass_unchanged(expr):
    assert check_special(expr, "student_activation") is expr


@pytest.mark.parametrize(
    "expr, message",
    [
        (sp.erf(-x), "exactly erf"),  # sympy writes it -erf(x): not erf(c*x) itself
        (sp.erf(x - 1), "argument of erf"),
        (sp.erf(x**2), "argument of erf"),
        (sp.erf(relu(x)), "argument of erf"),
        (relu(2 * x), "argument of relu"),
        (sp.erf(x) + x, "sums, products or powers"),
        (sp.erf(x) ** 2, "sums, products or powers"),
    ],
)
def test_other_special_activations_are_refused_by_field_name(expr, message):
    with pytest.raises(ValueError, match=message) as error:
        check_special(expr, "teacher_activation")
    assert str(error.value).startswith("teacher_activation = ")
