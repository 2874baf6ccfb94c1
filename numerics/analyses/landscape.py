"""The population-risk landscape in weight space: gradient, Hessian, exact spectra, stationary points.

Conventions (docs/model.md): ``W`` is (p, N), ``W_star`` is (k, N), ``Q = W W^T / N``,
``R = W W*^T / N``, ``T = W* W*^T / N``; the risk ``eps(W) = E[l]`` is
``numerics.risk(Q, R, T)``. Gaussian integration by parts (derive/quantities/hessian.py)
gives, with ``V = [W; W*]`` ((p + k) x N),

    gradient  = (1/N) G V                                    (p x N)
    H_jl      = (1/N) A_jl I_N + (1/N**2) sum_ab B_jlab v_a v_b^T   (N x N blocks)

where ``G`` (p x (p+k)), ``A`` (p x p), ``B`` (p x p x (p+k) x (p+k)) depend on
``Q, R, T`` only and come from the generated module ``<model>_hessian``.
Hence on vectors orthogonal to the span of the ``v_a`` the Hessian acts as
``A / N`` (each eigenvalue of A with multiplicity ``N - rank``), and the rest
of the spectrum is that of a ``p*rank`` square reduced matrix: the spectrum
costs ``O(N (p+k)**2)``.

Stationary points (App. 7.2) are constructed for the paper model
(``sigma = x**2``, ``a = 1/p``, ``b = 1/k``) with ``T = I``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import comb
from typing import Any

import numpy as np

from numerics.core.validation import as_real_array, check_finite_result, check_int, check_scalar, check_seed
from numerics.ode.readouts import check_readouts
from numerics.runtime.registry import check_widths, hessian_module, tuple_module

#: Default relative tolerance separating null eigenvalues (and merging equal ones).
SPECTRUM_RTOL = 1e-8


POINT_NAMES = ("tabula_rasa", "plateau", "zero_error", "aligned")


# --------------------------------------------------------------------------
# generated building blocks
# --------------------------------------------------------------------------






def _weight_arrays(W: object, W_star: object, *, check_finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``W`` (p, N) and ``W_star`` (k, N) as float arrays; shapes checked, entries too unless told otherwise."""
    W = as_real_array(W, "W", finite=check_finite)
    W_star = as_real_array(W_star, "W_star", finite=check_finite)
    if W.ndim != 2 or W_star.ndim != 2:
        raise ValueError(f"W and W_star must be 2-d (p x N, k x N), got shapes {W.shape}, {W_star.shape}")
    if W.shape[1] != W_star.shape[1]:
        raise ValueError(f"W and W_star must have the same input dimension N, got {W.shape[1]} and {W_star.shape[1]}")
    if W.shape[0] < 1 or W_star.shape[0] < 1:
        raise ValueError(f"p and k must be >= 1: W and W_star need a row each, got shapes {W.shape}, {W_star.shape}")
    if W.shape[1] < 1:
        raise ValueError(f"N must be >= 1: W and W_star need a column each, got shapes {W.shape}, {W_star.shape}")
    return W, W_star


