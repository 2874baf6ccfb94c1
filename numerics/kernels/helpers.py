"""Array helpers called by the generated modules (hand-written; the printer is derive/codegen/printer.py).

Every module under ``numerics/_generated/`` (and every cached module of
:mod:`numerics.runtime.cache`) starts with ``from numerics.kernels.helpers import (...)``,
importing each name of :data:`__all__`: the printer in :mod:`derive.codegen.printer`
prints calls to these helpers, so a helper renamed or removed here must change
there too (``tests/derive/codegen/test_derive_check.py`` checks that the two lists agree).

Conventions: every array argument is at least 2-d, a matrix on its last two
axes with optional leading batch axes (``Q`` (..., p, p), ``R`` (..., p, k),
``T`` (..., k, k)); scalars derived from matrices keep two unit axes
(..., 1, 1) so they broadcast against them. Helpers whose name ends in ``1``
serve the unbatched branch of the generated functions (plain 2-d arrays,
Python floats for scalars: at small p the cost is the number of NumPy calls).
The names start with an underscore so they cannot shadow the generated
functions or the names a model's expressions print to.
"""

from __future__ import annotations

import math

import numpy as np

#: The contraction path of each einsum, keyed by subscripts and operand shapes.
_PATHS: dict[tuple, list] = {}


def tp(a: np.ndarray) -> np.ndarray:
    """Transpose of the matrix axes, a view: (..., m, n) -> (..., n, m)."""
    return np.swapaxes(a, -1, -2)


def dg(a: np.ndarray) -> np.ndarray:
    """Diagonal as a column: (..., n, n) -> (..., n, 1)."""
    return np.diagonal(a, axis1=-2, axis2=-1)[..., :, None]


def rowsum(a: np.ndarray) -> np.ndarray:
    """Row sums as a column: (..., m, n) -> (..., m, 1)."""
    return a.sum(axis=-1, keepdims=True)


def tr(a: np.ndarray) -> np.ndarray | np.floating:
    """Trace: (..., n, n) -> (..., 1, 1), a NumPy scalar for a 2-d ``a``."""
    # unbatched: a NumPy scalar, so coefficient arithmetic costs no array calls
    if a.ndim == 2:
        return a.trace()
    return np.trace(a, axis1=-2, axis2=-1)[..., None, None]


def total(a: np.ndarray) -> np.ndarray | np.floating:
    """Sum of all entries: (..., m, n) -> (..., 1, 1), a NumPy scalar for a 2-d ``a``."""
    if a.ndim == 2:
        return a.sum()
    return a.sum(axis=(-2, -1), keepdims=True)


def sumsq(a: np.ndarray) -> np.ndarray | np.floating:
    """Sum of squared entries: (..., m, n) -> (..., 1, 1), a NumPy scalar for a 2-d ``a``."""
    # without the squared temporary
    if a.ndim == 2:
        return np.vdot(a, a)
    return np.einsum("...ij,...ij->...", a, a)[..., None, None]


def einsum(subscripts: str, *operands: np.ndarray) -> np.ndarray:
    """``np.einsum`` with the greedy contraction path, chosen once per subscripts and shapes."""
    key = (subscripts,) + tuple(np.shape(o) for o in operands)
    path = _PATHS.get(key)
    if path is None:
        path = np.einsum_path(subscripts, *operands, optimize="greedy")[0]
        _PATHS[key] = path
    return np.einsum(subscripts, *operands, optimize=path)


def tr1(a: np.ndarray) -> float:
    """Trace of a 2-d ``a`` as a Python float."""
    # exactly rounded; float arithmetic on the scalar coefficients is cheaper than NumPy scalar arithmetic
    return math.fsum(a.diagonal().tolist())


def total1(a: np.ndarray) -> float:
    """Sum of the entries of a 2-d ``a`` as a Python float."""
    return float(a.sum())


def sumsq1(a: np.ndarray) -> float:
    """Sum of the squared entries of a 2-d ``a`` as a Python float."""
    return float(np.vdot(a, a))


#: Smallest size at which a Gram product ``a @ a.T`` goes to BLAS syrk: syrk does half
#: the multiplies of a plain product but is slower than one in OpenBLAS below this size.
GRAM_MIN = 128


def gram1(a: np.ndarray) -> np.ndarray:
    """``a @ a.T`` of a 2-d (m, l) ``a``: (m, m)."""
    # the copy keeps NumPy from choosing syrk below GRAM_MIN
    return a.dot(a.T) if a.shape[0] >= GRAM_MIN else a.dot(a.T.copy())


