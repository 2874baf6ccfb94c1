"""The per-call operands of the network tables: powers of the blocks of ``C`` and the vertex vectors.

With ``C = [[Q, R], [R^T, T]]`` an edge of multiplicity ``m`` between index kinds ``x`` and ``y``
(``student``: the ``p`` students, ``teacher``: the ``k`` teachers, ``unit``: all ``p + k``)
is the block ``C[x, y]**m / m!``, and a vertex of degree ``d`` the vector of derivative
moments ``E[f^(d)(u)] = sum_t c_dt v**t`` at the variances ``v`` (the diagonal of ``C``):
``a E[sigma'^(d)]`` for the ``slope`` vertices, ``(-a E[sigma^(d)], b E[sigma*^(d)])`` over all
units for a ``residual`` one, the plain moments for the others. Both are built on demand
and kept for the call (:class:`NetworkOperands`).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import factorial

import numpy as np

STUDENT, TEACHER, UNIT = "student", "teacher", "unit"
SLOPE, RESIDUAL = "slope", "residual"


class NetworkOperands:
    """Edge blocks and vertex vectors of one call.

    Parameters
    ----------
    derivative_moments : dict
        ``{polynomial name: [row per degree d: coefficients of v**0, v**1, ...]}`` as arrays.
    C : array, shape (..., p + k, p + k)
    p, k : int
    a, b : float or array, shape (..., p) and (..., k)
        Readouts: the model's scalars or per-unit vectors on the batch axes of ``C``.
    """

    def __init__(self, derivative_moments: dict[str, list[np.ndarray]], C: np.ndarray, p: int, k: int,
                 a: float | np.ndarray, b: float | np.ndarray) -> None:
        self.derivative_moments = derivative_moments
        self.C, self.p, self.k, self.a, self.b = C, p, k, a, b
        self.slices = {STUDENT: slice(0, p), TEACHER: slice(p, p + k), UNIT: slice(0, p + k)}
        self.sizes = {STUDENT: p, TEACHER: k, UNIT: p + k}
        self.variances = np.diagonal(C, axis1=-2, axis2=-1)
        self._powers: dict[tuple[str, str], np.ndarray] = {}
        self._vectors: dict[tuple[str, str], np.ndarray] = {}

    def powers(self, kind_a: str, kind_b: str, top: int) -> np.ndarray:
        """``C_block**m / m!`` for ``m = 0 .. top`` stacked on axis -3: shape (..., top + 1, size_a, size_b)."""
        key = (kind_a, kind_b)
        stored = self._powers.get(key)
        if stored is None or stored.shape[-3] <= top:
            block = self.C[..., self.slices[kind_a], self.slices[kind_b]]
            stored = np.stack([block**m / factorial(m) for m in range(top + 1)], axis=-3)
            self._powers[key] = stored
        return stored

    def edge(self, kind_a: str, kind_b: str, multiplicity: int) -> np.ndarray:
        """``C_block**m / m!``: shape (..., size_a, size_b)."""
        return self.powers(kind_a, kind_b, multiplicity)[..., multiplicity, :, :]

    def vectors(self, kind: str, polynomial: str) -> np.ndarray:
        """Vertex vectors for every degree, stacked on axis -2: shape (..., degrees, size)."""
        key = (kind, polynomial)
        stored = self._vectors.get(key)
        if stored is None:
            moments = self.derivative_moments
            variances = self.variances[..., self.slices[kind]]
            if polynomial == RESIDUAL:
                student = evaluate_moments(moments["student"], variances[..., : self.p])
                teacher = evaluate_moments(moments["teacher"], variances[..., self.p :])
                rows = max(student.shape[-2], teacher.shape[-2])
                stored = np.concatenate([_weighted(-self.a, _pad(student, rows)),
                                         _weighted(self.b, _pad(teacher, rows))], axis=-1)
            else:
                stored = evaluate_moments(moments[polynomial], variances)
                if polynomial == SLOPE:
                    stored = _weighted(self.a, stored)
            self._vectors[key] = stored
        return stored

    def vector(self, kind: str, polynomial: str, degree: int) -> np.ndarray:
        """One vertex vector: shape (..., size); zero above the polynomial's degree."""
        stacked = self.vectors(kind, polynomial)
        if degree >= stacked.shape[-2]:
            return np.zeros(stacked.shape[:-2] + stacked.shape[-1:])
        return stacked[..., degree, :]


def evaluate_moments(rows: Sequence[np.ndarray], variances: np.ndarray) -> np.ndarray:
    """``sum_t rows[d][t] v**t`` for every degree d: shape (..., degrees, size)."""
    out = np.zeros(variances.shape[:-1] + (len(rows), variances.shape[-1]))
    for degree, row in enumerate(rows):
        value = np.zeros_like(variances)
        for coefficient in row[::-1]:  # Horner
            value = value * variances + coefficient
        out[..., degree, :] = value
    return out


def _weighted(readout: float | np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Vertex vectors (..., degrees, size) times a scalar readout or a per-unit one (..., size)."""
    if isinstance(readout, np.ndarray):
        return readout[..., None, :] * vectors
    return readout * vectors


def _pad(vectors: np.ndarray, rows: int) -> np.ndarray:
    missing = rows - vectors.shape[-2]
    if missing <= 0:
        return vectors
    pad = [(0, 0)] * vectors.ndim
    pad[-2] = (0, missing)
    return np.pad(vectors, pad)


__all__ = ["RESIDUAL", "SLOPE", "STUDENT", "TEACHER", "UNIT", "NetworkOperands", "evaluate_moments"]
