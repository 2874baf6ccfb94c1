"""Increment moments of erf and relu networks: the noise of the overlaps unit tuple by unit tuple.

For models whose averages are sums over index tuples of small-block kernels (``PER_TUPLE``
modules, :mod:`derive.codegen.tuples`) the second moments of one step's increments are too:
with ``E_j = a_j sigma'(z_j) (rho + sqrt(Delta) xi)``, ``rho = y0 - f = sum_u c_u g_u(z_u)``
(``c = (-a, b)`` over the units, students first) and ``z_x``, ``z_y`` any two units,

    <E_j z_x E_i z_y> = a_j a_i [sum_{u, v} c_u c_v <sigma'_j sigma'_i z_x z_y g_u g_v>
                                 + Delta <sigma'_j sigma'_i z_x z_y>],

the kernels ``increment_*`` (six slots: Stein's lemma removes the two linear ones, the erf
derivatives are Gaussians that tilt the measure, and at most two plain erfs are left, the
arcsine law). A trained readout's increment ``s_j = eta_a sigma(z_j) (rho + sqrt(Delta) xi)``
adds ``<sigma_j rho E_m z_x>`` (kernels ``readout_increment_*``) and
``<sigma_j sigma_m rho**2>`` (``readout_square_*``: four plain erfs, a path quadrature in
:mod:`numerics.kernels.tuple_moments`). The kernels' blocks are gathered for all index tuples
at once by :func:`numerics.kernels.unit_tuples.gather`. relu networks (relu units on both sides)
take another route: with ``relu(z) = z theta(z)`` every average is a truncated moment
``E[z_a z_b z_c z_d 1{z_S > 0}]`` of the units' rows (:mod:`numerics.kernels.relu_moments`),
summed per student pair by :mod:`numerics.kernels.relu_increments`.

The covariance is ``eta**2`` in ``Cov(q, q)``, ``Cov(q, r)``, ``Cov(r, r)`` (``eta eta_a`` and
``eta_a**2`` in the readout's blocks). With ``second_order`` an erf network also gets the
``eta**3`` and ``eta**4`` parts that the ``eta**2 E_j E_l`` term of ``q`` adds, as the polynomial
models do (:mod:`numerics.noise.erf_higher_orders`, up to ``p + k = 8`` units; above, the leading
order with a warning), and so does the readout's ``AQ`` (``eta_a eta**2``; ``AR``, ``AA`` have none);
a relu network gets them too (:mod:`numerics.noise.relu_higher_orders`, up to ``p + k = 5`` units; above,
the leading order with a warning), its readout's blocks at the leading order.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from numerics.core.validation import covariance
from numerics.kernels.relu_increments import relu_pair_moments
from numerics.kernels.relu_moments import orthant_moment, unit_rows
from numerics.kernels.unit_tuples import MAX_BLOCK_ELEMENTS, gather, readout_vectors
from numerics.noise.erf_higher_orders import erf_higher_blocks, erf_readout_higher_part, includes_higher_orders
from numerics.noise.relu_higher_orders import includes_relu_higher_orders, relu_higher_blocks


def _residual_square(kernels, C, prefix, fixed, a, b, p, k):
    """``sum_{u, v} c_u c_v K(fixed..., u, v)`` over the units; shape (..., len(fixed_1), ..., len(fixed_n))."""
    students, teachers = np.arange(p), p + np.arange(k)
    pad = (1,) * len(fixed)
    a_exp = a.reshape(a.shape[:-1] + pad + (p,))
    b_exp = b.reshape(b.shape[:-1] + pad + (k,))
    ss = gather(C, kernels[f"{prefix}_ss"], fixed + [students, students])
    st = gather(C, kernels[f"{prefix}_st"], fixed + [students, teachers])
    tt = gather(C, kernels[f"{prefix}_tt"], fixed + [teachers, teachers])
    return (
        np.einsum("...mn,...m,...n->...", ss, a_exp, a_exp)
        - 2 * np.einsum("...ms,...m,...s->...", st, a_exp, b_exp)
        + np.einsum("...st,...s,...t->...", tt, b_exp, b_exp)
    )


def increment_moments(
    module: ModuleType, Q: np.ndarray, R: np.ndarray, T: np.ndarray, delta: float,
    a: np.ndarray | None = None, b: np.ndarray | None = None,
) -> np.ndarray:
    """``X[j, x, i, y] = <E_j z_x E_i z_y>`` over students ``j, i`` and all units ``x, y`` (students first).

    Parameters
    ----------
    module : module
        A per-tuple generated module (``PER_TUPLE``, with the ``increment_*`` kernels).
    Q, R, T : arrays, shapes (..., p, p), (..., p, k), (..., k, k)
    delta : float
        Label-noise variance.
    a, b : arrays, shapes (..., p) and (..., k), optional
        Readout vectors (default the model's scalars).

    Returns
    -------
    array, shape (..., p, p + k, p, p + k)
        ``<E_j lambda_l E_i lambda_h>`` is ``X[..., :p, :, :p]``, ``<E_j lambda_l E_i nu_r>``
        ``X[..., :p, :, p:]`` and ``<E_j nu_q E_i nu_r>`` ``X[..., p:, :, p:]``.
    """
    p, k = R.shape[-2:]
    a, b = readout_vectors(module.readouts, p, k, a, b)
    C = covariance(Q, R, T)
    kernels = module.KERNELS
    students, units = np.arange(p), np.arange(p + k)
    n = p + k
    rows = max(1, MAX_BLOCK_ELEMENTS // (p * n**4))  # student rows j per gather, to bound the memory
    blocks = []
    for start in range(0, p, rows):
        js = students[start : start + rows]
        fixed = [js, students, units, units]  # slots (sigma'_j, sigma'_i, z_x, z_y)
        value = _residual_square(kernels, C, "increment", fixed, a, b, p, k)
        if delta:
            value = value + delta * gather(C, kernels["increment_noise"], fixed)
        blocks.append(value)
    X = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=-4)  # (..., j, i, x, y)
    X = X * (a[..., :, None, None, None] * a[..., None, :, None, None])
    return np.moveaxis(X, -3, -2)  # (..., j, x, i, y)


def readout_increment_moments(
    module: ModuleType, Q: np.ndarray, R: np.ndarray, T: np.ndarray, delta: float,
    a: np.ndarray | None = None, b: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A trained readout's moments ``Y[j, m, x] = <sigma_j (y-f) E_m z_x>``, ``S[j, m] = <sigma_j sigma_m (y-f)**2>``.

    Parameters as :func:`increment_moments`. Shapes: ``Y`` (..., p, p, p + k) (``x`` over all
    units, students first), ``S`` (..., p, p); the label noise is included.
    """
    p, k = R.shape[-2:]
    a, b = readout_vectors(module.readouts, p, k, a, b)
    C = covariance(Q, R, T)
    kernels = module.KERNELS
    students, units = np.arange(p), np.arange(p + k)
    fixed = [students, students, units]  # slots (sigma_j, sigma'_m, z_x)
    Y = _residual_square(kernels, C, "readout_increment", fixed, a, b, p, k)
    S = _residual_square(kernels, C, "readout_square", [students, students], a, b, p, k)
    if delta:
        Y = Y + delta * gather(C, kernels["readout_increment_noise"], fixed)
        S = S + delta * gather(C, kernels["pair_ss"], [students, students])
    return Y * a[..., None, :, None], S


def _rows(F: np.ndarray, ranges: list[np.ndarray]) -> list[np.ndarray]:
    """The rows of the units of every index tuple: slot ``i`` varies along axis ``i`` of the grid."""
    n = len(ranges)
    return [F[..., r.reshape((1,) * i + (-1,) + (1,) * (n - i - 1)), :] for i, r in enumerate(ranges)]


def _relu_residual_square(F, linear, orthant, fixed, c):
    """``sum_{u, v} c_u c_v E[linear... z_u z_v 1{orthant, z_u, z_v > 0}]`` (``linear``, ``orthant``: slot numbers)."""
    units = np.arange(c.shape[-1])
    rows = _rows(F, fixed + [units, units])
    u, v = len(fixed), len(fixed) + 1
    moments = orthant_moment([rows[i] for i in linear] + [rows[u], rows[v]], [rows[i] for i in orthant] + [rows[u],
                                                                                                         rows[v]])
    pad = (1,) * len(fixed)
    c_exp = c.reshape(c.shape[:-1] + pad + c.shape[-1:])
    return np.einsum("...uv,...u,...v->...", moments, c_exp, c_exp)


def _relu_inputs(module: ModuleType, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: Any, b: Any,
                 rows: bool = True) -> tuple:
    """``(a, F, c)``: the student readouts (..., p), the units' factor rows (``None`` unless ``rows``) and
    ``c = (-a, b)`` (..., p + k)."""
    p, k = R.shape[-2:]
    a, b = readout_vectors(module.readouts, p, k, a, b)
    batch = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    c = np.concatenate([np.broadcast_to(-a, batch + (p,)), np.broadcast_to(b, batch + (k,))], axis=-1)
    return a, unit_rows(covariance(Q, R, T)) if rows else None, c


def relu_increment_moments(
    module: ModuleType, Q: np.ndarray, R: np.ndarray, T: np.ndarray, delta: float,
    a: np.ndarray | None = None, b: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`increment_moments` of a relu network, per student pair (:mod:`numerics.kernels.relu_increments`).

    ``sigma'(z_j) = theta(z_j)`` and ``g_u(z_u) = z_u theta(z_u)``, so ``<E_j z_x E_i z_y>`` is
    ``a_j a_i E[z_x z_y theta(z_j) theta(z_i) (h**2 + Delta)]`` with ``h = sum_u c_u relu(z_u)``.
    Same parameters, shape and layout; equal to :func:`relu_increment_moments_by_tuples` to round-off.
    """
    p, k = R.shape[-2:]
    a, _, c = _relu_inputs(module, Q, R, T, a, b, rows=False)
    M = relu_pair_moments(covariance(Q, R, T), c, delta, p)  # (..., j, i, x, y)
    X = M * (a[..., :, None, None, None] * a[..., None, :, None, None])
    return np.moveaxis(X, -3, -2)


def relu_increment_moments_by_tuples(
    module: ModuleType, Q: np.ndarray, R: np.ndarray, T: np.ndarray, delta: float,
    a: np.ndarray | None = None, b: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`relu_increment_moments` as the sum of truncated moments tuple by tuple (the reference, slow).

    ``<E_j z_x E_i z_y>`` is ``a_j a_i sum_{u, v} c_u c_v E[z_x z_y z_u z_v 1{z_j, z_i, z_u, z_v > 0}]``
    (plus ``Delta`` times ``E[z_x z_y 1{z_j, z_i > 0}]``), every moment from
    :func:`numerics.kernels.relu_moments.orthant_moment`: ``p**2 (p + k)**4`` moments, each with a
    four-variate orthant probability. Same parameters, shape and layout.
    """
    p, k = R.shape[-2:]
    a, F, c = _relu_inputs(module, Q, R, T, a, b)
    students, units = np.arange(p), np.arange(p + k)
    n = p + k
    rows = max(1, MAX_BLOCK_ELEMENTS // (p * n**4 * n))
    blocks = []
    for start in range(0, p, rows):
        fixed = [students[start : start + rows], students, units, units]  # slots (theta_j, theta_i, z_x, z_y)
        value = _relu_residual_square(F, (2, 3), (0, 1), fixed, c)
        if delta:
            slot = _rows(F, fixed)
            value = value + delta * orthant_moment([slot[2], slot[3]], [slot[0], slot[1]])
        blocks.append(value)
    X = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=-4)
    X = X * (a[..., :, None, None, None] * a[..., None, :, None, None])
    return np.moveaxis(X, -3, -2)


def relu_readout_moments(
    module: ModuleType, Q: np.ndarray, R: np.ndarray, T: np.ndarray, delta: float,
    a: np.ndarray | None = None, b: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`readout_increment_moments` of a relu network (``sigma(z_j) = z_j theta(z_j)``); same shapes.

    Slices of the per-pair moments ``M[j, m, x, y] = E[z_x z_y theta_j theta_m (h**2 + Delta)]``
    (:func:`numerics.kernels.relu_increments.relu_pair_moments`): ``Y[j, m, x] = a_m M[j, m, x, j]``,
    ``S[j, m] = M[j, m, j, m]``. Equal to :func:`relu_readout_moments_by_tuples` to round-off.
    """
    p = Q.shape[-1]
    a, _, c = _relu_inputs(module, Q, R, T, a, b, rows=False)
    M = relu_pair_moments(covariance(Q, R, T), c, delta, p)
    Y = np.einsum("...jmxj->...jmx", M[..., :p])
    S = np.einsum("...jmjm->...jm", M[..., :p, :p])
    return Y * a[..., None, :, None], S


def relu_readout_moments_by_tuples(
    module: ModuleType, Q: np.ndarray, R: np.ndarray, T: np.ndarray, delta: float,
    a: np.ndarray | None = None, b: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`relu_readout_moments` as the sum of truncated moments tuple by tuple (the reference, slow)."""
    p, k = R.shape[-2:]
    a, F, c = _relu_inputs(module, Q, R, T, a, b)
    students, units = np.arange(p), np.arange(p + k)
    fixed = [students, students, units]  # slots (sigma_j, theta_m, z_x)
    Y = _relu_residual_square(F, (0, 2), (0, 1), fixed, c)
    S = _relu_residual_square(F, (0, 1), (0, 1), [students, students], c)
    if delta:
        slot = _rows(F, fixed)
        Y = Y + delta * orthant_moment([slot[0], slot[2]], [slot[0], slot[1]])
        pair = _rows(F, [students, students])
        S = S + delta * orthant_moment(pair, pair)
    return Y * a[..., None, :, None], S


def tuple_covariance_blocks(
    module: ModuleType, Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float, delta: float,
    a: np.ndarray | None = None, b: np.ndarray | None = None, eta_a: float | None = None, second_order: bool = False,
) -> tuple[np.ndarray, ...]:
    """The blocks of :func:`numerics.increment_covariance` for a per-tuple model (single sample, no validation).

    Parameters
    ----------
    module : module
        The model's per-tuple generated module.
    Q, R, T : arrays, shapes (..., p, p), (..., p, k), (..., k, k)
    eta : float
    delta : float
        Label-noise variance.
    a, b : arrays, shapes (..., p) and (..., k), optional
        Readout vectors (default the model's scalars); ``a`` is the trained readout's value.
    eta_a : float, optional
        With it the trained readout's blocks follow.
    second_order : bool
        Add the ``eta**3`` and ``eta**4`` parts of an erf or relu network (module docstring).

    Raises
    ------
    ValueError
        For erf or relu units on one side only (mixed with a polynomial, or erf with relu).

    Returns
    -------
    tuple of arrays
        ``QQ`` (..., p, p, p, p), ``QR`` (..., p, p, p, k), ``RR`` (..., p, k, p, k), then with
        ``eta_a`` ``AQ`` (..., p, p, p), ``AR`` (..., p, p, k), ``AA`` (..., p, p): the leading
        order, plus the ``eta**3`` and ``eta**4`` parts of ``QQ``, ``QR`` for an erf or relu network
        with ``second_order`` and the ``eta_a eta**2`` part of an erf network's ``AQ`` (module docstring).
    """
    kinds = {module.STUDENT_KIND, module.TEACHER_KIND}
    relu = kinds == {"relu"}
    if kinds not in ({"erf"}, {"relu"}):
        raise ValueError("increment_covariance: the increment moments of erf and relu units need the same kind on "
                         f"both sides (this model has a {module.STUDENT_KIND} student and a {module.TEACHER_KIND} "
                         "teacher; polynomial models on both sides use the network tables; an erf student with a "
                         "sign teacher has its covariance in packed form only: numerics.packed_covariance, "
                         "simulate_sde)")
    p = Q.shape[-1]
    X = (relu_increment_moments if relu else increment_moments)(module, Q, R, T, delta, a, b)
    drift_Q, drift_R = module.first_order_terms(Q, R, T, a, b)
    LL, LN, NN = X[..., :p, :, :p], X[..., :p, :, p:], X[..., p:, :, p:]
    # q_jl = eta (E_j lambda_l + E_l lambda_j): X[j, l, i, h] -> X[l, j, i, h] and (i <-> h) symmetrise
    half = LL + np.swapaxes(LL, -4, -3)
    second_AA = half + np.swapaxes(half, -2, -1)
    QQ = eta**2 * (second_AA - drift_Q[..., :, :, None, None] * drift_Q[..., None, None, :, :])
    QR = eta**2 * (LN + np.swapaxes(LN, -4, -3) - drift_Q[..., :, :, None, None] * drift_R[..., None, None, :, :])
    RR = eta**2 * (NN - drift_R[..., :, :, None, None] * drift_R[..., None, None, :, :])
    higher = not relu and includes_higher_orders(module, p, R.shape[-1], second_order)
    if higher:
        # erf: the parts of the eta**2 E_j E_l term of q (numerics/noise/erf_higher_orders.py)
        vectors = readout_vectors(module.readouts, p, R.shape[-1], a, b)
        higher_QQ, higher_QR = erf_higher_blocks(module, Q, R, T, eta, delta, *vectors, drift_Q, drift_R)
        QQ, QR = QQ + higher_QQ, QR + higher_QR
    if relu and includes_relu_higher_orders(module, p, R.shape[-1], second_order):
        # relu: the same parts from truncated moments (numerics/noise/relu_higher_orders.py)
        vectors = readout_vectors(module.readouts, p, R.shape[-1], a, b)
        higher_QQ, higher_QR = relu_higher_blocks(Q, R, T, eta, delta, *vectors, drift_Q, drift_R)
        QQ, QR = QQ + higher_QQ, QR + higher_QR
    if eta_a is None:
        return QQ, QR, RR
    Y, S = (relu_readout_moments if relu else readout_increment_moments)(module, Q, R, T, delta, a, b)
    mean_s = module.readout_drift(Q, R, T, a, b)  # <sigma_j (y - f)>, shape (..., p)
    YL, YN = Y[..., :p], Y[..., p:]
    AQ = eta_a * eta * (YL + np.swapaxes(YL, -1, -2) - mean_s[..., :, None, None] * drift_Q[..., None, :, :])
    if higher:
        AQ = AQ + erf_readout_higher_part(module, Q, R, T, eta, eta_a, delta, *vectors, mean_s)
    AR = eta_a * eta * (YN - mean_s[..., :, None, None] * drift_R[..., None, :, :])
    AA = eta_a**2 * (S - mean_s[..., :, None] * mean_s[..., None, :])
    return QQ, QR, RR, AQ, AR, AA


__all__ = [
    "increment_moments",
    "readout_increment_moments",
    "relu_increment_moments",
    "relu_increment_moments_by_tuples",
    "relu_readout_moments",
    "relu_readout_moments_by_tuples",
    "tuple_covariance_blocks",
]
