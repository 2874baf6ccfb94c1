"""Exact Gaussian averages of relu integrands over two or three units: a radius times a direction.

``g = rho w`` with ``w`` uniform on the unit circle or sphere and ``rho`` chi-distributed; a product of
relu units and step functions of ``z = F g`` is ``rho**d`` times a function of ``w`` that is smooth
between the great circles where a unit changes sign. So the radius is integrated in closed form
(``E[rho**d]``, the integrand written as a polynomial in ``rho``) and the direction by Gauss-Legendre on
the pieces between those circles: on the circle in the angle; on the sphere in the polar angle between
the cuts of every azimuth, and in the azimuth between the azimuths where two cuts cross (where the inner
integral has a kink). Independent of the toolkit's Stein-lemma route.
"""

from __future__ import annotations

import math

import numpy as np


def radial_moments(dimension: int, count: int) -> np.ndarray:
    """``E[rho**d]`` for ``d < count``, ``rho`` the length of a standard normal vector in ``dimension`` dimensions."""
    return np.array([2 ** (d / 2) * math.gamma((dimension + d) / 2) / math.gamma(dimension / 2) for d in range(count)])


def _pieces(edges: np.ndarray, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on the intervals between sorted ``edges`` (..., E): (..., (E - 1) nodes)."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    lo, hi = edges[..., :-1, None], edges[..., 1:, None]
    points = lo + (hi - lo) * (x + 1) / 2
    weights = (hi - lo) / 2 * w
    return points.reshape(edges.shape[:-1] + (-1,)), weights.reshape(edges.shape[:-1] + (-1,))


def _circle(F: np.ndarray, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    cuts = np.mod(np.arctan2(-F[:, 0], F[:, 1]), np.pi)
    edges = np.unique(np.concatenate([cuts, cuts + np.pi, [0.0, 2 * np.pi]]))
    phi, weights = _pieces(edges, nodes)
    return np.stack([np.cos(phi), np.sin(phi)], axis=-1), weights / (2 * np.pi)


def _best_axis(F: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A rotation whose polar axis is far from every unit's great circle (the cuts then move smoothly)."""
    norms = np.linalg.norm(F, axis=1)
    rows = F[norms > 0] / norms[norms > 0, None]
    best, best_score = np.eye(3), -1.0
    for _ in range(200):
        rotation, _ = np.linalg.qr(rng.standard_normal((3, 3)))
        score = np.min(np.abs(rows @ rotation[:, 2]))
        if score > best_score:
            best, best_score = rotation, score
    return best


def _sphere(F: np.ndarray, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    rotation = _best_axis(F, np.random.default_rng(0))
    G = F @ rotation  # units in the rotated frame: z = G w'
    live = G[np.linalg.norm(G, axis=1) > 0]
    kinks = [0.0, 2 * np.pi]
    for s in range(len(live)):
        for t in range(s + 1, len(live)):
            cross = np.cross(live[s], live[t])
            if np.linalg.norm(cross) > 1e-14 * np.linalg.norm(live[s]) * np.linalg.norm(live[t]):
                for direction in (cross, -cross):
                    kinks.append(np.mod(np.arctan2(direction[1], direction[0]), 2 * np.pi))
    phi, w_phi = _pieces(np.unique(kinks), nodes)
    # z_s = sin(theta) (G_s1 cos phi + G_s2 sin phi) + G_s3 cos(theta) vanishes at one theta in (0, pi)
    across = live[:, 0] * np.cos(phi)[:, None] + live[:, 1] * np.sin(phi)[:, None]
    cuts = np.mod(np.arctan2(-live[:, 2], across), np.pi)
    edges = np.sort(np.concatenate([np.zeros((phi.size, 1)), cuts, np.full((phi.size, 1), np.pi)], axis=1), axis=1)
    theta, w_theta = _pieces(edges, nodes)
    directions = np.stack([np.sin(theta) * np.cos(phi)[:, None], np.sin(theta) * np.sin(phi)[:, None],
                           np.cos(theta)], axis=-1)
    weights = w_phi[:, None] * w_theta * np.sin(theta) / (4 * np.pi)
    return directions.reshape(-1, 3) @ rotation.T, weights.reshape(-1)


def unit_directions(C: np.ndarray, nodes: int = 40) -> tuple[np.ndarray, np.ndarray, int]:
    """``(z1, weights, dimension)``: the units ``z = F w`` on directions ``w`` of the unit circle or sphere.

    ``C`` (n, n), positive semi-definite of rank at most 3; ``z1`` (M, n) and ``weights`` (M,) (summing
    to 1) average any function of the direction exactly up to the rule's convergence;
    ``dimension`` is that of ``g`` (2 or 3), for :func:`radial_moments`.
    """
    values, vectors = np.linalg.eigh(C)
    dimension = 2 if len(values) == 2 or values[-3] <= 1e-13 * values[-1] else 3
    F = vectors[:, -dimension:] * np.sqrt(np.maximum(values[-dimension:], 0.0))
    directions, weights = (_circle if dimension == 2 else _sphere)(F, nodes)
    return directions @ F.T, weights, dimension
