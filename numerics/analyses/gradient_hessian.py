"""The generated gradient and Hessian of the population risk in weight space.

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
costs ``O(N (p+k)**2)`` (:mod:`numerics.analyses.spectra`).

The stationary points of the paper model are in :mod:`numerics.analyses.stationary_points`,
the closed-form spectra and degrees of freedom in :mod:`numerics.analyses.closed_forms`,
the null directions along the zero-error manifold in :mod:`numerics.analyses.solution_manifold`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from numerics.core.validation import as_real_array, check_finite_result
from numerics.ode.readouts import check_readouts
from numerics.runtime.registry import check_widths, hessian_module, tuple_module


def weight_arrays(W: object, W_star: object, *, check_finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
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
    W, W_star = weight_arrays(W, W_star)
    return W, W_star, np.concatenate([W, W_star], axis=0)


def weight_gram(W: np.ndarray, W_star: np.ndarray, function: str) -> np.ndarray:
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


def overlaps_of_gram(gram: np.ndarray, p: int, N: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Q, R, T)``, shapes (p, p), (p, k), (k, k), from the Gram matrix ``V V^T`` ((p+k) x (p+k)) of N inputs."""
    scaled = gram / N
    return scaled[:p, :p], scaled[:p, p:], scaled[p:, p:]


def weight_overlaps(W: object, W_star: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Q, R, T) = (W W^T, W W*^T, W* W*^T) / N`` for W (p, N) and W_star (k, N)."""
    W, W_star = weight_arrays(W, W_star, check_finite=False)
    return overlaps_of_gram(weight_gram(W, W_star, "weight_overlaps"), W.shape[0], W.shape[1])


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
    return checked_hessian_coefficients(Q, R, T, model, "hessian_coefficients", (a, b))


def checked_hessian_coefficients(
    Q: object, R: object, T: object, model: Any, function: str, readouts: tuple = (None, None)
) -> HessianCoefficients:
    """:func:`hessian_coefficients` with the calling function's name in its error messages.

    ``readouts`` is ``(a, b)``, shapes (p,) and (k,) or ``None`` each.
    """
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
    Q, R, T = overlaps_of_gram(weight_gram(W, W_star, function), W.shape[0], V.shape[1])
    return checked_hessian_coefficients(Q, R, T, model, function, readouts), V, V.shape[1]


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
