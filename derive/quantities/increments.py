"""The noise of the overlaps at finite N: second moments of one SGD step's increments.

One step changes the overlaps by ``Q -> Q + q/N``, ``R -> R + r/N`` with (docs/model.md,
``|x|^2/N -> 1`` at leading order)

    r_jr = eta E_j nu_r,     q_jl = eta A_jl + eta**2 B_jl,
    A_jl = E_j lambda_l + E_l lambda_j,     B_jl = E_j E_l,
    E_j  = a sigma'(lambda_j) (g + sqrt(Delta) xi),    g = y0 - f.

Weight decay moves the overlaps deterministically (given the state), so it adds
nothing to the covariance at this order. The covariance of ``(q, r)`` follows from
six Gaussian averages with four free indices (students ``j, l, i, h``, teachers
``q, r``):

    LL[j,l,i,h] = <E_j lambda_l E_i lambda_h>      LN[j,l,i,r] = <E_j lambda_l E_i nu_r>
    LE[j,l,i,h] = <E_j lambda_l E_i E_h>           EN[j,l,i,r] = <E_j E_l E_i nu_r>
    EE[j,l,i,h] = <E_j E_l E_i E_h>                NN[j,q,i,r] = <E_j nu_q E_i nu_r>

The label noise enters through ``<(g + s xi)**2> = g**2 + Delta``,
``<(g + s xi)**3> = g**3 + 3 Delta g``, ``<(g + s xi)**4> = g**4 + 6 Delta g**2 + 3 Delta**2``.
Each average is computed by the multigraph form of Wick's theorem (:mod:`derive.gauss.vertex`)
as a sum of tensor networks, valid for all ``p, k`` at once. Summed indices are eliminated by the
matrix-product rules of :mod:`derive.algebra.contract`; what is left is a product of matrices
and vectors over the four free indices (plus, for cubic and higher activations,
summed indices of degree three or more), printed as one ``einsum`` per network with
the output indices ``jlih`` (an outer product with Kronecker structure: each operand
touches at most two of the four axes).

That printed route serves activations of degree <= :data:`MAX_PRINTED_DEGREE`. Above it,
splitting every residual factor into its student and teacher sums makes the networks
explode (402,667 for He3's ``EE``), so :func:`generate_fluctuation_module` switches to
:mod:`derive.quantities.network_tables`: residual factors stay single vertices over all units, and the
generated module is a table of numbers contracted by :mod:`numerics.kernels.network_moments`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import sympy as sp

from derive.algebra.contract import Graph
from derive.algebra.matrix_expr import ONE, canonical_text
from derive.gauss.indexed import STUDENT, TEACHER, Network
from derive.gauss.vertex import function_average
from derive.model.model import Model, x

#: The label-noise variance, a call-time parameter of the generated functions.
DELTA = sp.Symbol("delta")

#: Free index names: not among the summed names of :data:`derive.gauss.indexed.SUMMED_NAMES`
#: ("mnouv", "stwyx") nor ``z`` (the unit axis of vectors in einsum subscripts).
J, L, I, H = ((STUDENT, name) for name in "jlih")
QF, RF = (TEACHER, "q"), (TEACHER, "r")

#: The averages of the first-order covariance (the ``eta**2`` part) and the rest.
FIRST_ORDER_NAMES = ("LL", "LN", "NN")
SECOND_ORDER_NAMES = ("LE", "EN", "EE")
MOMENT_NAMES = FIRST_ORDER_NAMES + SECOND_ORDER_NAMES

#: Free indices of each average, and the kinds of its four axes.
FREE = {
    "LL": (J, L, I, H),
    "LE": (J, L, I, H),
    "EE": (J, L, I, H),
    "LN": (J, L, I, RF),
    "EN": (J, L, I, RF),
    "NN": (J, QF, I, RF),
}

#: Largest activation degree whose increment moments are generated (see the README for times):
#: up to :data:`MAX_PRINTED_DEGREE` as printed einsums (this module), above it as network
#: tables contracted numerically (:mod:`derive.quantities.network_tables`). Measured first-use costs of
#: the tables (derivation / one evaluation at p = k = 2): He3 1 s / 0.05 s, a quartic
#: 30 s / 1 s; He5 has 480,659 networks in EE alone (13 min to derive, ~20 s per evaluation).
MAX_FLUCTUATION_DEGREE = 4
#: Largest activation degree whose increment moments are printed as einsums.
MAX_PRINTED_DEGREE = 2


def _degree(model: Model) -> int:
    return max(sp.degree(model.student_activation, x), sp.degree(model.teacher_activation, x))


def fluctuations_supported(model: Model) -> bool:
    """True when both activations have degree at most :data:`MAX_FLUCTUATION_DEGREE`."""
    return _degree(model) <= MAX_FLUCTUATION_DEGREE


def uses_network_tables(model: Model) -> bool:
    """True when the model's increment moments are network tables (degree above :data:`MAX_PRINTED_DEGREE`)."""
    return _degree(model) > MAX_PRINTED_DEGREE


