"""Null directions at zero-error points (App. 7.2.3) and the numerical degrees of freedom (App. 7.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from numerics.analyses.gradient_hessian import hessian_matvec
from numerics.analyses.spectra import SPECTRUM_RTOL, hessian_spectrum
from numerics.analyses.stationary_points import zero_error
from numerics.core.validation import as_real_array, check_int, check_seed


def _antisymmetric_basis(p: int) -> list[np.ndarray]:
    out = []
    for i in range(p):
        for j in range(i + 1, p):
            generator = np.zeros((p, p))
            generator[i, j], generator[j, i] = 1.0, -1.0
            out.append(generator)
    return out


def tangent_directions(W: object) -> np.ndarray:
    """Orthonormal basis (m, p, N) of the tangent space ``{Omega W : Omega^T = -Omega}`` of the orbit of W.

    At a zero-error point this is the tangent space of the zero-error manifold
    (App. 7.2.3: antisymmetric rotations of the solutions and their moves into
    the orthogonal complement of the rotation O).
    """
    W = as_real_array(W, "W")
    if W.ndim != 2:
        raise ValueError(f"W must be 2-d (p x N), got shape {W.shape}")
    p, N = W.shape
    generators = _antisymmetric_basis(p)
    if not generators:
        return np.zeros((0, p, N))
    velocities = np.stack([(g @ W).ravel() for g in generators])  # (m, pN)
    u, s, vt = np.linalg.svd(velocities, full_matrices=False)
    rank = int(np.sum(s > max(velocities.shape) * np.finfo(float).eps * (s[0] if s.size else 0.0)))
    return vt[:rank].reshape(rank, p, N)


@dataclass(frozen=True)
class NullSplit:
    """Null directions at a zero-error point: tangent to the manifold and only Hessian-flat."""

    null: int
    tangent: int
    flat: int
    tangent_residual: float


def null_direction_split(W: object, W_star: object, *, model: Any = None, tol: float = SPECTRUM_RTOL) -> NullSplit:
    """Count the null Hessian directions tangent to the solution manifold and the rest.

    ``tangent_residual`` is ``max |H t| / max |eigenvalue|`` over the orthonormal
    tangent directions ``t`` (zero to rounding when they are null directions).
    """
    spectrum = hessian_spectrum(W, W_star, model=model, tol=tol)
    tangents = tangent_directions(W)
    largest = float(np.max(np.abs(spectrum.eigenvalues), initial=0.0)) or 1.0
    residual = max(
        (float(np.max(np.abs(hessian_matvec(W, W_star, t, model=model)))) for t in tangents), default=0.0
    )
    return NullSplit(spectrum.null, len(tangents), spectrum.null - len(tangents), residual / largest)


def expressivity_rank(N: int, p: int, *, seed: int | None = 0) -> int:
    """Numerical rank of the Jacobian of ``W -> W^T W`` (upper triangle) at a random W (p, N)."""
    N, p = check_int(N, "N", minimum=1), check_int(p, "p", minimum=1)
    rng = np.random.default_rng(check_seed(seed))
    W = rng.standard_normal((p, N))
    rows, cols = np.triu_indices(N)
    # d(W^T W)_{ab} / dW_{jc} = delta_ac W_jb + delta_bc W_ja
    jacobian = np.zeros((rows.size, p, N))
    for index, (a, b) in enumerate(zip(rows, cols)):
        jacobian[index, :, a] += W[:, b]
        jacobian[index, :, b] += W[:, a]
    return int(np.linalg.matrix_rank(jacobian.reshape(rows.size, p * N)))


def manifold_rank(N: int, p: int, k: int, *, seed: int | None = 0) -> int:
    """Numerical dimension of the zero-error manifold at a random solution (rank of the orbit Jacobian)."""
    point = zero_error(N, p, k, seed=seed)
    return len(tangent_directions(point.W))
