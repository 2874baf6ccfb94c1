"""The model family of docs/model.md as data.

A :class:`Model` fixes everything the symbolic derivation needs: the student
and teacher activations (polynomials in one variable ``x``, degree at most
:data:`MAX_DEGREE`), the second-layer readouts (one expression in the widths
``p`` and ``k`` shared by every hidden unit), the label-noise variance ``Delta``
and the weight decay ``kappa``. Text inputs are parsed by :mod:`derive.model.parse`,
never evaluated.

Only the activations and the readouts enter the generated code; ``Delta`` and
``kappa`` enter the right-hand sides linearly and are applied at call time, so
models that differ only in them share one generated module.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from dataclasses import dataclass, field
from functools import lru_cache

import sympy as sp

from derive.model.activations import FUNCTIONS, check_special, is_special
from derive.model.parse import Grammar, to_expression

x = sp.Symbol("x")
p = sp.Symbol("p", positive=True, integer=True)
k = sp.Symbol("k", positive=True, integer=True)

#: Bump when the derivation or the printed module layout changes in a way the
#: symbolic-result hash cannot see (e.g. a new generated function).
GENERATOR_VERSION = 8  # 8: the einsum fallback of cubic and higher models printed as matrix products
#: The same for the per-tuple modules (derive/codegen/tuples.py); part of the key of non-polynomial models only,
#: so that the keys of the polynomial models (and their committed modules) do not move.
TUPLE_GENERATOR_VERSION = 5  # 5: kernels printed from one joint cse of the inlined program; 4: the increment kernels


#: Highest degree of an activation polynomial. The Wick derivation grows quickly
#: with the degree (x**12 already takes minutes), so larger ones are refused.
MAX_DEGREE = 6

#: Widths at which readouts are evaluated exactly when a model is built; other
#: widths are checked when the numerics use them (:func:`check_readouts`).
READOUT_CHECK_WIDTHS = range(1, 9)

ACTIVATION_GRAMMAR = Grammar(
    what="a polynomial in x, erf(c*x) with a constant c > 0, relu(x) or sign(x)",
    symbols={"x": x},
    functions=FUNCTIONS,
    polynomial=True,
    degree_limit=MAX_DEGREE,
    # room for cancellations such as (x + 1)**7 - x**7; the exact degree is checked after expansion
    degree_slack=4,
    degree_name=f"MAX_DEGREE = {MAX_DEGREE}",
)
READOUT_GRAMMAR = Grammar(
    what="an expression in the widths p and k, real and finite for all p, k >= 1",
    symbols={"p": p, "k": k},
    polynomial=False,
    degree_limit=32,
)
NUMBER_GRAMMAR = Grammar(what="a real number", symbols={}, polynomial=True, degree_limit=0)


def _as_activation(value: object, name: str) -> sp.Expr:
    expr = to_expression(value, ACTIVATION_GRAMMAR, name)
    if is_special(expr):
        return check_special(expr, name)
    return _as_polynomial(expr, name)


def _as_polynomial(expr: sp.Expr, name: str) -> sp.Expr:
    expanded = sp.expand(expr)
    if expanded == 0:
        raise ValueError(f"{name} is identically zero")
    degree = sp.degree(expanded, x)
    if degree > MAX_DEGREE:
        raise ValueError(
            f"{name} = {expanded} has degree {degree}, above the limit MAX_DEGREE = {MAX_DEGREE} "
            "(the symbolic derivation grows quickly with the degree)"
        )
    return expanded


@lru_cache(maxsize=4096)
def _readout_problem(expr: sp.Expr, p_value: int, k_value: int) -> tuple[sp.Expr | None, str]:
    """``(value, "")`` if the readout is real and finite at (p, k), else ``(None, what is wrong)``."""
    value = expr.xreplace({p: sp.Integer(p_value), k: sp.Integer(k_value)})
    if value.has(sp.zoo, sp.oo, -sp.oo) or value.is_finite is False:
        return None, f"is infinite ({value})"
    if value.has(sp.nan) or value.is_real is not True:
        return None, f"is not real ({value})"
    if not math.isfinite(float(value)):
        return None, f"is too large for a float ({sp.N(value, 3)})"
    return value, ""


def _as_readout(value: object, name: str) -> sp.Expr:
    expr = to_expression(value, READOUT_GRAMMAR, name)
    used = expr.free_symbols
    for p_value in READOUT_CHECK_WIDTHS if p in used else (1,):
        for k_value in READOUT_CHECK_WIDTHS if k in used else (1,):
            _, problem = _readout_problem(expr, p_value, k_value)
            if problem:
                raise ValueError(
                    f"{name} = {expr} {problem} at p = {p_value}, k = {k_value}; "
                    "readouts must be real and finite for all widths p, k >= 1"
                )
    return expr


def _as_nonnegative_number(value: object, name: str) -> sp.Expr:
    expr = to_expression(value, NUMBER_GRAMMAR, name)
    if not (expr.is_real and expr.is_finite):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if expr.is_nonnegative is not True:
        raise ValueError(f"{name} must be non-negative, got {value!r}")
    return expr


@dataclass(frozen=True)
class Model:
    """A two-layer teacher-student model of the family in docs/model.md.

    Parameters
    ----------
    student_activation, teacher_activation
        Polynomials in ``derive.model.model.x`` of degree at most :data:`MAX_DEGREE`,
        not identically zero: text such as ``"x**2 - 1"``, a number, or a sympy
        expression. The paper uses ``x**2`` for both. Or one of the
        non-polynomial activations of :mod:`derive.model.activations`:
        ``"erf(x/sqrt(2))"`` (any ``erf(c*x)`` with a constant ``c > 0``) or
        ``"relu(x)"``, or, for the teacher only, ``"sign(x)"`` (classification labels);
        their averages are computed by the per-tuple route
        (:mod:`derive.gauss.kernels`, :mod:`derive.codegen.tuples`).
    student_readout, teacher_readout
        Second-layer weights ``a_j`` and ``b_r``, one expression in the widths
        ``p`` and ``k`` used for every hidden unit, real and finite for all
        ``p, k >= 1``. Paper: ``1/p`` and ``1/k``.
    noise_variance
        Label-noise variance ``Delta`` (``y`` gets ``sqrt(Delta) * xi``), a real
        number >= 0.
    weight_decay
        ``kappa`` >= 0: each SGD step adds ``-(eta * kappa / N) w_j``.
    label_flip
        ``epsilon`` in ``[0, 1/2]``: each label ``y`` is replaced by ``-y`` with probability
        ``epsilon`` (classification noise, for sign teachers in place of Gaussian label noise).
    name
        A short label used in file names and headers.

    Notes
    -----
    Text is parsed by :mod:`derive.model.parse`, never evaluated: numbers (decimals
    are exact, ``"0.1"`` is 1/10), the field's variables, ``+ - * /``, ``**``
    with an integer exponent (non-negative on ``x``), parentheses and
    ``sqrt(...)`` (of constants only in activations). Sympy expressions are
    checked against the same rules. Readouts are evaluated exactly at
    ``p, k = 1..8`` here; other widths are checked by :func:`check_readouts`
    when the numerics use them.
    """

    student_activation: sp.Expr = x**2
    teacher_activation: sp.Expr = x**2
    student_readout: sp.Expr = 1 / p
    teacher_readout: sp.Expr = 1 / k
    noise_variance: sp.Expr = sp.Integer(0)
    weight_decay: sp.Expr = sp.Integer(0)
    label_flip: sp.Expr = sp.Integer(0)
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "student_activation", _as_activation(self.student_activation, "student_activation"))
        set_(self, "teacher_activation", _as_activation(self.teacher_activation, "teacher_activation"))
        if isinstance(self.student_activation, sp.sign):
            raise ValueError(
                "student_activation = sign(x): the student must be differentiable (sign' = 2 delta gives SGD no "
                "gradient); sign(x) is for teachers (classification labels), with e.g. an erf student"
            )
        if isinstance(self.teacher_activation, sp.sign) and not isinstance(self.student_activation, sp.erf):
            raise ValueError(
                f"teacher_activation = sign(x) is supported with erf students, got student_activation = "
                f"{self.student_activation}: with polynomial or relu students the eta**2 term's averages "
                "are singular at repeated teacher units (derivatives of sign on both copies)"
            )
        set_(self, "student_readout", _as_readout(self.student_readout, "student_readout"))
        set_(self, "teacher_readout", _as_readout(self.teacher_readout, "teacher_readout"))
        set_(self, "noise_variance", _as_nonnegative_number(self.noise_variance, "noise_variance"))
        set_(self, "weight_decay", _as_nonnegative_number(self.weight_decay, "weight_decay"))
        set_(self, "label_flip", _as_nonnegative_number(self.label_flip, "label_flip"))
        if self.label_flip > sp.Rational(1, 2):
            raise ValueError(
                f"label_flip = {self.label_flip} must be a probability in [0, 1/2] (a flip probability above 1/2 "
                "is the teacher with the opposite sign and a flip probability below 1/2)"
            )
        if not isinstance(self.name, str) or not self.name.replace("_", "").isalnum():
            raise ValueError(f"name must be alphanumeric with underscores, got {self.name!r}")

    # The generated code depends on activations and readouts only.
    def codegen_spec(self) -> str:
        """Canonical text of everything the generated module depends on."""
        versions = [] if self.is_polynomial() else [f"tuple-generator={TUPLE_GENERATOR_VERSION}"]
        return "|".join(
            versions
            + [
                f"generator={GENERATOR_VERSION}",
                f"student_activation={sp.srepr(self.student_activation)}",
                f"teacher_activation={sp.srepr(self.teacher_activation)}",
                f"student_readout={sp.srepr(self.student_readout)}",
                f"teacher_readout={sp.srepr(self.teacher_readout)}",
            ]
        )

    def codegen_hash(self) -> str:
        """Short content hash of :meth:`codegen_spec`; keys generated modules."""
        return hashlib.sha256(self.codegen_spec().encode()).hexdigest()[:16]

    def describe(self) -> str:
        """One line a human can read: activations, readouts, Delta, kappa."""
        return (
            f"sigma(x) = {self.student_activation}, sigma*(x) = {self.teacher_activation}, "
            f"a_j = {self.student_readout}, b_r = {self.teacher_readout}, "
            f"Delta = {self.noise_variance}, kappa = {self.weight_decay}"
            + (f", label flips with probability {self.label_flip}" if self.label_flip else "")
        )

    def is_polynomial(self) -> bool:
        """True when both activations are polynomials (the index-free route applies)."""
        return not (is_special(self.student_activation) or is_special(self.teacher_activation))

    def with_noise(self, noise_variance: object) -> Model:
        """The same model with another label-noise variance Delta."""
        return _replace(self, noise_variance=noise_variance)

    def with_label_flip(self, label_flip: object) -> Model:
        """The same model with labels flipped with probability ``label_flip`` (``epsilon``)."""
        return _replace(self, label_flip=label_flip)

    def with_weight_decay(self, weight_decay: object) -> Model:
        """The same model with another weight decay kappa."""
        return _replace(self, weight_decay=weight_decay)


def check_readouts(model: Model, p_value: int, k_value: int) -> tuple[sp.Expr, sp.Expr]:
    """The exact readouts ``(a, b)`` of ``model`` at the widths ``p, k``.

    Parameters
    ----------
    model
        The model.
    p_value, k_value
        Student and teacher widths, integers >= 1.

    Returns
    -------
    tuple of sympy.Expr
        ``(student_readout, teacher_readout)`` at these widths, real and finite.

    Raises
    ------
    ValueError
        If ``model`` is no :class:`Model`, a width is not an integer >= 1, or a readout is not
        real, not finite or too large for a float there; the message names the readout and p, k.
    """
    if not isinstance(model, Model):
        raise ValueError(f"model must be a derive.Model, got {type(model).__name__} {model!r}")
    widths = []
    for label, value in (("p", p_value), ("k", k_value)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{label} must be an integer >= 1, got {value!r}")
        widths.append(int(value))
    values = []
    for name in ("student_readout", "teacher_readout"):
        expr = getattr(model, name)
        value, problem = _readout_problem(expr, *widths)
        if problem:
            raise ValueError(
                f"{name} = {expr} {problem} at p = {widths[0]}, k = {widths[1]}; "
                "readouts must be real and finite for the widths used"
            )
        values.append(value)
    return values[0], values[1]


def _replace(model: Model, **changes: object) -> Model:
    from dataclasses import replace

    return replace(model, **changes)


def hermite(n: int) -> sp.Expr:
    """Probabilists' Hermite polynomial He_n(x)."""
    return sp.expand(sp.hermite_prob(n, x))


PAPER = Model(name="paper")
HE2 = Model(student_activation=hermite(2), teacher_activation=hermite(2), name="he2")
HE3 = Model(student_activation=hermite(3), teacher_activation=hermite(3), name="he3")

#: The soft committee machine of Saad and Solla (1995): erf(x/sqrt(2)) units, unit readouts.
SCM = Model(
    student_activation=sp.erf(x / sp.sqrt(2)),
    teacher_activation=sp.erf(x / sp.sqrt(2)),
    student_readout=sp.Integer(1),
    teacher_readout=sp.Integer(1),
    name="scm",
)

#: Models whose generated modules are committed under numerics/_generated/.
COMMITTED_MODELS: tuple[Model, ...] = (PAPER, HE2, HE3)
#: Models with non-polynomial activations whose per-tuple modules are committed.
COMMITTED_TUPLE_MODELS: tuple[Model, ...] = (SCM,)
