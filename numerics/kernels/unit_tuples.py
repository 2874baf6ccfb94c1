"""Evaluate a per-tuple generated module: gather covariance sub-blocks for all index tuples, contract with readouts.

A per-tuple module (printed by :mod:`derive.codegen.tuples`) defines element-wise kernels
``kernel_<name>(c00, c01, ...)``: the Gaussian average of one product of
one-variable functions as a function of the entries of its covariance block.
Here the blocks of ``C = [[Q, R], [R^T, T]]`` of every index tuple are gathered
at once, the kernel is evaluated element-wise and the result is contracted with
the readout vectors. What depends only on the sizes and the kernel set (which
kernel runs over which tuples, the flat indices of every block entry, the
symmetric pairs of the eta**2 term, the default readouts' weights) is planned
once by :mod:`numerics.kernels.tuple_plan`; a call then costs one ``take`` per
term, the kernels' element-wise arithmetic and a few small products. Batch axes
are moved last for the evaluation (contiguous along the replicas) and first
again in the results. No Python loop runs over tuples; the eta**2 term costs
O(p**2 (p + k)**2) and is evaluated in blocks of pairs to bound the memory
(:data:`MAX_BLOCK_ELEMENTS`) and to stay in cache.

Conventions (derive/codegen/tuples.py): ``c = (-a, b)`` over the units (students first),
``E_j = (y - f) a_j sigma'(lambda_j)``. Readout vectors ``a`` (..., p) and ``b``
(..., k) default to the model's scalar readouts broadcast over the units.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from numerics.core.validation import covariance
from numerics.kernels import relu_pairs
from numerics.kernels.tuple_plan import TuplePlan, tuple_plan

#: Largest number of index tuples (times batched replicas) evaluated at once in the eta**2 term (the rest in
#: blocks of pairs).
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
    """``kernel`` at the covariance blocks of all index tuples of ``ranges``, shape (..., len(r_1), ..., len(r_n)).

    A one-off evaluation by advanced indexing (``C`` shape (..., n, n)); the routes below
    use the planned gathers of :mod:`numerics.kernels.tuple_plan` instead.
    """
    indices = _axes(ranges)
    n = len(indices)
    entries = [C[..., indices[i], indices[j]] for i in range(n) for j in range(i, n)]
    shape = np.broadcast_shapes(*(e.shape for e in entries))
    with np.errstate(divide="ignore", invalid="ignore"):
        value = kernel(*entries)
    return np.broadcast_to(value, shape)


@dataclass(frozen=True)
class _Inputs:
    """One call's inputs, batch last: ``flat`` (n**2[, B]) raveled C, ``a`` (p[, B]), ``c = (-a, b)`` (n[, B])."""

    plan: TuplePlan
    flat: np.ndarray
    a: np.ndarray
    c: np.ndarray
    batch: tuple[int, ...]
    default: bool

    @property
    def replicas(self) -> int:
        return math.prod(self.batch)


def _inputs(kernels: Kernels, readouts: Readouts, Q, R, T, a, b) -> _Inputs:
    p, k = R.shape[-2:]
    n = p + k
    plan = tuple_plan(kernels, readouts, p, k)
    C = covariance(Q, R, T)
    if a is None and b is None:
        if C.ndim == 2:
            return _Inputs(plan, C.reshape(-1), plan.default_a, plan.default_c, (), True)
        batch = C.shape[:-2]
        a, c = plan.default_a, plan.default_c
    else:
        a, b = readout_vectors(readouts, p, k, a, b)
        batch = np.broadcast_shapes(C.shape[:-2], a.shape[:-1], b.shape[:-1])
        a = np.broadcast_to(a, batch + (p,))
        c = np.concatenate([-a, np.broadcast_to(b, batch + (k,))], axis=-1)
        if not batch:
            return _Inputs(plan, C.reshape(-1), a, c, (), False)
    replicas = math.prod(batch)
    flat = np.broadcast_to(C, batch + (n, n)).reshape(replicas, n * n).T
    a = np.broadcast_to(a, batch + (p,)).reshape(replicas, p).T
    c = np.broadcast_to(c, batch + (n,)).reshape(replicas, n).T
    return _Inputs(plan, flat, a, c, batch, False)


def _batch_first(value: np.ndarray, batch: tuple[int, ...]) -> np.ndarray:
    """A result with the batch on its last axis, as ``(*batch, ...)``."""
    return value if not batch else np.moveaxis(value, -1, 0).reshape(batch + value.shape[:-1])


def _weighted(values: np.ndarray, vector: np.ndarray, grid_axes: int) -> np.ndarray:
    """``sum_m values[..., m, (b)] vector[m, (b)]`` over the last of the ``grid_axes`` grid axes (batch last)."""
    if values.ndim == grid_axes:
        return values @ vector
    if vector.ndim == 1:
        return np.einsum("...mb,m->...b", values, vector)
    return np.einsum("...mb,mb->...b", values, vector)


