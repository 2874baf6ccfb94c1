"""The increment moments of relu networks per student pair, shared by every pair of units they are read on.

The noise of a relu network (:mod:`numerics.noise.tuple_fluctuations`) needs, for students
``j, i`` and any two units ``x, y``,

    M[j, i, x, y] = E[z_x z_y theta(z_j) theta(z_i) (h**2 + Delta)],    h = sum_u c_u relu(z_u),

(``c = (-a, b)``), a sum over the unit pairs ``(u, v)`` of truncated fourth moments
``E[z_x z_y z_u z_v 1{z_j, z_i, z_u, z_v > 0}]`` (:mod:`numerics.kernels.relu_moments`).
Evaluated tuple by tuple that is ``p**2 (p + k)**4`` moments, each with a four-variate
orthant probability by a path integral. Here Stein's lemma takes the two free factors out
first: with ``W = theta_j theta_i (h**2 + Delta)`` and ``z = F g``,

    M[j, i, x, y] = C_xy E[W] + 2 sum_u c_u C_xu F_y . A_u + sum_{s = j, i} C_xs F_y . U_s,

    A_u = sum_v c_v E[g z_v theta_j theta_i theta_u theta_v],
    U_s = p_s(0) E[g theta_s' (h**2 + Delta) | z_s = 0]       (s' the other student),

(the deltas of ``theta_u`` multiply ``z_u = 0``), and ``E[W] = sum_u c_u F_u . A_u + Delta
P(z_j, z_i > 0)``. The vectors ``E[g ...]`` are one more Stein step
(:func:`numerics.kernels.relu_moments.indicator_terms`): rows times coefficients that do not
depend on ``x, y``. What is left per student pair is ``O((p + k)**2)`` moments of lower
degree, all elementary except the four-variate orthant probabilities
``P(z_j, z_i, z_u, z_v > 0)``, which depend only on the set of units: they are evaluated once
per set of four distinct units (:func:`orthant_table`), and the sets with a repeated unit
are three-variate (elementary). The conventions for equal and parallel units are those of
:mod:`numerics.kernels.relu_moments` (the same conditional moments), so the result equals the
tuple-by-tuple sum to round-off.
"""

from __future__ import annotations

import functools

import numpy as np

from numerics.kernels.relu_moments import (
    indicator_terms,
    orthant_moment,
    orthant_probability,
    project_out,
    repeated_rows,
    same_rows,
    unit_rows,
)

#: Rows-times-units elements of the per-pair grids (replicas, student pairs, units, units, rows) evaluated at once.
CHUNK_ELEMENTS = 1 << 18

TWO_PI = 2 * np.pi


@functools.lru_cache(maxsize=32)
def _unit_sets(p: int, n: int) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
    """Per size m of the set ``{j, i, u, v}`` (j <= i students, u, v units): ``(positions, sets, which)``.

    ``positions`` are flat indices into the (pairs, n, n) grid, ``sets`` (K, m) the distinct sorted
    sets of that size and ``which`` the set of each position.
    """
    first, second = np.triu_indices(p)
    found: dict[int, tuple[list[int], dict[tuple[int, ...], int], list[int]]] = {}
    for pair, (j, i) in enumerate(zip(first, second)):
        for u in range(n):
            for v in range(n):
                members = tuple(sorted({int(j), int(i), u, v}))
                positions, sets, which = found.setdefault(len(members), ([], {}, []))
                positions.append((pair * n + u) * n + v)
                which.append(sets.setdefault(members, len(sets)))
    out = []
    for size in sorted(found):
        positions, sets, which = found[size]
        out.append((np.array(positions), np.array(list(sets), dtype=np.intp).reshape(-1, size), np.array(which)))
    return tuple(out)


