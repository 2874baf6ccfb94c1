"""The functions of a generated module: their parameters, outputs and output shapes.

Each generated function computes sums of the quantities of
:mod:`derive.quantities.ode` (drift, diffusion and noise terms, residual risk)
times scalar coefficients; :mod:`derive.codegen.plan` plans their matrix products and
:mod:`derive.codegen.module` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive.model.model import k, p

#: Scalar parameters of ``rhs_terms``: the coefficients of the drift, diffusion and noise terms.
C_DRIFT, C_DIFFUSION, C_NOISE = sp.symbols("c_drift c_diffusion c_noise")


@dataclass(frozen=True)
class FunctionSpec:
    """A generated function: its extra scalar parameters and outputs.

    Each output is ``(name, ((coefficient, quantity), ...))``: the sum of the
    derived quantities times their (scalar) coefficients. ``fast_path`` adds the
    unbatched branch for 2-d inputs.
    """

    name: str
    parameters: tuple[str, ...]
    outputs: tuple[tuple[str, tuple[tuple[sp.Expr, str], ...]], ...]
    doc: str
    fast_path: bool = True


def _plain(*names: str) -> tuple[tuple[str, tuple[tuple[sp.Expr, str], ...]], ...]:
    return tuple((name, ((sp.Integer(1), name),)) for name in names)


#: Every generated function, in the order they are printed.
FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        "first_order_terms",
        (),
        _plain("drift_Q", "drift_R"),
        "Coefficients of eta in dQ/dalpha and dR/dalpha: (drift_Q, drift_R).",
    ),
    FunctionSpec(
        "all_terms",
        (),
        _plain("drift_Q", "drift_R", "diffusion_Q", "noise_Q"),
        "Coefficients of eta, and of eta**2 (noiseless and per unit Delta):\n"
        "    (drift_Q, drift_R, diffusion_Q, noise_Q).",
    ),
    FunctionSpec(
        "rhs_terms",
        ("c_drift", "c_diffusion", "c_noise"),
        (
            ("dQ", ((C_DRIFT, "drift_Q"), (C_DIFFUSION, "diffusion_Q"), (C_NOISE, "noise_Q"))),
            ("dR", ((C_DRIFT, "drift_R"),)),
        ),
        "c_drift * drift + c_diffusion * diffusion_Q + c_noise * noise_Q, as (dQ, dR):\n"
        "    the ODE right-hand side without weight decay for c_drift = eta,\n"
        "    c_diffusion = eta**2 and c_noise = eta**2 Delta.",
    ),
    FunctionSpec(
        "residual_risk", (), _plain("residual_risk"), "Population risk without label noise, shape (...).", False
    ),
)

#: Shape of every output, as a pair from {p, k, 1}.
OUTPUT_SHAPES = {
    "drift_Q": (p, p),
    "diffusion_Q": (p, p),
    "noise_Q": (p, p),
    "dQ": (p, p),
    "drift_R": (p, k),
    "dR": (p, k),
    "residual_risk": (sp.Integer(1), sp.Integer(1)),
}
