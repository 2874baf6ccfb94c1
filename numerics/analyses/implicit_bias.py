"""Implicit bias: the closest zero-error solution and the conserved polar factor (paper Eqs. 14-22).

With readouts ``a = 1/p``, ``b = 1/k`` the student output depends on ``W`` only
through ``W^T W / p``, and zero error means ``W^T W / p = W*^T W* / k``. For a
teacher with linearly independent rows (``T = W* W*^T / N`` invertible) the
rows of such a ``W`` lie in the teacher span, ``W = A W*``, and
``A^T A = (p/k) I_k``: the zero-error manifold is

    W = sqrt(p/k) O W*,   O of shape (p, k),   O^T O = I_k      (p >= k),

for every ``T``, not only ``T = I`` (docs/model.md). In overlaps, ``R = sqrt(p/k) O T``
and ``Q = (p/k) O T O^T``.

Closest point to a start ``W0`` (Frobenius distance): with ``c = sqrt(p/k)``,

    |W0 - c O W*|^2 = |W0|^2 - 2 c tr(O^T W0 W*^T) + c^2 tr(O W* W*^T O^T),

and ``tr(O W* W*^T O^T) = tr(O^T O W* W*^T) = tr(W* W*^T)`` because
``O^T O = I_k``: the last term is constant for *any* teacher. Minimising the
distance is therefore maximising ``tr(O^T W0 W*^T)`` over the Stiefel manifold,
whose unique maximiser (when ``W0 W*^T`` has full column rank) is the polar
factor ``O_hat = omega(R0) = R0 (R0^T R0)^(-1/2)`` of ``W0 W*^T = N R0`` (paper
Eq. 19). The same ``O_hat`` is conserved along the noiseless overlap flow from
an isotropic start ``Q(0) = q0 I`` with ``T = I`` (Eq. 22, App. 7.4).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import expm, expm_frechet
from scipy.optimize import minimize

from numerics.core.validation import as_real_array, check_finite_result, check_int, check_scalar, check_seed

#: ``omega`` refuses matrices whose smallest singular value is below this fraction of the largest. The polar
#: factor moves by about ``|dR| / s_min`` under a perturbation ``dR``, so at this limit rounding of ``R`` alone
#: (relative 1e-16) already shifts it by ~1e-8.
RCOND = 1e-8


def omega(R: np.ndarray, *, rcond: float = RCOND) -> np.ndarray:
    """Polar factor ``R (R^T R)^(-1/2)`` (paper Eq. 22), computed as ``U V^T`` from the SVD ``R = U S V^T``.

    Parameters
    ----------
    R : array, shape (..., p, k)
        Teacher-student overlaps (or any p x k matrices), with optional leading
        batch or trajectory axes; ``p >= k``.
    rcond : float
        Smallest accepted ratio of the smallest to the largest singular value
        of each matrix (``R^T R`` has condition number ``1 / rcond**2`` at the limit).

    Returns
    -------
    array, shape (..., p, k)
        Matrices with orthonormal columns, ``omega^T omega = I_k``, and
        ``R = omega (R^T R)^(1/2)``.

    Raises
    ------
    ValueError
        If ``R`` has fewer than two axes or non-finite entries, if ``p < k``
        (``R^T R`` is then singular), or if ``R^T R`` is singular or
        ill-conditioned (a zero or degenerate start, e.g. ``R = 0``).

    Notes
    -----
    The SVD avoids forming ``R^T R`` (which squares the condition number) and
    its inverse square root.
    """
    return _omega(R, rcond, "R")


def _omega(R: object, rcond: float, name: str) -> np.ndarray:
    """:func:`omega` with the caller's argument ``name`` in the messages."""
    R = as_real_array(R, name)
    rcond = check_scalar(rcond, "rcond", positive=True, below=1.0)
    p, k = R.shape[-2:]
    if k < 1:
        raise ValueError(f"k must be >= 1: {name} has shape {R.shape}")
    if R.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {R.shape}")
    if p < k:
        raise ValueError(
            f"{name} has shape {R.shape}: p = {p} < k = {k}, so R^T R (k x k) has rank <= {p} and is singular; "
            "the polar factor R (R^T R)^(-1/2) needs p >= k"
        )
    U, s, Vt = np.linalg.svd(R, full_matrices=False)
    largest = s[..., 0]
    smallest = s[..., -1]
    ratio = smallest / np.where(largest > 0, largest, 1.0)
    bad = ~(ratio > rcond)  # also catches R = 0 (ratio 0) and NaN
    if np.any(bad):
        first = int(np.flatnonzero(bad)[0])
        where = f" at batch index {tuple(int(i) for i in np.unravel_index(first, bad.shape))}" if bad.ndim else ""
        raise ValueError(
            f"R^T R is singular or ill-conditioned{where}: smallest/largest singular value of R = "
            f"{float(ratio.flat[first]):.3g} (rcond = {rcond:g}); the polar factor R (R^T R)^(-1/2) is undefined "
            "for a zero or degenerate start (e.g. R = 0, or overlaps with the teacher that are linearly dependent)"
        )
    return U @ Vt