def _weights(W: object, W_star: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    W, W_star = _weight_arrays(W, W_star)
    return W, W_star, np.concatenate([W, W_star], axis=0)


def _gram(W: np.ndarray, W_star: np.ndarray, function: str) -> np.ndarray:
    """``V V^T`` for ``V = [W; W_star]`` ((p+k) x (p+k)), without copying the weights into ``V``.

    Any NaN or inf in the weights makes a diagonal entry non-finite, so the
    finiteness check runs on this small matrix instead of on ``(p + k) N``
    entries; only when it fails are the weights searched, for the message.
    """
    p = W.shape[0]
    gram = np.empty((p + W_star.shape[0],) * 2)
    with np.errstate(over="ignore", invalid="ignore"):
        gram[:p, :p] = W @ W.T
        gram[:p, p:] = W @ W_star.T
        gram[p:, :p] = gram[:p, p:].T
        gram[p:, p:] = W_star @ W_star.T
    if not np.all(np.isfinite(gram)):
        as_real_array(W, "W")
        as_real_array(W_star, "W_star")
        raise ValueError(f"{function}: W and W_star are too large: their overlaps overflow (not finite)")
    return gram


def _overlaps_of_gram(gram: np.ndarray, p: int, N: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scaled = gram / N
    return scaled[:p, :p], scaled[:p, p:], scaled[p:, p:]


def weight_overlaps(W: object, W_star: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Q, R, T) = (W W^T, W W*^T, W* W*^T) / N`` for W (p, N) and W_star (k, N)."""
    W, W_star = _weight_arrays(W, W_star, check_finite=False)
    return _overlaps_of_gram(_gram(W, W_star, "weight_overlaps"), W.shape[0], W.shape[1])


@dataclass(frozen=True)
class HessianCoefficients:
    """``G`` (p, p+k), ``A`` (p, p) and ``B`` (p, p, p+k, p+k): functions of Q, R, T only."""

    G: np.ndarray
    A: np.ndarray
    B: np.ndarray


def hessian_coefficients(
    Q: np.ndarray, R: np.ndarray, T: np.ndarray, *, model: Any = None, a: Any = None, b: Any = None
) -> HessianCoefficients:
    """Assemble G, A, B from the generated averages (delta patterns of derive/quantities/hessian.py).

    Parameters
    ----------
    Q, R, T
        Overlaps, shapes (p, p), (p, k), (k, k) (no batch axes).
    a, b : arrays, shapes (p,) and (k,), optional
        Fixed per-unit readouts (default: the model's scalar readouts); with them the
        averages come from the model's per-tuple module.

    Raises
    ------
    ValueError
        Non-real or non-finite overlaps, wrong shapes, or overlaps so large
        that the coefficients overflow.
    """
    return _hessian_coefficients(Q, R, T, model, "hessian_coefficients", (a, b))


def _hessian_coefficients(
    Q: object, R: object, T: object, model: Any, function: str, readouts: tuple = (None, None)
) -> HessianCoefficients:
    Q, R, T = (as_real_array(m, name) for m, name in ((Q, "Q"), (R, "R"), (T, "T")))
    if R.ndim != 2 or Q.shape != (R.shape[0],) * 2 or T.shape != (R.shape[1],) * 2:
        raise ValueError(f"Q, R, T must have shapes (p, p), (p, k), (k, k), got {Q.shape}, {R.shape}, {T.shape}")
    p, k = R.shape
    check_widths(model, p, k)
    a, b, _ = check_readouts(*readouts, None, p, k)
    if (a is not None and a.ndim != 1) or (b is not None and b.ndim != 1):
        raise ValueError("the readouts a and b of the Hessian tools are vectors of shape (p,) and (k,)")
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            if a is None and b is None:
                terms = hessian_module(model).hessian_terms(Q, R, T)
            else:
                terms = tuple_module(model).hessian_terms(Q, R, T, a, b)
    except OverflowError:
        terms = (np.nan,)
    # the coefficients are small arrays: testing them (not the pN-sized outputs) catches overflow cheaply
    if not all(np.all(np.isfinite(term)) for term in terms):
        raise ValueError(
            f"{function}: the result is not finite (floating-point overflow): the weights' overlaps are too large"
        )
    m11_ss, m11_st, m22_ss, m22_st, m13_ss, m31_st, v2, v4 = terms
    v2, v4 = v2[:, 0], v4[:, 0]
    A = m11_ss + np.diag(v2)
    G = np.concatenate([A, m11_st], axis=1)
    n = p + k
    m22 = np.concatenate([m22_ss, m22_st], axis=1)  # E[g''_j g''_a]
    third = np.concatenate([m13_ss.T, m31_st], axis=1)  # E[g'''_j g'_a]
    B = np.zeros((p, p, n, n))
    js = np.arange(p)
    # (jl)(ab): delta_jl delta_ab E[g''_j g''_a]
    B[js, js, :, :] += np.einsum("ja,ab->jab", m22, np.eye(n))
    # (ja)(lb) and (jb)(la): E[g''_j g''_l]
    B[js[:, None], js[None, :], js[:, None], js[None, :]] += m22_ss
    B[js[:, None], js[None, :], js[None, :], js[:, None]] += m22_ss
    # singletons j and l: E[g'_j g'''_l] delta_lab, E[g'_l g'''_j] delta_jab
    B[js[:, None], js[None, :], js[None, :], js[None, :]] += m13_ss
    B[js[:, None], js[None, :], js[:, None], js[:, None]] += m13_ss.T
    # singletons a and b: E[g'''_j g'_a] delta_jlb, and the same with a <-> b
    B[js, js, :, js] += third
    B[js, js, js, :] += third
    B[js, js, js, js] += v4
    return HessianCoefficients(G, A, B)


def _coefficients_of(
    W: object, W_star: object, model: Any, function: str, readouts: tuple = (None, None)
) -> tuple[HessianCoefficients, np.ndarray, int]:
    W, W_star, V = _weights(W, W_star)
    Q, R, T = _overlaps_of_gram(_gram(W, W_star, function), W.shape[0], V.shape[1])
    return _hessian_coefficients(Q, R, T, model, function, readouts), V, V.shape[1]


# --------------------------------------------------------------------------
# gradient and Hessian
# --------------------------------------------------------------------------


def gradient(W: object, W_star: object, *, model: Any = None, a: Any = None, b: Any = None) -> np.ndarray:
    """Gradient of the population risk with respect to the student weights.

    Parameters
    ----------
    W, W_star
        Student (p, N) and teacher (k, N) weights.
    model : derive.Model, optional
        ``None`` is the paper's model; erf and relu models use their per-tuple module.
    a, b : arrays, shapes (p,) and (k,), optional
        Fixed per-unit readouts (default: the model's scalar readouts). The same
        keywords are taken by :func:`hessian`, :func:`hessian_matvec`,
        :func:`hessian_spectrum` and :func:`hessian_coefficients`.

    Returns
    -------
    ndarray (p, N): ``d eps / d W``.
    """
    coefficients, V, N = _coefficients_of(W, W_star, model, "gradient", (a, b))
    with np.errstate(over="ignore", invalid="ignore"):
        out = coefficients.G @ V / N
    check_finite_result("gradient", out)
    return out


def hessian(W: object, W_star: object, *, model: Any = None, a: Any = None, b: Any = None) -> np.ndarray:
    """Dense Hessian (pN, pN), ordered student by student (block (j, l) is N x N).

    Memory is ``(pN)**2`` floats: for small N only; use :func:`hessian_spectrum`
    or :func:`hessian_matvec` otherwise.
    """
    coefficients, V, N = _coefficients_of(W, W_star, model, "hessian", (a, b))
    p = coefficients.A.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):
        low_rank = np.einsum("jlab,an,bm->jnlm", coefficients.B, V, V, optimize=True) / N**2
        dense = low_rank.reshape(p * N, p * N) + np.kron(coefficients.A, np.eye(N)) / N
        dense = (dense + dense.T) / 2
    check_finite_result("hessian", dense)
    return dense


def hessian_matvec(
    W: object, W_star: object, D: object, *, model: Any = None, a: Any = None, b: Any = None
) -> np.ndarray:
    """Hessian applied to a direction ``D`` (p, N) -> (p, N), in ``O(N (p+k) p)``."""
    D = as_real_array(D, "D")
    coefficients, V, N = _coefficients_of(W, W_star, model, "hessian_matvec", (a, b))
    if D.shape != (coefficients.A.shape[0], N):
        raise ValueError(f"D must have the shape of W, {(coefficients.A.shape[0], N)}, got {D.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        projections = D @ V.T  # (p, p+k): v_b . D_l
        low_rank = np.einsum("jlab,lb,an->jn", coefficients.B, projections, V, optimize=True) / N**2
        out = coefficients.A @ D / N + low_rank
    check_finite_result("hessian_matvec", out)
    return out


# --------------------------------------------------------------------------
# exact spectrum for any N
# --------------------------------------------------------------------------


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
    W, W_star = _weight_arrays(W, W_star, check_finite=False)
    p, N = W.shape
    gram = _gram(W, W_star, "hessian_spectrum")
    coefficients = _hessian_coefficients(*_overlaps_of_gram(gram, p, N), model, "hessian_spectrum", (a, b))
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


# --------------------------------------------------------------------------
# stationary points of the paper model (T = I)
# --------------------------------------------------------------------------


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


def _sizes(N: object, p: object, k: object) -> tuple[int, int, int]:
    """``N``, ``p``, ``k`` as positive Python ints (NumPy ints would wrap around in ``p * N`` and binomials)."""
    return check_int(N, "N", minimum=1), check_int(p, "p", minimum=1), check_int(k, "k", minimum=1)


def _check_sizes(N: object, p: object, k: object, extra: int) -> tuple[int, int, int]:
    N, p, k = _sizes(N, p, k)
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
    N, p, k = _sizes(N, p, k)
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
    c = np.sqrt((k + 2) / (3 * k))
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


# --------------------------------------------------------------------------
# closed forms (paper model), stated in the README (Landscape section) and
# checked against derive/paper/landscape.py (sympy) by the tests
# --------------------------------------------------------------------------


def predicted_spectrum(name: str, N: int, p: int, k: int, *, rank: int | None = None) -> list[tuple[float, int]]:
    """Closed-form distinct eigenvalues of the Hessian (times 1/N) with multiplicities.

    Returns ``[(eigenvalue, multiplicity), ...]`` ascending, equal values merged,
    zero multiplicities dropped. Paper model, ``T = I``, ``N >= p + k``.

    Raises
    ------
    ValueError
        Widths that are not positive integers (booleans and non-integral
        floats included), a ``rank`` outside ``[0, p]``, or sizes for which
        the point does not exist (``N < k``; ``N < rank + k`` at the plateau;
        ``p < k`` at zero error). The widths are converted to Python ints
        first, so NumPy ``int32`` input cannot wrap around.
    """
    N, p, k = _sizes(N, p, k)
    r = p if rank is None else check_int(rank, "rank", minimum=0, maximum=p)
    if rank is not None and name != "plateau":
        raise ValueError(f"rank is only meaningful for the plateau, got name={name!r} and rank={rank!r}")
    if N < k:
        raise ValueError(f"N must be at least k = {k}, got N={N}")
    if name == "plateau" and N < r + k:
        raise ValueError(f"N must be at least rank + k = {r + k} for the plateau, got N={N}")
    if name == "zero_error" and p < k:
        raise ValueError(f"zero-error points need p >= k, got p={p}, k={k}")
    if name == "plateau" and r == 0:
        name = "tabula_rasa"
    if name == "tabula_rasa":
        pairs = [(-2 / p, p * (N - k)), (-2 / p - 4 / (p * k), p * k)]
    elif name == "plateau":
        pairs = [
            (0.0, r * (N - r - k) + (p - r) * r + comb(r, 2)),
            (-4 / (p * (r + 2)), (p - r) * (N - r - k)),
            (-4 / (p * (r + 2)) - 4 / (p * k), (p - r) * k),
            (-4 / (p * k), r * k),
            (8 / (p * (r + 2)), comb(r + 1, 2) - 1),
            (4 / p, 1),
        ]
    elif name == "zero_error":
        pairs = [
            (0.0, (p - k) * N + comb(k, 2)),
            (4 / (p * k), k * (N - k)),
            (8 / (p * k), comb(k + 1, 2) - 1),
            (4 * (k + 2) / (p * k), 1),
        ]
    elif name == "aligned":
        if k == 1:
            return predicted_spectrum("zero_error", N, p, k)
        pairs = [
            (-4 * (k + 2) / (3 * p * k), (p - 1) * (k - 1)),
            (-4 * (k - 1) / (3 * p * k), (p - 1) * (N - k)),
            (0.0, p + k - 2),
            (4 / (p * k), N - k),
            (4 * (k + 2) / (p * k), 1),
        ]
    else:
        raise ValueError(f"name must be one of {POINT_NAMES}, got {name!r}")
    # values are rationals of order 1/p: equal ones (e.g. k = r + 2) merge exactly after rounding
    merged: dict[float, int] = {}
    for value, count in pairs:
        if count > 0:
            key = round(value, 12)
            merged[key] = merged.get(key, 0) + count
    return [(value / N, count) for value, count in sorted(merged.items())]


def predicted_counts(name: str, N: int, p: int, k: int, *, rank: int | None = None) -> dict[str, int]:
    """Closed-form numbers of negative, null and positive Hessian eigenvalues."""
    pairs = predicted_spectrum(name, N, p, k, rank=rank)
    return {
        "negative": sum(c for v, c in pairs if v < 0),
        "null": sum(c for v, c in pairs if v == 0),
        "positive": sum(c for v, c in pairs if v > 0),
    }


def plateau_negative_null_ratio(N: int, p: int, k: int) -> float:
    """Eq. 29: negatives / nulls at the plateau, ``2k / (2N - p - 2k - 1)`` (-> k/N as N grows)."""
    counts = predicted_counts("plateau", N, p, k)
    if counts["null"] == 0:
        raise ValueError(f"the plateau has no null directions for N={N}, p={p}, k={k}: the ratio is undefined")
    return counts["negative"] / counts["null"]


# --------------------------------------------------------------------------
# null directions at zero-error points (App. 7.2.3)
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# degrees of freedom (App. 7.5)
# --------------------------------------------------------------------------


def student_expressivity(N: int, p: int) -> int:
    """Dimension of ``{W^T W : W in R^(p x N)}``: ``pN - p(p-1)/2`` for p <= N, ``N(N+1)/2`` beyond."""
    N, p = check_int(N, "N", minimum=1), check_int(p, "p", minimum=1)
    m = min(p, N)
    return m * N - comb(m, 2)


def solution_manifold_dimension(N: int, p: int, k: int) -> int | None:
    """Dimension of the zero-error manifold ``{W : W^T W / p = W*^T W* / k}`` (T = I, N >= k).

    ``pk - k(k+1)/2`` when ``p >= k`` (a Stiefel manifold); ``None`` (no
    solution) when ``p < k``. Independent of N once ``N >= k``.
    """
    N, p, k = _sizes(N, p, k)
    if N < k:
        raise ValueError(f"N must be at least k, got N={N}, k={k}")
    if p < k:
        return None
    return p * k - comb(k + 1, 2)


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
