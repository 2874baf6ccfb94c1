"""Evaluate a per-tuple generated module: gather covariance sub-blocks for all index tuples, contract with readouts.

A per-tuple module (printed by :mod:`derive.codegen.tuples`) defines element-wise kernels
``kernel_<name>(c00, c01, ...)``: the Gaussian average of one product of
one-variable functions as a function of the entries of its covariance block.
Here the blocks of ``C = [[Q, R], [R^T, T]]`` of every index tuple are gathered
at once by advanced indexing (index arrays broadcast against each other: a
4-slot kernel over students ``j, l`` and units ``u, v`` sees arrays of shape
``(..., p, p, n_u, n_v)``), the kernel is evaluated element-wise, and the result
is contracted with the readout vectors by ``einsum``. No Python loop runs over
tuples; the eta**2 term costs O(p**2 (p + k)**2) and is evaluated in blocks of
student rows to bound the memory (:data:`MAX_BLOCK_ELEMENTS`).

Conventions (derive/codegen/tuples.py): ``c = (-a, b)`` over the units (students first),
``E_j = (y - f) a_j sigma'(lambda_j)``. Readout vectors ``a`` (..., p) and ``b``
(..., k) default to the model's scalar readouts broadcast over the units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from numerics.core.validation import covariance

#: Largest number of index tuples evaluated at once in the eta**2 term (the rest in row blocks).
MAX_BLOCK_ELEMENTS = 1 << 20

Kernels = Mapping[str, Callable[..., Any]]
Readouts = Callable[[int, int], tuple[float, float]]

_PARAMETERS = """
    Parameters
    ----------
    kernels : mapping
        The generated module's ``KERNELS`` (kernel functions by name, see derive/codegen/tuples.py).
    readouts : callable
        The generated module's ``readouts(p, k)`` (scalar readouts, used when a vector is None).
    Q, R, T : arrays, shapes (..., p, p), (..., p, k), (..., k, k)
        Overlaps; batch axes broadcast.
    a, b : arrays, shapes (..., p) and (..., k), or None
        Per-unit readouts.
"""


def readout_vectors(readouts: Readouts, p: int, k: int, a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Readout vectors ``a`` (..., p) and ``b`` (..., k); ``None`` is the model's scalar readout on every unit.

    Raises
    ------
    ValueError
        When a vector's last axis does not have length p (for ``a``) or k (for ``b``).
    """
    default_a, default_b = readouts(p, k)
    # complex vectors stay complex (the complex-step Jacobian of a trained readout)
    a = np.full(p, default_a) if a is None else _inexact(a)
    b = np.full(k, default_b) if b is None else _inexact(b)
    if a.ndim == 0 or a.shape[-1] != p:
        raise ValueError(f"the student readout a must have length p = {p} (last axis), got shape {a.shape}")
    if b.ndim == 0 or b.shape[-1] != k:
        raise ValueError(f"the teacher readout b must have length k = {k} (last axis), got shape {b.shape}")
    return a, b


def _inexact(vector: Any) -> np.ndarray:
    """float64, or complex128 for complex input."""
    vector = np.asarray(vector)
    return vector.astype(np.result_type(vector.dtype, np.float64), copy=False)


def _axes(ranges: list[np.ndarray]) -> list[np.ndarray]:
    """Index arrays for the slots, slot ``i`` varying along axis ``i`` of an n-dimensional grid."""
    n = len(ranges)
    return [r.reshape((1,) * i + (-1,) + (1,) * (n - i - 1)) for i, r in enumerate(ranges)]


def gather(C: np.ndarray, kernel: Callable[..., Any], ranges: list[np.ndarray]) -> np.ndarray:
    """``kernel`` at the covariance blocks of all index tuples of ``ranges``, shape (..., len(r_1), ..., len(r_n))."""
    indices = _axes(ranges)
    n = len(indices)
    entries = [C[..., indices[i], indices[j]] for i in range(n) for j in range(i, n)]
    shape = np.broadcast_shapes(*(e.shape for e in entries))
    with np.errstate(divide="ignore", invalid="ignore"):
        value = kernel(*entries)
    return np.broadcast_to(value, shape)


