"""Short summaries of a trajectory: the plateau and when it is left."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PlateauSummary:
    """Plateau risk level, where it is reached, when it is left, final risk (NaN where absent)."""

    plateau_risk: float
    plateau_start: float
    escape_alpha: float
    final_risk: float


def plateau_summary(result: Any, *, model: Any = None, drop: float = 0.5, settle: float = 0.01) -> PlateauSummary:
    """Plateau of a single (unbatched) trajectory.

    The plateau is where the *uninformed* dynamics settles: the same ODE
    started from the same ``Q(0)`` with ``R(0) = 0`` (an invariant set when the
    activations are even, as in the paper). Its risk at the final time is the
    plateau level; the plateau starts when that uninformed run is within
    ``settle`` (relative) of it, and is left at the first alpha where the
    actual risk falls below ``drop`` times the level. Returns NaNs when
    ``R = 0`` is not invariant for the model. ``model`` defaults to the one
    the result carries.
    """
    from numerics.ode.integrate import integrate
    from numerics.ode.overlaps import rhs

    if model is None:
        model = getattr(result, "model", None)
    Q0, R0, T = result.Q[0], np.zeros_like(result.R[0]), result.T
    final = float(result.risk[-1])
    if np.max(np.abs(rhs(Q0, R0, T, result.eta, model=model)[1])) > 1e-12:
        return PlateauSummary(np.nan, np.nan, np.nan, final)
    uninformed = integrate(
        Q0, R0, T, eta=result.eta, alpha_eval=result.alpha, alpha_max=result.alpha[-1],
        model=model, second_order=result.second_order, batch_size=getattr(result, "batch_size", 1),
    )
    # dR can vanish at Q(0) alone (He3 with T != I at Q = I): R = 0 must stay invariant along the run
    if np.max(np.abs(uninformed.R)) > 1e-12:
        return PlateauSummary(np.nan, np.nan, np.nan, final)
    level = float(uninformed.risk[-1])
    settled = np.nonzero(np.abs(uninformed.risk - level) <= settle * abs(level))[0]
    start = float(result.alpha[settled[0]]) if settled.size else np.nan
    below = np.nonzero(result.risk < drop * level)[0]
    escape = float(result.alpha[below[0]]) if below.size else np.nan
    return PlateauSummary(level, start, escape, final)
