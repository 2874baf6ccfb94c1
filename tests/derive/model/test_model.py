"""The model family as data: validation and hashing."""

import pytest
import sympy as sp

from derive.model.model import HE2, HE3, PAPER, Model, hermite, x


def test_paper_defaults():
    assert PAPER.student_activation == x**2
    assert str(PAPER.student_readout) == "1/p"
    assert PAPER.noise_variance == 0


def test_hermite():
    assert hermite(3) == x**3 - 3 * x
    assert HE2.student_activation == x**2 - 1
    assert HE3.teacher_activation == x**3 - 3 * x


def test_hash_depends_on_activations_not_noise():
    assert PAPER.codegen_hash() != HE2.codegen_hash()
    assert PAPER.with_noise(0.1).codegen_hash() == PAPER.codegen_hash()
    assert Model(student_activation="x**2").codegen_hash() == PAPER.codegen_hash()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"student_activation": sp.tanh(x)}, "polynomial"),
        ({"teacher_activation": "x**2 + y"}, "polynomial"),
        ({"student_activation": 0}, "zero"),
        ({"student_readout": "1/M"}, "widths"),
        ({"student_readout": "1/N"}, "cannot parse '1/N': the name 'N' is not allowed"),
        ({"student_readout": "1/(p - 1)"}, "real and finite"),
        ({"student_activation": "x**7"}, "MAX_DEGREE = 6"),
        ({"student_activation": "__import__('os').getcwd()"}, "the only functions are sqrt, erf, relu"),
        ({"noise_variance": -1}, "non-negative"),
        ({"weight_decay": "foo"}, "real number"),
        ({"name": "bad name!"}, "name"),
    ],
)
def test_bad_models_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Model(**kwargs)


@pytest.mark.parametrize(
    "fields, field_name",
    [
        ({"student_activation": "1e300*1e300*x"}, "student_activation"),
        ({"student_activation": "x**2/1e-400"}, "student_activation"),
        ({"teacher_activation": "erf(1e300*1e300*x)"}, "teacher_activation"),
        ({"student_activation": "x**2*1e-400"}, "student_activation"),
        ({"student_readout": "1e-400/p"}, "student_readout"),
        ({"noise_variance": 10**400}, "noise_variance"),
        ({"weight_decay": "1e300*1e300"}, "weight_decay"),
    ],
)
def test_constants_beyond_the_float_range_are_refused_naming_the_field(fields, field_name):
    with pytest.raises(ValueError, match=f"^{field_name}: .*float range"):
        Model(**fields)


def test_a_name_that_is_not_text_is_a_value_error():
    with pytest.raises(ValueError, match="name must be"):
        Model(name=123)


def test_check_readouts_of_something_that_is_no_model_is_a_value_error():
    from derive.model.model import check_readouts

    with pytest.raises(ValueError, match="model must be a derive.Model"):
        check_readouts("x", 2, 2)