def _units(p: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.arange(p), p + np.arange(k), np.arange(p + k)


def _drift(kernels: Kernels, C: np.ndarray, a: np.ndarray, b: np.ndarray, p: int, k: int):
    students, teachers, units = _units(p, k)
    with_students = gather(C, kernels["drift_student"], [students, units, students])
    with_teachers = gather(C, kernels["drift_teacher"], [students, units, teachers])
    half = np.einsum("...jum,...m->...ju", with_students, -a) + np.einsum("...jus,...s->...ju", with_teachers, b)
    half = half * a[..., :, None]
    drift_Q = half[..., :p] + np.swapaxes(half[..., :p], -1, -2)
    return drift_Q, half[..., p:]


def _diffusion(kernels: Kernels, C: np.ndarray, a: np.ndarray, b: np.ndarray, p: int, k: int) -> np.ndarray:
    students, teachers, _ = _units(p, k)
    rows = max(1, MAX_BLOCK_ELEMENTS // max(1, p * (p + k) ** 2))
    blocks = []
    for start in range(0, p, rows):
        js = students[start : start + rows]
        ss = gather(C, kernels["diffusion_ss"], [js, students, students, students])
        st = gather(C, kernels["diffusion_st"], [js, students, students, teachers])
        tt = gather(C, kernels["diffusion_tt"], [js, students, teachers, teachers])
        blocks.append(
            np.einsum("...jlmn,...m,...n->...jl", ss, a, a)
            - 2 * np.einsum("...jlms,...m,...s->...jl", st, a, b)
            + np.einsum("...jlst,...s,...t->...jl", tt, b, b)
        )
    total = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=-2)
    return total * a[..., :, None] * a[..., None, :]


def _noise(kernels: Kernels, C: np.ndarray, a: np.ndarray, p: int) -> np.ndarray:
    students = np.arange(p)
    return gather(C, kernels["noise"], [students, students]) * a[..., :, None] * a[..., None, :]


def _setup(readouts, Q, R, T, a, b):
    p, k = R.shape[-2:]
    a, b = readout_vectors(readouts, p, k, a, b)
    return covariance(Q, R, T), a, b, p, k


def first_order_terms(
    kernels: Kernels, readouts: Readouts, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: Any = None, b: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(drift_Q, drift_R)``, shapes (..., p, p) and (..., p, k): the coefficients of eta."""
    C, a, b, p, k = _setup(readouts, Q, R, T, a, b)
    return _drift(kernels, C, a, b, p, k)


def all_terms(
    kernels: Kernels, readouts: Readouts, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: Any = None, b: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(drift_Q, drift_R, diffusion_Q, noise_Q)``, shapes (..., p, p), (..., p, k), (..., p, p), (..., p, p)."""
    C, a, b, p, k = _setup(readouts, Q, R, T, a, b)
    drift_Q, drift_R = _drift(kernels, C, a, b, p, k)
    return drift_Q, drift_R, _diffusion(kernels, C, a, b, p, k), _noise(kernels, C, a, p)


def rhs_terms(
    kernels: Kernels,
    readouts: Readouts,
    Q: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    c_drift: float,
    c_diffusion: float,
    c_noise: float,
    a: Any = None,
    b: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(c_drift drift_Q + c_diffusion diffusion_Q + c_noise noise_Q, c_drift drift_R)``.

    A zero coefficient skips its term (so a model whose eta**2 kernel has no
    closed form still gives the gradient-flow terms).
    """
    C, a, b, p, k = _setup(readouts, Q, R, T, a, b)
    drift_Q, drift_R = _drift(kernels, C, a, b, p, k)
    dQ = c_drift * drift_Q
    if np.any(c_diffusion):
        dQ = dQ + c_diffusion * _diffusion(kernels, C, a, b, p, k)
    if np.any(c_noise):
        dQ = dQ + c_noise * _noise(kernels, C, a, p)
    return dQ, c_drift * drift_R


def _pairs(kernels: Kernels, C, p, k):
    students, teachers, _ = _units(p, k)
    return (
        gather(C, kernels["pair_ss"], [students, students]),
        gather(C, kernels["pair_st"], [students, teachers]),
        gather(C, kernels["pair_tt"], [teachers, teachers]),
    )


def residual_risk(
    kernels: Kernels, readouts: Readouts, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: Any = None, b: Any = None
) -> np.ndarray:
    """``<(y0 - f)**2> / 2``, shape (...)."""
    C, a, b, p, k = _setup(readouts, Q, R, T, a, b)
    ss, st, tt = _pairs(kernels, C, p, k)
    return 0.5 * (
        np.einsum("...m,...mn,...n->...", a, ss, a)
        - 2 * np.einsum("...m,...ms,...s->...", a, st, b)
        + np.einsum("...s,...st,...t->...", b, tt, b)
    )


def readout_drift(
    kernels: Kernels, readouts: Readouts, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: Any = None, b: Any = None
) -> np.ndarray:
    """``<(y0 - f) sigma(lambda_j)>``, shape (..., p) (label noise has zero mean and drops out)."""
    C, a, b, p, k = _setup(readouts, Q, R, T, a, b)
    ss, st, _ = _pairs(kernels, C, p, k)
    return -np.einsum("...jm,...m->...j", ss, a) + np.einsum("...js,...s->...j", st, b)


def hessian_terms(
    kernels: Kernels, readouts: Readouts, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: Any = None, b: Any = None
) -> tuple[np.ndarray, ...]:
    """The averages of derive/quantities/hessian.py with per-unit readouts, unbatched.

    With ``g_j = -a_j sigma(lambda_j)``, ``g_r = b_r sigma*(nu_r)`` and ``rho = sum_u g_u``:
    ``(M11_ss, M11_st, M22_ss, M22_st, M13_ss, M31_st, V2, V4)`` with ``M<m><n>[j, .] =
    E[g_j^(m) g_.^(n)]`` (shapes (p, p) for ``_ss``, (p, k) for ``_st``) and
    ``V<n>[j] = E[rho g_j^(n)]`` (shape (p, 1)).
    """
    C, a, b, p, k = _setup(readouts, Q, R, T, a, b)
    students, teachers, _ = _units(p, k)
    both = a[..., :, None] * a[..., None, :]
    mixed = -a[..., :, None] * b[..., None, :]

    def pairs(name, second):
        return gather(C, kernels[name], [students, second])

    def weighted(name_s, name_t):
        # E[rho sigma^(n)(z_j)] = sum_u c_u E[sigma^(n)(z_j) g_u(z_u)]
        return (
            -np.einsum("...jm,...m->...j", pairs(name_s, students), a)
            + np.einsum("...js,...s->...j", pairs(name_t, teachers), b)
        )

    return (
        both * pairs("noise", students),
        mixed * pairs("hessian_11_st", teachers),
        both * pairs("hessian_22_ss", students),
        mixed * pairs("hessian_22_st", teachers),
        both * pairs("hessian_13_ss", students),
        mixed * pairs("hessian_31_st", teachers),
        (-a * weighted("hessian_2_s", "hessian_2_t"))[..., None],
        (-a * weighted("hessian_4_s", "hessian_4_t"))[..., None],
    )


for _function in (first_order_terms, all_terms, rhs_terms, residual_risk, readout_drift, hessian_terms):
    _function.__doc__ = (_function.__doc__ or "") + "\n" + _PARAMETERS

__all__ = [
    "MAX_BLOCK_ELEMENTS",
    "all_terms",
    "first_order_terms",
    "gather",
    "hessian_terms",
    "readout_drift",
    "readout_vectors",
    "residual_risk",
    "rhs_terms",
]
