"""The size-checked constructors of a model field (derive/model/grammar.py) and the parser entry points (parse.py)."""

import math
import re

import pytest
import sympy as sp

from derive.model.grammar import (
    MAX_CONSTANT_BITS,
    MAX_EXPONENT,
    MAX_LENGTH,
    MAX_TERMS,
    Built,
    Grammar,
    Refused,
    bounded,
    check_size,
    checked_call,
    checked_division,
    checked_power,
    checked_sqrt,
    exact_rational,
    field_error,
)
from derive.model.parse import check_expression, parse, to_expression

x, y = sp.symbols("x y")
POLYNOMIAL = Grammar(what="a polynomial in x", symbols={"x": x}, polynomial=True, degree_limit=6,
                     degree_name="MAX_DEGREE = 6")
FREE = Grammar(what="an expression in x and y", symbols={"x": x, "y": y}, polynomial=False, degree_limit=6,
               functions={"erf": sp.erf})
NUMBER = Grammar(what="a number", symbols={}, polynomial=True, degree_limit=0)
X = Built(x, 1, 1)
X_PLUS_1 = Built(x + 1, 1, 2)


def expanded_terms(expr: sp.Expr) -> int:
    return len(sp.Add.make_args(sp.expand(expr)))


# --------------------------------------------------------------------------
# grammar.py: constructors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("shown, expected", [("0.1", sp.Rational(1, 10)), ("2.5e-3", sp.Rational(1, 400)),
                                             ("1_000.5", sp.Rational(2001, 2))])
def test_decimal_literals_are_the_exact_rationals_they_denote(shown, expected):
    assert exact_rational(float(shown.replace("_", "")), shown) == expected


def test_a_non_finite_literal_is_refused():
    with pytest.raises(Refused, match="the number 1e999 is not finite"):
        exact_rational(float("inf"), "1e999")


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_a_power_bounds_its_degree_and_terms_by_the_multinomial_count(n):
    base = Built(x + y + 1, 1, 3)
    built = checked_power(base, sp.Integer(n), FREE, "(x + y + 1)**n")
    assert built.expr == (x + y + 1) ** n
    assert built.degree == n
    # (x + y + 1)**n has exactly C(n + 2, 2) monomials: the bound is tight for distinct monomials
    assert built.terms == math.comb(n + 2, 2) == expanded_terms(built.expr)


def test_a_power_above_the_degree_limit_names_the_limit():
    with pytest.raises(Refused, match=r"x\*\*7 has degree up to 7, above the limit MAX_DEGREE = 6"):
        checked_power(X, sp.Integer(7), POLYNOMIAL, "x**7")


@pytest.mark.parametrize("exponent, message", [
    (sp.Rational(1, 2), "is 1/2, not an integer"),
    (sp.Integer(-1), "is negative; a polynomial in x allows only non-negative powers"),
])
def test_powers_outside_a_polynomial_grammar_are_refused(exponent, message):
    with pytest.raises(Refused, match=re.escape(message)):
        checked_power(X, exponent, POLYNOMIAL, "x**e")