def check_fluctuations_supported(model: Model) -> None:
    """Raise a ``ValueError`` naming the limit when the model's increment moments are not generated."""
    if not fluctuations_supported(model):
        raise ValueError(
            "increment moments are generated for activations of degree <= "
            f"{MAX_FLUCTUATION_DEGREE} (the number of Wick networks grows too fast above it); "
            f"this model has sigma = {model.student_activation}, sigma* = {model.teacher_activation}"
        )


#: Bump when the printed layout of the fluctuation modules changes.
FLUCTUATION_GENERATOR_VERSION = 1

# <(g + s xi)**n> over xi ~ N(0, 1), as {power of g: coefficient polynomial in Delta}
_NOISE_MOMENTS = {
    2: {2: ONE, 0: DELTA},
    3: {3: ONE, 1: 3 * DELTA},
    4: {4: ONE, 2: 6 * DELTA, 0: 3 * DELTA**2},
}

_RESIDUAL_NAMES = (("m", "s"), ("n", "t"), ("o", "w"), ("u", "y"))


def _residual_choices(model: Model, power: int) -> list[tuple[sp.Expr, list[tuple[tuple[str, str], sp.Expr]]]]:
    """``(y0 - f)**power`` as ``[(multinomial weight, [(summed slot, polynomial), ...]), ...]``.

    Each factor of the power is either the teacher sum ``b sum_s sigma*(nu_s)`` or the student
    sum ``-a sum_m sigma(lambda_m)``, with its own summed index; the factors are
    interchangeable, so only the number of teacher factors matters (with a binomial weight).
    """
    out = []
    for teachers in range(power + 1):
        weight = sp.binomial(power, teachers)
        factors = []
        for position in range(power):
            student_index, teacher_index = _RESIDUAL_NAMES[position]
            if position < teachers:
                factors.append(((TEACHER, teacher_index), model.teacher_readout * model.teacher_activation))
            else:
                factors.append(((STUDENT, student_index), -model.student_readout * model.student_activation))
        out.append((weight, factors))
    return out


def moment_integrands(model: Model) -> dict[str, list[tuple[sp.Expr, list[tuple[tuple[str, str], sp.Expr]]]]]:
    """For each average, ``[(coefficient, [(slot, polynomial in x), ...]), ...]``.

    Each entry is a product of one-slot functions (a sum of them makes the average).

    The coefficients hold the label-noise variance ``delta`` and the binomial weights of the residual powers.
    """
    slope = model.student_readout * sp.diff(model.student_activation, x)  # E_j without its residual
    products = {
        "LL": ([(J, slope), (L, x), (I, slope), (H, x)], 2),
        "LN": ([(J, slope), (L, x), (I, slope), (RF, x)], 2),
        "NN": ([(J, slope), (QF, x), (I, slope), (RF, x)], 2),
        "LE": ([(J, slope), (L, x), (I, slope), (H, slope)], 3),
        "EN": ([(J, slope), (L, slope), (I, slope), (RF, x)], 3),
        "EE": ([(J, slope), (L, slope), (I, slope), (H, slope)], 4),
    }
    out = {}
    for name, (factors, order) in products.items():
        parts = []
        for power, noise_coefficient in _NOISE_MOMENTS[order].items():
            for weight, residual_factors in _residual_choices(model, power):
                parts.append((noise_coefficient * weight, factors + residual_factors))
        out[name] = parts
    return out


