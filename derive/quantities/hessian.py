"""Gradient and Hessian of the population risk in weight space, as generated code.

With ``z = (lambda, nu)`` the pre-activations, ``v_a`` the rows of ``[W; W*]``
and ``u_a = v_a / sqrt(N)`` (so ``z_a = u_a . x`` and ``C = [[Q, R], [R^T, T]]``
is the Gram matrix of the ``u``), Gaussian integration by parts
(``E[h(z) x] = sum_a E[d_a h] u_a``) turns ``eps(W) = E[l]`` into

    grad_j = (1/sqrt N) E[d_j l x]         = (1/N) sum_a G_{j a} v_a
    H_jl   = (1/N) E[d_j d_l l x x^T]      = (1/N) [A_jl I_N + sum_{a,b} B_{jl,ab} u_a u_b^T]

with ``G_{ja} = E[d_j d_a l]``, ``A_jl = E[d_j d_l l]`` and ``B_{jl,ab} =
E[d_j d_l d_a d_b l]`` (``d_a`` the derivative with respect to ``z_a``).

The loss is ``l = rho**2 / 2`` with ``rho = sum_c g_c(z_c)`` a sum of one-variable
functions (``g_j = -a sigma`` for students, ``g_r = b sigma*`` for teachers), so
by Leibniz every derivative of ``l`` is a sum of Kronecker-delta structures times
products of derivatives of single ``g``'s:

    d_a d_b l         = g'_a g'_b + delta_ab rho g''_a
    d_a d_b d_c d_d l = delta_abcd rho g''''_a
                        + sum over the 4 singletons s:  g'_s g'''_t  delta_(other three equal t)
                        + sum over the 3 pairings (ab)(cd):  g''_a g''_c delta_ab delta_cd

Hence G, A and B are fixed delta patterns of six Gaussian averages, all
functions of ``Q, R, T`` derived by the Wick engine of :mod:`derive.gauss.indexed`:

    M11_ss[j,l] = E[g'_j g'_l]      M11_st[j,r] = E[g'_j g'_r]
    M22_ss[j,l] = E[g''_j g''_l]    M22_st[j,r] = E[g''_j g''_r]
    M13_ss[j,l] = E[g'_j g'''_l]    M31_st[j,r] = E[g'''_j g'_r]
    V2[j]       = E[rho g''_j]      V4[j]       = E[rho g''''_j]

(only blocks with a student index are needed, since ``j, l`` are students).
:func:`generate_hessian_module` prints them, index-free, into
``numerics/_generated/<model>_hessian.py``; the numerics assemble G, A, B.
"""

from __future__ import annotations

import hashlib
from functools import cache

import sympy as sp

from derive.algebra.contract import networks_to_expression
from derive.gauss.indexed import STUDENT, TEACHER, IndexedPolynomial, average
from derive.model.model import Model, k, p, x
from derive.quantities.ode import residual

J, L, RR = (STUDENT, "j"), (STUDENT, "l"), (TEACHER, "r")

#: Generated averages, in output order, with their index kinds.
HESSIAN_TERM_NAMES = ("M11_ss", "M11_st", "M22_ss", "M22_st", "M13_ss", "M31_st", "V2", "V4")

#: Bump when the printed layout of the Hessian modules changes.
HESSIAN_GENERATOR_VERSION = 1


def _student(model: Model, order: int, slot: tuple[str, str]) -> IndexedPolynomial:
    """``g_j^(order)`` with ``g_j = -a sigma(lambda_j)``."""
    derivative = sp.diff(model.student_activation, x, order)
    if derivative == 0:
        return IndexedPolynomial()
    return IndexedPolynomial.of_slot(derivative, slot).scale(-model.student_readout)


def _teacher(model: Model, order: int, slot: tuple[str, str]) -> IndexedPolynomial:
    """``g_r^(order)`` with ``g_r = b sigma*(nu_r)``."""
    derivative = sp.diff(model.teacher_activation, x, order)
    if derivative == 0:
        return IndexedPolynomial()
    return IndexedPolynomial.of_slot(derivative, slot).scale(model.teacher_readout)


def hessian_integrands(model: Model) -> dict[str, tuple[IndexedPolynomial, tuple]]:
    """The polynomials whose averages are the :data:`HESSIAN_TERM_NAMES`, with free indices.

    The vectors ``V2``, ``V4`` are computed with a second free index ``l`` that
    the integrand does not touch, which makes them broadcast as ``(p, 1)``.
    """
    rho = residual(model, "m", "s")
    return {
        "M11_ss": (_student(model, 1, J) * _student(model, 1, L), (J, L)),
        "M11_st": (_student(model, 1, J) * _teacher(model, 1, RR), (J, RR)),
        "M22_ss": (_student(model, 2, J) * _student(model, 2, L), (J, L)),
        "M22_st": (_student(model, 2, J) * _teacher(model, 2, RR), (J, RR)),
        "M13_ss": (_student(model, 1, J) * _student(model, 3, L), (J, L)),
        "M31_st": (_student(model, 3, J) * _teacher(model, 1, RR), (J, RR)),
        "V2": (rho * _student(model, 2, J), (J, L)),
        "V4": (rho * _student(model, 4, J), (J, L)),
    }


@cache
def derive_hessian_terms(model: Model) -> dict[str, sp.Expr]:
    """Index-free expressions of every average in :data:`HESSIAN_TERM_NAMES`."""
    out = {}
    for name, (poly, free) in hessian_integrands(model).items():
        out[name] = sp.sympify(networks_to_expression(average(poly, free))) if poly.monomials else sp.Integer(0)
    return out


def hessian_result_hash(model: Model) -> str:
    """Hash of the canonical symbolic result (printer independent)."""
    derived = derive_hessian_terms(model)
    text = f"version={HESSIAN_GENERATOR_VERSION}\n" + "\n".join(
        f"{name}={sp.srepr(derived[name])}" for name in HESSIAN_TERM_NAMES
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]








__all__ = [
    "HESSIAN_TERM_NAMES",
    "derive_hessian_terms",
    "hessian_integrands",
    "hessian_result_hash",
    "k",
    "p",
]
