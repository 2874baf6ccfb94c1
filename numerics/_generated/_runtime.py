# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.
"""Array helpers called by the generated modules (printed by derive/codegen.py)."""

import math

import numpy as np

_PATHS: dict = {}


def _tp(a):
    return np.swapaxes(a, -1, -2)


def _dg(a):
    return np.diagonal(a, axis1=-2, axis2=-1)[..., :, None]


def _rowsum(a):
    return a.sum(axis=-1, keepdims=True)


def _tr(a):
    # unbatched: a NumPy scalar, so coefficient arithmetic costs no array calls
    if a.ndim == 2:
        return a.trace()
    return np.trace(a, axis1=-2, axis2=-1)[..., None, None]


def _total(a):
    if a.ndim == 2:
        return a.sum()
    return a.sum(axis=(-2, -1), keepdims=True)


def _sumsq(a):
    # sum of squared entries without the squared temporary
    if a.ndim == 2:
        return np.vdot(a, a)
    return np.einsum("...ij,...ij->...", a, a)[..., None, None]


def _einsum(subscripts, *operands):
    # the contraction path depends only on the shapes: choose it once per shape
    key = (subscripts,) + tuple(np.shape(o) for o in operands)
    path = _PATHS.get(key)
    if path is None:
        path = np.einsum_path(subscripts, *operands, optimize="greedy")[0]
        _PATHS[key] = path
    return np.einsum(subscripts, *operands, optimize=path)


def _tr1(a):
    # unbatched trace as a Python float (exactly rounded; float arithmetic on the
    # scalar coefficients is cheaper than NumPy scalar arithmetic)
    return math.fsum(a.diagonal().tolist())


def _total1(a):
    return float(a.sum())


def _sumsq1(a):
    return float(np.vdot(a, a))


# syrk (half the multiplies of a Gram product) is slower than a plain product
# in OpenBLAS below about this size
_GRAM_MIN = 128


def _gram1(a):
    # unbatched a @ a.T; the copy keeps NumPy from choosing syrk
    return a.dot(a.T) if a.shape[0] >= _GRAM_MIN else a.dot(a.T.copy())


def _gram1s(a):
    # unbatched a @ a.T for a symmetric a
    return a.dot(a.T) if a.shape[0] >= _GRAM_MIN else a.dot(a)


# a product known to be symmetric (e.g. Q @ (Q @ Q)) with all sizes at least this
# large is computed by block rows of its upper triangle
_SYM_MIN = 256
_SYM_BLOCKS = 4


def _sym1(a, b, y=None):
    # unbatched _sym
    if a.shape[0] < _SYM_MIN or a.shape[1] < _SYM_MIN:
        return a.dot(b) if y is None else a.dot(b) + y + y.T
    return _sym(a, b, y)


def _sym(a, b, y=None):
    # a @ b (+ y + y^T) for a symmetric result: block row i needs only the
    # columns from its diagonal block on, about 5/8 of the multiplies with four
    # block rows, and y is added on those blocks only; the blocks below the
    # diagonal are mirrored from those above it
    n = a.shape[-2]
    if a.ndim != 2 or b.ndim != 2 or np.ndim(y) > 2 or min(n, a.shape[1]) < _SYM_MIN:
        return a @ b if y is None else a @ b + y + _tp(y)
    out = np.empty((n, n), dtype=np.result_type(a, b))
    edges = [n * i // _SYM_BLOCKS for i in range(_SYM_BLOCKS + 1)]
    for lo, hi in zip(edges[:-1], edges[1:]):
        block = out[lo:hi, lo:]
        np.matmul(a[lo:hi], b[:, lo:], out=block)
        if y is not None:
            block += y[lo:hi, lo:]
            block += y[lo:, lo:hi].T
        out[hi:, lo:hi] = out[lo:hi, hi:].T
    return out


def _shift(a, c):
    # a + c I, broadcasting the batch axes of a and c
    return a + np.asarray(c) * np.eye(a.shape[-1])


def _shift1(a, c):
    # unbatched a + c I, in place on the temporary a
    a.flat[:: a.shape[-1] + 1] += c
    return a


def _cat(axis, *arrays):
    # concatenate along a matrix axis, broadcasting the batch axes first
    batch = np.broadcast_shapes(*(np.shape(a)[:-2] for a in arrays))
    return np.concatenate([np.broadcast_to(a, batch + np.shape(a)[-2:]) for a in arrays], axis=axis)


def _full(value, shape):
    # a constant or broadcast entry must still come out with the full shape
    value = np.asarray(value)
    if value.shape == shape:
        return value
    return np.broadcast_to(value, shape).copy()


def _fill(value, tail, Q, R, T):
    # like _full, but the batch shape is only worked out when inputs are batched
    if Q.ndim == 2 and R.ndim == 2 and T.ndim == 2 and getattr(value, "shape", None) == tail:
        return value
    batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])
    return _full(value, batch + tail)
