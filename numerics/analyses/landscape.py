"""The population-risk landscape in weight space: one import for its tools.

The tools live in modules with one job each; this module gathers their public names:

* :mod:`numerics.analyses.gradient_hessian`: the generated gradient and Hessian (dense and matrix-free);
* :mod:`numerics.analyses.spectra`: the exact Hessian spectrum for any N;
* :mod:`numerics.analyses.stationary_points`: the stationary points of the paper model (App. 7.2);
* :mod:`numerics.analyses.closed_forms`: their closed-form spectra and the degrees of freedom (App. 7.2, 7.5);
* :mod:`numerics.analyses.solution_manifold`: null directions along the zero-error manifold and numerical ranks.
"""

from numerics.analyses.closed_forms import (
    plateau_negative_null_ratio,
    predicted_counts,
    predicted_spectrum,
    solution_manifold_dimension,
    student_expressivity,
)
from numerics.analyses.gradient_hessian import (
    HessianCoefficients,
    gradient,
    hessian,
    hessian_coefficients,
    hessian_matvec,
    weight_overlaps,
)
from numerics.analyses.solution_manifold import (
    NullSplit,
    expressivity_rank,
    manifold_rank,
    null_direction_split,
    tangent_directions,
)
from numerics.analyses.spectra import GRAM_RCOND, SPECTRUM_RTOL, Spectrum, count_signs, hessian_spectrum
from numerics.analyses.stationary_points import (
    POINT_NAMES,
    StationaryPoint,
    aligned,
    plateau,
    stationary_point,
    tabula_rasa,
    zero_error,
)

__all__ = [
    "GRAM_RCOND",
    "POINT_NAMES",
    "SPECTRUM_RTOL",
    "HessianCoefficients",
    "NullSplit",
    "Spectrum",
    "StationaryPoint",
    "aligned",
    "count_signs",
    "expressivity_rank",
    "gradient",
    "hessian",
    "hessian_coefficients",
    "hessian_matvec",
    "hessian_spectrum",
    "manifold_rank",
    "null_direction_split",
    "plateau",
    "plateau_negative_null_ratio",
    "predicted_counts",
    "predicted_spectrum",
    "solution_manifold_dimension",
    "stationary_point",
    "student_expressivity",
    "tabula_rasa",
    "tangent_directions",
    "weight_overlaps",
    "zero_error",
]
