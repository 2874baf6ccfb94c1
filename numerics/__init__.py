"""Numerical side of wickode: calls the generated code (no sympy at call time).

The public names are listed in ``__all__``; their signatures and docstrings are collected in
docs/api.md, generated from the code (``python docs/api.py``), so no list here can drift.
Shapes: ``Q`` is (p, p), ``R`` (p, k), ``T`` (k, k), optionally with leading batch axes;
``model=None`` is the paper's model (docs/model.md). The sub-packages are layers
(docs/layout.md): ``ode`` (right-hand sides, their Jacobian, integration), ``noise`` (finite-N
increment covariance), ``simulators`` (finite-N SGD, overlap chain, SDE), ``analyses`` (plateau
and escape, fixed points and their stability, implicit bias, landscape), ``sweeps``, ``results``
(saved results), ``runtime`` (the registry of generated modules).
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version

from numerics.analyses.classification import classification_error
from numerics.analyses.closed_forms import predicted_counts
from numerics.analyses.finite_n import plateau_noise
from numerics.analyses.fixed_points import FixedPoint, Stability, fixed_point, stability
from numerics.analyses.gradient_hessian import gradient, hessian
from numerics.analyses.implicit_bias import closest_solution, closest_solution_weights, distance_to, omega
from numerics.analyses.plateau import (
    Plateau,
    average_risk_reduction,
    escape_time,
    fixed_point_norm,
    linearised_risk,
    plateau_coefficients,
    plateau_fixed_point,
    run_plateaus,
)
from numerics.analyses.solution_manifold import null_direction_split
from numerics.analyses.spectra import hessian_spectrum
from numerics.analyses.stationary_points import plateau, zero_error
from numerics.analyses.symmetric_fixed_point import symmetric_fixed_point
from numerics.noise.diffusion import packed_covariance
from numerics.noise.fluctuations import increment_covariance
from numerics.ode.giant_steps import giant_steps
from numerics.ode.initial import initial_conditions
from numerics.ode.integrate import IntegrationError, integrate
from numerics.ode.jacobian import Jacobian, jacobian
from numerics.ode.overlaps import rhs, risk
from numerics.results.persist import IntegrationResult, load, save
from numerics.results.settings import RunSettings
from numerics.simulators.common import SimulationError
from numerics.simulators.overlap_chain import overlap_step, simulate_overlaps
from numerics.simulators.sde import simulate_sde
from numerics.simulators.weights import compare_ode_simulation, simulate, weights_from_overlaps
from numerics.sweeps.api import sweep
from numerics.sweeps.layout import sweep_point
from numerics.sweeps.learning_rate import LearningRateScan, optimal_learning_rate

try:
    #: The installed version of the ``wickode`` distribution (pyproject.toml), printed by ``wickode --version``.
    __version__ = _distribution_version("wickode")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "FixedPoint",
    "Jacobian",
    "LearningRateScan",
    "Plateau",
    "Stability",
    "RunSettings",
    "average_risk_reduction",
    "escape_time",
    "fixed_point",
    "fixed_point_norm",
    "jacobian",
    "linearised_risk",
    "optimal_learning_rate",
    "plateau_coefficients",
    "plateau_fixed_point",
    "run_plateaus",
    "classification_error",
    "stability",
    "closest_solution",
    "closest_solution_weights",
    "distance_to",
    "omega",
    "overlap_step",
    "increment_covariance",
    "packed_covariance",
    "simulate_sde",
    "simulate_overlaps",
    "IntegrationError",
    "IntegrationResult",
    "SimulationError",
    "compare_ode_simulation",
    "giant_steps",
    "initial_conditions",
    "integrate",
    "gradient",
    "hessian",
    "hessian_spectrum",
    "load",
    "rhs",
    "risk",
    "save",
    "simulate",
    "sweep",
    "sweep_point",
    # used by the documentation's examples
    "null_direction_split",
    "plateau",
    "plateau_noise",
    "predicted_counts",
    "symmetric_fixed_point",
    "weights_from_overlaps",
    "zero_error",
]
