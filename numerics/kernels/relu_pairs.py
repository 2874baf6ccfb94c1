"""The eta**2 term of relu networks as one path integral per pair of theta units, shared by all unit pairs.

The term needs ``E[theta(z_j) theta(z_l) h(z)**2]`` with ``h = y - f = sum_u c_u relu(z_u)``
(``c = (-a, b)``), i.e. the 4-slot average of :mod:`numerics.kernels.relu_quadrature`
summed over the unit pairs ``(u, v)`` with weights ``c_u c_v``. That module integrates
along a path per block ``(j, l, u, v)``. Here one path per student pair ``(j, l)`` serves every
``(u, v)`` at once (:mod:`numerics.kernels.relu_pair_integrand`): ``z_j`` stays itself and a copy
of ``z_l`` moves, so the covariance given both is one rank-one update of the fixed Schur
complement given ``z_j``, and a node costs about twenty elementwise passes over
``(p + k) x (p + k)`` matrices (two of them arctangents) and five matrix-vector products per
student pair: ``O(p**2 (p + k)**2)`` per node, not ``O(p**3)`` (that module's docstring says why).
The nodes follow each pair's closest singularity: one or two panels of 12 Gauss-Legendre nodes
in ``theta = arccos(t)`` for units far from dependent, otherwise the three panels (36 nodes) or
the graded ones (120) of :mod:`numerics.kernels.relu_quadrature`; the value being symmetric in
``(j, l)``, each pair copies the unit whose path needs fewer nodes.

:func:`is_relu_diffusion` recognises a generated module whose eta**2 kernels are exactly
that average (the generator prints them as one call), so that
:mod:`numerics.kernels.unit_tuples` can take this route.
"""

from __future__ import annotations

import dis
import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from numerics.kernels import relu_quadrature
from numerics.kernels.relu_pair_integrand import (
    GRADED,
    ONE_PANEL,
    PAIR_CHUNK_ELEMENTS,
    PARALLEL,
    node_rules,
    pair_integrals,
    pair_statics,
    theta_relu_square,
)
from numerics.kernels.relu_quadrature import NODES


