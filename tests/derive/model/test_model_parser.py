"""Model text is parsed by a whitelist, never evaluated; sizes and values are bounded."""

import builtins
import sys
import time
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import numerics
from derive.model.grammar import MAX_LENGTH
from derive.model.model import HE2, HE3, MAX_DEGREE, PAPER, SCM, Model, check_readouts, hermite, k, p, x
from numerics.runtime.registry import resolve

# --------------------------------------------------------------------------
# nothing is executed
# --------------------------------------------------------------------------

INJECTIONS = [
    "x + __import__('os').system('touch MARKER')",
    "__import__('os').system('touch MARKER')",
    "x + open('MARKER', 'w').close()",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "x.__class__",
    "eval('1')",
    'exec(\'open("MARKER", "w")\')',
    "lambda: 1",
    "open('f')",
    "f'{x}'",
    "(y := x)",
    "[x for x in (1,)]",
    "x if x else 1",
    "x < 1",
    "x and 1",
    "x[0]",
    "'x'",
    "b'x'",
    "None",
    "...",
    "{x: 1}",
    "(x, 1)",
    "*x",
    "sqrt(x=2)",
    "sqrt(*[2])",
    "Symbol('x')",
    "x @ x",
    "x % 2",
    "x // 2",
    "~x",
    "not x",
    "x ^ 2",
]


@pytest.mark.parametrize("text", INJECTIONS)
@pytest.mark.parametrize("field", ["student_activation", "teacher_readout", "noise_variance"])
def test_code_in_the_text_is_refused_and_not_run(text, field, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=f"{field}: cannot parse .*allowed: "):
        Model(**{field: text})
    assert not (tmp_path / "MARKER").exists()
    assert list(tmp_path.iterdir()) == []


def test_the_old_injection_would_have_run(tmp_path, monkeypatch):
    # the attack the parser closes: sympify executes this text
    monkeypatch.chdir(tmp_path)
    sp.sympify("__import__('pathlib').Path('MARKER').touch()")
    assert (tmp_path / "MARKER").exists()


def test_parsing_never_evaluates(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("text was evaluated")

    # the module, not the function sympy.core re-exports under the same name
    core_sympify = sys.modules["sympy.core.sympify"]
    real_sympify = core_sympify.sympify

    def sympify_no_text(a, *args, **kwargs):
        # sympy calls sympify on its own objects internally; text must never reach it
        if isinstance(a, str):
            refuse()
        return real_sympify(a, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    monkeypatch.setattr(sp, "sympify", refuse)
    monkeypatch.setattr(sp, "parse_expr", refuse)
    monkeypatch.setattr(core_sympify, "sympify", sympify_no_text)
    model = Model(
        student_activation="x**3 - 3*x + 0.5",
        teacher_activation="(x - 1)*(x + 1)/sqrt(2)",
        student_readout="1/sqrt(p)",
        teacher_readout="2/(p + k)",
        noise_variance="0.1",
        weight_decay="1e-3",
    )
    assert model.student_activation == x**3 - 3 * x + sp.Rational(1, 2)
    assert model.weight_decay == sp.Rational(1, 1000)


# --------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, found",
    [
        ("nan", "name 'nan'"),
        ("oo", "name 'oo'"),
        ("zoo", "name 'zoo'"),
        ("I*x", "name 'I'"),
        ("E", "name 'E'"),
        ("pi*x", "name 'pi'"),
        ("tanh(x)", "call 'tanh\\(x\\)'"),
        ("x**-1", "negative"),
        ("x**0.5", "not an integer"),
        ("x**(1/2)", "not an integer"),
        ("sqrt(x)", "square root of an expression containing x"),
        ("1/x", "divides by an expression containing x"),
        ("x/0", "divides by zero"),
        ("x**x", "not a constant"),
        ("sqrt(-2)*x", "negative number"),
        ("1e400*x", "not finite"),
        ("1j*x", "complex"),
        ("True*x", "constant True"),
        ("x +", "not a valid expression"),
        ("", "not a valid expression"),
    ],
)
def test_bad_activations_say_what_was_found(text, found):
    with pytest.raises(ValueError, match=found) as error:
        Model(student_activation=text)
    assert (
        "must be a polynomial in x, erf(c*x) with a constant c > 0, relu(x) or sign(x); "
        "allowed: integer and decimal numbers, the variable x"
    ) in str(error.value)


@pytest.mark.parametrize("text", ["x**7", "x**3 * x**4", "(x + 1)**7", "x**8 - 1"])
def test_activation_degree_above_the_limit(text):
    with pytest.raises(ValueError, match=rf"degree [78], above the limit MAX_DEGREE = {MAX_DEGREE}"):
        Model(student_activation=text)


@pytest.mark.parametrize("text", ["x**200", "(x**6)**6", "x**(10**100)", "x**(2**500)", "(x+1)**64"])
def test_huge_degrees_are_refused_before_anything_is_built(text):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=f"above the limit MAX_DEGREE = {MAX_DEGREE}"):
        Model(teacher_activation=text)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    "text",
    [
        "x**(10**10**10)",
        "((2**64)**64)**64*x",
        "2**(2**(2**(2**(2**(2**9)))))*x",
        "sqrt(" + "9" * 1500 + ")*x",
        "*".join(f"(1 + sqrt({q}))" for q in sp.primerange(2, 200)) + "*x",
        "(sqrt(2) + sqrt(3) + sqrt(5) + sqrt(7))**60*x",
        "-" * (MAX_LENGTH - 1) + "x",
        "(" * 900 + "x" + ")" * 900,
        "x" + "+x" * 999,
        "x" * (MAX_LENGTH + 1),
    ],
)
def test_resource_bombs_are_refused_quickly(text):
    start = time.perf_counter()
    with pytest.raises(ValueError, match="student_activation: cannot parse"):
        Model(student_activation=text)
    assert time.perf_counter() - start < 2.0