def orthant_table(F: np.ndarray, p: int) -> np.ndarray:
    """``P(z_j, z_i, z_u, z_v > 0)`` (B, pairs, n, n) for the student pairs ``j <= i`` and all units ``u, v``.

    One evaluation per set of distinct units (the four-variate path integral only for sets of four).

    Parameters
    ----------
    F : array, shape (B, n, n)
        The units' rows (:func:`numerics.kernels.relu_moments.unit_rows`), students first.
    p : int
        Number of students.

    Returns
    -------
    array, shape (B, p (p + 1) / 2, n, n)
    """
    size, n = F.shape[0], F.shape[1]
    pairs = p * (p + 1) // 2
    table = np.empty((size, pairs * n * n))
    for positions, sets, which in _unit_sets(p, n):
        values = orthant_probability([F[:, sets[:, r]] for r in range(sets.shape[1])])
        table[:, positions] = np.broadcast_to(values, (size, len(sets)))[:, which]
    return table.reshape(size, pairs, n, n)


def _vector(terms: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """``sum row * coefficient`` of :func:`indicator_terms`' pairs."""
    total = 0.0
    for row, coefficient in terms:
        total = total + row * np.asarray(coefficient)[..., None]
    return total


def _conditional_vector(linear: list[np.ndarray], orthant: list[np.ndarray], ones: list[np.ndarray]) -> np.ndarray:
    """``E[g prod linear prod theta]`` (..., m) for the rows of a conditional law (at most two linear factors)."""
    total = _vector(indicator_terms(linear, orthant, ones))
    for b, row in enumerate(linear):
        rest = linear[:b] + linear[b + 1 :]
        total = total + row * np.asarray(orthant_moment(rest, orthant, ones))[..., None]
    return total


def _student_deltas(pair: list[np.ndarray], factors: list[np.ndarray], indicators: list[np.ndarray]) -> list[tuple]:
    """The law given ``z_s = 0`` for each student ``s`` of ``pair``, as one step of Stein's lemma needs it.

    The orthant is ``pair + indicators`` and ``factors`` are linear rows. Per student (in the order of
    ``pair``): ``(weight, linear, orthant, ones)`` with ``weight = p_s(0)`` where the student's indicator
    counts (0 where it repeats the other's row), the linear rows and the other indicators' rows projected
    orthogonally to ``F_s``, and the masks of those indicators that are 1 given ``z_s = 0`` (the
    bookkeeping of :func:`numerics.kernels.relu_moments.orthant_moment`).
    """
    orthant = pair + indicators
    ones = repeated_rows(orthant)
    out = []
    for slot, row in enumerate(pair):
        rest = [orthant[k] for k in range(len(orthant)) if k != slot]
        rest_ones = [ones[k] | same_rows(orthant[k], row) for k in range(len(orthant)) if k != slot]
        projected, norm2 = project_out(factors + rest, row)
        density = np.divide(1.0, np.sqrt(TWO_PI * norm2), out=np.zeros_like(norm2), where=norm2 > 0)
        weight = np.where(ones[slot], 0.0, density)
        out.append((weight, projected[: len(factors)], projected[len(factors) :], rest_ones))
    return out


def _chunk_moments(C: np.ndarray, F: np.ndarray, c: np.ndarray, delta: float, p: int) -> np.ndarray:
    """``M`` (B, pairs, n, n) for the pairs ``j <= i`` (module docstring); ``F`` the rows of ``C``, ``c`` the
    readouts (B, n)."""
    n = c.shape[-1]
    first, second = np.triu_indices(p)
    grid = (F.shape[0], first.size, n, n)
    Fj = np.broadcast_to(F[:, first][:, :, None, None, :], grid + (n,))
    Fi = np.broadcast_to(F[:, second][:, :, None, None, :], grid + (n,))
    Fu = np.broadcast_to(F[:, None, :, None, :], grid + (n,))
    Fv = np.broadcast_to(F[:, None, None, :, :], grid + (n,))
    # E[g z_v theta_j theta_i theta_u theta_v]: the pairing with z_v (the orthant probability) and the deltas;
    # the delta of theta_v multiplies z_v = 0
    vector = Fv * orthant_table(F, p)[..., None] + _vector(indicator_terms([Fv], [Fj, Fi, Fu, Fv]))
    A = np.einsum("bpuvm,bv->bpum", vector, c)
    mean_square = np.einsum("bpum,bum,bu->bp", A, F, c)  # E[theta_j theta_i h**2]
    M = 2 * np.einsum("bxu,bu,bpum,bym->bpxy", C, c, A, F)
    # the deltas of theta_j and theta_i: E[g theta_s' h**2 | z_s = 0], the readouts of h summed inside
    for student, (weight, linear, orthant, ones) in zip((first, second), _student_deltas([Fj, Fi], [Fu, Fv],
                                                                                          [Fu, Fv])):
        U = np.einsum("bpuvm,bpuv,bu,bv->bpm", _conditional_vector(linear, orthant, ones), weight, c, c)
        M += np.einsum("bxp,bpm,bym->bpxy", C[:, :, student], U, F)
    if delta:
        pair = [F[:, first], F[:, second]]
        mean_square = mean_square + delta * orthant_moment([], pair)
        for student, (weight, _, orthant, ones) in zip((first, second), _student_deltas(pair, [], [])):
            U = _vector(indicator_terms([], orthant, ones)) * weight[..., None]
            M += delta * np.einsum("bxp,bpm,bym->bpxy", C[:, :, student], U, F)
    M += C[:, None] * mean_square[:, :, None, None]
    # E[z_x z_y W] is symmetric in (x, y): the two orders of the Stein steps differ by rounding only
    return (M + np.swapaxes(M, -1, -2)) / 2


def relu_pair_moments(C: np.ndarray, readout: np.ndarray, delta: float, p: int) -> np.ndarray:
    """``M[j, i, x, y] = E[z_x z_y theta(z_j) theta(z_i) (h**2 + Delta)]``, ``h = sum_u readout_u relu(z_u)``.

    Parameters
    ----------
    C : array, shape (..., n, n)
        Covariance of the units, students first (positive semi-definite).
    readout : array, shape (..., n)
        ``c = (-a, b)``: the weight of every unit in ``h = y - f``.
    delta : float
        Label-noise variance.
    p : int
        Number of students (the pairs ``(j, i)`` run over the first ``p`` units).

    Returns
    -------
    array, shape (..., p, p, n, n)
        Symmetric under ``j <-> i`` and under ``x <-> y``; the increment moment of
        :func:`numerics.noise.tuple_fluctuations.relu_increment_moments` is
        ``a_j a_i M[j, i, x, y]``.

    Raises
    ------
    ValueError
        When ``C`` is not a stack of square matrices, ``readout`` has not one entry per unit or
        ``p`` is not between 1 and n.
    """
    C = np.asarray(C, dtype=float)
    readout = np.asarray(readout, dtype=float)
    if C.ndim < 2 or C.shape[-1] != C.shape[-2]:
        raise ValueError(f"relu_pair_moments: C must have shape (..., n, n), got {C.shape}")
    n = C.shape[-1]
    if readout.ndim < 1 or readout.shape[-1] != n:
        raise ValueError(f"relu_pair_moments: readout must have shape (..., n) with n = {n} units, got {readout.shape}")
    if not 1 <= p <= n:
        raise ValueError(f"relu_pair_moments: p must lie between 1 and the number of units {n}, got {p}")
    batch = np.broadcast_shapes(C.shape[:-2], readout.shape[:-1])
    C = np.broadcast_to(C, batch + (n, n)).reshape(-1, n, n)
    readout = np.broadcast_to(readout, batch + (n,)).reshape(-1, n)
    F = unit_rows(C)
    pairs = p * (p + 1) // 2
    step = max(1, CHUNK_ELEMENTS // (pairs * n**3))
    M = np.concatenate([_chunk_moments(C[s : s + step], F[s : s + step], readout[s : s + step], delta, p)
                        for s in range(0, C.shape[0], step)])
    pair_of = np.empty((p, p), dtype=np.intp)
    first, second = np.triu_indices(p)
    pair_of[first, second] = pair_of[second, first] = np.arange(pairs)
    return M[:, pair_of].reshape(batch + (p, p, n, n))


__all__ = ["CHUNK_ELEMENTS", "orthant_table", "relu_pair_moments"]
