"""Closed forms of the paper model: Hessian spectra at the stationary points, degrees of freedom (App. 7.2, 7.5).

The spectra are the tables of ``derive/model/hessian_spectra.py`` (the same
ones ``derive/paper/landscape.py`` prints as equations), evaluated here in
exact fractions.
"""

from __future__ import annotations

from fractions import Fraction
from math import comb

from derive.model.hessian_spectra import POINT_NAMES, aligned_norm, spectrum_table
from numerics.analyses.stationary_points import widths_as_ints
from numerics.core.validation import check_int


def predicted_spectrum(name: str, N: int, p: int, k: int, *, rank: int | None = None) -> list[tuple[float, int]]:
    """Closed-form distinct eigenvalues of the Hessian (times 1/N) with multiplicities.

    Returns ``[(eigenvalue, multiplicity), ...]`` ascending, equal values merged,
    zero multiplicities dropped. Paper model, ``T = I``, ``N >= p + k``.

    Raises
    ------
    ValueError
        Widths that are not positive integers (booleans and non-integral
        floats included), a ``rank`` outside ``[0, p]``, or sizes for which
        the point does not exist (``N < k``; ``N < rank + k`` at the plateau;
        ``p < k`` at zero error). The widths are converted to Python ints
        first, so NumPy ``int32`` input cannot wrap around.
    """
    N, p, k = widths_as_ints(N, p, k)
    r = p if rank is None else check_int(rank, "rank", minimum=0, maximum=p)
    if rank is not None and name != "plateau":
        raise ValueError(f"rank is only meaningful for the plateau, got name={name!r} and rank={rank!r}")
    if N < k:
        raise ValueError(f"N must be at least k = {k}, got N={N}")
    if name == "plateau" and N < r + k:
        raise ValueError(f"N must be at least rank + k = {r + k} for the plateau, got N={N}")
    if name == "zero_error" and p < k:
        raise ValueError(f"zero-error points need p >= k, got p={p}, k={k}")
    if name == "plateau" and r == 0:
        name = "tabula_rasa"
    if name == "aligned" and k == 1:
        name = "zero_error"  # one teacher: the aligned students make no error
    if name not in POINT_NAMES:
        raise ValueError(f"name must be one of {POINT_NAMES}, got {name!r}")
    sizes = (Fraction(N), Fraction(p), Fraction(k), Fraction(r))
    pairs = spectrum_table(name, *sizes, aligned_norm(Fraction(k)))
    # exact fractions: equal eigenvalues (e.g. k = r + 2) merge exactly
    merged: dict[Fraction, Fraction] = {}
    for value, count in pairs:
        merged[value] = merged.get(value, Fraction(0)) + count
    return [(float(value / N), int(count)) for value, count in sorted(merged.items()) if count > 0]


def predicted_counts(name: str, N: int, p: int, k: int, *, rank: int | None = None) -> dict[str, int]:
    """Closed-form numbers of negative, null and positive Hessian eigenvalues."""
    pairs = predicted_spectrum(name, N, p, k, rank=rank)
    return {
        "negative": sum(c for v, c in pairs if v < 0),
        "null": sum(c for v, c in pairs if v == 0),
        "positive": sum(c for v, c in pairs if v > 0),
    }


def plateau_negative_null_ratio(N: int, p: int, k: int) -> float:
    """Eq. 29: negatives / nulls at the plateau, ``2k / (2N - p - 2k - 1)`` (-> k/N as N grows)."""
    counts = predicted_counts("plateau", N, p, k)
    if counts["null"] == 0:
        raise ValueError(f"the plateau has no null directions for N={N}, p={p}, k={k}: the ratio is undefined")
    return counts["negative"] / counts["null"]


def student_expressivity(N: int, p: int) -> int:
    """Dimension of ``{W^T W : W in R^(p x N)}``: ``pN - p(p-1)/2`` for p <= N, ``N(N+1)/2`` beyond."""
    N, p = check_int(N, "N", minimum=1), check_int(p, "p", minimum=1)
    m = min(p, N)
    return m * N - comb(m, 2)


def solution_manifold_dimension(N: int, p: int, k: int) -> int | None:
    """Dimension of the zero-error manifold ``{W : W^T W / p = W*^T W* / k}`` (T = I, N >= k).

    ``pk - k(k+1)/2`` when ``p >= k`` (a Stiefel manifold); ``None`` (no
    solution) when ``p < k``. Independent of N once ``N >= k``.
    """
    N, p, k = widths_as_ints(N, p, k)
    if N < k:
        raise ValueError(f"N must be at least k, got N={N}, k={k}")
    if p < k:
        return None
    return p * k - comb(k + 1, 2)
