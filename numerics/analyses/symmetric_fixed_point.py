"""The symmetric (unspecialised) fixed point of a committee machine's overlap ODE.

On the plateau of Saad and Solla's soft committee machine (``p = k = K``, ``T = I``) every
student has the same norm ``Q_jj = Q``, the same mutual overlap ``Q_jl = C`` and the same
overlap ``R_jr = R`` with every teacher unit (no student has specialised), and with a
trained second layer every readout is ``a_j = a``. The ODE keeps this subspace invariant
(the flow commutes with a common permutation of the students and of the teachers), and
the plateau is its fixed point there, unstable only across the subspace. This module
finds it by root finding on the toolkit's own right-hand side restricted to the
subspace, so the plateau level it reports is the one the ODE integrates to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SymmetricFixedPoint:
    """A fixed point with ``Q_jj = Q``, ``Q_jl = C`` (j != l), ``R_jr = R``, ``a_j = a``.

    Attributes
    ----------
    Q, C, R : float
        Student norms, student-student and student-teacher overlaps.
    a : float
        Student readout (the fixed one when the second layer is not trained).
    risk : float
        Population risk at the fixed point (label noise included).
    residual : float
        Largest absolute entry of the right-hand side there.
    """

    Q: float
    C: float
    R: float
    a: float
    risk: float
    residual: float

    def overlaps(self, K: int) -> tuple[np.ndarray, np.ndarray]:
        """``(Q, R)`` matrices, shapes (K, K) and (K, K)."""
        Q = np.full((K, K), self.C) + (self.Q - self.C) * np.eye(K)
        return Q, np.full((K, K), self.R)


def _overlaps(K: int, Q: float, C: float, R: float) -> tuple[np.ndarray, np.ndarray]:
    return np.full((K, K), C) + (Q - C) * np.eye(K), np.full((K, K), R)


def symmetric_fixed_point(
    K: int,
    eta: float,
    *,
    model: Any,
    b: float = 1.0,
    a: float = 1.0,
    eta_a: float = 0.0,
    second_order: bool = True,
    guess: tuple[float, ...] | None = None,
) -> SymmetricFixedPoint:
    """Root of the ODE restricted to the symmetric subspace, ``p = k = K``, ``T = I``.

    Parameters
    ----------
    K : int
        Number of student and of teacher units (>= 1).
    eta : float
        Learning rate of the first layer (> 0).
    model : derive.Model
        The committee machine (e.g. ``derive.model.model.SCM``); readouts are given by ``a``, ``b``.
    b : float
        Teacher readout of every unit.
    a : float
        Student readout: fixed when ``eta_a == 0``, else the root finder's first guess.
    eta_a : float
        Learning rate of the second layer (>= 0). With ``eta_a > 0`` the readout is an unknown.
    second_order : bool
        Keep the ``eta**2`` term (``False``: the small-learning-rate limit, where the
        fixed point does not depend on eta).
    guess : tuple of floats, optional
        Start ``(Q, C, R)`` or ``(Q, C, R, a)`` of the root finder. Default: the
        small-learning-rate fixed point of unit readouts, ``Q = C = 1/(2K - 1)``,
        ``R = 1/sqrt(K (2K - 1))``, where every student equals the teachers' sum scaled.
        A guess with ``Q == C`` is solved within the invariant set of identical students
        (with a trained readout a root with ``Q != C`` lies nearby; a guess with ``Q != C``
        can reach it).

    Returns
    -------
    SymmetricFixedPoint

    Raises
    ------
    ValueError
        Bad arguments, or when the root finder does not converge (the message says
        from which guess).
    """
    from scipy.optimize import root

    from numerics.ode.overlaps import rhs, risk

    if int(K) != K or K < 1:
        raise ValueError(f"K must be a positive integer, got {K!r}")
    if not eta > 0:
        raise ValueError(f"eta must be positive, got {eta!r}")
    if not eta_a >= 0:
        raise ValueError(f"eta_a must be >= 0, got {eta_a!r}")
    K = int(K)
    trained = eta_a > 0
    T = np.eye(K)
    b_vector = np.full(K, float(b))
    if guess is None:
        guess = (1 / (2 * K - 1), 1 / (2 * K - 1), 1 / np.sqrt(K * (2 * K - 1)))
        guess = guess + ((a,) if trained else ())
    if len(guess) != 3 + trained:
        raise ValueError(f"guess must hold {3 + trained} numbers (Q, C, R{', a' if trained else ''}), got {guess!r}")

    def split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        Q, R = _overlaps(K, *x[:3])
        return Q, R, np.full(K, x[3] if trained else float(a))

    def equations(x: np.ndarray) -> np.ndarray:
        Q, R, a_vector = split(x)
        derivatives = rhs(Q, R, T, eta, model=model, second_order=second_order, a=a_vector, b=b_vector,
                          eta_a=eta_a if trained else None, check=False)
        # one equation per free parameter: the subspace is invariant, so the other entries agree
        values = [derivatives[0][0, 0], derivatives[0][0, min(1, K - 1)], derivatives[1][0, 0]]
        if K == 1:  # no mutual overlap: pin C to Q
            values[1] = x[1] - x[0]
        return np.array(values + ([derivatives[2][0]] if trained else []))

    start = np.asarray(guess, dtype=float)
    if start[0] == start[1]:
        # identical students (Q = C) are an invariant set of the flow, and with a trained readout a
        # second root with Q != C lies close by: solve within the set, so round-off in the
        # right-hand side cannot steer the root finder to the other root
        def identical(y: np.ndarray) -> np.ndarray:
            values = equations(np.concatenate([[y[0], y[0]], y[1:]]))
            return np.delete(values, 1)

        reduced = root(identical, np.delete(start, 1), method="hybr", tol=1e-14)
        solution_x, message = np.concatenate([[reduced.x[0], reduced.x[0]], reduced.x[1:]]), reduced.message
    else:
        solution = root(equations, start, method="hybr", tol=1e-14)
        solution_x, message = solution.x, solution.message
    Q, R, a_vector = split(solution_x)
    derivatives = rhs(Q, R, T, eta, model=model, second_order=second_order, a=a_vector, b=b_vector,
                      eta_a=eta_a if trained else None)
    residual = max(float(np.max(np.abs(d))) for d in derivatives)
    # judged by the residual: hybr may report no progress once it is already at round-off
    if not np.isfinite(residual) or residual > 1e-10:
        raise ValueError(f"no symmetric fixed point found from the guess {tuple(guess)} "
                         f"(K={K}, eta={eta}, eta_a={eta_a}): {message}, residual {residual:.3g}")
    return SymmetricFixedPoint(Q=float(Q[0, 0]), C=float(Q[0, min(1, K - 1)]), R=float(R[0, 0]),
                               a=float(a_vector[0]), risk=float(risk(Q, R, T, model=model, a=a_vector, b=b_vector)),
                               residual=residual)
