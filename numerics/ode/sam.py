"""Sharpness-aware (SAM) one-pass SGD: each sample's gradient taken at that sample's ascent point.

One step on the sample ``x`` (docs/model.md, "Sharpness-aware steps"): with ``E_j = (y - f) a sigma'(lambda_j)``,
the ascent point is ``w~_j = w_j - rho (eta / sqrt N) E_j x`` (``E_j x`` is the descent direction, so the
minus sign steps up the loss; ``rho >= 0`` is the radius in units of the SGD step) and the step is
``w_j <- w_j + (eta / sqrt N) E~_j x`` with ``E~_j = (y - f~) a sigma'(lambda~_j)``,
``lambda~_j = lambda_j - rho eta E_j |x|^2 / N -> lambda_j - rho eta E_j``; ``nu`` is unchanged. Hence

    dR_jr/dalpha = eta <E~_j nu_r>,   dQ_jl/dalpha = eta <E~_j lambda_l + E~_l lambda_j> + (eta**2 / B) <E~_j E~_l>.

For a student ``sigma(x) = c x**2 + c0`` and a teacher ``sigma*(x) = c* x**2 + c0*`` with scalar readouts
(the paper's model, He2) the displacement is a scalar multiple of ``lambda``: ``lambda~ = s lambda`` with
``s = 1 - 2 a c rho eta D``, ``D = y - f``. With the quadratic forms ``F = a c |lambda|^2`` and
``Y = b c* |nu|^2`` and the constant ``e = k b c0* - p a c0``,

    D = Y - F + e + sqrt(Delta) xi,   f~ = s**2 F + p a c0,
    E~_j = 2 a c G lambda_j,          G = s (Y + e + sqrt(Delta) xi - s**2 F),

so ``G`` is a polynomial of degree 4 in ``(Y, F, xi)`` (degree 3 in ``rho``) and every average is a
Gaussian moment ``<Y^i F^j z z^T>`` of ``z = (lambda, nu) ~ N(0, C)``. These come from the
generating function of quadratic forms (Wick's theorem summed over every pairing): with ``K = t A + u B``,

    <exp(z^T K z) z z^T> = det(I - 2 C K)^(-1/2) (I - 2 C K)^(-1) C,

expanded in powers of ``t``, ``u`` by the words in ``2 C A`` and ``2 C B`` (no inverse of ``C``, so singular
covariances are fine). The result is exact, polynomial in ``rho``, and equals the plain right-hand side at
``rho = 0``. Other polynomial models go to an exact Gauss-Hermite rule at small widths
(:mod:`numerics.ode.sam_quadrature`); erf, relu, sign units and label flips are refused
(:func:`check_sam_model` names the reason).
"""

from __future__ import annotations

from functools import lru_cache
from math import factorial

import numpy as np
from scipy.signal import convolve

from numerics.core.activations import activation_kind
from numerics.ode.sam_quadrature import check_quadrature_size, quadrature_rates
from numerics.runtime.registry import ResolvedModel

#: Total degree in (Y, F, xi) of G (first-order terms) and of G**2 (the eta**2 term).
FIRST_DEGREE, SECOND_DEGREE = 4, 8


def check_sam_model(resolved: ResolvedModel, p: int, k: int, second_order: bool = True) -> None:
    """Refuse a model whose sharpness-aware drift is not derived, naming why.

    Derived: activations ``c x**2 + c0`` at any width (this module), other polynomial activations at
    widths whose exact quadrature rule is small enough (:mod:`numerics.ode.sam_quadrature`).

    Raises
    ------
    ValueError
        An erf, relu or sign activation, label flips, or a quadrature rule beyond its cap.
    """
    for role, name in (("STUDENT", "student"), ("TEACHER", "teacher")):
        kind = activation_kind(resolved.module, role)
        if kind != "polynomial":
            raise ValueError(
                f"sam_radius > 0 is derived for polynomial activations; the {name} activation of model "
                f"{resolved.name!r} is {kind}: sharpness-aware steps of erf, relu and sign units are not derived"
            )
    if resolved.label_flip:
        raise ValueError("sam_radius > 0 does not take label flips (classification teachers) yet")
    if quadratic_coefficients(resolved, p, k) is None:
        check_quadrature_size(resolved, p, k, second_order)


