"""The activations of a generated module as NumPy functions, for the simulators and Monte Carlo estimates.

A generated module records each activation without sympy: ``<ROLE>_KIND``
(``"polynomial"``, ``"erf"`` or ``"relu"``; modules without it are polynomial),
with ``<ROLE>_ACTIVATION`` (ascending coefficients) for a polynomial and
``<ROLE>_SCALE`` (``c`` in ``erf(c x)``) for erf. ``ROLE`` is ``STUDENT`` or ``TEACHER``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from types import ModuleType

import numpy as np
from scipy.special import erf

Function = Callable[[np.ndarray], np.ndarray]


def activation_kind(module: ModuleType, role: str) -> str:
    """``"polynomial"``, ``"erf"``, ``"relu"`` or ``"sign"`` for ``role`` in ``("STUDENT", "TEACHER")``."""
    return getattr(module, f"{role}_KIND", "polynomial")


def activation_functions(module: ModuleType, role: str) -> tuple[Function, Function]:
    """``(sigma, sigma')`` of the student (``role="STUDENT"``) or teacher (``"TEACHER"``) as element-wise functions.

    relu's derivative is the step ``theta(z) = 1{z > 0}`` (its value at 0 has
    probability zero under any non-degenerate input).
    """
    kind = activation_kind(module, role)
    if kind == "polynomial":
        coefficients = getattr(module, f"{role}_ACTIVATION")
        return polynomial_function(coefficients), polynomial_function(polynomial_derivative(coefficients))
    if kind == "erf":
        scale = float(getattr(module, f"{role}_SCALE"))
        slope = 2 * scale / math.sqrt(math.pi)

        def sigma(z: np.ndarray) -> np.ndarray:
            return erf(scale * z)

        def sigma_prime(z: np.ndarray) -> np.ndarray:
            return slope * np.exp(-((scale * z) ** 2))

        return sigma, sigma_prime
    if kind == "relu":

        def relu(z: np.ndarray) -> np.ndarray:
            return np.maximum(z, 0.0)

        def step(z: np.ndarray) -> np.ndarray:
            return (z > 0).astype(float)

        return relu, step
    if kind == "sign":

        def delta(z: np.ndarray) -> np.ndarray:
            raise ValueError("the derivative of a sign teacher is a delta function: no element-wise values")

        return np.sign, delta
    raise ValueError(f"unknown activation kind {kind!r} in the generated module")


__all__ = ["activation_functions", "activation_kind"]


def polynomial_function(coefficients: Sequence[float]):
    """Horner evaluation of a polynomial with ascending ``coefficients`` (few numpy calls)."""
    coefficients = [float(c) for c in coefficients]
    while len(coefficients) > 1 and coefficients[-1] == 0.0:
        coefficients.pop()

    if coefficients == [0.0, 0.0, 1.0]:
        return np.square
    if len(coefficients) == 2 and coefficients[0] == 0.0:
        # a monomial c z (e.g. the derivative of z**2): one call
        slope = coefficients[1]
        return lambda z: z * slope

    def evaluate(z: np.ndarray) -> np.ndarray:
        value = np.full_like(z, coefficients[-1])
        for c in reversed(coefficients[:-1]):
            value *= z
            if c != 0.0:
                value += c
        return value

    return evaluate



def polynomial_derivative(coefficients: Sequence[float]) -> list[float]:
    derived = [i * float(c) for i, c in enumerate(coefficients)][1:]
    return derived or [0.0]
