"""Starts of the exact overlap chain: square factors of ``C``, Haar overlaps and the initial ``C`` of every replica.

See :mod:`numerics.simulators.overlap_chain` (module docstring, "Factorisation") for why any
factor ``F F^T = C`` gives the chain's law, singular ``C`` included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from numerics.core.validation import as_float_array, check_overlaps, covariance

#: Eigenvalues of C up to this times P times the largest count as zero in the eigh
#: factor (a few ulps: the accuracy of a symmetric eigensolver, see covariance_factor).
EIGENVALUE_RTOL = 4 * np.finfo(float).eps

def covariance_factor(C: np.ndarray) -> np.ndarray:
    """A square factor ``F`` with ``F F^T = C`` for positive semi-definite ``C``, batched.

    Parameters
    ----------
    C : array, shape (..., P, P)
        Symmetric positive semi-definite (only the lower triangle is read by the
        Cholesky path).

    Returns
    -------
    F : array, shape (..., P, P)
        Lower-triangular Cholesky factor where it exists; for a matrix whose
        Cholesky factorisation fails (singular, or indefinite by round-off)
        ``U diag(sqrt(s'))`` from its eigendecomposition ``C = U diag(s) U^T``,
        with ``s' = 0`` for eigenvalues ``s <= EIGENVALUE_RTOL * P * max(s)``
        (negative or round-off) and ``s' = s`` otherwise. Each matrix's factor
        depends on that matrix only.
    """
    try:
        return np.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        pass
    # rare path: redo matrix by matrix, so a replica's factor does not depend on its batch
    batch = C.shape[:-2]
    flat = C.reshape((-1,) + C.shape[-2:])
    factors = np.empty_like(flat)
    for i, matrix in enumerate(flat):
        try:
            factors[i] = np.linalg.cholesky(matrix)
        except np.linalg.LinAlgError:
            values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
            # eigenvalues at the round-off level of eigh are zero: an exactly singular C (a student
            # equal to a teacher) then gives z exactly in its range, not off by sqrt(eps)
            values[values <= EIGENVALUE_RTOL * matrix.shape[-1] * max(values[-1], 0.0)] = 0.0
            factors[i] = vectors * np.sqrt(values)
    return factors.reshape(batch + C.shape[-2:])


def haar_overlaps(rng: np.random.Generator, p: int, k: int, N: int) -> np.ndarray:
    """``U^T V`` for two independent Haar-random orthonormal frames ``U`` (N x p), ``V`` (N x k).

    Drawn exactly at cost independent of N. By rotation invariance ``U`` can be
    taken as the first p coordinate vectors, so ``U^T V`` is the top p x k block
    of ``V = Z (Z^T Z)^(-1/2)`` with ``Z`` an N x k standard Gaussian matrix.
    With ``Z = [Z1; Z2]`` (p and N - p rows), ``Z^T Z = Z1^T Z1 + Z2^T Z2`` and
    ``Z2^T Z2 ~ Wishart_k(N - p, I)`` independent of ``Z1``; the Wishart matrix
    is drawn by its Bartlett decomposition.

    Parameters
    ----------
    rng : numpy Generator
    p, k : int
    N : int
        ``>= p + k``.

    Returns
    -------
    array, shape (p, k)
        Entries of variance ``1 / N``.
    """
    Z1 = rng.standard_normal((p, k))
    wishart = bartlett_wishart(rng, rng, k, N - p)
    gram = Z1.T @ Z1 + wishart
    values, vectors = np.linalg.eigh(gram)
    return Z1 @ (vectors / np.sqrt(values)) @ vectors.T


def bartlett_wishart(normals: np.random.Generator, chi2: np.random.Generator, size: int, dof: int) -> np.ndarray:
    """``L L^T ~ Wishart_size(dof, I)`` from its Bartlett factor ``L`` (lower triangular); ``dof >= size``."""
    factor = np.zeros((size, size))
    factor[np.tril_indices(size, -1)] = normals.standard_normal(size * (size - 1) // 2)
    factor[np.diag_indices(size)] = np.sqrt(chi2.chisquare(dof - np.arange(size)))
    return factor @ factor.T

def _batched(value: Any, name: str, shape: tuple[int, ...], replicas: int) -> np.ndarray:
    array = as_float_array(value, name)
    if array.shape == shape:
        return np.broadcast_to(array, (replicas,) + shape).copy()
    if array.shape != (replicas,) + shape:
        raise ValueError(
            f"{name} must have shape {shape} or (replicas,) + {shape} = {(replicas,) + shape}, got {array.shape}"
        )
    return array.copy()


def _weights_gram(value: Any, name: str, rows: int, N: int, replicas: int, other: Any = None) -> np.ndarray:
    # W W^T / N (or W other^T / N) of weights of shape (rows, N) or (replicas, rows, N)
    array = as_float_array(value, name)
    if array.shape not in ((rows, N), (replicas, rows, N)):
        raise ValueError(
            f"{name} must have shape ({rows}, {N}) or (replicas, {rows}, {N}) = ({replicas}, {rows}, {N}), "
            f"got {array.shape}"
        )
    right = array if other is None else other
    gram = array @ np.swapaxes(right, -1, -2) / N
    return np.broadcast_to(gram, (replicas,) + gram.shape[-2:]).copy()


def start_covariance(
    *,
    N: int,
    p: int,
    k: int,
    replicas: int,
    init_rngs: Sequence[np.random.Generator],
    q0: float = 1.0,
    W0: Any = None,
    W_star: Any = None,
    Q0: Any = None,
    R0: Any = None,
    T: Any = None,
) -> np.ndarray:
    """Initial ``C = [[Q, R], [R^T, T]]`` of every replica.

    * ``T``: from ``W_star`` (``W* W*^T / N``), else the ``T`` given, else ``I``.
    * Students: from ``W0`` (``Q = W0 W0^T / N``; ``R = W0 W*^T / N`` if
      ``W_star`` is given), else ``Q0`` (and ``R0``) given, else ``Q = q0 I``.
    * When ``R`` is not fixed that way, students and teacher are independent
      and randomly oriented, as in the weight simulator's default start:
      ``R = F_Q H F_T^T`` with ``F_Q F_Q^T = Q``, ``F_T F_T^T = T`` and ``H`` the
      overlaps of two independent Haar frames (:func:`haar_overlaps`, one per
      replica from its ``init`` generator). For ``Q = q0 I``, ``T = I`` these
      are exactly the overlaps of orthonormal rows of norms ``sqrt(q0 N)`` and
      ``sqrt(N)``, drawn without N-dimensional vectors.

    Returns
    -------
    C : array, shape (replicas, p + k, p + k)

    Raises
    ------
    ValueError
        Conflicting or malformed starts, or a ``C`` that is not positive semi-definite.
    """
    if W0 is not None and (Q0 is not None or R0 is not None):
        raise ValueError("give either W0 or Q0/R0 as the start, not both")
    if W_star is not None and T is not None:
        raise ValueError("give either W_star or T, not both")
    if R0 is not None and Q0 is None:
        raise ValueError("R0 needs Q0 (the student overlaps) as well")
    if W_star is not None:
        T_b = _weights_gram(W_star, "W_star", k, N, replicas)
    elif T is not None:
        T_b = _batched(T, "T", (k, k), replicas)
    else:
        T_b = np.broadcast_to(np.eye(k), (replicas, k, k)).copy()
    R_b = None
    if W0 is not None:
        Q_b = _weights_gram(W0, "W0", p, N, replicas)
        if W_star is not None:
            W_star_b = np.broadcast_to(as_float_array(W_star, "W_star"), (replicas, k, N))
            R_b = _weights_gram(W0, "W0", p, N, replicas, other=W_star_b)
    elif Q0 is not None:
        Q_b = _batched(Q0, "Q0", (p, p), replicas)
        if R0 is not None:
            R_b = _batched(R0, "R0", (p, k), replicas)
    else:
        Q_b = np.broadcast_to(q0 * np.eye(p), (replicas, p, p)).copy()
    if R_b is None:
        H = np.stack([haar_overlaps(rng, p, k, N) for rng in init_rngs])
        F_Q = covariance_factor((Q_b + np.swapaxes(Q_b, 1, 2)) / 2)
        F_T = covariance_factor((T_b + np.swapaxes(T_b, 1, 2)) / 2)
        R_b = F_Q @ H @ np.swapaxes(F_T, 1, 2)
    Q_b, R_b, T_b = check_overlaps(Q_b, R_b, T_b)
    C = covariance(Q_b, R_b, T_b)
    return (C + np.swapaxes(C, 1, 2)) / 2


__all__ = ["EIGENVALUE_RTOL", "bartlett_wishart", "covariance_factor", "haar_overlaps", "start_covariance"]
