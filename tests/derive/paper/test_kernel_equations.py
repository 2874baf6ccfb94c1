"""The stated erf and relu kernels (derive/paper/kernel_equations.py) against Monte Carlo averages of the
functions they state (5 standard errors, fixed seed), and their section of docs/equations.md."""

import numpy as np
import pytest
from scipy.special import erf

from derive.gauss.kernels import covariance_symbols
from derive.paper.kernel_equations import checked_forms

SAMPLES = 400_000


def _sigma(z):
    return erf(z / np.sqrt(2))


def _dsigma(z):
    return np.sqrt(2 / np.pi) * np.exp(-(z**2) / 2)


def _relu(z):
    return np.maximum(z, 0.0)


def _theta(z):
    return (z > 0).astype(float)


def _identity(z):
    return z


#: The functions of each form's slots, as stated in its docstring line.
SLOTS = {
    "I2": (_sigma, _sigma),
    "J2": (_dsigma, _dsigma),
    "I3": (_dsigma, _identity, _sigma),
    "I4": (_dsigma, _dsigma, _sigma, _sigma),
    "K_relu": (_relu, _relu),
    "K_theta": (_theta, _theta),
    "K_drift": (_theta, _identity, _relu),
}


@pytest.fixture(scope="module")
def forms():
    return checked_forms()


def test_every_form_has_its_slot_functions(forms):
    assert set(forms) == set(SLOTS)
    for name, (vertices, _, _) in forms.items():
        assert len(vertices) == len(SLOTS[name])


@pytest.mark.parametrize("name", sorted(SLOTS))
def test_stated_form_equals_the_monte_carlo_average(forms, name):
    functions = SLOTS[name]
    n = len(functions)
    rng = np.random.default_rng(7)
    factor = rng.normal(size=(n, n + 1)) / np.sqrt(n + 1)
    C = factor @ factor.T + 0.25 * np.eye(n)
    symbols = covariance_symbols(n)
    stated = float(forms[name][1].xreplace({symbols[a][b]: C[a, b] for a in range(n) for b in range(n)}))
    z = rng.multivariate_normal(np.zeros(n), C, size=SAMPLES)
    product = np.prod([f(z[:, a]) for a, f in enumerate(functions)], axis=0)
    standard_error = product.std(ddof=1) / np.sqrt(SAMPLES)
    assert abs(product.mean() - stated) < 5 * standard_error, (product.mean(), stated, standard_error)

