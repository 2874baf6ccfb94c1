"""The plateau at finite N: how much initial overlap the SGD noise is worth.

In the plateau ``R`` is small and its drift is linear,
``dR/dalpha = g(alpha) R`` (``g`` the growth rate along the ``R = 0`` flow of
``Q``, reaching ``growth_R`` of :func:`numerics.plateau_coefficients` at the
plateau), while one SGD step adds noise of variance ``sigma^2(alpha) / N^2`` to
each entry (:func:`numerics.noise.fluctuations.increment_covariance` at ``R = 0``,
independent entries). With ``Gamma(alpha) = int_0^alpha g``,

    sqrt(N) R(alpha) = exp(Gamma(alpha)) [sqrt(N) R(0) + int_0^alpha exp(-Gamma) sigma dB],

so once the noise integral has converged the finite-N plateau is the ODE's,
started from ``R(0) + Z`` with ``Z`` Gaussian, i.i.d. entries of variance
``S / N``:

    S = int_0^inf exp(-2 Gamma(alpha)) sigma^2(alpha) dalpha.

Consequences (checked in ``tests/numerics/analyses/test_finite_n.py`` and the ``finite_n_*`` figures):

* from ``R(0) = 0`` (where the ODE never escapes) the escape-time law at size N is
  that of the ODE from Gaussian ``R(0)`` of variance ``S / N``, and its mean grows
  as ``log(N) / (2 growth_R)``;
* from an Eq. 8 start (variance ``q0 / N``) the real dynamics escapes as the ODE
  from variance ``(q0 + S) / N``: earlier than the Eq. 8 ODE by
  ``log(1 + S / q0) / (2 growth_R)`` on average, at every N;
* the direction of ``R`` at the escape, hence the zero-error point selected
  (``omega``), is that of ``R(0) + Z``: random relative to ``R(0)`` at every N.

Every plateau, the symmetric ones included (erf and relu committees, information exponent 1,
where ``R = 0`` is no fixed point), is handled by the same formula read as a linear-noise
approximation (:mod:`numerics.analyses.linear_noise`): the growing part of the fluctuation is
projected on the plateau's unstable direction with the growth covector ``b(alpha)`` (``b = u``,
the left eigenvector of the exact Jacobian for ``g_R``, on the plateau), ``Gamma(alpha) =
g_R alpha + ln(|b(0)| / |b(alpha)|)`` and ``sigma^2 = bhat^T Sigma bhat`` (``bhat = b / |b|``,
``Sigma`` the packed increment covariance). The noise is then worth a displacement of the
deterministic start (``Q = q0 I``, ``R = 0``; for a symmetric plateau the flow from there stays
symmetric and lands on it) by ``Z`` along ``w = b(0) / |b(0)|``, ``Z`` of variance ``S / N``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.special import digamma, roots_genlaguerre
from scipy.special import gamma as gamma_function

from numerics.analyses.linear_noise import (
    INTEGRAND_HORIZON,
    escape_crossing,
    growth_covectors,
    left_growth_vector,
    noise_grid,
    positive_first,
    settled_thinning,
    symmetric_path,
    trapezoid_cumulative,
)
from numerics.analyses.path_covariance import cost_check, step_covariance
from numerics.analyses.plateau import plateau_coefficients, plateau_fixed_point
from numerics.analyses.plateau_search import Plateau
from numerics.core.validation import check_finite_result, check_int, check_scalar
from numerics.ode.integrate import integrate
from numerics.ode.jacobian import Drift, coordinate_names, drift_at, drift_jacobian, pack_state, unpack_state
from numerics.results.settings import RunSettings

#: Relative size of the off-diagonal (or anisotropic) part of the noise covariance of R
#: at R = 0 above which the scalar description does not apply.
ISOTROPY_TOLERANCE = 1e-8
#: Default displacement ``Delta`` of the start along ``w`` from which :meth:`PlateauNoise.escape_offset`
#: runs the ODE: small enough for the linear regime (its escape is ``ln(1/Delta) / g_R`` late).
REFERENCE_DISTANCE = 1e-4


@dataclass(frozen=True)
class PlateauNoise:
    """Noise-equivalent initial displacement of the plateau (module docstring).

    Attributes
    ----------
    variance : float
        ``S``: the noise acts as an extra Gaussian displacement of the start along
        ``start_direction`` of variance ``S / N`` (for an ``R = 0`` plateau: of ``R(0)``, per entry).
    growth_R : float
        Growth rate ``g_R`` of the unstable direction at the plateau.
    q0 : float
        The start ``Q(0) = q0 I``, ``R(0) = 0`` the integral was taken from.
    alpha, gamma, sigma2 : arrays, shape (n_alpha,)
        The grid, ``Gamma(alpha)`` and ``sigma^2(alpha)`` of the integral.
    kind : str
        The plateau's kind, ``"R = 0"`` or ``"symmetric"`` (:class:`numerics.Plateau`).
    coordinates : tuple of str
        Names of the packed coordinates (:attr:`numerics.Jacobian.coordinates`) of the vectors below.
    unstable : array, shape (n,)
        ``u``: unit left eigenvector of the plateau's Jacobian for ``g_R``.
    start_direction : array, shape (n,)
        ``w = b(0) / |b(0)|``: the unit displacement of the start the noise is worth.
    start : array, shape (n,)
        The deterministic start ``(Q = q0 I, R = 0)`` and a trained readout's start ``a``, packed.
    multiplicity : int
        How many independent directions grow at ``g_R`` (``p k`` for an isotropic ``R = 0`` plateau, 1 for
        a symmetric one): the escape is driven by a Gaussian of that many i.i.d. components.
    distance : float
        ``Delta``, the displacement along ``w`` from which :meth:`escape_offset` runs the ODE.
    plateau_risk : float
        Risk at the plateau (label-noise term included).
    model : derive.Model or None
        The model (``settings.model``).
    settings : RunSettings or None
        The run's settings the noise was computed for (learning rate, mini-batch, readout vectors);
        the ODE runs of :meth:`escape_offset` and :meth:`escape_alpha_ode` use them.
    """

    p: int
    k: int
    eta: float
    q0: float
    variance: float
    growth_R: float
    alpha: np.ndarray
    gamma: np.ndarray
    sigma2: np.ndarray
    kind: str = "R = 0"
    coordinates: tuple[str, ...] = ()
    unstable: np.ndarray | None = None
    start_direction: np.ndarray | None = None
    start: np.ndarray | None = None
    multiplicity: int = 1
    distance: float = REFERENCE_DISTANCE
    plateau_risk: float = np.nan
    model: Any = None
    settings: RunSettings | None = None
    _offsets: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def log_slope(self) -> float:
        """Predicted ``d <escape alpha> / d log N`` = ``1 / (2 growth_R)``."""
        return 1.0 / (2.0 * self.growth_R)

    def variance_at(self, alpha: float | np.ndarray, initial: float = 0.0) -> np.ndarray:
        """Predicted ``N Var`` of the fluctuation along ``bhat(alpha)`` in the linear regime, from ``initial`` at 0.

        For an ``R = 0`` plateau that is ``N Var(R_jr(alpha))`` from ``N Var(R_jr(0)) = initial``:
        ``exp(2 Gamma(alpha)) (initial + int_0^alpha exp(-2 Gamma) sigma^2)`` on the stored grid
        (linear interpolation of the exponent and of the accumulated integral).
        """
        alpha = np.asarray(alpha, dtype=float)
        if np.any(alpha < 0) or np.any(alpha > self.alpha[-1]):
            raise ValueError(f"alpha must lie in [0, {self.alpha[-1]:.4g}]")
        accumulated = trapezoid_cumulative(np.exp(-2.0 * self.gamma) * self.sigma2, self.alpha)
        gamma = np.interp(alpha, self.alpha, self.gamma)
        return np.exp(2.0 * gamma) * (initial + np.interp(alpha, self.alpha, accumulated))

    def eq8_shift(self, variance: float | None = None) -> float:
        """Predicted mean escape of the ODE minus that of SGD, both from Eq. 8 starts.

        ``log(1 + S / v) / (2 growth_R)``, ``v`` the variance (times N) of the Eq. 8
        ``R(0)`` (default ``q0``).
        """
        v = self.q0 if variance is None else check_scalar(variance, "variance", positive=True)
        return float(np.log1p(self.variance / v) / (2.0 * self.growth_R))

    def named(self, vector: str = "unstable", count: int = 4) -> tuple[tuple[str, float], ...]:
        """The ``count`` largest components of ``"unstable"`` (``u``) or ``"start_direction"`` (``w``), named."""
        if vector not in ("unstable", "start_direction"):
            raise ValueError(f"vector must be 'unstable' or 'start_direction', got {vector!r}")
        values = getattr(self, vector)
        order = np.argsort(-np.round(np.abs(values), 12), kind="stable")[: check_int(count, "count", minimum=1)]
        return tuple((self.coordinates[i], float(values[i])) for i in order)

    def effective_variance(self, initial: float = 0.0) -> float:
        """``S + initial |w_R|^2``: with the start's ``R`` i.i.d. of variance ``initial / N`` (Eq. 8: ``q0``)."""
        initial = check_scalar(initial, "initial", nonnegative=True)
        weight_R = sum(w**2 for name, w in zip(self.coordinates, self.start_direction) if name.startswith("R["))
        return float(self.variance + initial * weight_R)

    def escape_offset(self, threshold: float = 0.5) -> float:
        """``alpha_0`` of :meth:`escape_alpha`: the ODE's escape from the start displaced by ``+-Delta w``.

        The mean of the ODE's escape times (risk below ``threshold`` times the plateau risk) from
        ``start + Delta w`` and ``start - Delta w``, plus ``-(psi(m / 2) + ln 2) / (2 g_R)``, the mean of
        ``-ln|Z| / g_R`` for ``|Z|`` the norm of ``m = multiplicity`` standard normals (0.635 / g_R for m = 1).
        """
        threshold = check_scalar(threshold, "threshold", positive=True)
        if threshold >= 1:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if threshold not in self._offsets:
            self._offsets[threshold] = self._ode_offset(threshold)
        return self._offsets[threshold]

    def displacement_directions(self, count: int = 8) -> np.ndarray:
        """Unit displacements (d, n) of the start the escape is averaged over.

        ``[w]`` for a simple ``g_R``; for ``multiplicity > 1`` (an isotropic ``R = 0`` plateau, whose
        noise-equivalent start is ``R(0) + Z`` with i.i.d. entries) ``count`` directions of ``R`` drawn
        uniformly on its sphere (fixed seed): the escape depends on the direction of ``Z`` beyond the
        linear regime (along ``R[0,0]`` alone one student never meets the second teacher).
        """
        if self.multiplicity == 1:
            return self.start_direction[None, :]
        in_R = np.array([name.startswith("R[") for name in self.coordinates])
        draws = np.random.default_rng(20261207).normal(size=(check_int(count, "count", minimum=1), int(in_R.sum())))
        directions = np.zeros((draws.shape[0], in_R.size))
        directions[:, in_R] = draws / np.linalg.norm(draws, axis=1, keepdims=True)
        return directions

    def _escape_times(self, amplitudes: np.ndarray, threshold: float) -> np.ndarray:
        """ODE escape alphas (2 d, n) from ``start +- amplitude direction`` for each of the ``amplitudes`` (n,)
        and each of the d :meth:`displacement_directions`."""
        threshold = check_scalar(threshold, "threshold", positive=True)
        if threshold >= 1:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        directions = self.displacement_directions()
        directions = np.concatenate([directions, -directions])
        displaced = self.start + amplitudes[None, :, None] * directions[:, None, :]
        settings = self.settings if self.settings is not None else RunSettings(eta=self.eta, model=self.model)
        trained = settings.eta_a > 0
        Q0, R0, a0 = unpack_state(displaced, self.p, self.k, trained)
        if trained:  # the displaced readout is the start of each run's trained readout
            settings = replace(settings, a=a0)
        horizon = (20.0 + max(0.0, np.log(1.0 / float(np.min(amplitudes))))) / self.growth_R
        run = integrate(Q0, R0, np.eye(self.k), settings, alpha_max=horizon, alpha_eval=np.linspace(0.0, horizon, 8001))
        times = escape_crossing(np.asarray(run.alpha), np.asarray(run.risk), threshold * self.plateau_risk)
        if not np.all(np.isfinite(times)):
            raise ValueError(f"the ODE from the displaced start does not escape by alpha = {horizon:.4g} "
                             f"(risk below {threshold:g} of the plateau's): choose another threshold")
        return times

    def mean_log_amplitude(self) -> float:
        """``E ln|Z|`` for ``Z`` of ``multiplicity`` i.i.d. standard normal components: ``(psi(m/2) + ln 2) / 2``."""
        return float((digamma(self.multiplicity / 2) + np.log(2.0)) / 2)

    def _ode_offset(self, threshold: float) -> float:
        times = self._escape_times(np.array([self.distance]), threshold)
        return float(np.mean(times) - self.mean_log_amplitude() / self.growth_R)

    def escape_alpha_ode(self, N: float | np.ndarray, *, initial: float = 0.0, threshold: float = 0.5,
                         nodes: int = 6) -> np.ndarray:
        """Predicted mean escape alpha at size ``N`` from the ODE itself, beyond the linear regime of the start.

        The mean over the Gaussian amplitude ``Z`` (``multiplicity`` components, variance
        ``S_eff / N`` each, :meth:`effective_variance`) of the ODE's escape from ``start +- |Z| w``,
        by generalised Gauss-Laguerre quadrature in ``|Z|^2 / 2`` with ``nodes`` nodes applied to the
        smooth part ``t + ln|Z| / g_R`` (the logarithm's mean is exact). One batched ODE run.

        Returns an array shaped like ``N``.
        """
        N = np.asarray(N, dtype=float)
        if np.any(N <= 0):
            raise ValueError(f"N must be positive, got {N}")
        nodes = check_int(nodes, "nodes", minimum=1)
        half_squares, weights = roots_genlaguerre(nodes, self.multiplicity / 2 - 1)
        weights = weights / gamma_function(self.multiplicity / 2)
        norms = np.sqrt(2.0 * half_squares)
        scale = np.sqrt(self.effective_variance(initial) / N.ravel())
        times = self._escape_times((scale[:, None] * norms[None, :]).ravel(), threshold)
        smooth = np.mean(times, axis=0).reshape(scale.size, nodes) + np.log(norms)[None, :] / self.growth_R
        return (smooth @ weights - self.mean_log_amplitude() / self.growth_R).reshape(N.shape)

    def escape_alpha(self, N: float | np.ndarray, *, initial: float = 0.0, threshold: float = 0.5) -> np.ndarray:
        """Predicted mean escape alpha at size ``N``: ``alpha_0 + ln(N Delta^2 / S_eff) / (2 g_R)``.

        ``alpha_0`` is :meth:`escape_offset` (the ODE's escape from ``Delta`` along ``w``, averaged over the
        Gaussian amplitude), ``S_eff`` :meth:`effective_variance` (``initial``: the start's ``R`` i.i.d. of
        variance ``initial / N``). The linear regime: valid while ``sqrt(S_eff / N)`` is small against the
        plateau's scale (the law's error grows as N falls).
        """
        N = np.asarray(N, dtype=float)
        if np.any(N <= 0):
            raise ValueError(f"N must be positive, got {N}")
        offset = self.escape_offset(threshold)
        return offset + np.log(N * self.distance**2 / self.effective_variance(initial)) / (2.0 * self.growth_R)


