"""Exact Hessian spectrum for any N from the block structure of the Hessian.

On vectors orthogonal to the span of the student and teacher weights the
Hessian acts as ``A / N`` (:mod:`numerics.analyses.gradient_hessian`); the rest of the
spectrum is that of a ``p * rank`` square reduced matrix, so the spectrum costs
``O(N (p+k)**2)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from numerics.analyses.gradient_hessian import (
    checked_hessian_coefficients,
    overlaps_of_gram,
    weight_arrays,
    weight_gram,
)
from numerics.core.validation import as_real_array, check_finite_result, check_scalar

#: Default relative tolerance separating null eigenvalues (and merging equal ones).
SPECTRUM_RTOL = 1e-8


@dataclass(frozen=True)
class Spectrum:
    """Distinct Hessian eigenvalues (ascending) with multiplicities, and sign counts."""

    eigenvalues: np.ndarray
    multiplicities: np.ndarray
    negative: int
    null: int
    positive: int
    N: int
    rank: int
    tolerance: float = field(repr=False)

    def expanded(self) -> np.ndarray:
        """All pN eigenvalues, ascending (only sensible for small N)."""
        return np.repeat(self.eigenvalues, self.multiplicities)

    def counts(self) -> dict[str, int]:
        return {"negative": self.negative, "null": self.null, "positive": self.positive}


def _group(values: np.ndarray, multiplicities: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(values)
    values, multiplicities = values[order], multiplicities[order]
    groups: list[list[float]] = []
    counts: list[int] = []
    for value, count in zip(values, multiplicities):
        if count <= 0:
            continue
        if groups and value - groups[-1][-1] <= tolerance:
            groups[-1].append(value)
            counts[-1] += int(count)
        else:
            groups.append([value])
            counts.append(int(count))
    # average a cluster with its multiplicities; a null cluster is exactly 0
    means = []
    for group, value_counts in zip(groups, _group_weights(values, multiplicities, groups)):
        mean = float(np.dot(group, value_counts) / np.sum(value_counts))
        means.append(0.0 if abs(mean) <= tolerance else mean)
    return np.array(means), np.array(counts, dtype=np.int64)


def _group_weights(values, multiplicities, groups):
    start = 0
    positive = multiplicities[multiplicities > 0]
    for group in groups:
        yield positive[start : start + len(group)]
        start += len(group)


#: Gram eigenvalues above this fraction of the largest are resolved by the Gram matrix itself
#: (its eigenvalues carry an absolute error of a few eps times the largest); the directions
#: below it (condition number beyond 1e5, e.g. rank-deficient weights at stationary points)
#: are resolved by a second pass.
GRAM_RCOND = 1e-10
#: Columns per block of the second pass (a block of projections stays in cache).
_COLUMN_BLOCK = 8192


def _span_coordinates(gram: np.ndarray, W: np.ndarray, W_star: np.ndarray) -> np.ndarray:
    """Coordinates ``X`` (rank, p+k) of the rows of ``V = [W; W_star]`` in an orthonormal basis of their span.

    Only ``X^T X = V V^T`` matters (the reduced Hessian is then fixed up to an
    orthogonal change of basis), so ``X = sqrt(L) U^T`` from the eigenpairs
    ``(L, U)`` of the Gram matrix, with no pass over the N columns beyond the
    one that formed it. The Gram matrix squares the condition number, so its
    eigenvalues below ``GRAM_RCOND`` times the largest cannot decide the rank:
    the weights are projected on those eigenvectors (one more pass, ``Y =
    U_small^T V``) and the small Gram matrix ``Y Y^T`` of the projections, whose
    entries are accurate relative to their own size, gives those singular
    values. As with an SVD of ``V``, singular values below
    ``max(N, p+k) eps`` times the largest count as zero.
    """
    eigenvalues, vectors = np.linalg.eigh(gram)
    largest = eigenvalues[-1]
    n = gram.shape[0]
    if not largest > 0:
        return np.zeros((0, n))
    big = eigenvalues > GRAM_RCOND * largest
    coordinates = np.sqrt(eigenvalues[big])[:, None] * vectors[:, big].T
    if big.all():
        return coordinates
    small = vectors[:, ~big]  # (p+k, r)
    p, N = W.shape
    # Y Y^T accumulated over blocks of columns: Y = small^T V is never held whole
    projected_gram = np.zeros((small.shape[1],) * 2)
    for start in range(0, N, _COLUMN_BLOCK):
        stop = min(N, start + _COLUMN_BLOCK)
        block = small[:p].T @ W[:, start:stop] + small[p:].T @ W_star[:, start:stop]
        projected_gram += block @ block.T
    squares, rotation = np.linalg.eigh(projected_gram)
    singular = np.sqrt(np.clip(squares, 0.0, None))
    keep = singular > max(N, n) * np.finfo(float).eps * np.sqrt(largest)
    return np.concatenate([coordinates, singular[keep, None] * (small @ rotation[:, keep]).T])


def hessian_spectrum(
    W: object, W_star: object, *, model: Any = None, tol: float = SPECTRUM_RTOL, a: Any = None, b: Any = None
) -> Spectrum:
    """Exact Hessian spectrum for any N from the block structure.

    Parameters
    ----------
    W, W_star
        Student (p, N) and teacher (k, N) weights; N may be 10**6.
    tol
        Relative tolerance (times the largest |eigenvalue|): eigenvalues closer
        than that are merged and those smaller in modulus count as null.

    Returns
    -------
    Spectrum: distinct eigenvalues with multiplicities (summing to pN),
    counts of negative / null / positive ones, and the rank of the span of
    the student and teacher weights.
    """
    tol = check_scalar(tol, "tol", positive=True, below=1.0)
    W, W_star = weight_arrays(W, W_star, check_finite=False)
    p, N = W.shape
    gram = weight_gram(W, W_star, "hessian_spectrum")
    coefficients = checked_hessian_coefficients(*overlaps_of_gram(gram, p, N), model, "hessian_spectrum", (a, b))
    coordinates = _span_coordinates(gram, W, W_star)
    rank = coordinates.shape[0]
    a_values = np.linalg.eigvalsh(coefficients.A) / N
    values = [a_values]
    counts = [np.full(p, N - rank)]
    if rank:
        # two pairwise contractions, not one six-index loop
        with np.errstate(over="ignore", invalid="ignore"):
            reduced = np.einsum("jlab,xa,yb->jxly", coefficients.B, coordinates, coordinates, optimize=True) / N**2
            reduced = reduced.reshape(p * rank, p * rank) + np.kron(coefficients.A, np.eye(rank)) / N
        check_finite_result("hessian_spectrum", reduced)
        values.append(np.linalg.eigvalsh((reduced + reduced.T) / 2))
        counts.append(np.ones(p * rank, dtype=np.int64))
    all_values = np.concatenate(values)
    all_counts = np.concatenate(counts)
    largest = float(np.max(np.abs(all_values[all_counts > 0]), initial=0.0))
    tolerance = tol * (largest if largest > 0 else 1.0 / N)
    distinct, multiplicities = _group(all_values, all_counts, tolerance)
    return Spectrum(
        eigenvalues=distinct,
        multiplicities=multiplicities,
        negative=int(multiplicities[distinct < 0].sum()),
        null=int(multiplicities[distinct == 0].sum()),
        positive=int(multiplicities[distinct > 0].sum()),
        N=N,
        rank=rank,
        tolerance=tolerance,
    )


def count_signs(eigenvalues: np.ndarray, tol: float = SPECTRUM_RTOL) -> dict[str, int]:
    """Negative / null / positive counts of a plain eigenvalue array, same rule as the spectrum."""
    eigenvalues = as_real_array(eigenvalues, "eigenvalues", ndim_min=0)
    tol = check_scalar(tol, "tol", positive=True, below=1.0)
    largest = float(np.max(np.abs(eigenvalues), initial=0.0))
    tolerance = tol * (largest if largest > 0 else 1.0)
    return {
        "negative": int(np.sum(eigenvalues < -tolerance)),
        "null": int(np.sum(np.abs(eigenvalues) <= tolerance)),
        "positive": int(np.sum(eigenvalues > tolerance)),
    }
