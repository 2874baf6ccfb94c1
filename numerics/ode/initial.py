"""Initial conditions of the overlap ODEs (paper Eq. 8)."""

from __future__ import annotations

import numpy as np

from numerics.core.validation import check_int, check_scalar, check_seed


def _check_width(value: object, name: str) -> int:
    return check_int(value, name, minimum=1)


def initial_conditions(
    p: int,
    k: int,
    *,
    N: float,
    q0: float = 1.0,
    seed: int | np.random.Generator | None = None,
    batch: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paper Eq. 8: ``Q0 = q0 I_p``, ``R0_jr ~ N(0, q0 / N)`` i.i.d., ``T = I_k``.

    Parameters
    ----------
    p, k : int
        Student and teacher widths.
    N : float
        Input dimension; sets the variance ``q0 / N`` of the initial
        teacher-student overlaps (what random orthogonal vectors give).
    q0 : float
        Initial squared norm of every student (divided by N).
    seed : int or numpy Generator, optional
        Randomness of ``R0``.
    batch : int, optional
        If given, return ``batch`` independent starts stacked on a leading axis.

    Returns
    -------
    Q0 : array, shape (p, p) or (batch, p, p)
    R0 : array, shape (p, k) or (batch, p, k)
    T : array, shape (k, k)
    """
    p = _check_width(p, "p")
    k = _check_width(k, "k")
    N = check_scalar(N, "N", positive=True)
    q0 = check_scalar(q0, "q0", positive=True)
    rng = np.random.default_rng(check_seed(seed))
    lead = () if batch is None else (_check_width(batch, "batch"),)
    R0 = rng.normal(0.0, np.sqrt(q0 / N), size=lead + (p, k))
    Q0 = np.broadcast_to(q0 * np.eye(p), lead + (p, p)).copy()
    return Q0, R0, np.eye(k)