def gram1s(a: np.ndarray) -> np.ndarray:
    """``a @ a.T`` of a 2-d symmetric (m, m) ``a``, i.e. ``a @ a``."""
    return a.dot(a.T) if a.shape[0] >= GRAM_MIN else a.dot(a)


#: A product known to be symmetric (e.g. ``Q @ (Q @ Q)``) whose sizes are all at least
#: SYM_MIN is computed by SYM_BLOCKS block rows of its upper triangle.
SYM_MIN = 256
SYM_BLOCKS = 4


def sym1(a: np.ndarray, b: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """:func:`sym` for 2-d operands, with array methods below SYM_MIN."""
    if a.shape[0] < SYM_MIN or a.shape[1] < SYM_MIN:
        return a.dot(b) if y is None else a.dot(b) + y + y.T
    return sym(a, b, y)


def sym(a: np.ndarray, b: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` (``+ y + y^T`` when ``y`` is given) for a product known to be symmetric.

    ``a`` (..., n, l), ``b`` (..., l, n), ``y`` (..., n, n); returns (..., n, n).
    Batched inputs, and sizes below SYM_MIN, take the plain product.
    """
    # block row i needs only the columns from its diagonal block on, about 5/8 of the
    # multiplies with four block rows, and y is added on those blocks only; the blocks
    # below the diagonal are mirrored from those above it
    n = a.shape[-2]
    if a.ndim != 2 or b.ndim != 2 or np.ndim(y) > 2 or min(n, a.shape[1]) < SYM_MIN:
        return a @ b if y is None else a @ b + y + tp(y)
    out = np.empty((n, n), dtype=np.result_type(a, b))
    edges = [n * i // SYM_BLOCKS for i in range(SYM_BLOCKS + 1)]
    for lo, hi in zip(edges[:-1], edges[1:]):
        block = out[lo:hi, lo:]
        np.matmul(a[lo:hi], b[:, lo:], out=block)
        if y is not None:
            block += y[lo:hi, lo:]
            block += y[lo:, lo:hi].T
        out[hi:, lo:hi] = out[lo:hi, hi:].T
    return out


def shift(a: np.ndarray, c: np.ndarray | float) -> np.ndarray:
    """``a + c I`` for square (..., n, n) ``a``, broadcasting the batch axes of ``a`` and ``c``."""
    return a + np.asarray(c) * np.eye(a.shape[-1])


def shift1(a: np.ndarray, c: float) -> np.ndarray:
    """``a + c I`` for a 2-d square ``a``, in place: only ever called on a temporary."""
    a.flat[:: a.shape[-1] + 1] += c
    return a


def cat(axis: int, *arrays: np.ndarray) -> np.ndarray:
    """Concatenation along matrix axis ``axis`` (-1 or -2), broadcasting the batch axes first."""
    batch = np.broadcast_shapes(*(np.shape(a)[:-2] for a in arrays))
    return np.concatenate([np.broadcast_to(a, batch + np.shape(a)[-2:]) for a in arrays], axis=axis)


def full(value: np.ndarray | float, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` with exactly ``shape``: a constant or broadcast entry is expanded into a new array.

    Always float64 for real input: a term that is identically zero (e.g. with a zero readout)
    prints as the integer ``0``, which must not turn a right-hand side into an integer array.
    Complex input stays complex (the complex-step Jacobian, :mod:`numerics.ode.jacobian`).
    """
    value = np.asarray(value)
    value = value.astype(np.result_type(value.dtype, np.float64), copy=False)
    if value.shape == shape:
        return value
    return np.broadcast_to(value, shape).copy()


def fill(value: np.ndarray | float, tail: tuple[int, ...], Q: np.ndarray, R: np.ndarray, T: np.ndarray) -> np.ndarray:
    """:func:`full` to the batch shape of ``Q``, ``R``, ``T`` followed by ``tail``.

    The batch shape is only worked out when the inputs are batched or ``value``
    does not already have the shape ``tail``.
    """
    if Q.ndim == 2 and R.ndim == 2 and T.ndim == 2 and getattr(value, "shape", None) == tail:
        return value
    batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])
    return full(value, batch + tail)


#: The helpers, in the order the generated modules import them.
__all__ = [
    "tp",
    "dg",
    "rowsum",
    "tr",
    "total",
    "sumsq",
    "einsum",
    "tr1",
    "total1",
    "sumsq1",
    "gram1",
    "gram1s",
    "sym1",
    "sym",
    "shift",
    "shift1",
    "cat",
    "full",
    "fill",
]