def test_degree_at_the_limit_and_cancellations_are_fine():
    assert Model(student_activation="x**6").student_activation == x**6
    assert Model(student_activation="(x + 1)**7 - x**7").student_activation == sp.expand((x + 1) ** 7 - x**7)
    assert Model(student_activation=hermite(MAX_DEGREE)).student_activation == hermite(MAX_DEGREE)
    with pytest.raises(ValueError, match="degree 7"):
        Model(student_activation=hermite(7))


@pytest.mark.parametrize("text", ["x - x", "0", "0.0*x", "(x + 1)**2 - x**2 - 2*x - 1"])
def test_zero_activation_is_refused(text):
    with pytest.raises(ValueError, match="identically zero"):
        Model(student_activation=text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("x**3 - 3*x", hermite(3)),
        ("x**2 - 1", hermite(2)),
        ("x**4 - 6*x**2 + 3", hermite(4)),
        ("0.1*x", x / 10),
        ("x*1.5e-3", sp.Rational(3, 2000) * x),
        ("1_000*x", 1000 * x),
        ("0x10*x", 16 * x),
        ("sqrt(2)*x**2/2", sp.sqrt(2) * x**2 / 2),
        ("sqrt(8)*x", 2 * sp.sqrt(2) * x),
        ("(x - 1)*(x + 1)", x**2 - 1),
        ("-(-x)", x),
        ("+x", x),
        ("2**-1*x", x / 2),
        ("x**(1+1)", x**2),
        ("  x**2\n", x**2),
        ("(x**2\n - 1)", x**2 - 1),
        ("0." + "1234567890" * 8 + "*x", sp.Rational(int("1234567890" * 8), 10**80) * x),
        ("3", sp.Integer(3)),
    ],
)
def test_activation_text_equals_the_sympy_form(text, expected):
    parsed = Model(student_activation=text).student_activation
    assert parsed == sp.expand(expected)
    assert not parsed.atoms(sp.Float)


def test_text_and_sympy_inputs_give_the_same_model_and_hash():
    assert Model(student_activation="x**3 - 3*x", teacher_activation="x**3 - 3*x", name="he3") == HE3
    assert Model(student_activation="x**2 - 1", teacher_activation="x**2-1").codegen_hash() == HE2.codegen_hash()
    assert Model(student_activation="x**2", student_readout="1/p", teacher_readout="p**0/k") == PAPER
    assert Model(student_activation="x**2").codegen_hash() == PAPER.codegen_hash()


def _poly_text(coefficients, style):
    terms = []
    for power, c in enumerate(coefficients):
        if c == 0:
            continue
        if style == 0 or c.denominator == 1:
            number = f"({c.numerator}/{c.denominator})" if c.denominator != 1 else f"({c.numerator})"
        else:
            # a terminating decimal when there is one, e.g. 3/8 -> 0.375
            number = f"({c.numerator}/{c.denominator})"
            d = c.denominator
            for prime in (2, 5):
                while d % prime == 0:
                    d //= prime
            if d == 1:
                number = f"({float(c)!r})"
        monomial = {0: "", 1: "*x"}.get(power, f"*x**{power}")
        terms.append(number + monomial)
    return " + ".join(terms) or "0"


