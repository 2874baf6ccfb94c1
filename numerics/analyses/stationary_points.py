"""Stationary points of the paper model (``sigma = x**2``, ``a = 1/p``, ``b = 1/k``) with ``T = I`` (App. 7.2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from derive.model.hessian_spectra import POINT_NAMES, aligned_norm
from numerics.analyses.gradient_hessian import gradient
from numerics.core.validation import as_real_array, check_int, check_seed

__all__ = ["POINT_NAMES", "StationaryPoint", "aligned", "plateau", "stationary_point", "tabula_rasa", "zero_error"]


@dataclass(frozen=True)
class StationaryPoint:
    """A stationary point: weights, its kind and the gradient norm found there."""

    name: str
    W: np.ndarray
    W_star: np.ndarray
    gradient_norm: float
    rank: int | None = None

    @property
    def N(self) -> int:
        return self.W.shape[1]


def _orthonormal_columns(N: int, n: int, seed: int | None) -> np.ndarray:
    rng = np.random.default_rng(check_seed(seed))
    basis, _ = np.linalg.qr(rng.standard_normal((N, n)))
    return basis


def widths_as_ints(N: object, p: object, k: object) -> tuple[int, int, int]:
    """``N``, ``p``, ``k`` as positive Python ints (NumPy ints would wrap around in ``p * N`` and binomials)."""
    return check_int(N, "N", minimum=1), check_int(p, "p", minimum=1), check_int(k, "k", minimum=1)


def _check_sizes(N: object, p: object, k: object, extra: int) -> tuple[int, int, int]:
    N, p, k = widths_as_ints(N, p, k)
    if N < extra:
        raise ValueError(f"N must be at least {extra} for this stationary point, got N={N}")
    return N, p, k


def _finish(name: str, W: np.ndarray, W_star: np.ndarray, rank: int | None = None) -> StationaryPoint:
    norm = float(np.linalg.norm(gradient(W, W_star)))
    return StationaryPoint(name, W, W_star, norm, rank)


def tabula_rasa(N: int, p: int, k: int, *, seed: int | None = None) -> StationaryPoint:
    """``W = 0`` with an orthonormal teacher (``T = I``)."""
    N, p, k = _check_sizes(N, p, k, k)
    W_star = np.sqrt(N) * _orthonormal_columns(N, k, seed).T
    return _finish("tabula_rasa", np.zeros((p, N)), W_star, 0)


def plateau(N: int, p: int, k: int, *, rank: int | None = None, seed: int | None = None) -> StationaryPoint:
    """``rank`` students orthonormal, orthogonal to the teacher, at norm ``q = p/(rank+2)``; the rest zero.

    ``rank = p`` (default) is the plateau of the dynamics: ``Q = p/(p+2) I``, ``R = 0``.
    """
    N, p, k = widths_as_ints(N, p, k)
    rank = p if rank is None else check_int(rank, "rank", minimum=0, maximum=p)
    N, p, k = _check_sizes(N, p, k, rank + k)
    basis = _orthonormal_columns(N, k + rank, seed)
    W_star = np.sqrt(N) * basis[:, :k].T
    W = np.zeros((p, N))
    W[:rank] = np.sqrt(N * p / (rank + 2)) * basis[:, k:].T
    return _finish("plateau", W, W_star, int(rank))


def zero_error(
    N: int, p: int, k: int, *, rotation: np.ndarray | None = None, seed: int | None = None
) -> StationaryPoint:
    """``W = sqrt(p/k) O W*`` with ``O`` (p, k), ``O^T O = I`` (random if not given); needs p >= k."""
    N, p, k = _check_sizes(N, p, k, k)
    if p < k:
        raise ValueError(f"zero-error points need p >= k, got p={p}, k={k}")
    seed = None if seed is None else check_int(seed, "seed", minimum=0)  # seed + 1 seeds the rotation
    W_star = np.sqrt(N) * _orthonormal_columns(N, k, seed).T
    if rotation is None:
        rotation = _orthonormal_columns(p, k, None if seed is None else seed + 1)
    rotation = as_real_array(rotation, "rotation")
    if rotation.shape != (p, k) or not np.allclose(rotation.T @ rotation, np.eye(k), atol=1e-10):
        raise ValueError(f"rotation must be a ({p}, {k}) matrix with orthonormal columns")
    return _finish("zero_error", np.sqrt(p / k) * rotation @ W_star, W_star, k)


def aligned(N: int, p: int, k: int, *, teacher: int = 0, seed: int | None = None) -> StationaryPoint:
    """Every student equal to ``c w*_teacher`` with ``c**2 = (k+2)/(3k)`` (the stationary norm)."""
    N, p, k = _check_sizes(N, p, k, k)
    teacher = check_int(teacher, "teacher", minimum=0, maximum=k - 1)
    W_star = np.sqrt(N) * _orthonormal_columns(N, k, seed).T
    c = np.sqrt(aligned_norm(k))
    return _finish("aligned", np.tile(c * W_star[teacher], (p, 1)), W_star, 1)


def stationary_point(
    name: str, N: int, p: int, k: int, *, rank: int | None = None, seed: int | None = None
) -> StationaryPoint:
    """Dispatch on ``name`` in :data:`POINT_NAMES` (``rank`` only for the plateau)."""
    if rank is not None and name != "plateau":
        raise ValueError(f"rank is only meaningful for the plateau, got name={name!r} and rank={rank!r}")
    if name == "tabula_rasa":
        return tabula_rasa(N, p, k, seed=seed)
    if name == "plateau":
        return plateau(N, p, k, rank=rank, seed=seed)
    if name == "zero_error":
        return zero_error(N, p, k, seed=seed)
    if name == "aligned":
        return aligned(N, p, k, seed=seed)
    raise ValueError(f"name must be one of {POINT_NAMES}, got {name!r}")