def quadratic_coefficients(resolved: ResolvedModel, p: int, k: int) -> tuple[float, ...] | None:
    """``(a, c, c0, b, c_star, c0_star)`` when both activations are ``c x**2 + c0`` (``c != 0``), else ``None``.

    ``a``, ``b`` are the model's scalar readouts at widths ``(p, k)``.
    """
    module = resolved.module
    found = []
    for role in ("STUDENT", "TEACHER"):
        if activation_kind(module, role) != "polynomial":
            return None
        coefficients = tuple(float(v) for v in getattr(module, f"{role}_ACTIVATION"))
        padded = coefficients + (0.0,) * (3 - len(coefficients))
        if any(padded[3:]) or padded[1] != 0.0 or padded[2] == 0.0:
            return None
        found.append((padded[2], padded[0]))
    a, b = (float(v) for v in module.readouts(p, k))
    (c, c0), (c_star, c0_star) = found
    return a, c, c0, b, c_star, c0_star


def _amplitude_polynomial(kappa: float, e: float, noise_std: float) -> np.ndarray:
    """``G`` as coefficients ``g[i, j, l]`` of ``Y^i F^j xi^l``, shape (5, 5, 5); ``kappa = 2 a c rho eta``."""
    def monomial(i: int, j: int, l: int, value: float) -> np.ndarray:  # noqa: E741
        out = np.zeros((2, 2, 2))
        out[i, j, l] = value
        return out

    # s = 1 - kappa (Y - F + e + sqrt(Delta) xi)
    s = monomial(0, 0, 0, 1.0 - kappa * e) + monomial(1, 0, 0, -kappa) + monomial(0, 1, 0, kappa)
    s += monomial(0, 0, 1, -kappa * noise_std)
    label = monomial(1, 0, 0, 1.0) + monomial(0, 0, 0, e) + monomial(0, 0, 1, noise_std)  # Y + e + sqrt(Delta) xi
    s_squared_f = convolve(convolve(s, s, method="direct"), monomial(0, 1, 0, 1.0), method="direct")
    inner = -s_squared_f
    inner[:2, :2, :2] += label
    return convolve(s, inner, method="direct")


@lru_cache(maxsize=64)
def amplitude_coefficients(kappa: float, e: float, noise_std: float) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients ``[i, j]`` of ``Y^i F^j`` in ``<G>_xi`` (5, 5) and ``<G**2>_xi`` (9, 9), the label noise averaged.

    ``kappa = 2 a c rho eta``, ``e = k b c0* - p a c0``, ``noise_std = sqrt(Delta)`` (module docstring).
    They depend on the settings only, so one run computes them once.
    """
    g = _amplitude_polynomial(kappa, e, noise_std)
    first, second = _label_noise_moments(g), _label_noise_moments(convolve(g, g, method="direct"))
    first.setflags(write=False)
    second.setflags(write=False)
    return first, second


def _label_noise_moments(g: np.ndarray) -> np.ndarray:
    """Sum the label noise out of ``g[i, j, l]``: ``<xi^l> = (l - 1)!!`` for even ``l``, else 0."""
    moments = np.array([0.0 if l % 2 else float(np.prod(np.arange(l - 1, 0, -2))) for l in range(g.shape[2])])
    return g @ moments


def quadratic_form_moments(C: np.ndarray, P1: np.ndarray, P2: np.ndarray, degree: int) -> list[np.ndarray]:
    """``<exp(z^T (t A + u B) z) z z^T>`` by total degree in ``(t, u)``, as power series coefficients.

    Parameters
    ----------
    C : array, shape (..., d, d)
        Covariance of ``z``.
    P1, P2 : arrays, shape (..., d, d)
        ``2 C A`` and ``2 C B``.
    degree : int
        Highest total degree in ``(t, u)``.

    Returns
    -------
    list of arrays
        Entry ``m``, index ``i``: the coefficient of ``t^i u^(m - i)``; so
        ``<(z^T A z)^i (z^T B z)^j z z^T> = i! j! out[i + j][..., i, :, :]``.
    """
    batch, d = C.shape[:-2], C.shape[-1]
    # words[m][..., i] = sum of the products of m factors, i of them P1 (the coefficient in (I - P)^(-1))
    words = [np.broadcast_to(np.eye(d), batch + (1, d, d))]
    for m in range(1, degree + 1):
        current = np.zeros(batch + (m + 1, d, d))
        current[..., 1:, :, :] += words[-1] @ P1[..., None, :, :]
        current[..., :-1, :, :] += words[-1] @ P2[..., None, :, :]
        words.append(current)
    # log det(I - P)^(-1/2) = sum_m tr(P^m) / (2 m), then its exponential by the recursion m e_m = sum_l l L_l e_(m-l)
    logs = [None] + [np.trace(words[m], axis1=-2, axis2=-1) / (2 * m) for m in range(1, degree + 1)]
    exps = [np.ones(batch + (1,))]
    for m in range(1, degree + 1):
        total = np.zeros(batch + (m + 1,))
        for l in range(1, m + 1):  # noqa: E741
            total += l * _product(logs[l], exps[m - l])
        exps.append(total / m)
    out = []
    for m in range(degree + 1):
        total = np.zeros(batch + (m + 1, d, d))
        for n in range(m + 1):
            # exps[m - n] (degree m - n) times words[n] (degree n), index by the power of t
            for i in range(m - n + 1):
                total[..., i : i + n + 1, :, :] += exps[m - n][..., i, None, None, None] * words[n]
        out.append(total @ C[..., None, :, :])
    return out


def _product(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Product of two homogeneous polynomials in ``(t, u)`` given by their coefficients (..., m1 + 1), (..., m2 + 1)."""
    m1, m2 = left.shape[-1] - 1, right.shape[-1] - 1
    out = np.zeros(np.broadcast_shapes(left.shape[:-1], right.shape[:-1]) + (m1 + m2 + 1,))
    for i in range(m1 + 1):
        out[..., i : i + m2 + 1] += left[..., i, None] * right
    return out