def _scale(p: int, k: int, p_over_k: float | None) -> float:
    if p_over_k is None:
        return p / k
    return check_scalar(p_over_k, "p_over_k", positive=True)


def _check_teacher_gram(T: Any, k: int, name: str = "T") -> np.ndarray:
    T = as_real_array(T, name)
    if T.shape[-2:] != (k, k):
        raise ValueError(f"{name} must have shape (..., {k}, {k}), got {T.shape}")
    eigenvalues = np.linalg.eigvalsh((T + np.swapaxes(T, -1, -2)) / 2)
    if np.any(eigenvalues[..., 0] <= RCOND * eigenvalues[..., -1]):
        raise ValueError(f"{name} must be positive definite (a teacher with linearly independent rows)")
    return T


def closest_solution(
    R0: np.ndarray, *, T: np.ndarray | None = None, p_over_k: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Overlaps of the zero-error solution closest to a start with overlaps ``R0`` (paper Eqs. 19-21).

    ``O_hat = omega(R0)``, ``R_inf = sqrt(p/k) O_hat T``, ``Q_inf = (p/k) O_hat T O_hat^T``;
    with the paper's ``T = I`` these are ``R_inf = sqrt(p/k) O_hat`` and
    ``Q_inf = (p/k) O_hat O_hat^T``. The closest point depends on the start only
    through ``R0`` (see the module docstring); whether the dynamics *reaches*
    it is a separate question (it does for ``Q(0) = q0 I`` and ``T = I``).

    Parameters
    ----------
    R0 : array, shape (..., p, k)
        Initial teacher-student overlaps, optionally batched; ``p >= k``.
    T : array, shape (k, k) or (..., k, k), optional
        Teacher-teacher overlaps (positive definite); default identity.
    p_over_k : float, optional
        Ratio ``b / a`` of the readouts (the zero-error manifold is
        ``W = sqrt(b/a) O W*`` for uniform readouts ``a``, ``b``); default
        ``p / k`` (paper readouts ``a = 1/p``, ``b = 1/k``).

    Returns
    -------
    Q_inf : array, shape (..., p, p)
    R_inf : array, shape (..., p, k)

    Raises
    ------
    ValueError
        As :func:`omega` (``p < k``, ``R0^T R0`` singular, NaN/inf, wrong ndim),
        or a ``T`` that is not positive definite.
    """
    O_hat = _omega(R0, RCOND, "R0")
    p, k = O_hat.shape[-2:]
    scale = _scale(p, k, p_over_k)
    with np.errstate(over="ignore", invalid="ignore"):
        if T is None:
            R_inf = np.sqrt(scale) * O_hat
            Q_inf = scale * O_hat @ np.swapaxes(O_hat, -1, -2)
        else:
            T = _check_teacher_gram(T, k)
            R_inf = np.sqrt(scale) * O_hat @ T
            Q_inf = scale * O_hat @ T @ np.swapaxes(O_hat, -1, -2)
        Q_inf = (Q_inf + np.swapaxes(Q_inf, -1, -2)) / 2
    check_finite_result("closest_solution", Q_inf, R_inf)
    return Q_inf, R_inf


def _check_weights(W0: Any, W_star: Any) -> tuple[np.ndarray, np.ndarray]:
    W0 = as_real_array(W0, "W0")
    W_star = as_real_array(W_star, "W_star")
    if W0.shape[-1] != W_star.shape[-1]:
        raise ValueError(f"W0 (..., p, N) and W_star (..., k, N) need the same N, got {W0.shape} and {W_star.shape}")
    try:
        np.broadcast_shapes(W0.shape[:-2], W_star.shape[:-2])
    except ValueError:
        raise ValueError(
            f"batch shapes of W0 {W0.shape[:-2]} and W_star {W_star.shape[:-2]} do not broadcast"
        ) from None
    k, N = W_star.shape[-2:]
    if W0.shape[-2] < 1 or k < 1:
        raise ValueError(f"p and k must be >= 1, got W0 of shape {W0.shape} and W_star of shape {W_star.shape}")
    if N < k:
        raise ValueError(f"W_star has shape {W_star.shape}: k = {k} rows in N = {N} < k dimensions are dependent")
    with np.errstate(over="ignore", invalid="ignore"):
        gram = W_star @ np.swapaxes(W_star, -1, -2) / N
    if not np.all(np.isfinite(gram)):
        raise ValueError("W_star is too large: W_star W_star^T / N overflows (not finite)")
    _check_teacher_gram(gram, k, "W_star W_star^T / N")
    return W0, W_star


def closest_solution_weights(W0: np.ndarray, W_star: np.ndarray, *, p_over_k: float | None = None) -> np.ndarray:
    """The zero-error student ``sqrt(p/k) O W*`` (``O^T O = I_k``) nearest to ``W0`` in Frobenius distance.

    Solved for a general teacher (any ``W*`` with linearly independent rows, not
    only ``T = I``): because ``O^T O = I_k``, ``|c O W*|^2 = c^2 |W*|^2`` does not
    depend on ``O`` (``c = sqrt(p/k)``), so the problem is the orthogonal
    Procrustes problem ``max_O tr(O^T W0 W*^T)``, solved by the polar factor
    ``O = omega(W0 W*^T)`` (unique when ``W0 W*^T`` has full column rank).
    The zero-error condition with ``a = 1/p``, ``b = 1/k`` is
    ``W^T W / p = W*^T W* / k``, whose solutions are exactly these points for any
    invertible ``T = W* W*^T / N``.

    Parameters
    ----------
    W0 : array, shape (..., p, N)
        Start (student weights), optionally batched; ``p >= k``.
    W_star : array, shape (..., k, N)
        Teacher weights (linearly independent rows).
    p_over_k : float, optional
        ``b / a`` for other uniform readouts; default ``p / k``.

    Returns
    -------
    array, shape (..., p, N)

    Raises
    ------
    ValueError
        Non-finite input, mismatched shapes, dependent teacher rows, ``p < k``,
        or ``W0 W*^T`` without full column rank (the closest point is then not unique).
    """
    W0, W_star = _check_weights(W0, W_star)
    p, k = W0.shape[-2], W_star.shape[-2]
    N = W0.shape[-1]
    scale = _scale(p, k, p_over_k)
    with np.errstate(over="ignore", invalid="ignore"):
        cross = W0 @ np.swapaxes(W_star, -1, -2) / N
    if not np.all(np.isfinite(cross)):
        raise ValueError(
            "closest_solution_weights: W0 and W_star are too large: W0 W_star^T / N overflows (not finite)"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.sqrt(scale) * omega(cross) @ W_star
    check_finite_result("closest_solution_weights", out)
    return out


def _stiefel_generators(p: int, k: int) -> np.ndarray:
    # Antisymmetric p x p generators E_ij - E_ji with i < j and i < k: rotations that move the first k
    # columns of the identity (rotations inside the last p - k columns leave O = exp(A)[:, :k] unchanged).
    pairs = [(i, j) for i in range(min(k, p)) for j in range(i + 1, p)]
    generators = np.zeros((len(pairs), p, p))
    for n, (i, j) in enumerate(pairs):
        generators[n, i, j], generators[n, j, i] = 1.0, -1.0
    return generators


def closest_solution_weights_numerical(
    W0: np.ndarray,
    W_star: np.ndarray,
    *,
    p_over_k: float | None = None,
    restarts: int = 4,
    polish: int = 3,
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """Independent check of :func:`closest_solution_weights` by direct numerical minimisation.

    Minimises ``|W0 - c O W*|^2 / N`` (evaluated in weight space, without the
    algebraic simplifications) over ``O = B expm(A)[:, :k]`` with ``B`` a Haar
    random orthogonal base point (one per restart: for ``p = k`` the two
    components ``det O = +-1`` of O(k) are only reached from bases of either
    sign) and ``A`` antisymmetric, with BFGS (gradient through the Frechet
    derivative of ``expm``). The best restart is then polished ``polish`` times
    by moving the base point to the current optimum and minimising again
    around ``A = 0``, where the parametrisation is best conditioned.

    Parameters
    ----------
    W0 : array, shape (p, N)
    W_star : array, shape (k, N)
    p_over_k : float, optional
        ``b / a``; default ``p / k``.
    restarts : int
        Random base points.
    polish : int
        Re-centred minimisations after the best restart.
    seed : int or numpy Generator, optional
        Randomness of the base points.

    Returns
    -------
    array, shape (p, N)
    """
    W0, W_star = _check_weights(W0, W_star)
    restarts = check_int(restarts, "restarts", minimum=1)
    polish = check_int(polish, "polish", minimum=0)
    if W0.ndim != 2 or W_star.ndim != 2:
        raise ValueError("closest_solution_weights_numerical takes one start: W0 (p, N), W_star (k, N)")
    p, N = W0.shape
    k = W_star.shape[0]
    if p < k:
        raise ValueError(f"the zero-error manifold sqrt(p/k) O W* needs p >= k, got p = {p}, k = {k}")
    c = np.sqrt(_scale(p, k, p_over_k))
    generators = _stiefel_generators(p, k)
    rng = np.random.default_rng(check_seed(seed))

    def objective(x: np.ndarray, base: np.ndarray) -> tuple[float, np.ndarray]:
        # The distance relative to the one at the base point, |r|^2 - |r_base|^2 = -c (O - O_base) W* . (r + r_base):
        # near the optimum the distance itself is O(1) while its variation is O(|x|^2), so evaluating the
        # difference directly keeps the line searches resolving x well below sqrt(machine epsilon).
        A = np.tensordot(x, generators, axes=1)
        # expm of [[A, I], [0, 0]] holds [[expm(A), phi(A)], [0, I]] with phi(A) = sum_n A^n / (n + 1)!, so
        # expm(A) - I = A phi(A) without the cancellation of subtracting I (relative accuracy for small A)
        augmented = np.zeros((2 * p, 2 * p))
        augmented[:p, :p], augmented[:p, p:] = A, np.eye(p)
        phi = expm(augmented)[:p, p:]
        step = (base @ (A @ phi)[:, :k]) @ W_star  # (O - O_base) W*
        residual_base = W0 - c * base[:, :k] @ W_star
        residual = residual_base - c * step
        value = float(-c * np.sum(step * (residual + residual_base))) / N
        # d value / d O = -2 c residual W*^T / N, and dO = base dexpm(A)[dA][:, :k]
        d_O = -2 * c * residual @ W_star.T / N
        d_rotation = np.zeros((p, p))
        d_rotation[:, :k] = base.T @ d_O
        gradient = np.array([np.sum(d_rotation * expm_frechet(A, G, compute_expm=False)) for G in generators])
        return value, gradient

    def solve(base: np.ndarray) -> tuple[float, np.ndarray]:
        x0 = np.zeros(len(generators))
        distance_base = float(np.sum((W0 - c * base[:, :k] @ W_star) ** 2)) / N
        if x0.size == 0:  # p = k = 1: O = +-1, nothing to optimise
            return distance_base, base
        found = minimize(objective, x0, args=(base,), jac=True, method="BFGS", options={"gtol": 1e-13, "maxiter": 5000})
        rotation = expm(np.tensordot(found.x, generators, axes=1))
        return distance_base + float(found.fun), base @ rotation

    best_value, best_base = np.inf, None
    for restart in range(restarts):
        # Haar orthogonal p x p matrix (QR of a Gaussian matrix, signs fixed by R's diagonal); every other
        # restart flips a column so that both components det = +1 and det = -1 of O(p) are explored
        q, r = np.linalg.qr(rng.standard_normal((p, p)))
        base = q * np.sign(np.diagonal(r))
        base[:, 0] *= np.sign(np.linalg.det(base)) * (-1) ** restart
        value, base = solve(base)
        if value < best_value:
            best_value, best_base = value, base
    for _ in range(polish):
        best_value, best_base = solve(best_base)
    return c * best_base[:, :k] @ W_star


def _trajectory_overlaps(trajectory: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if hasattr(trajectory, "Q") and hasattr(trajectory, "R"):
        Q = as_real_array(trajectory.Q, "trajectory.Q", ndim_min=3)
        return Q, as_real_array(trajectory.R, "trajectory.R", ndim_min=3), trajectory.T
    try:
        Q, R = trajectory
    except (TypeError, ValueError):
        raise ValueError("trajectory must be an IntegrationResult or a pair (Q, R) of arrays") from None
    return as_real_array(Q, "Q", ndim_min=3), as_real_array(R, "R", ndim_min=3), None


def distance_to(trajectory: Any, target: tuple[np.ndarray, np.ndarray], *, T: np.ndarray | None = None) -> np.ndarray:
    """Squared weight-space distance per unit N, ``|W(alpha) - W_t|^2 / N``, along a trajectory.

    Expressed through overlaps: ``|W - W_t|^2 / N = tr Q - 2 tr(W W_t^T) / N + tr Q_t``.
    The cross term is known from overlaps only when the target lies in the
    teacher span, ``W_t = A W*`` (true for every zero-error point, where
    ``A = sqrt(p/k) O``): then ``W W_t^T / N = R A^T`` with ``A = R_t T^-1``, and

        d^2 = tr Q - 2 tr(R T^-1 R_t^T) + tr Q_t,

    which for ``T = I`` and ``R_t = sqrt(p/k) O`` is
    ``tr Q - 2 sqrt(p/k) tr(R O^T) + (p/k) tr(O O^T)``.

    Parameters
    ----------
    trajectory : IntegrationResult or (Q, R)
        ``Q`` shape (..., n, p, p), ``R`` shape (..., n, p, k): the axis before
        the matrix axes is the trajectory (time) axis, ``...`` are batch axes
        (e.g. many starts of a batched :func:`numerics.integrate`).
    target : (Q_t, R_t)
        Overlaps of the target, shapes (..., p, p) and (..., p, k), e.g. the
        output of :func:`closest_solution`; the target's batch axes broadcast
        against the trajectory's (one target for many trajectories, or one each).
    T : array, shape (k, k) or (..., k, k), optional
        Teacher-teacher overlaps. Default: ``trajectory.T`` for an
        ``IntegrationResult``, else the identity.

    Returns
    -------
    array, shape (..., n)
        Can be a few machine epsilons below zero at the target itself
        (a difference of O(1) traces).

    Raises
    ------
    ValueError
        Shapes that do not match, or a target not in the teacher span
        (``Q_t != R_t T^-1 R_t^T``): its distance is not a function of the overlaps.
    """
    Q, R, result_T = _trajectory_overlaps(trajectory)
    try:
        Q_t, R_t = target
    except (TypeError, ValueError):
        raise ValueError("target must be a pair (Q_target, R_target) of arrays") from None
    Q_t = as_real_array(Q_t, "Q_target")
    R_t = as_real_array(R_t, "R_target")
    p, k = R.shape[-2:]
    if Q.shape[-2:] != (p, p) or Q_t.shape[-2:] != (p, p) or R_t.shape[-2:] != (p, k):
        raise ValueError(
            f"shapes do not match: trajectory Q {Q.shape}, R {R.shape}; target Q {Q_t.shape}, R {R_t.shape}"
        )
    if T is None:
        T = np.eye(k) if result_T is None else result_T
    T = _check_teacher_gram(T, k)
    # A = R_t T^-1 (T symmetric): the target is W_t = A W*
    A = np.swapaxes(np.linalg.solve(T, np.swapaxes(R_t, -1, -2)), -1, -2)
    in_span = A @ T @ np.swapaxes(A, -1, -2)
    mismatch = float(np.max(np.abs(in_span - Q_t)))
    if mismatch > 1e-8 * max(1.0, float(np.max(np.abs(Q_t)))):
        raise ValueError(
            "the target is not in the teacher span (Q_target != R_target T^-1 R_target^T, max difference "
            f"{mismatch:.3g}): its distance to the trajectory is not a function of the overlaps"
        )
    # the target (and T, if batched) gets the trajectory's time axis
    A = A[..., None, :, :]
    with np.errstate(over="ignore", invalid="ignore"):
        tr_target = np.trace(Q_t, axis1=-2, axis2=-1)[..., None]
        cross = np.sum(R * A, axis=(-2, -1))
        out = np.trace(Q, axis1=-2, axis2=-1) - 2 * cross + tr_target
    check_finite_result("distance_to", out)
    return out