@settings(max_examples=60, deadline=None)
@given(
    coefficients=st.lists(
        st.fractions(min_value=-50, max_value=50, max_denominator=16), min_size=1, max_size=MAX_DEGREE + 1
    ).filter(lambda cs: any(cs)),
    style=st.integers(0, 1),
)
def test_random_polynomial_text_parses_to_the_polynomial(coefficients, style):
    text = _poly_text(coefficients, style)
    expected = sp.expand(sum(sp.Rational(c.numerator, c.denominator) * x**n for n, c in enumerate(coefficients)))
    assert Model(student_activation=text).student_activation == expected


# --------------------------------------------------------------------------
# sympy inputs
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, found",
    [
        (sp.nan, "nan"),
        (sp.oo * x, "oo"),
        (sp.zoo + x, "zoo"),
        (sp.I * x, "I"),
        (sp.pi * x, "pi"),
        (sp.E + x, "E"),
        (sp.tanh(x), "tanh"),
        (sp.exp(x), "exp"),
        (1 / x, "negative"),
        (sp.sqrt(x), "square root"),
        (x ** sp.Rational(1, 3), "not an integer"),
        (x + sp.Symbol("y"), "symbol y"),
        (sp.Symbol("x", real=True) ** 2, "other assumptions"),
        ((x + 1) ** 200, "MAX_DEGREE = 6"),
        (x**7, "degree 7"),
        (sp.Eq(x, 1), "not an expression"),
    ],
)
def test_bad_sympy_activations(expr, found):
    with pytest.raises(ValueError, match=found):
        Model(student_activation=expr)


def test_sympy_floats_become_exact():
    assert Model(student_activation=0.1 * x**2).student_activation == x**2 / 10
    assert Model(student_readout=0.5 / p).student_readout == 1 / (2 * p)
    assert Model(noise_variance=sp.Float(0.25)).noise_variance == sp.Rational(1, 4)


@pytest.mark.parametrize("value", [True, [1], {"x": 1}, 1j, None, np.array([1.0])])
def test_other_types_are_refused(value):
    with pytest.raises(ValueError, match="cannot parse"):
        Model(student_activation=value)


# --------------------------------------------------------------------------
# readouts
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1/sqrt(p)", 1 / sp.sqrt(p)),
        ("2/(p+k)", 2 / (p + k)),
        ("p**-1", 1 / p),
        ("0.5", sp.Rational(1, 2)),
        ("1/(p*k)", 1 / (p * k)),
        ("sqrt(2/p)", sp.sqrt(2 / p)),
        ("0", sp.Integer(0)),
        (1, sp.Integer(1)),
        (0.25, sp.Rational(1, 4)),
        (Fraction(1, 3), sp.Rational(1, 3)),
        (1 / sp.sqrt(k), 1 / sp.sqrt(k)),
    ],
)
def test_good_readouts(text, expected):
    readout = Model(student_readout=text).student_readout
    assert readout == expected
    assert sp.srepr(readout) == sp.srepr(expected)


@pytest.mark.parametrize(
    "text, found",
    [
        ("nan", "name 'nan'"),
        ("oo", "name 'oo'"),
        ("log(p)", "call 'log\\(p\\)'"),
        ("1/M", "name 'M'"),
        ("p**k", "not a constant"),
        ("p**0.5", "not an integer"),
        ("1/(p - p)", "divides by zero"),
        ("sqrt(-p)", "not real .* at p = 1, k = 1"),
        ("1/(p - 1)", "infinite .* at p = 1, k = 1"),
        ("1/(k - 3)", "infinite .* at p = 1, k = 3"),
        ("sqrt(p - k)", "not real .* at p = 1, k = 2"),
        ("1e300*p**32", "too large for a float"),
        (sp.log(p), "function log"),
        (sp.Symbol("p") ** -1, "other assumptions"),
    ],
)
def test_bad_readouts_are_refused_at_construction(text, found):
    with pytest.raises(ValueError, match=found):
        Model(teacher_readout=text)