@dataclass(frozen=True)
class Term:
    """``coefficient * einsum(subscripts -> output, *operands)`` over the four free axes.

    ``operands`` are index-free matrix expressions of :mod:`derive.algebra.matrix_expr` (2-d,
    vectors as ``(n, 1)`` with the letter ``z`` for the unit axis); ``ones`` lists
    free indices that no operand touches (the tensor is constant along them).
    """

    subscripts: tuple[str, ...]
    operands: tuple[sp.Expr, ...]
    output: str
    ones: tuple[str, ...]


def network_terms(network: Network) -> tuple[sp.Expr, Term]:
    """Eliminate the summed indices of a four-index network by matrix products; the rest as a Term."""
    graph = Graph(network)
    graph.reduce()
    subscripts: list[str] = []
    operands: list[sp.Expr] = []
    for expr, a, b in graph.edges:
        # symmetric leaves are stored with sorted indices; any orientation is the same
        subscripts.append(a + b)
        operands.append(expr)
    for node, vector in sorted(graph.weights.items()):
        subscripts.append(node + "z")
        operands.append(vector)
    output = "".join(name for _, name in network.free)
    used = set("".join(subscripts))
    ones = tuple(name for name in output if name not in used)
    # order the operands canonically so equal terms from different networks are collected
    order = sorted(range(len(operands)), key=lambda i: (subscripts[i], sp.default_sort_key(operands[i])))
    term = Term(
        tuple(subscripts[i] for i in order), tuple(operands[i] for i in order), output, ones
    )
    return graph.scalar, term


@cache
def derive_moments(model: Model) -> dict[str, dict[Term, sp.Expr]]:
    """Every average of :data:`MOMENT_NAMES` as ``{term: scalar coefficient}`` (coefficients may hold ``delta``).

    Printed route (any degree, but far too slow above :data:`MAX_PRINTED_DEGREE`).
    """
    result: dict[str, dict[Term, sp.Expr]] = {}
    for name, parts in moment_integrands(model).items():
        collected: dict[Term, sp.Expr] = {}
        for part_coefficient, factors in parts:
            summed = [slot for slot, _ in factors if slot not in FREE[name]]
            for network, coefficient in function_average(factors, summed, FREE[name]).items():
                scalar, term = network_terms(network)
                collected[term] = collected.get(term, sp.Integer(0)) + part_coefficient * coefficient * scalar
        result[name] = {term: sp.expand(c) for term, c in collected.items() if sp.expand(c) != 0}
    return result


def fluctuation_result_hash(model: Model) -> str:
    """Hash of the canonical symbolic result (printer independent); the network tables' above degree 2."""
    if uses_network_tables(model):
        from derive.quantities.network_tables import network_result_hash

        return network_result_hash(model)
    lines = [f"version={FLUCTUATION_GENERATOR_VERSION}"]
    for name, terms in derive_moments(model).items():
        entries = sorted(
            f"{t.subscripts}|{t.output}|{t.ones}|{[sp.srepr(o) for o in t.operands]}|{canonical_text(c)}"
            for t, c in terms.items()
        )
        lines.append(f"{name}=" + ";".join(entries))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]










__all__ = [
    "DELTA",
    "MAX_FLUCTUATION_DEGREE",
    "MAX_PRINTED_DEGREE",
    "check_fluctuations_supported",
    "fluctuations_supported",
    "FIRST_ORDER_NAMES",
    "MOMENT_NAMES",
    "SECOND_ORDER_NAMES",
    "Term",
    "derive_moments",
    "fluctuation_result_hash",
    "moment_integrands",
    "uses_network_tables",
]
