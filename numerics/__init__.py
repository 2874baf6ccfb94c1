"""Numerical side of wickode: calls the generated code (no sympy at call time).

Public API
----------
``RunSettings(eta, *, model=None, second_order=True, batch_size=1, eta_a=0.0, a=None, b=None)``
(the settings of a run's dynamics, one frozen object; every solver below takes it as
``settings=`` or as the same keywords, and every result carries it as ``result.settings``)
``rhs(Q, R, T, eta, *, model=None, second_order=True, check=True) -> (dQ, dR)``
(``check=False``: unchecked, for hot loops holding valid float64 arrays)
``risk(Q, R, T, *, model=None, check=True) -> float``
``integrate(Q0, R0, T, *, eta, alpha_max, ..., blas_threads="auto") -> IntegrationResult``
(BLAS pinned to one thread while it runs, see :mod:`numerics.core.blas`)
``initial_conditions(p, k, *, N, q0=1.0, seed=None) -> (Q0, R0, T)``
``simulate(*, N, p, k, eta, alpha_max, ...) -> IntegrationResult`` (finite-N SGD;
``method="overlaps"``: the exact overlap chain, cost per step independent of N)
``overlap_step(Q, R, T, z, rho, xi, *, eta, N) -> (Q, R)`` (one SGD step on the overlaps)
``increment_covariance(Q, R, T, eta) -> (QQ, QR, RR)`` (covariance of one step's overlap increments;
readout vectors ``a=, b=``; with ``eta_a=`` also ``(AQ, AR, AA)`` of a trained readout)
``packed_covariance(Q, R, T, eta) -> Sigma`` (the same for the independent increments, as a matrix)
``simulate_sde(Q0, R0, T, *, N, eta, alpha_max, ...) -> IntegrationResult`` (the diffusion
approximation of finite-N SGD: ODE drift plus N**-1/2 noise, cost independent of N; readout
vectors and a trained readout as ``integrate``)
``compare_ode_simulation(sim) -> Comparison``
``omega(R) -> R (R^T R)^(-1/2)`` (Eq. 22, conserved from isotropic starts)
``closest_solution(R0, *, T=None, p_over_k=None) -> (Q_inf, R_inf)`` (Eqs. 19-21)
``closest_solution_weights(W0, W_star) -> W`` (nearest zero-error student)
``distance_to(trajectory, (Q_t, R_t)) -> |W - W_t|^2 / N`` along a trajectory
``plateau_fixed_point(p, k, eta, *, T=None, model=None) -> Plateau`` (R = 0 fixed point)
``escape_time(run, *, threshold=0.75)`` (against the run's own plateau)
``optimal_learning_rate(p, k, ...) -> LearningRateScan`` (Sec. 4.1, Fig. 2)
``result.to_xarray()``, ``result.save(path)``, ``save(obj, path)``, ``load(path)``
(netCDF files; layout in :mod:`numerics.results.persist`)
``sweep(task, grid, *, executor=None, store=None, **fixed) -> xarray.Dataset`` (parameter
sweeps on processes or a dask cluster, stored per point and resumed; :mod:`numerics.sweeps.engine`)
``sweep_point(dataset, **labels) -> IntegrationResult``

Shapes: ``Q`` is (p, p), ``R`` (p, k), ``T`` (k, k), optionally with leading
batch axes; ``model=None`` is the paper's model (docs/model.md).
"""

from numerics.analyses.implicit_bias import closest_solution, closest_solution_weights, distance_to, omega
from numerics.analyses.landscape import gradient, hessian, hessian_spectrum
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
from numerics.noise.diffusion import packed_covariance
from numerics.noise.fluctuations import increment_covariance
from numerics.ode.initial import initial_conditions
from numerics.ode.integrate import IntegrationError, integrate
from numerics.ode.overlaps import rhs, risk
from numerics.results.persist import IntegrationResult, load, save
from numerics.results.settings import RunSettings
from numerics.simulators.common import SimulationError
from numerics.simulators.overlap_chain import overlap_step, simulate_overlaps
from numerics.simulators.sde import simulate_sde
from numerics.simulators.weights import compare_ode_simulation, simulate
from numerics.sweeps.engine import sweep, sweep_point
from numerics.sweeps.learning_rate import LearningRateScan, optimal_learning_rate

__all__ = [
    "LearningRateScan",
    "Plateau",
    "RunSettings",
    "average_risk_reduction",
    "escape_time",
    "fixed_point_norm",
    "linearised_risk",
    "optimal_learning_rate",
    "plateau_coefficients",
    "plateau_fixed_point",
    "run_plateaus",
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
]