def test_constant_powers_are_bounded_in_bits_and_exponent():
    two = Built(sp.Integer(2), 0, 1)
    assert checked_power(two, sp.Integer(MAX_CONSTANT_BITS // 2), NUMBER, "2**n").expr == 2 ** (MAX_CONSTANT_BITS // 2)
    with pytest.raises(Refused, match=f"more than {MAX_CONSTANT_BITS} bits"):
        checked_power(two, sp.Integer(MAX_CONSTANT_BITS + 1), NUMBER, "2**n")
    with pytest.raises(Refused, match=f"above the limit {MAX_EXPONENT}"):
        checked_power(Built(sp.sqrt(2), 0, 1), sp.Integer(MAX_EXPONENT + 1), NUMBER, "sqrt(2)**n")
    with pytest.raises(Refused, match="divides by zero"):
        checked_power(Built(sp.Integer(0), 0, 1), sp.Integer(-1), NUMBER, "0**-1")


def test_check_size_refuses_more_terms_than_the_limit():
    assert check_size(Built(x, 1, MAX_TERMS), POLYNOMIAL, "e").terms == MAX_TERMS
    with pytest.raises(Refused, match=f"more than {MAX_TERMS} terms"):
        check_size(Built(x, 1, MAX_TERMS + 1), POLYNOMIAL, "e")


def test_a_rational_number_counts_as_one_term():
    assert bounded(sp.Integer(3), 0, 2).terms == 1
    assert bounded(x + 1, 1, 2).terms == 2


def test_square_roots():
    assert checked_sqrt(Built(sp.Integer(4), 0, 1), POLYNOMIAL, "sqrt(4)").expr == 2
    with pytest.raises(Refused, match="square root of a negative number"):
        checked_sqrt(Built(sp.Integer(-1), 0, 1), POLYNOMIAL, "sqrt(-1)")
    with pytest.raises(Refused, match="takes the square root of an expression containing x"):
        checked_sqrt(X, POLYNOMIAL, "sqrt(x)")
    assert checked_sqrt(X, FREE, "sqrt(x)").expr == sp.sqrt(x)


def test_division():
    built = checked_division(X_PLUS_1, Built(sp.Integer(2), 0, 1), POLYNOMIAL, "(x + 1)/2")
    assert (built.expr, built.degree, built.terms) == ((x + 1) / 2, 1, 2)
    with pytest.raises(Refused, match="divides by zero"):
        checked_division(X, Built(sp.Integer(0), 0, 1), POLYNOMIAL, "x/0")
    with pytest.raises(Refused, match="divides by an expression containing x"):
        checked_division(Built(sp.Integer(1), 0, 1), X, POLYNOMIAL, "1/x")
    assert checked_division(Built(sp.Integer(1), 0, 1), X, FREE, "1/x").degree == 1


def test_a_function_call_needs_a_variable_argument():
    assert checked_call(sp.erf, X_PLUS_1, "erf(x + 1)").expr == sp.erf(x + 1)
    with pytest.raises(Refused, match="is a function of a constant"):
        checked_call(sp.erf, Built(sp.Integer(1), 0, 1), "erf(1)")


@pytest.mark.parametrize("grammar, names", [(NUMBER, "no variables"), (POLYNOMIAL, "the variable x"),
                                            (FREE, "the variables x and y")])
def test_rules_name_the_variables(grammar, names):
    assert f", {names}, " in grammar.rules()


def test_field_error_names_the_field_the_input_and_the_grammar():
    error = field_error("sigma", "x +", POLYNOMIAL, "not valid")
    assert str(error) == f"sigma: cannot parse 'x +': not valid. sigma must be a polynomial in x; allowed: " \
                         f"{POLYNOMIAL.rules()}"


# --------------------------------------------------------------------------
# parse.py: text and sympy input, one family
# --------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [("x**2 + 0.5*x", x**2 + x / 2), ("(x + 1)**2 / 4", (x + 1) ** 2 / 4),
                                            ("-sqrt(4) * x", -2 * x)])
def test_text_parses_to_the_expression_and_sympy_input_is_accepted_unchanged(text, expected):
    assert sp.expand(parse(text, POLYNOMIAL, "sigma") - expected) == 0
    assert check_expression(expected, POLYNOMIAL, "sigma") == expected
    assert to_expression(text, POLYNOMIAL, "sigma") == parse(text, POLYNOMIAL, "sigma")


@pytest.mark.parametrize("value, problem", [
    ("x**7", "above the limit MAX_DEGREE = 6"),
    ("1/x", "divides by an expression containing x"),
    ("y + x", "the name 'y' is not allowed"),
    (sp.Symbol("y") + x, "the symbol y is not allowed"),
    (True, "found a value of type bool"),
    (sp.sin(x), "found the function sin"),
    (x**7, "above the limit MAX_DEGREE = 6"),
    ("x" + " + x" * (MAX_LENGTH // 4), f"longer than {MAX_LENGTH} characters"),
])
def test_bad_input_names_the_field_and_the_problem(value, problem):
    with pytest.raises(ValueError, match=r"^sigma: cannot parse") as info:
        to_expression(value, POLYNOMIAL, "sigma")
    assert problem in str(info.value)