def _half_drift(given: _Inputs) -> np.ndarray:
    """``<E_j z_u>`` over ``z = (lambda, nu)``, shape (p, p + k[, B]) (batch last): the unsymmetrised drift."""
    plan, c = given.plan, given.c
    p = plan.p
    values = plan.gather("drift", given.replicas).evaluate(plan.kernels, given.flat)
    if plan.merged["drift"]:
        half = _weighted(values[0], c, 3)
    else:
        half = _weighted(values[0], c[:p], 3) + _weighted(values[1], c[p:], 3)
    return half * given.a[:, None]


def _drift(given: _Inputs) -> tuple[np.ndarray, np.ndarray]:
    half = _half_drift(given)
    p = given.plan.p
    drift_Q = half[:, :p] + np.swapaxes(half[:, :p], 0, 1)
    return _batch_first(drift_Q, given.batch), _batch_first(half[:, p:], given.batch)


def _batch_first_inputs(given: _Inputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(C, a, b)`` of a call, batch axes first again (shapes (..., n, n), (..., p), (..., k))."""
    p = given.a.shape[0]
    n = given.c.shape[0]
    C = given.flat.T.reshape(given.batch + (n, n)) if given.batch else given.flat.reshape(n, n)
    c = given.c.T.reshape(given.batch + (n,)) if given.batch else given.c
    return C, c[..., :p] * -1.0, c[..., p:]


def _diffusion(given: _Inputs) -> np.ndarray:
    plan, c = given.plan, given.c
    if relu_pairs.is_relu_diffusion(plan.kernels):  # one path integral per student pair, not per tuple
        return relu_pairs.diffusion_term(*_batch_first_inputs(given))
    pairs = len(plan.pair_rows)
    listed, rows = plan.diffusion_layout(given.replicas, MAX_BLOCK_ELEMENTS)
    if given.default:
        weights = plan.default_diffusion_weights(listed)
    else:
        weights = [w.multiplicity.reshape((-1,) + (1,) * (c.ndim - 1)) * c[w.first] * c[w.second]
                   for w in plan.diffusion_unit_pairs(listed)]
    tail = given.flat.shape[1:]
    per_pair = []
    for start in range(0, pairs, rows):
        block = None if rows >= pairs else slice(start, start + rows)
        values = plan.diffusion_gather(listed, given.replicas, block).evaluate(plan.kernels, given.flat)
        shape = (min(rows, pairs - start), -1) + tail
        block_sum = _weighted(values[0].reshape(shape), weights[0], 2)
        for value, weight in zip(values[1:], weights[1:]):
            block_sum = block_sum + _weighted(value.reshape(shape), weight, 2)
        per_pair.append(block_sum)
    total = per_pair[0] if len(per_pair) == 1 else np.concatenate(per_pair)
    return _batch_first(total[plan.pair_of] * _outer(given.a, plan, given.default), given.batch)


def _outer(a: np.ndarray, plan: TuplePlan, default: bool) -> np.ndarray:
    """``a_j a_l``, shape (p, p[, B]) (``default``: the plan's unbatched default readouts)."""
    return plan.default_aa if default else a[:, None] * a[None, :]


def _noise(given: _Inputs) -> np.ndarray:
    plan = given.plan
    (values,) = plan.gather("noise", given.replicas).evaluate(plan.kernels, given.flat)
    return _batch_first(values * _outer(given.a, plan, given.default), given.batch)


def first_order_terms(
    kernels: Kernels, readouts: Readouts, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: Any = None, b: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(drift_Q, drift_R)``, shapes (..., p, p) and (..., p, k): the coefficients of eta."""
    given = _inputs(kernels, readouts, Q, R, T, a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _drift(given)


def update_averages(
    kernels: Kernels, readouts: Readouts, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: Any = None, b: Any = None,
    *, second_order: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(<E_j z_u>, diffusion_Q, noise_Q)``: the first-order averages unsymmetrised, and the eta**2 terms.

    ``<E_j z_u>`` has shape (..., p, p + k) over ``z = (lambda, nu)``: its student block is
    ``<E_j lambda_l>`` (``drift_Q`` is it plus its transpose), its teacher block ``drift_R``.
    ``diffusion_Q`` and ``noise_Q`` (shapes (..., p, p)) are those of :func:`all_terms`, ``None``
    without ``second_order``. Each average is evaluated once.
    """
    given = _inputs(kernels, readouts, Q, R, T, a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        averages = _batch_first(_half_drift(given), given.batch)
        if not second_order:
            return averages, None, None
        return averages, _diffusion(given), _noise(given)


def all_terms(
    kernels: Kernels, readouts: Readouts, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: Any = None, b: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(drift_Q, drift_R, diffusion_Q, noise_Q)``, shapes (..., p, p), (..., p, k), (..., p, p), (..., p, p)."""
    given = _inputs(kernels, readouts, Q, R, T, a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        drift_Q, drift_R = _drift(given)
        return drift_Q, drift_R, _diffusion(given), _noise(given)


def _nonzero(coefficient: Any) -> bool:
    return coefficient != 0.0 if type(coefficient) is float else bool(np.any(coefficient))


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
    given = _inputs(kernels, readouts, Q, R, T, a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        drift_Q, drift_R = _drift(given)
        dQ = c_drift * drift_Q
        if _nonzero(c_diffusion):
            dQ = dQ + c_diffusion * _diffusion(given)
        if _nonzero(c_noise):
            dQ = dQ + c_noise * _noise(given)
    return dQ, c_drift * drift_R


def _pairs(given: _Inputs) -> list[np.ndarray]:
    plan = given.plan
    with np.errstate(divide="ignore", invalid="ignore"):
        return plan.gather("pairs", given.replicas).evaluate(plan.kernels, given.flat)


def _bilinear(values: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``sum_{m, n} left_m values[m, n] right_n`` (batch last)."""
    return _weighted(_weighted(values, right, 2), left, 1)


def residual_risk(
    kernels: Kernels, readouts: Readouts, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: Any = None, b: Any = None
) -> np.ndarray:
    """``<(y0 - f)**2> / 2``, shape (...)."""
    given = _inputs(kernels, readouts, Q, R, T, a, b)
    values, c, p = _pairs(given), given.c, given.plan.p
    if given.plan.merged["pairs"]:
        total = _bilinear(values[0], c, c)
    else:
        student, teacher = c[:p], c[p:]
        total = (_bilinear(values[0], student, student) + 2 * _bilinear(values[1], student, teacher)
                 + _bilinear(values[2], teacher, teacher))
    return 0.5 * (total.reshape(given.batch) if given.batch else total)


def readout_drift(
    kernels: Kernels, readouts: Readouts, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: Any = None, b: Any = None
) -> np.ndarray:
    """``<(y0 - f) sigma(lambda_j)>``, shape (..., p) (label noise has zero mean and drops out)."""
    given = _inputs(kernels, readouts, Q, R, T, a, b)
    values, c, p = _pairs(given), given.c, given.plan.p
    if given.plan.merged["pairs"]:
        return _batch_first(_weighted(values[0], c, 2)[:p], given.batch)
    return _batch_first(_weighted(values[0], c[:p], 2) + _weighted(values[1], c[p:], 2), given.batch)


def hessian_terms(
    kernels: Kernels, readouts: Readouts, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: Any = None, b: Any = None
) -> tuple[np.ndarray, ...]:
    """The averages of derive/quantities/hessian.py with per-unit readouts.

    With ``g_j = -a_j sigma(lambda_j)``, ``g_r = b_r sigma*(nu_r)`` and ``rho = sum_u g_u``:
    ``(M11_ss, M11_st, M22_ss, M22_st, M13_ss, M31_st, V2, V4)`` with ``M<m><n>[j, .] =
    E[g_j^(m) g_.^(n)]`` (shapes (..., p, p) for ``_ss``, (..., p, k) for ``_st``) and
    ``V<n>[j] = E[rho g_j^(n)]`` (shape (..., p, 1)).
    """
    given = _inputs(kernels, readouts, Q, R, T, a, b)
    plan, a, c = given.plan, given.a, given.c
    p = plan.p
    with np.errstate(divide="ignore", invalid="ignore"):
        values = plan.gather("hessian", given.replicas).evaluate(plan.kernels, given.flat)
    both = a[:, None] * a[None, :]
    mixed = -a[:, None] * c[None, p:]
    pairs = [(both if index % 2 == 0 else mixed) * value for index, value in enumerate(values[:6])]
    weighted = []  # E[rho sigma^(n)(z_j)] = sum_u c_u E[sigma^(n)(z_j) g_u(z_u)]
    rest = values[6:]
    for order in (2, 4):
        if plan.merged[f"hessian_{order}"]:
            weighted.append(_weighted(rest[0], c, 2))
            rest = rest[1:]
        else:
            weighted.append(_weighted(rest[0], c[:p], 2) + _weighted(rest[1], c[p:], 2))
            rest = rest[2:]
    columns = [(-a * value)[:, None] for value in weighted]
    return tuple(_batch_first(value, given.batch) for value in (*pairs, *columns))


for _function in (first_order_terms, update_averages, all_terms, rhs_terms, residual_risk, readout_drift,
                  hessian_terms):
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
    "update_averages",
]
