"""Which activations a model may use, and what kind each one is.

An activation is one of

* a polynomial in ``x`` (degree at most :data:`derive.model.model.MAX_DEGREE`), whose
  Gaussian averages come from Wick counting;
* ``erf(c*x)`` with a constant ``c > 0``; the usual convention of erf networks is
  ``erf(x/sqrt(2))`` (``c = 1/sqrt(2)``, so ``sigma'(0) = sqrt(2/pi)``), and any
  other ``c`` is the same function of the rescaled input ``sqrt(2) c x``;
* ``relu(x) = max(x, 0)``;
* ``sign(x)``, for teachers only (classification labels): its derivative is ``2 delta(x)``,
  so a sign student would get no gradient.

Text is parsed by :mod:`derive.model.parse` (whitelist, nothing evaluated); ``relu`` is
the undefined sympy function :data:`relu`, so ``str()`` of a model field is text
the parser reads back.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

x = sp.Symbol("x")

#: ``relu(x) = max(x, 0)``, kept as an undefined sympy function (never evaluated symbolically).
relu = sp.Function("relu")

#: Names of the non-polynomial activations, with their sympy constructors (for the parser).
FUNCTIONS = {"erf": sp.erf, "relu": relu, "sign": sp.sign}


@dataclass(frozen=True)
class Activation:
    """What kind of function an activation is.

    Attributes
    ----------
    kind : {"polynomial", "erf", "relu", "sign"}
    coefficients : tuple of sympy numbers
        Polynomial only: coefficients of ``x**0, x**1, ...``.
    scale : sympy number
        erf only: ``c`` in ``erf(c x)``.
    """

    kind: str
    coefficients: tuple = ()
    scale: sp.Expr = sp.Integer(1)


def classify(expr: sp.Expr) -> Activation:
    """The :class:`Activation` of a checked activation expression (see :func:`check_special`)."""
    if isinstance(expr, sp.erf):
        return Activation("erf", scale=sp.expand(expr.args[0] / x))
    if isinstance(expr, sp.Function) and getattr(expr.func, "__name__", "") == "relu":
        return Activation("relu")
    if isinstance(expr, sp.sign):
        return Activation("sign")
    poly = sp.Poly(expr, x)
    return Activation("polynomial", coefficients=tuple(reversed(poly.all_coeffs())))


def is_special(expr: sp.Expr) -> bool:
    """True when ``expr`` contains erf, relu or sign (is not a polynomial)."""
    return bool(expr.atoms(sp.erf)) or bool(expr.atoms(sp.sign)) or any(
        getattr(f.func, "__name__", "") == "relu" for f in expr.atoms(sp.Function)
    )


def check_special(expr: sp.Expr, name: str) -> sp.Expr:
    """Check that a non-polynomial activation is exactly ``erf(c*x)`` (``c > 0``), ``relu(x)`` or ``sign(x)``.

    Raises
    ------
    ValueError
        Naming the field and what is allowed, e.g. for ``erf(x) + x``, ``erf(-x)``,
        ``erf(x**2)``, ``relu(2*x)`` or ``erf(relu(x))``.
    """
    allowed = (
        "a non-polynomial activation must be exactly erf(c*x) with a constant c > 0 "
        "(e.g. erf(x/sqrt(2)), the usual convention), relu(x) or sign(x) (teachers only)"
    )
    if isinstance(expr, sp.erf):
        argument = sp.expand(expr.args[0])
        scale = sp.expand(argument / x)
        if is_special(argument) or scale.free_symbols or not (scale.is_real and scale.is_positive):
            raise ValueError(f"{name} = {expr}: the argument of erf must be c*x with a constant c > 0; {allowed}")
        return expr
    if isinstance(expr, sp.Function) and getattr(expr.func, "__name__", "") == "relu":
        if expr.args[0] != x:
            raise ValueError(f"{name} = {expr}: the argument of relu must be x itself; {allowed}")
        return expr
    if isinstance(expr, sp.sign):
        if expr.args[0] != x:
            raise ValueError(f"{name} = {expr}: the argument of sign must be x itself; {allowed}")
        return expr
    raise ValueError(f"{name} = {expr}: {allowed}; sums, products or powers of them are not supported")


__all__ = ["FUNCTIONS", "Activation", "check_special", "classify", "is_special", "relu", "x"]
