"""The model family of MODEL.md as data.

A :class:`Model` fixes everything the symbolic derivation needs: the student
and teacher activations (polynomials in one variable ``x``), the second-layer
readouts (one expression in the widths ``p`` and ``k`` shared by every hidden
unit), the label-noise variance ``Delta`` and the weight decay ``kappa``.

Only the activations and the readouts enter the generated code; ``Delta`` and
``kappa`` enter the right-hand sides linearly and are applied at call time, so
models that differ only in them share one generated module.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import sympy as sp

x = sp.Symbol("x")
p = sp.Symbol("p", positive=True, integer=True)
k = sp.Symbol("k", positive=True, integer=True)

#: Bump when the derivation or the printed module layout changes in a way the
#: symbolic-result hash cannot see (e.g. a new generated function).
GENERATOR_VERSION = 5


_LOCALS = {"x": x, "p": p, "k": k}


def _parse(value: object, name: str) -> sp.Expr:
    try:
        return sp.sympify(value, locals=_LOCALS)
    except (sp.SympifyError, TypeError, SyntaxError) as error:
        raise ValueError(f"{name}: cannot parse {value!r} ({error})") from None


def _as_polynomial(value: object, name: str) -> sp.Expr:
    expr = _parse(value, name)
    free = expr.free_symbols - {x}
    if free:
        raise ValueError(
            f"{name} must be a polynomial in x with numeric coefficients; "
            f"it contains the symbols {sorted(map(str, free))}"
        )
    if not expr.is_polynomial(x):
        raise ValueError(f"{name} must be a polynomial in x, got {expr}")
    expanded = sp.expand(expr)
    if expanded == 0:
        raise ValueError(f"{name} is identically zero")
    return expanded


def _as_readout(value: object, name: str) -> sp.Expr:
    expr = _parse(value, name)
    free = expr.free_symbols - {p, k}
    if free:
        raise ValueError(
            f"{name} may depend only on the widths p and k, "
            f"it contains {sorted(map(str, free))}"
        )
    return expr


def _as_nonnegative_number(value: object, name: str) -> sp.Expr:
    expr = sp.nsimplify(_parse(value, name))
    if not expr.is_number or not expr.is_real:
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if expr < 0:
        raise ValueError(f"{name} must be non-negative, got {value!r}")
    return expr


@dataclass(frozen=True)
class Model:
    """A two-layer teacher-student model of the family in MODEL.md.

    Parameters
    ----------
    student_activation, teacher_activation
        Polynomials in ``derive.model.x`` (anything ``sympy.sympify`` accepts,
        e.g. ``"x**2 - 1"``). The paper uses ``x**2`` for both.
    student_readout, teacher_readout
        Second-layer weights ``a_j`` and ``b_r``, one expression in the widths
        ``p`` and ``k`` used for every hidden unit. Paper: ``1/p`` and ``1/k``.
    noise_variance
        Label-noise variance ``Delta`` (``y`` gets ``sqrt(Delta) * xi``).
    weight_decay
        ``kappa``: each SGD step adds ``-(eta * kappa / N) w_j``.
    name
        A short label used in file names and headers.
    """

    student_activation: sp.Expr = x**2
    teacher_activation: sp.Expr = x**2
    student_readout: sp.Expr = 1 / p
    teacher_readout: sp.Expr = 1 / k
    noise_variance: sp.Expr = sp.Integer(0)
    weight_decay: sp.Expr = sp.Integer(0)
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "student_activation", _as_polynomial(self.student_activation, "student_activation"))
        set_(self, "teacher_activation", _as_polynomial(self.teacher_activation, "teacher_activation"))
        set_(self, "student_readout", _as_readout(self.student_readout, "student_readout"))
        set_(self, "teacher_readout", _as_readout(self.teacher_readout, "teacher_readout"))
        set_(self, "noise_variance", _as_nonnegative_number(self.noise_variance, "noise_variance"))
        set_(self, "weight_decay", _as_nonnegative_number(self.weight_decay, "weight_decay"))
        if not self.name.replace("_", "").isalnum():
            raise ValueError(f"name must be alphanumeric with underscores, got {self.name!r}")

    # The generated code depends on activations and readouts only.
    def codegen_spec(self) -> str:
        """Canonical text of everything the generated module depends on."""
        return "|".join(
            [
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
        )

    def with_noise(self, noise_variance: object) -> Model:
        """The same model with another label-noise variance Delta."""
        return _replace(self, noise_variance=noise_variance)

    def with_weight_decay(self, weight_decay: object) -> Model:
        """The same model with another weight decay kappa."""
        return _replace(self, weight_decay=weight_decay)


def _replace(model: Model, **changes: object) -> Model:
    from dataclasses import replace

    return replace(model, **changes)


def hermite(n: int) -> sp.Expr:
    """Probabilists' Hermite polynomial He_n(x)."""
    return sp.expand(sp.hermite_prob(n, x))


PAPER = Model(name="paper")
HE2 = Model(student_activation=hermite(2), teacher_activation=hermite(2), name="he2")
HE3 = Model(student_activation=hermite(3), teacher_activation=hermite(3), name="he3")

#: Models whose generated modules are committed under numerics/_generated/.
COMMITTED_MODELS: tuple[Model, ...] = (PAPER, HE2, HE3)