def theta_pairs_relu_square(C: np.ndarray, weights: np.ndarray, count: int, nodes: int = NODES) -> np.ndarray:
    """``E[theta(z_j) theta(z_l) h(z)**2]``, ``h = sum_u weights_u relu(z_u)``, for all ``j, l < count``.

    The sum over the unit pairs ``(u, v)`` of ``weights_u weights_v theta_theta_relu_relu`` (the
    4-slot average of :mod:`numerics.kernels.relu_quadrature`; the eta**2 term of relu networks
    with ``h = y - f``), by one path integral per pair ``(j, l)`` shared by every ``(u, v)``.

    Parameters
    ----------
    C : array, shape (..., n, n)
        Covariances of the units (positive semi-definite, positive diagonal); batch axes broadcast
        against those of ``weights``.
    weights : array, shape (..., n)
        The readout of every unit in ``h``.
    count : int
        The pairs ``(j, l)`` run over the first ``count`` units (the students).
    nodes : int
        Gauss-Legendre nodes per panel of the path integral (module docstring).

    Returns
    -------
    array, shape (..., count, count)
        The averages, symmetric in ``(j, l)``.

    Raises
    ------
    ValueError
        When ``C`` is not a stack of square matrices, ``weights`` does not have one entry per unit,
        ``count`` is not between 1 and n, or a diagonal entry is not positive.
    """
    C = np.asarray(C, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if C.ndim < 2 or C.shape[-1] != C.shape[-2]:
        raise ValueError(f"C must have shape (..., n, n), got {C.shape}")
    n = C.shape[-1]
    if weights.ndim < 1 or weights.shape[-1] != n:
        raise ValueError(f"weights must have shape (..., n) with n = {n} units, got {weights.shape}")
    if not 1 <= count <= n:
        raise ValueError(f"count must lie between 1 and the number of units {n}, got {count}")
    if not np.all(np.diagonal(C, axis1=-2, axis2=-1) > 0):
        raise ValueError("every diagonal entry of C must be positive (a unit of zero norm has no defined theta)")
    batch = np.broadcast_shapes(C.shape[:-2], weights.shape[:-1])
    C = np.broadcast_to(C, batch + (n, n)).reshape(-1, n, n)
    weights = np.broadcast_to(weights, batch + (n,)).reshape(-1, n)
    first, second = np.triu_indices(count)
    values = _pair_values(C, weights, count, first, second, nodes)
    out = np.empty((C.shape[0], count, count))
    out[:, first, second] = values
    out[:, second, first] = values
    return out.reshape(batch + (count, count))


#: The arguments of a 4-slot kernel, in the order the generator prints them (derive/codegen/tuples.py).
BLOCK_ARGUMENTS = ("c00", "c01", "c02", "c03", "c11", "c12", "c13", "c22", "c23", "c33")
#: The kernels of the eta**2 term (student-student, student-teacher, teacher-teacher unit pairs).
DIFFUSION_KERNELS = ("diffusion_ss", "diffusion_st", "diffusion_tt")
#: Bytecode steps that differ between Python versions and compilation contexts, not between programs.
_NEUTRAL_STEPS = {"RESUME", "PRECALL", "CACHE", "PUSH_NULL", "NOP", "COPY_FREE_VARS", "MAKE_CELL"}
#: Spellings of the same step in different Python versions.
_SAME_STEP = {"LOAD_METHOD": "LOAD_ATTR", "CALL_METHOD": "CALL", "CALL_FUNCTION": "CALL"}


def _steps(code) -> list[tuple[str, Any]]:
    return [
        (_SAME_STEP.get(step.opname, step.opname), step.argval)
        for step in dis.get_instructions(code)
        if step.opname not in _NEUTRAL_STEPS
    ]


# the body the generator prints for a kernel that is exactly theta_theta_relu_relu of its block
_GENERATED_CALL = _steps(
    compile(
        f"def kernel({', '.join(BLOCK_ARGUMENTS)}):\n"
        f"    return _relu.theta_theta_relu_relu({', '.join(BLOCK_ARGUMENTS)})\n",
        "<generated kernel>",
        "exec",
    ).co_consts[0]
)


def is_quadrature_kernel(kernel: Callable[..., Any]) -> bool:
    """Whether ``kernel`` is a generated kernel that returns ``theta_theta_relu_relu`` of its block, unchanged.

    Its code must be the generator's plain call (the same steps on the same names, the arguments in
    the same order) and its ``_relu`` must be :mod:`numerics.kernels.relu_quadrature`: anything else
    (a scaled or reordered call, another average) is not.
    """
    code = getattr(kernel, "__code__", None)
    return (
        code is not None
        and code.co_varnames == BLOCK_ARGUMENTS
        and getattr(kernel, "__globals__", {}).get("_relu") is relu_quadrature
        and _is_generated_call(code)
    )


@functools.lru_cache(maxsize=256)
def _is_generated_call(code) -> bool:
    # cached: the right-hand side asks on every call, and reading the bytecode costs tens of microseconds
    return _steps(code) == _GENERATED_CALL


def is_relu_diffusion(kernels: Mapping[str, Callable[..., Any]]) -> bool:
    """Whether every eta**2 kernel of a generated module is the relu average (then :func:`diffusion_term` applies)."""
    return all(is_quadrature_kernel(kernels.get(name)) for name in DIFFUSION_KERNELS)


def diffusion_term(C: np.ndarray, a: np.ndarray, b: np.ndarray, nodes: int = NODES) -> np.ndarray:
    """The eta**2 term of dQ of a relu network, ``a_j a_l E[theta(lambda_j) theta(lambda_l) (y - f)**2]``.

    Parameters
    ----------
    C : array, shape (..., p + k, p + k)
        Covariance of ``(lambda, nu)``, students first.
    a, b : arrays, shapes (..., p) and (..., k)
        Student and teacher readouts (``y - f = sum_r b_r relu(nu_r) - sum_j a_j relu(lambda_j)``).
    nodes : int
        Gauss-Legendre nodes per panel of the path integral.

    Returns
    -------
    array, shape (..., p, p)
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    p, k = a.shape[-1], b.shape[-1]
    batch = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    readout = np.concatenate([np.broadcast_to(-a, batch + (p,)), np.broadcast_to(b, batch + (k,))], axis=-1)
    return theta_pairs_relu_square(C, readout, p, nodes) * a[..., :, None] * a[..., None, :]


def _pair_values(C, weights, count, first, second, nodes):
    """``(batch, pairs)`` values for the pairs ``(first[i], second[i])``."""
    size = C.shape[0]
    statics = pair_statics(C, weights, count)
    near = statics["near"]
    near_unit = near[:, :count].any(axis=-1)
    # t = 0: the copy of z_l independent of everything, E[theta(z_j) h**2] / 2
    start = theta_relu_square(statics, count, nodes) / 2
    batch_index = np.repeat(np.arange(size), first.size)
    j, l = np.tile(first, size), np.tile(second, size)
    near_item = near[batch_index, j, l] | near_unit[batch_index, j] | near_unit[batch_index, l]
    rule = np.where(near_item, GRADED, node_rules(statics, batch_index, j, l))
    # the value is symmetric in (j, l): copy the unit whose path needs fewer nodes
    dearer = np.flatnonzero(~near_item & (rule > ONE_PANEL))
    reverse = node_rules(statics, batch_index[dearer], l[dearer], j[dearer])
    swap = dearer[reverse < rule[dearer]]
    j[swap], l[swap] = l[swap], j[swap].copy()
    rule[swap] = reverse[reverse < rule[dearer]]
    out = start[batch_index, j]
    for chosen_rule in np.unique(rule):
        chosen = np.flatnonzero(rule == chosen_rule)
        out[chosen] += pair_integrals(statics, batch_index[chosen], j[chosen], l[chosen], nodes, int(chosen_rule))
    return out.reshape(size, first.size)


__all__ = [
    "BLOCK_ARGUMENTS",
    "DIFFUSION_KERNELS",
    "PAIR_CHUNK_ELEMENTS",
    "PARALLEL",
    "diffusion_term",
    "is_quadrature_kernel",
    "is_relu_diffusion",
    "theta_pairs_relu_square",
]