def _average(coefficients: np.ndarray, moments: list[np.ndarray]) -> np.ndarray:
    """``<P(Y, F) z z^T>``, ``P = sum coefficients[i, j] Y^i F^j``, from :func:`quadratic_form_moments` (t: F, u: Y)."""
    total = 0.0
    for i, j in zip(*np.nonzero(coefficients)):
        total = total + coefficients[i, j] * factorial(i) * factorial(j) * moments[i + j][..., j, :, :]
    return total


def sam_rates(
    Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float, sam_radius: float, resolved: ResolvedModel,
    second_order: bool = True, batch_size: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """``(dQ/dalpha, dR/dalpha)`` of sharpness-aware one-pass SGD (module docstring), unchecked.

    Parameters
    ----------
    Q, R, T : arrays, shapes (..., p, p), (..., p, k), (..., k, k)
        The overlaps (float64, a positive semi-definite joint covariance).
    eta : float
        Learning rate.
    sam_radius : float
        ``rho >= 0``; ``0`` gives the plain right-hand side (to rounding).
    resolved : ResolvedModel
        A polynomial model (:func:`check_sam_model`): activations ``c x**2 + c0`` by the generating
        function, others by the exact quadrature rule of :mod:`numerics.ode.sam_quadrature`.
    second_order : bool
        Keep the ``eta**2`` term.
    batch_size : int
        Mini-batch size: the ``eta**2`` term is divided by it (each sample ascends on its own).

    Returns
    -------
    dQ : array, shape (..., p, p)
    dR : array, shape (..., p, k)
    """
    p, k = R.shape[-2:]
    coefficients = quadratic_coefficients(resolved, p, k)
    if coefficients is None:
        return quadrature_rates(Q, R, T, eta, sam_radius, resolved, second_order, batch_size)
    a, c, c0, b, c_star, c0_star = coefficients
    batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])
    C = np.empty(batch + (p + k, p + k))
    C[..., :p, :p], C[..., :p, p:], C[..., p:, :p], C[..., p:, p:] = Q, R, np.swapaxes(R, -1, -2), T
    # 2 C A and 2 C B: A = a c on the student block (F = z^T A z), B = b c* on the teacher block (Y)
    P1, P2 = np.zeros_like(C), np.zeros_like(C)
    P1[..., :, :p] = 2 * a * c * C[..., :, :p]
    P2[..., :, p:] = 2 * b * c_star * C[..., :, p:]
    degree = SECOND_DEGREE if second_order else FIRST_DEGREE
    moments = quadratic_form_moments(C, P1, P2, degree)
    kappa, offset = float(2 * a * c * sam_radius * eta), float(k * b * c0_star - p * a * c0)
    noise_std = float(np.sqrt(resolved.noise_variance))
    first_coefficients, second_coefficients = amplitude_coefficients(kappa, offset, noise_std)
    first = _average(first_coefficients, moments)  # <G z z^T>
    scale = 2 * a * c
    dR = eta * scale * first[..., :p, p:]
    dQ = 2 * eta * scale * first[..., :p, :p]
    if second_order:
        second = _average(second_coefficients, moments)  # <G**2 z z^T>
        dQ = dQ + (eta * eta / batch_size) * scale * scale * second[..., :p, :p]
    if resolved.weight_decay:
        dQ = dQ - 2 * eta * resolved.weight_decay * Q
        dR = dR - eta * resolved.weight_decay * R
    return dQ, dR


__all__ = ["amplitude_coefficients", "check_sam_model", "quadratic_coefficients", "quadratic_form_moments", "sam_rates"]