def test_readouts_bad_only_at_larger_widths_fail_where_used(tmp_path, monkeypatch):
    monkeypatch.setenv("WICKODE_CACHE_DIR", str(tmp_path))
    model = Model(student_readout="1/(p - 9)", teacher_readout="sqrt(10 - k)", name="odd")
    assert check_readouts(model, 3, 2) == (sp.Rational(-1, 6), sp.sqrt(8))
    with pytest.raises(ValueError, match=r"student_readout = 1/\(p - 9\) is infinite .* at p = 9, k = 2"):
        check_readouts(model, 9, 2)
    Q, R, T = np.eye(9), np.zeros((9, 2)), np.eye(2)
    # the user's path: the numerics refuse before any code is generated or run
    for call in (
        lambda: numerics.rhs(Q, R, T, 0.1, model=model),
        lambda: numerics.risk(Q, R, T, model=model),
        lambda: numerics.integrate(Q, R, T, eta=0.1, alpha_max=1.0, model=model),
        lambda: numerics.simulate(N=20, p=9, k=2, eta=0.1, alpha_max=0.1, model=model, progress=False),
    ):
        with pytest.raises(ValueError, match=r"student_readout = 1/\(p - 9\) is infinite .* at p = 9, k = 2"):
            call()
    Q, R, T = np.eye(2), np.zeros((2, 11)), np.eye(11)
    with pytest.raises(ValueError, match=r"teacher_readout = sqrt\(10 - k\) is not real .* at p = 2, k = 11"):
        numerics.rhs(Q, R, T, 0.1, model=model)
    with pytest.raises(ValueError, match="not real"):
        resolve(model, sizes=(2, 11))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("widths", [(0, 1), (1, -2), (1.5, 1), (True, 1)])
def test_check_readouts_wants_positive_integer_widths(widths):
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        check_readouts(PAPER, *widths)


def test_paper_readouts_at_large_widths():
    assert check_readouts(PAPER, 1000, 7) == (sp.Rational(1, 1000), sp.Rational(1, 7))


# --------------------------------------------------------------------------
# Delta and kappa
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        (0, 0),
        (0.2, sp.Rational(1, 5)),
        ("0.1", sp.Rational(1, 10)),
        ("1e-3", sp.Rational(1, 1000)),
        (np.float64(0.5), sp.Rational(1, 2)),
        (np.int64(2), 2),
        ("sqrt(2)/10", sp.sqrt(2) / 10),
        (Fraction(1, 3), sp.Rational(1, 3)),
    ],
)
def test_noise_and_decay_numbers(value, expected):
    model = PAPER.with_noise(value).with_weight_decay(value)
    assert model.noise_variance == expected
    assert model.weight_decay == expected
    assert float(model.noise_variance) == pytest.approx(float(expected))


@pytest.mark.parametrize(
    "value, message",
    [
        (-1, "non-negative"),
        ("-0.1", "non-negative"),
        (float("nan"), "not finite"),
        (float("inf"), "not finite"),
        ("nan", "name 'nan'"),
        ("x", "name 'x'"),
        ("1/0", "divides by zero"),
        ("sqrt(-1)", "negative number"),
        (sp.I, "I"),
        (sp.oo, "oo"),
        ("foo", "real number"),
    ],
)
def test_bad_noise_and_decay(value, message):
    with pytest.raises(ValueError, match=message):
        PAPER.with_noise(value)
    with pytest.raises(ValueError, match=message):
        Model(weight_decay=value)


def test_typed_models_share_the_committed_modules():
    # the committed generated modules are keyed by the input hash: the same model typed as
    # text must parse to the same canonical expressions, hence the same hash
    from numerics._generated import COMMITTED

    typed = {
        "paper": Model(student_activation="x**2", teacher_activation="x**2", student_readout="1/p"),
        "he2": Model(student_activation="x**2 - 1", teacher_activation="x**2 - 1"),
        "he3": Model(student_activation="x**3 - 3*x", teacher_activation="x**3 - 3*x", teacher_readout="1/k"),
        "scm": Model(
            student_activation="erf(x/sqrt(2))",
            teacher_activation="erf(sqrt(2)*x/2)",
            student_readout=1,
            teacher_readout="1",
        ),
    }
    for name, model in typed.items():
        assert COMMITTED[model.codegen_hash()] == name
    assert {PAPER.codegen_hash(), HE2.codegen_hash(), HE3.codegen_hash(), SCM.codegen_hash()} == set(COMMITTED)
