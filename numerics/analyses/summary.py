"""Short summary of one trajectory: its plateau, when it is left, the final risk.

The plateau and the escape are those of :func:`numerics.analyses.plateau.run_plateaus`
and :func:`numerics.analyses.plateau.escape_time` (the run's own plateau fixed
point, left when the risk falls below ``threshold`` times its risk), so that
``wickode run``, the API and the figures share one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from numerics.analyses.plateau import escape_time, run_plateaus

#: Fraction of the plateau risk below which a run has left the plateau (the default of :func:`escape_time`).
ESCAPE_THRESHOLD = 0.75


@dataclass(frozen=True)
class PlateauSummary:
    """Plateau of one run and its escape.

    Attributes
    ----------
    plateau_risk : float
        Risk at the run's plateau fixed point (NaN when the run has no plateau).
    escape_alpha : float
        :func:`escape_time` of the run: NaN when it has no plateau or never
        falls below ``threshold * plateau_risk`` within the run.
    final_risk : float
        Risk at the last output time.
    threshold : float
        Fraction of the plateau risk that marks the escape.
    no_plateau : str or None
        Why the run has no plateau (the message of :func:`run_plateaus`), or ``None``.
    """

    plateau_risk: float
    escape_alpha: float
    final_risk: float
    threshold: float
    no_plateau: str | None = None

    @property
    def escaped(self) -> bool:
        """Whether the run has a plateau and leaves it within its time span."""
        return bool(np.isfinite(self.escape_alpha))


def plateau_summary(result: Any, *, model: Any = None, threshold: float = ESCAPE_THRESHOLD) -> PlateauSummary:
    """Plateau, escape and final risk of a single (unbatched) trajectory.

    Parameters
    ----------
    result : IntegrationResult
        One run: ``risk`` of shape (n,), ``Q`` of shape (n, p, p).
    model : derive.Model, optional
        Overrides the model the result carries (default: the run's own).
    threshold : float
        Fraction in (0, 1) of the plateau risk that marks the escape.

    Returns
    -------
    PlateauSummary
        ``escape_alpha`` equals ``escape_time(result, threshold=threshold)``.

    Raises
    ------
    ValueError
        If ``result`` is batched.
    """
    risks = np.asarray(result.risk)
    if risks.ndim != 1:
        raise ValueError(f"plateau_summary needs one trajectory (risk of shape (n,)), got risk of shape {risks.shape}")
    if model is not None:
        result = replace(result, model=model)
    final = float(risks[-1])
    try:
        (plateau,) = run_plateaus(result)
    except ValueError as error:
        return PlateauSummary(np.nan, np.nan, final, threshold, no_plateau=str(error))
    escape = float(escape_time(result, threshold=threshold))
    return PlateauSummary(plateau.risk, escape, final, threshold)
