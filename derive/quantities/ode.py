"""The overlap ODE right-hand sides and the population risk of a model, index-free.

With ``a``, ``b`` the readouts, ``sigma``, ``sigma*`` the activations and the
noiseless residual ``y0 - f = b sum_s sigma*(nu_s) - a sum_m sigma(lambda_m)``
(docs/model.md), the learning amplitude is ``E_j = (y - f) a sigma'(lambda_j)`` and

    dR/dalpha = eta * drift_R                       - eta*kappa*R
    dQ/dalpha = eta * drift_Q + eta**2 * (diffusion_Q + Delta * noise_Q)
                                                    - 2*eta*kappa*Q
    risk      = residual_risk + Delta / 2

with

    drift_R[j, r]     = a <sigma'(lambda_j) nu_r (y0 - f)>
    drift_Q[j, l]     = a <sigma'(lambda_j) lambda_l (y0 - f)> + (j <-> l)
    diffusion_Q[j, l] = a**2 <sigma'(lambda_j) sigma'(lambda_l) (y0 - f)**2>
    noise_Q[j, l]     = a**2 <sigma'(lambda_j) sigma'(lambda_l)>
    residual_risk     = <(y0 - f)**2> / 2.

The label noise ``xi`` is independent of the inputs, so it enters only through
``<xi**2> = 1``; ``Delta`` and ``kappa`` are applied by the numerics at call time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp

from derive.algebra.contract import networks_to_expression
from derive.algebra.matrix_expr import transpose
from derive.gauss.indexed import STUDENT, TEACHER, IndexedPolynomial, average
from derive.model.model import Model, x

J, L, RR = (STUDENT, "j"), (STUDENT, "l"), (TEACHER, "r")

#: Names of the derived quantities, in the order they are generated.
QUANTITY_NAMES = ("drift_R", "drift_Q", "diffusion_Q", "noise_Q", "residual_risk")


@dataclass(frozen=True)
class DerivedQuantities:
    """Index-free sympy matrix expressions (see :mod:`derive.algebra.matrix_expr`)."""

    drift_R: sp.Expr
    drift_Q: sp.Expr
    diffusion_Q: sp.Expr
    noise_Q: sp.Expr
    residual_risk: sp.Expr

    def as_dict(self) -> dict[str, sp.Expr]:
        return {name: getattr(self, name) for name in QUANTITY_NAMES}


def residual(model: Model, student_index: str, teacher_index: str) -> IndexedPolynomial:
    """Noiseless residual ``y0 - f`` with the given summed index names."""
    teacher = IndexedPolynomial.of_slot(model.teacher_activation, (TEACHER, teacher_index), summed=True)
    student = IndexedPolynomial.of_slot(model.student_activation, (STUDENT, student_index), summed=True)
    return teacher.scale(model.teacher_readout) - student.scale(model.student_readout)


def _derivative_at(model: Model, slot: tuple[str, str]) -> IndexedPolynomial:
    return IndexedPolynomial.of_slot(sp.diff(model.student_activation, x), slot)


def _linear(slot: tuple[str, str]) -> IndexedPolynomial:
    return IndexedPolynomial.of_slot(x, slot)


def indexed_integrands(model: Model) -> dict[str, tuple[IndexedPolynomial, tuple]]:
    """The polynomials whose Gaussian averages define each quantity, with free indices."""
    a = model.student_readout
    first_residual = residual(model, "m", "s")
    second_residual = residual(model, "n", "t")
    both_derivatives = _derivative_at(model, J) * _derivative_at(model, L)
    return {
        "drift_R": ((_derivative_at(model, J) * _linear(RR) * first_residual).scale(a), (J, RR)),
        "drift_Q_half": ((_derivative_at(model, J) * _linear(L) * first_residual).scale(a), (J, L)),
        "diffusion_Q": ((both_derivatives * first_residual * second_residual).scale(a**2), (J, L)),
        "noise_Q": (both_derivatives.scale(a**2), (J, L)),
        "residual_risk": ((first_residual * second_residual).scale(sp.Rational(1, 2)), ()),
    }


@cache
def derive_quantities(model: Model) -> DerivedQuantities:
    """Derive every quantity of :data:`QUANTITY_NAMES` for ``model``, valid for all p, k."""
    if not model.is_polynomial():
        raise ValueError(
            f"the index-free derivation needs polynomial activations; {model.describe()}: "
            "use the per-tuple route (derive.codegen.tuples.generate_tuple_module)"
        )
    expressions = {
        name: networks_to_expression(average(poly, free))
        for name, (poly, free) in indexed_integrands(model).items()
    }
    half = expressions.pop("drift_Q_half")
    expressions["drift_Q"] = half + transpose(half)
    return DerivedQuantities(**expressions)
