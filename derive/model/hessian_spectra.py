"""Closed-form Hessian spectra at the stationary points of the paper model (App. 7.2), as data.

One table serves both packages: ``derive/paper/landscape.py`` fills it with
sympy symbols (and derives ``c**2`` of the aligned point) to print the
equations, ``numerics/analyses/closed_forms.py`` fills it with exact
:class:`fractions.Fraction` numbers to check the computed spectra. The
entries use only ``+ - * /`` on their arguments, so this module needs no
sympy and the same code gives symbols or numbers.

Paper model (``sigma = x**2``, ``a = 1/p``, ``b = 1/k``, ``T = I``), for
``N >= p + k``; eigenvalues are given times ``N``. The derivation of the
pieces is in the docstring of ``derive/paper/landscape.py``.
"""

from __future__ import annotations

from typing import Any

#: The stationary points with a closed-form spectrum.
POINT_NAMES = ("tabula_rasa", "plateau", "zero_error", "aligned")


def aligned_norm(k: Any) -> Any:
    """``c**2 = (k + 2) / (3 k)``: the stationary norm of students all aligned to one teacher."""
    return (k + 2) / (3 * k)


def _choose2(n: Any) -> Any:
    return n * (n - 1) / 2


def spectrum_table(point: str, N: Any, p: Any, k: Any, r: Any, c2: Any) -> list[tuple[Any, Any]]:
    """``[(N * eigenvalue, multiplicity), ...]`` at ``point``, before equal eigenvalues are merged.

    Parameters
    ----------
    point : str
        One of :data:`POINT_NAMES`.
    N, p, k : numbers or symbols
        Input dimension, student and teacher widths. Plain ``int`` would
        divide in floating point: pass ``Fraction`` or sympy symbols.
    r : number or symbol
        Rank of the plateau (active students, ``1 <= r <= p``); unused elsewhere.
    c2 : number or symbol
        ``c**2`` of the aligned point (:func:`aligned_norm`); unused elsewhere.

    Returns
    -------
    list of (value, multiplicity) pairs, in the order the equations print them;
    several may share an eigenvalue, and a multiplicity may vanish for given sizes.

    Raises
    ------
    ValueError
        If ``point`` is not in :data:`POINT_NAMES`.
    """
    if point == "tabula_rasa":
        return [(-2 / p, p * (N - k)), (-2 / p - 4 / (p * k), p * k)]
    if point == "plateau":
        return [
            (0 * p, r * (N - r - k) + (p - r) * r + _choose2(r)),
            (-4 / (p * (r + 2)), (p - r) * (N - r - k)),
            (-4 / (p * (r + 2)) - 4 / (p * k), (p - r) * k),
            (-4 / (p * k), r * k),
            # student-student block c (X + X^T + tr(X) I), c = 4 q / p**2 with q = p / (r + 2)
            (8 / (p * (r + 2)), _choose2(r + 1) - 1),
            (4 / p, 1 + 0 * p),
        ]
    if point == "zero_error":
        return [
            (0 * p, (p - k) * (N - k) + (p - k) * k + _choose2(k)),
            (4 / (p * k), k * (N - k)),
            (8 / (p * k), _choose2(k + 1) - 1),
            (4 * (k + 2) / (p * k), 1 + 0 * p),
        ]
    if point == "aligned":
        return [
            # other teachers' directions: A on 1-perp or on 1, plus S = -4/(pk)
            (-2 * (1 - c2) / p - 4 / (p * k), (p - 1) * (k - 1)),
            (4 * c2 / p - 2 * (1 - c2) / p - 4 / (p * k), k - 1),
            # orthogonal complement of the teacher span: eigenvalues of A
            (-2 * (1 - c2) / p, (p - 1) * (N - k)),
            (4 * c2 / p - 2 * (1 - c2) / p, N - k),
            # the aligned teacher's direction: A + S = (4/p)(c**2 - 1/k), plus P on the all-ones mode
            (-2 * (1 - c2) / p + 4 / p * (c2 - 1 / k), p - 1),
            (4 * c2 / p - 2 * (1 - c2) / p + 4 / p * (c2 - 1 / k) + 8 * c2 / p, 1 + 0 * p),
        ]
    raise ValueError(f"point must be one of {POINT_NAMES}, got {point!r}")
