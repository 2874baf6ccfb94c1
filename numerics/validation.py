"""Input checks shared by the numerical API: clear ``ValueError``s that name the argument."""

from __future__ import annotations

import numpy as np

#: Relative tolerance for symmetry and positive semi-definiteness checks.
SYMMETRY_RTOL = 1e-8
PSD_RTOL = 1e-8


def as_float_array(value: object, name: str, *, ndim_min: int = 2) -> np.ndarray:
    """``value`` as a float array with at least ``ndim_min`` axes and finite entries."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a real numeric array ({error})") from None
    if array.ndim < ndim_min:
        raise ValueError(f"{name} must have at least {ndim_min} axes, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(f"{name} contains NaN or inf (first at index {tuple(int(i) for i in bad)})")
    return array


def check_symmetric(array: np.ndarray, name: str) -> None:
    if array.shape[-1] != array.shape[-2]:
        raise ValueError(f"{name} must be square in its last two axes, got shape {array.shape}")
    scale = max(1.0, float(np.max(np.abs(array), initial=0.0)))
    asym = float(np.max(np.abs(array - np.swapaxes(array, -1, -2)), initial=0.0))
    if asym > SYMMETRY_RTOL * scale:
        raise ValueError(f"{name} must be symmetric; max |{name} - {name}^T| = {asym:.3g}")


def check_scalar(value: object, name: str, *, positive: bool = False, nonnegative: bool = False) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    if positive and number <= 0:
        raise ValueError(f"{name} must be positive, got {number}")
    if nonnegative and number < 0:
        raise ValueError(f"{name} must be non-negative, got {number}")
    return number


def covariance(Q: np.ndarray, R: np.ndarray, T: np.ndarray) -> np.ndarray:
    """The joint covariance ``C = [[Q, R], [R^T, T]]`` of (lambda, nu), batched."""
    batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])
    p, k = R.shape[-2:]
    C = np.empty(batch + (p + k, p + k))
    C[..., :p, :p] = Q
    C[..., :p, p:] = R
    C[..., p:, :p] = np.swapaxes(R, -1, -2)
    C[..., p:, p:] = T
    return C


def min_relative_eigenvalue(C: np.ndarray) -> np.ndarray:
    """Smallest eigenvalue of each covariance divided by its scale (``max(1, |C|)``)."""
    eigenvalues = np.linalg.eigvalsh(C)
    scale = np.maximum(1.0, np.max(np.abs(eigenvalues), axis=-1))
    return eigenvalues[..., 0] / scale


def check_overlaps(Q: object, R: object, T: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate ``Q`` (..., p, p), ``R`` (..., p, k), ``T`` (..., k, k) and return float arrays.

    Raises ``ValueError`` for wrong shapes, non-finite entries, non-symmetric
    ``Q`` or ``T``, and a joint covariance ``C`` that is not positive
    semi-definite (relative tolerance :data:`PSD_RTOL`).
    """
    Q = as_float_array(Q, "Q")
    R = as_float_array(R, "R")
    T = as_float_array(T, "T")
    check_symmetric(Q, "Q")
    check_symmetric(T, "T")
    p, k = Q.shape[-1], T.shape[-1]
    if R.shape[-2:] != (p, k):
        raise ValueError(f"R must have shape (..., p, k) = (..., {p}, {k}) to match Q and T, got {R.shape}")
    try:
        np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])
    except ValueError:
        raise ValueError(
            f"batch shapes of Q {Q.shape[:-2]}, R {R.shape[:-2]} and T {T.shape[:-2]} do not broadcast"
        ) from None
    worst = float(np.min(min_relative_eigenvalue(covariance(Q, R, T))))
    if worst < -PSD_RTOL:
        raise ValueError(
            "the covariance C = [[Q, R], [R^T, T]] is not positive semi-definite "
            f"(smallest relative eigenvalue {worst:.3g})"
        )
    return Q, R, T