def plateau_noise(
    p: int, k: int, eta: float | None = None, settings: RunSettings | None = None, *, q0: float = 1.0,
    points_per_unit: int = 20, distance: float = REFERENCE_DISTANCE, max_seconds: float = 60.0,
    **setting_overrides: Any,
) -> PlateauNoise:
    """The noise-equivalent variance ``S`` of the plateau reached from ``Q(0) = q0 I``, ``R(0) = 0``, ``T = I``.

    Parameters
    ----------
    p, k : int
    eta : float
        Learning rate; default ``settings.eta``.
    settings : RunSettings, optional
        The run's dynamics (:class:`~numerics.results.settings.RunSettings`), or the same names as
        keywords: ``model`` (``None``: the paper model), ``second_order``, a mini-batch ``batch_size = B``
        (drift and increment covariance of the mini-batch step: the ``eta**2`` part of the covariance is
        divided by ``B``), fixed readout vectors ``a`` (p,) and ``b`` (k,), a trained readout (``eta_a > 0``,
        ``a`` its uniform start: the readout joins the coordinates, the covariance gains its ``AQ``, ``AR``,
        ``AA`` blocks; it needs a fixed point of the full state) and a model with label flips (the mixture
        of the teacher and its negative throughout). Refused by name (``ValueError``): ``spherical`` and
        ``sam_radius``, whose plateau noise is not derived here.
    q0 : float
        The start's norm.
    points_per_unit : int
        Grid density of the integral (module :mod:`numerics.analyses.linear_noise`, :func:`noise_grid`;
        beyond ``20 / g_R``, where the integrand has died, the steps follow the path's change:
        :func:`~numerics.analyses.linear_noise.settled_thinning`).
    distance : float
        ``Delta`` of :meth:`PlateauNoise.escape_offset`.
    max_seconds : float
        Refuse (``ValueError``) when the covariance and the Jacobian along the path are estimated to
        take longer (timed at two points; checked for the points up to ``20 / g_R`` before the path
        is integrated, then for the whole grid).

    Raises
    ------
    ValueError
        Saying why, if the model has no plateau (:func:`numerics.plateau_fixed_point`; with a trained
        readout too slow to settle, ``eta_a`` far below ``eta``: the readout is still moving), if nothing
        grows there at linear order (He3: ``g_R <= 0``), if the escape rate is complex or repeated
        at a symmetric plateau, if the noise of an ``R = 0`` plateau's ``R`` is not i.i.d. over the
        entries while ``g_R`` is repeated, if the covariance and the Jacobian along the path would take
        longer than ``max_seconds``, or for a setting it does not take (above).
    TypeError
        No learning rate, or a keyword that is not a setting.
    """
    p, k = check_int(p, "p", minimum=1), check_int(k, "k", minimum=1)
    run = RunSettings.merged(settings, setting_overrides if eta is None else dict(setting_overrides, eta=eta),
                             "plateau_noise")
    _refuse_unsupported(run)
    q0 = check_scalar(q0, "q0", positive=True)
    distance = check_scalar(distance, "distance", positive=True)
    max_seconds = check_scalar(max_seconds, "max_seconds", positive=True)
    plateau = plateau_fixed_point(p, k, settings=run, Q_start=q0 * np.eye(p))
    g_R = _growth_rate(plateau, p, k, run)
    symmetric = plateau.kind != "R = 0"
    T, Q_start, R_start = np.eye(k), q0 * np.eye(p), np.zeros((p, k))
    drift, start = drift_at(Q_start, R_start, T, None, run, {}, "plateau_noise")
    coordinates = coordinate_names(p, k, drift.trained)
    u, multiplicity = left_growth_vector(plateau.stability.jacobian.matrix, g_R, coordinates)
    if symmetric and multiplicity != 1:
        raise ValueError(f"the symmetric plateau's escape rate g_R = {g_R:.4g} is repeated ({multiplicity} directions):"
                         " the noise along one unstable direction is not defined")
    slowest = float(np.max(plateau.eigenvalues.real))
    alpha = noise_grid(symmetric, g_R, slowest, run.eta, check_int(points_per_unit, "points_per_unit", minimum=1))
    check_cost = cost_check(Q_start, R_start, T, run, max_seconds, unpack_state(start, p, k, drift.trained)[2])
    # the points up to 20 / g_R stay whatever the path: refuse before computing it when they alone cost too much
    check_cost(int(np.sum(alpha <= INTEGRAND_HORIZON / g_R)), at_least=True)
    states = _path_states(drift, start, alpha, symmetric, run)
    kept = settled_thinning(alpha, states, g_R)
    alpha, states = alpha[kept], states[kept]
    check_cost(alpha.size)
    Q, R, a = unpack_state(states, p, k, drift.trained)
    Sigma = step_covariance(Q, R, T, run, a)
    if not symmetric and multiplicity > 1:
        # one variance for the repeated g_R: the noise must be the same on every R entry
        in_R = slice(p * (p + 1) // 2, p * (p + 1) // 2 + p * k)
        _check_isotropic(Sigma[:, in_R, in_R])
    # the drift's analyticity (complex steps or Richardson) is that of the model: the plateau's method holds
    J, _ = drift_jacobian(drift, states, plateau.stability.jacobian.method)
    check_finite_result("plateau_noise: the Jacobian along the path", J)
    b = growth_covectors(J, alpha, g_R, u)
    norms = np.linalg.norm(b, axis=1)
    unit = b / norms[:, None]
    gamma = g_R * alpha + np.log(norms[0] / norms)
    sigma2 = np.einsum("ai,aij,aj->a", unit, Sigma, unit)
    weight = np.exp(-2.0 * gamma) * sigma2
    variance = float(trapezoid_cumulative(weight, alpha)[-1])
    direction = b[0] / norms[0]
    return PlateauNoise(p, k, float(run.eta), float(q0), variance, float(g_R), alpha, gamma, sigma2, plateau.kind,
                        coordinates, u, positive_first(direction), start, multiplicity,
                        float(distance), float(plateau.risk), run.model, run)


def _refuse_unsupported(run: RunSettings) -> None:
    """``ValueError`` naming the settings whose plateau noise is not derived here."""
    refused = [name for name, on in (("spherical=True", run.spherical), ("sam_radius > 0", run.sam_radius > 0)) if on]
    if refused:
        raise ValueError(f"plateau_noise does not take {', '.join(refused)}: its linear-noise integral is derived "
                         "for plain SGD on the overlaps (Q, R) and, when trained, the readout")


def _path_states(drift: Drift, start: np.ndarray, alpha: np.ndarray, symmetric: bool,
                 run: RunSettings) -> np.ndarray:
    """The packed states (n_alpha, n) of the ODE from the packed ``start`` (n,) on the grid ``alpha``."""
    p, k = drift.p, drift.k
    Q_start, R_start, a_start = unpack_state(start, p, k, drift.trained)
    if symmetric:
        return symmetric_path(drift, Q_start[0, 0], alpha, None if a_start is None else float(a_start[0]))
    settings = run if a_start is None else replace(run, a=a_start)
    path = integrate(Q_start, R_start, drift.T, settings, alpha_max=alpha[-1], alpha_eval=alpha)
    # R stays 0 at an R = 0 plateau: set exactly, without the solver's round-off
    return pack_state(np.asarray(path.Q), np.zeros((alpha.size, p, k)),
                      None if a_start is None else np.asarray(path.a))


def _check_isotropic(RR: np.ndarray) -> None:
    """``ValueError`` unless the noise of ``R`` at ``R = 0`` (n_alpha, p k, p k) is i.i.d. over the entries."""
    sigma2 = RR[:, 0, 0]
    anisotropy = np.max(np.abs(RR - sigma2[:, None, None] * np.eye(RR.shape[-1])))
    if anisotropy > ISOTROPY_TOLERANCE * np.max(sigma2):
        raise ValueError(f"the noise of R at R = 0 is not i.i.d. over the entries (deviation {anisotropy:.3g})")


def _growth_rate(plateau: Plateau, p: int, k: int, run: RunSettings) -> float:
    """``g_R`` of the run's plateau, or ``ValueError`` saying why the noise theory does not apply."""
    g_R = plateau.growth_rate
    if plateau.kind == "R = 0" and run.batch_size == 1 and not run.per_unit:
        try:
            g_R = plateau_coefficients(p, k, run.eta, model=run.model, second_order=run.second_order).growth_R
        except ValueError:  # an anisotropic plateau (He3, ...): the exact Jacobian's rate
            pass
    if g_R <= 0:
        raise ValueError(
            f"R does not grow at linear order at the plateau (g_R = {g_R:.4g}): no escape driven by the noise at "
            "first order (information exponent >= 3: the escape needs a finite overlap), so no log N law"
        )
    if abs(plateau.stability.eigenvalues[0].imag) > 1e-9 * g_R:
        raise ValueError(f"the plateau's escape rate is complex ({complex(plateau.stability.eigenvalues[0]):.4g}): "
                         "the unstable direction rotates, no single direction for the noise")
    return float(g_R)


def gaussian_starts(p: int, k: int, *, N: float, variance: float, q0: float = 1.0, batch: int,
                    seed: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``batch`` starts ``Q = q0 I``, ``R`` i.i.d. ``N(0, variance / N)``, ``T = I`` (for batched ODEs).

    With ``variance = q0`` this is Eq. 8; with ``variance = S`` (:func:`plateau_noise`) it is
    the ODE stand-in of finite-N SGD from ``R(0) = 0``.
    """
    rng = np.random.default_rng(seed)
    R0 = rng.normal(scale=np.sqrt(variance / N), size=(batch, p, k))
    return np.broadcast_to(q0 * np.eye(p), (batch, p, p)).copy(), R0, np.eye(k)


__all__ = ["PlateauNoise", "gaussian_starts", "plateau_noise"]
