"""Helpers shared by test folders: random overlap points of every kind, replica statistics."""

import numpy as np


def random_point(p: int, k: int, rng: np.random.Generator, kind: str = "random"):
    """Overlaps ``Q, R, T`` of a covariance of the requested kind.

    ``random``: full rank; ``singular``: rank ``max(1, p + k - 2)`` (students in the span of
    the others); ``near``: full rank with the smallest eigenvalue about 1e-9 of the largest.
    """
    d = p + k
    if kind == "singular":
        rank = max(1, d - 2)
        factor = rng.normal(size=(d, rank)) / np.sqrt(d)
        C = factor @ factor.T
    else:
        factor = rng.normal(size=(d, d)) / np.sqrt(d)
        C = factor @ factor.T + 0.1 * np.eye(d)
        if kind == "near":
            eigenvalues, vectors = np.linalg.eigh(C)
            eigenvalues[0] = 1e-9 * eigenvalues[-1]
            C = (vectors * eigenvalues) @ vectors.T
            C = (C + C.T) / 2
    return C[:p, :p].copy(), C[:p, p:].copy(), C[p:, p:].copy()


def replica_moments(x):
    """Mean, sample variance and their standard errors over the leading (replica) axis."""
    n = x.shape[0]
    mean = x.mean(axis=0)
    centred = x - mean
    var = (centred**2).sum(axis=0) / (n - 1)
    fourth = (centred**4).mean(axis=0)
    se_var = np.sqrt(np.maximum(fourth - var**2 * (n - 3) / (n - 1), 0.0) / n)
    return mean, var, np.sqrt(var / n), se_var


def largest_z(a, b):
    """Largest |difference| / standard error of the means and of the variances of every overlap entry.

    Entries that are deterministic in both (e.g. Q(0) = q0 I) have no standard error; they must agree.
    """
    p = a.Q.shape[-1]
    iu = np.triu_indices(p)
    entries = [(x.Q[:, :, iu[0], iu[1]], x.R.reshape(x.R.shape[:2] + (-1,))) for x in (a, b)]
    z_mean = z_var = 0.0
    for x, y in zip(entries[0], entries[1]):
        mx, vx, smx, svx = replica_moments(x)
        my, vy, smy, svy = replica_moments(y)
        random = np.hypot(smx, smy) > 1e-12
        np.testing.assert_allclose(mx[~random], my[~random], atol=1e-12)
        z_mean = max(z_mean, float(np.max(np.abs(mx - my)[random] / np.hypot(smx, smy)[random])))
        z_var = max(z_var, float(np.max(np.abs(vx - vy)[random] / np.hypot(svx, svy)[random])))
    return z_mean, z_var


def points_sharing_teachers(p: int, k: int, rng: np.random.Generator, count: int):
    """``count`` overlaps ``(Q, R, T)`` from weights ``(A_i, B)`` with one teacher block ``B``: one ``T``."""
    teachers = rng.normal(size=(k, p + k)) / np.sqrt(p + k)
    points = []
    for index in range(count):
        students = rng.normal(size=(p, p + k)) / np.sqrt(p + k)
        if index == 1:  # a student in the teachers' span: a singular C
            students[0] = teachers[0]
        factor = np.vstack([students, teachers])
        C = factor @ factor.T
        points.append((C[:p, :p], C[:p, p:], C[p:, p:]))
    return points


def random_overlaps(rng: np.random.Generator, batch: tuple, p: int, k: int, coincide: bool = False):
    """Random ``(Q, R, T)`` of shapes batch + (p, p), (p, k), (k, k) from a positive definite ``C``.

    ``coincide``: student 1 equal to student 0 (a singular block).
    """
    n = p + k
    factor = rng.normal(size=batch + (n, n)) / np.sqrt(n)
    C = factor @ np.swapaxes(factor, -1, -2) + 0.05 * np.eye(n)
    if coincide:
        C[..., 1, :] = C[..., 0, :]
        C[..., :, 1] = C[..., :, 0]
    return C[..., :p, :p], C[..., :p, p:], C[..., p:, p:]


def relative_error(got, want) -> float:
    """Largest absolute difference over the largest entry of ``want``."""
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
