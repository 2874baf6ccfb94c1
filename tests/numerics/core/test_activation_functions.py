"""The activations of a generated module as NumPy functions (numerics/core/activations.py)."""

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import erf

from numerics.core.activations import (
    activation_functions,
    activation_kind,
    polynomial_derivative,
    polynomial_function,
)

Z = np.linspace(-3.0, 3.0, 61)


@pytest.mark.parametrize("coefficients", [[0, 0, 1], [0, 3], [1, -3, 0, 1], [-1, 0, 0.5, 0, 0], [2.5], [0, 0, 0]])
def test_polynomials_equal_numpy_polyval(coefficients):
    got = polynomial_function(coefficients)(Z.copy())
    np.testing.assert_allclose(got, np.polyval(coefficients[::-1], Z), rtol=1e-13, atol=1e-13)


def test_polynomial_derivative():
    assert polynomial_derivative([1, -3, 0, 1]) == [-3.0, 0.0, 3.0]
    assert polynomial_derivative([4]) == [0.0]


@pytest.mark.parametrize(
    "module, sigma",
    [
        (SimpleNamespace(STUDENT_ACTIVATION=(-1, 0, 1)), lambda z: z**2 - 1),  # no KIND: polynomial
        (SimpleNamespace(STUDENT_KIND="erf", STUDENT_SCALE=1 / np.sqrt(2)), lambda z: erf(z / np.sqrt(2))),
        (SimpleNamespace(STUDENT_KIND="relu"), lambda z: np.maximum(z, 0)),
    ],
    ids=["polynomial", "erf", "relu"],
)
def test_functions_and_derivatives_of_every_kind(module, sigma):
    function, derivative = activation_functions(module, "STUDENT")
    np.testing.assert_allclose(function(Z.copy()), sigma(Z), rtol=1e-13, atol=1e-15)
    # the derivative against central differences, away from relu's kink at 0
    h = 1e-6
    away = Z[np.abs(Z) > 0.01]
    np.testing.assert_allclose(derivative(away.copy()), (sigma(away + h) - sigma(away - h)) / (2 * h), atol=1e-7)


def test_kind_defaults_to_polynomial_and_an_unknown_kind_is_named():
    assert activation_kind(SimpleNamespace(), "TEACHER") == "polynomial"
    assert activation_kind(SimpleNamespace(TEACHER_KIND="erf"), "TEACHER") == "erf"
    with pytest.raises(ValueError, match="unknown activation kind 'tanh'"):
        activation_functions(SimpleNamespace(TEACHER_KIND="tanh"), "TEACHER")
