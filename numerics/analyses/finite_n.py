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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from numerics.analyses.plateau import plateau_coefficients, plateau_fixed_point
from numerics.core.validation import check_int, check_scalar
from numerics.noise.fluctuations import increment_covariance
from numerics.ode.integrate import integrate
from numerics.ode.overlaps import rhs

#: Relative size of the off-diagonal (or anisotropic) part of the noise covariance of R
#: at R = 0 above which the scalar description does not apply.
ISOTROPY_TOLERANCE = 1e-8


@dataclass(frozen=True)
class PlateauNoise:
    """Noise-equivalent initial overlap of the plateau (module docstring).

    Attributes
    ----------
    variance : float
        ``S``: the noise acts as an extra Gaussian ``R(0)`` of variance ``S / N`` per entry.
    growth_R : float
        Growth rate of ``R`` at the plateau.
    q0 : float
        The start ``Q(0) = q0 I`` the integral was taken from.
    alpha, gamma, sigma2 : arrays
        The grid, ``Gamma(alpha)`` and ``sigma^2(alpha)`` of the integral.
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

    @property
    def log_slope(self) -> float:
        """Predicted ``d <escape alpha> / d log N`` = ``1 / (2 growth_R)``."""
        return 1.0 / (2.0 * self.growth_R)

    def variance_at(self, alpha: float | np.ndarray, initial: float = 0.0) -> np.ndarray:
        """Predicted ``N Var(R_jr(alpha))`` in the linear regime, from ``N Var(R_jr(0)) = initial``.

        ``exp(2 Gamma(alpha)) (initial + int_0^alpha exp(-2 Gamma) sigma^2)`` on the stored grid
        (linear interpolation of the exponent and of the accumulated integral).
        """
        alpha = np.asarray(alpha, dtype=float)
        if np.any(alpha < 0) or np.any(alpha > self.alpha[-1]):
            raise ValueError(f"alpha must lie in [0, {self.alpha[-1]:.4g}]")
        weight = np.exp(-2.0 * self.gamma) * self.sigma2
        accumulated = np.concatenate([[0.0], np.cumsum(np.diff(self.alpha) * (weight[1:] + weight[:-1]) / 2)])
        gamma = np.interp(alpha, self.alpha, self.gamma)
        return np.exp(2.0 * gamma) * (initial + np.interp(alpha, self.alpha, accumulated))

    def eq8_shift(self, variance: float | None = None) -> float:
        """Predicted mean escape of the ODE minus that of SGD, both from Eq. 8 starts.

        ``log(1 + S / v) / (2 growth_R)``, ``v`` the variance (times N) of the Eq. 8
        ``R(0)`` (default ``q0``).
        """
        v = self.q0 if variance is None else check_scalar(variance, "variance", positive=True)
        return float(np.log1p(self.variance / v) / (2.0 * self.growth_R))


def plateau_noise(
    p: int, k: int, eta: float, *, q0: float = 1.0, model: Any = None, points_per_unit: int = 20
) -> PlateauNoise:
    """The noise-equivalent variance ``S`` of the plateau from ``Q(0) = q0 I``, ``T = I``.

    Raises
    ------
    ValueError
        Saying why, if the model has no plateau at ``R = 0`` (:func:`numerics.plateau_fixed_point`:
        a symmetric plateau, or none), if ``R`` does not grow there at linear order (He3), or if
        its noise on ``R`` at ``R = 0`` is not i.i.d. over the entries.
    """
    p, k = check_int(p, "p", minimum=1), check_int(k, "k", minimum=1)
    eta = check_scalar(eta, "eta", positive=True)
    q0 = check_scalar(q0, "q0", positive=True)
    g_R = _growth_rate(p, k, eta, q0, model)
    # the integrand decays as exp(-2 g_R alpha) once Q has reached the plateau
    horizon = 20.0 / g_R
    alpha = np.linspace(0.0, horizon, int(points_per_unit * horizon) + 1)
    T = np.eye(k)
    run = integrate(q0 * np.eye(p), np.zeros((p, k)), T, eta=eta, alpha_max=horizon, model=model,
                    alpha_eval=alpha)
    Q = run.Q
    h = 1e-6
    unit = np.zeros((p, k))
    unit[0, 0] = 1.0
    Ts = np.broadcast_to(T, (alpha.size, k, k))
    up = rhs(Q, np.broadcast_to(h * unit, (alpha.size, p, k)), Ts, eta, model=model)[1][:, 0, 0]
    down = rhs(Q, np.broadcast_to(-h * unit, (alpha.size, p, k)), Ts, eta, model=model)[1][:, 0, 0]
    rate = (up - down) / (2 * h)
    _, _, RR = increment_covariance(Q, np.zeros((alpha.size, p, k)), Ts, eta, model=model)
    RR = RR.reshape(alpha.size, p * k, p * k)
    sigma2 = RR[:, 0, 0]
    anisotropy = np.max(np.abs(RR - sigma2[:, None, None] * np.eye(p * k)))
    if anisotropy > ISOTROPY_TOLERANCE * np.max(sigma2):
        raise ValueError(f"the noise of R at R = 0 is not i.i.d. over the entries (deviation {anisotropy:.3g})")
    steps = np.diff(alpha)
    gamma = np.concatenate([[0.0], np.cumsum(steps * (rate[1:] + rate[:-1]) / 2)])
    weight = np.exp(-2.0 * gamma) * sigma2
    variance = float(np.sum(steps * (weight[1:] + weight[:-1]) / 2))
    return PlateauNoise(p, k, float(eta), float(q0), variance, float(g_R), alpha, gamma, sigma2)


def _growth_rate(p: int, k: int, eta: float, q0: float, model: Any) -> float:
    """``g_R`` of the model's ``R = 0`` plateau, or ``ValueError`` saying why the noise theory does not apply."""
    plateau = plateau_fixed_point(p, k, eta, model=model, Q_start=q0 * np.eye(p))
    if plateau.kind != "R = 0":
        raise ValueError(
            "plateau_noise is the noise of R at an R = 0 plateau; this model's plateau is the symmetric one "
            "(R != 0, information exponent 1), whose noise needs increment moments the model does not have"
        )
    try:
        g_R = plateau_coefficients(p, k, eta, model=model).growth_R
    except ValueError:  # an anisotropic plateau (He3, ...): the exact Jacobian's rate
        g_R = plateau.growth_rate
    if g_R <= 0:
        raise ValueError(
            f"R does not grow at linear order at the plateau (g_R = {g_R:.4g}): no escape driven by the noise at "
            "first order (information exponent >= 3: the escape needs a finite overlap), so no log N law"
        )
    return g_R


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
