"""Sharpness-aware drift of any polynomial model at small widths, by an exact Gauss-Hermite rule.

The displaced amplitude ``E~_j = (y - f~) a sigma'(lambda~_j)``, ``lambda~ = lambda - rho eta E``
(:mod:`numerics.ode.sam`), is a polynomial in ``(lambda, nu, xi)`` whose degree follows from the
activations' degrees (:func:`integrand_degree`). A tensor Gauss-Hermite rule with ``n`` nodes per
direction integrates every polynomial of degree below ``2 n`` exactly, so the averages
``<E~_j nu_r>``, ``<E~_j lambda_l>`` and ``<E~_j E~_l>`` over ``z = (lambda, nu) ~ N(0, C)`` (in the
eigenbasis of ``C``, null directions dropped) and the label noise are exact up to rounding. The
rule has ``n^(p + k)`` nodes (times ``n`` with label noise): the route serves small widths, up to
:data:`MAX_NODES`, and the quadratic activations of :mod:`numerics.ode.sam` at any width.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
from numpy.polynomial import hermite_e

from numerics.core.activations import activation_functions
from numerics.runtime.registry import ResolvedModel

#: Largest tensor rule (nodes, at the full width p + k and label noise) a right-hand side may use.
MAX_NODES = 200_000


def _degree(coefficients: tuple[float, ...]) -> int:
    nonzero = [n for n, value in enumerate(coefficients) if value]
    return max(nonzero, default=0)


def integrand_degree(student: tuple[float, ...], teacher: tuple[float, ...], second_order: bool) -> int:
    """Total degree in ``(lambda, nu, xi)`` of the averaged integrands, from the activations' ascending coefficients.

    ``y - f`` has degree ``m = max(ds, dt)`` (``ds``, ``dt`` the activations' degrees), ``E`` and so
    ``lambda~`` degree ``e = m + ds - 1``, ``f~`` degree ``ds e``, and ``E~`` degree
    ``max(dt, ds e) + (ds - 1) e``; the drift needs ``E~`` times one pre-activation, the ``eta**2``
    term ``E~`` squared.
    """
    ds, dt = _degree(student), _degree(teacher)
    shift = max(1, max(ds, dt) + ds - 1)
    amplitude = max(dt, ds * shift) + max(ds - 1, 0) * shift
    return 2 * amplitude if second_order else amplitude + 1


def nodes_per_direction(degree: int) -> int:
    """Gauss-Hermite nodes that integrate every polynomial of ``degree`` exactly."""
    return degree // 2 + 1


def check_quadrature_size(resolved: ResolvedModel, p: int, k: int, second_order: bool = True) -> int:
    """The nodes per direction of the rule at widths ``(p, k)``; refuse a rule beyond :data:`MAX_NODES`.

    Raises
    ------
    ValueError
        Naming the widths, the degree and the size of the rule.
    """
    module = resolved.module
    degree = integrand_degree(tuple(module.STUDENT_ACTIVATION), tuple(module.TEACHER_ACTIVATION), second_order)
    n = nodes_per_direction(degree)
    directions = p + k + (1 if resolved.noise_variance else 0)
    if float(n) ** directions > MAX_NODES:
        raise ValueError(
            f"sam_radius > 0 for model {resolved.name!r} at p = {p}, k = {k} needs a Gauss-Hermite rule of "
            f"{n}^{directions} nodes (integrand degree {degree}), above {MAX_NODES}: the exact sharpness-aware "
            "drift of this model is available at smaller widths (activations c*x**2 + c0 at any width)"
        )
    return n


@lru_cache(maxsize=16)
def tensor_rule(n: int, directions: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (n**directions, directions) and weights (n**directions,) of the tensor rule for ``N(0, I)``."""
    nodes, weights = hermite_e.hermegauss(n)
    weights = weights / np.sqrt(2 * np.pi)
    grid = np.array(list(itertools.product(range(n), repeat=directions)), dtype=int).reshape(n**directions, directions)
    points, products = nodes[grid], np.prod(weights[grid], axis=1)
    points.setflags(write=False)
    products.setflags(write=False)
    return points, products


def quadrature_rates(
    Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float, sam_radius: float, resolved: ResolvedModel,
    second_order: bool = True, batch_size: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """``(dQ/dalpha, dR/dalpha)`` of sharpness-aware steps by the exact rule (module docstring).

    Parameters and returns as :func:`numerics.ode.sam.sam_rates` (shapes (..., p, p) and (..., p, k)).
    """
    p, k = R.shape[-2:]
    n = check_quadrature_size(resolved, p, k, second_order)
    sigma, sigma_prime = activation_functions(resolved.module, "STUDENT")
    sigma_star, _ = activation_functions(resolved.module, "TEACHER")
    a, b = (float(v) for v in resolved.module.readouts(p, k))
    noise_std = float(np.sqrt(resolved.noise_variance))
    batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])
    Q, R, T = (np.broadcast_to(M, batch + M.shape[-2:]) for M in (Q, R, T))
    dQ, dR = np.empty(batch + (p, p)), np.empty(batch + (p, k))
    for index in np.ndindex(batch):
        C = np.block([[Q[index], R[index]], [R[index].T, T[index]]])
        if not np.all(np.isfinite(C)):
            # a NaN derivative makes the solver reject the step, as the generated code's overflow does
            dQ[index], dR[index] = np.nan, np.nan
            continue
        eigenvalues, vectors = np.linalg.eigh(C)
        keep = eigenvalues > 1e-14 * max(1.0, float(np.max(np.abs(eigenvalues))))
        factor = vectors[:, keep] * np.sqrt(eigenvalues[keep])
        directions = int(keep.sum()) + (1 if noise_std else 0)
        g, w = tensor_rule(n, directions)
        z = g[:, : factor.shape[1]] @ factor.T
        xi = g[:, -1] if noise_std else 0.0
        lam, nu = z[:, :p], z[:, p:]
        y = b * sigma_star(nu).sum(axis=1) + noise_std * xi
        ascent = (y - a * sigma(lam).sum(axis=1))[:, None] * a * sigma_prime(lam)
        shifted = lam - (sam_radius * eta) * ascent
        amplitude = (y - a * sigma(shifted).sum(axis=1))[:, None] * a * sigma_prime(shifted)
        weighted = w[:, None] * amplitude
        dR[index] = eta * weighted.T @ nu
        first = weighted.T @ lam
        dQ[index] = eta * (first + first.T)
        if second_order:
            dQ[index] += (eta * eta / batch_size) * weighted.T @ amplitude
    if resolved.weight_decay:
        dQ = dQ - 2 * eta * resolved.weight_decay * Q
        dR = dR - eta * resolved.weight_decay * R
    return dQ, dR


__all__ = [
    "MAX_NODES", "check_quadrature_size", "integrand_degree", "nodes_per_direction", "quadrature_rates", "tensor_rule",
]
