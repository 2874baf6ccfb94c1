"""Input checks shared by the numerical API: clear ``ValueError``s that name the argument.

The rules, the same for every public function:

* **Arrays** hold real numbers. Integer and lower-precision float arrays are
  converted to float64. Refused, with a message naming the argument:
  complex arrays, *even with a zero imaginary part* (overlaps and weights are
  real; a complex array reaching here is a bug upstream, and casting it used
  to drop the imaginary part with only a warning); boolean arrays (a mask is
  not an overlap or weight matrix: convert explicitly if that is meant);
  strings; object arrays holding anything but real numbers (``None`` would
  otherwise become NaN); NaN and inf.
* **Real scalars** (learning rates, tolerances, thresholds, ...) are Python or
  NumPy real numbers (or 0-d arrays of one), finite, with the sign the
  argument needs; booleans, strings and complex numbers are refused.
* **Integers** (widths, ``N``, counts, sizes) are Python or NumPy integers, or
  floats with an integer value (``N=1e4``); they are returned as Python
  ``int`` so that later arithmetic cannot overflow a fixed-width NumPy type.
  Booleans are refused.
* **Alpha grids** are 1-d, finite, non-negative, increasing (strictly where
  the consumer needs it) and, when a horizon is given, within ``[0, alpha_max]``.
* **Results**: an overlap so large that the generated polynomials overflow
  gives a ``ValueError`` naming the function (:func:`check_finite_result`),
  never a NaN or inf return.

The checks are cheap: :func:`check_overlaps` (called by every public
:func:`numerics.rhs`) converts without copying float64 input, tests
finiteness and symmetry once on the joint covariance it builds anyway, and
decides positive semi-definiteness by a Cholesky factorisation (an
eigen-decomposition only when that fails, see
:func:`is_positive_semidefinite`). At p = 8 they cost less than the generated
right-hand side itself; hot loops that already hold valid float64 arrays can
skip them with ``numerics.rhs(..., check=False)``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from scipy.linalg.lapack import dpotrf as _potrf

#: Relative tolerance for symmetry and positive semi-definiteness checks.
SYMMETRY_RTOL = 1e-8
PSD_RTOL = 1e-8
#: Relative slack when comparing the last time of a grid with ``alpha_max`` (rounding of ``k * alpha_max / n``).
HORIZON_RTOL = 1e-12


def _first_bad_index(array: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])


def check_finite(array: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` and the first offending index if ``array`` has NaN or inf."""
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf (first at index {_first_bad_index(array)})")


def _real_from_objects(array: np.ndarray, name: str) -> np.ndarray:
    """An object array (e.g. Python ints beyond int64, Fractions, sympy numbers) as float64, element by element.

    Done one element at a time because ``np.asarray(objects, dtype=float)``
    turns ``None`` into NaN and would accept strings of digits.
    """
    values = []
    for item in array.flat:
        if isinstance(item, (bool, np.bool_, str, bytes)) or item is None:
            raise ValueError(f"{name} must be a real numeric array, got an element {item!r}")
        if isinstance(item, (numbers.Complex, np.complexfloating)) and not isinstance(item, numbers.Real):
            raise ValueError(f"{name} must be real, got a complex element {item!r}")
        try:
            values.append(float(item))
        except OverflowError:
            raise ValueError(f"{name} contains a number too large for a float ({item!r:.40})") from None
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a real numeric array, got an element {item!r}") from None
    return np.array(values, dtype=np.float64).reshape(array.shape)


def as_real_array(value: object, name: str, *, ndim_min: int = 2, finite: bool = True) -> np.ndarray:
    """``value`` as a float64 array with at least ``ndim_min`` axes (and finite entries if ``finite``).

    Float64 arrays are returned as they are (no copy). Complex, boolean,
    string and non-numeric object input is refused (see the module docstring).

    Parameters
    ----------
    value : array_like
    name : str
        Argument name used in the error messages.
    ndim_min : int
        Smallest accepted number of axes.
    finite : bool
        Also refuse NaN and inf (one pass over the entries).

    Returns
    -------
    numpy.ndarray of float64

    Raises
    ------
    ValueError
        Naming ``name``.
    """
    if type(value) is np.ndarray and value.dtype == np.float64:
        array = value  # the common case: no conversion, no dtype inspection
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError, OverflowError) as error:
            raise ValueError(f"{name} must be a real numeric array ({error})") from None
        kind = array.dtype.kind
        if kind == "c":
            raise ValueError(
                f"{name} must be real, got a complex array (dtype {array.dtype}); pass its real part "
                "explicitly if the imaginary part is meant to be dropped"
            )
        if kind == "b":
            raise ValueError(
                f"{name} must be a real numeric array, got booleans; convert explicitly (astype(float)) if meant"
            )
        if kind == "O":
            array = _real_from_objects(array, name)
        elif kind not in "iuf":
            raise ValueError(f"{name} must be a real numeric array, got dtype {array.dtype}")
        array = array.astype(np.float64, copy=False)
    if array.ndim < ndim_min:
        raise ValueError(f"{name} must have at least {ndim_min} axes, got shape {array.shape}")
    if finite:
        check_finite(array, name)
    return array


#: The former name of :func:`as_real_array`, kept for callers that import it.
as_float_array = as_real_array


def check_symmetric(array: np.ndarray, name: str) -> None:
    """Raise unless ``array`` is square and symmetric in its last two axes (relative :data:`SYMMETRY_RTOL`)."""
    if array.shape[-1] != array.shape[-2]:
        raise ValueError(f"{name} must be square in its last two axes, got shape {array.shape}")
    difference = array - np.swapaxes(array, -1, -2)
    if not difference.any():
        return  # exactly symmetric: the usual case, one pass
    scale = max(1.0, float(np.max(np.abs(array), initial=0.0)))
    asym = float(np.max(np.abs(difference), initial=0.0))
    if not asym <= SYMMETRY_RTOL * scale:  # also refuses NaN
        raise ValueError(f"{name} must be symmetric; max |{name} - {name}^T| = {asym:.3g}")


def check_scalar(
    value: object,
    name: str,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    below: float | None = None,
) -> float:
    """``value`` as a finite Python float, with the requested sign.

    Parameters
    ----------
    value : real number (Python or NumPy, or a 0-d array)
    name : str
        Argument name used in the error messages.
    positive, nonnegative : bool
        Require ``value > 0`` (``>= 0``).
    below : float, optional
        Require ``value < below``.

    Raises
    ------
    ValueError
        For booleans, strings, complex numbers, arrays with axes, NaN, inf and
        values outside the range, naming ``name``.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_, str, bytes, np.ndarray)) or value is None:
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if isinstance(value, (numbers.Complex, np.complexfloating)) and not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got the complex number {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:
        raise ValueError(f"{name} must be finite, got a number too large for a float") from None
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    if positive and number <= 0:
        raise ValueError(f"{name} must be positive, got {number}")
    if nonnegative and number < 0:
        raise ValueError(f"{name} must be non-negative, got {number}")
    if below is not None and not number < below:
        raise ValueError(f"{name} must be below {below:g}, got {number}")
    return number


def _int_range(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"an integer in [{minimum}, {maximum}]"
    if minimum == 1:
        return "a positive integer"
    if minimum is not None:
        return f"an integer >= {minimum}"
    if maximum is not None:
        return f"an integer <= {maximum}"
    return "an integer"


def check_int(value: object, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as a Python ``int`` in ``[minimum, maximum]``.

    Accepts Python and NumPy integers and floats with an integer value
    (``1e4``). Returning a Python ``int`` matters: arithmetic on a NumPy
    ``int32`` width (``N * p``, binomials) silently wraps around.

    Raises
    ------
    ValueError
        For booleans, non-integral or non-finite floats, non-numbers and
        values out of range, naming ``name``.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer, got the boolean {value!r}")
    if isinstance(value, (int, np.integer)):
        number = int(value)
    elif isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        number = int(value)
    else:
        raise ValueError(f"{name} must be {_int_range(minimum, maximum)}, got {value!r}")
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{name} must be {_int_range(minimum, maximum)}, got {number}")
    return number


def check_seed(seed: Any, name: str = "seed") -> Any:
    """A seed for ``numpy.random.default_rng``: None, a non-negative integer, a SeedSequence or a Generator.

    NumPy itself refuses bad seeds with a ``TypeError`` or a message that does
    not name the argument; booleans (``True`` would seed like ``1``) are refused too.
    """
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence, np.random.BitGenerator)):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)) and seed >= 0:
        return int(seed)
    raise ValueError(f"{name} must be None, a non-negative integer, a SeedSequence or a numpy Generator, got {seed!r}")


def check_flag(value: object, name: str) -> bool:
    """``value`` as a Python ``bool``; anything but ``True``/``False`` (or a NumPy bool) is refused.

    A string such as ``"no"`` would otherwise count as true.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_alpha_grid(
    values: object,
    name: str,
    *,
    alpha_max: float | None = None,
    strict: bool = True,
    min_size: int = 1,
) -> np.ndarray:
    """A grid of times ``alpha``: 1-d, finite, ``>= 0``, increasing, within ``[0, alpha_max]``.

    Parameters
    ----------
    values : array_like
    name : str
        Argument name used in the error messages.
    alpha_max : float, optional
        Horizon the grid must not pass (relative slack :data:`HORIZON_RTOL`).
    strict : bool
        Require strictly increasing times (else non-decreasing).
    min_size : int
        Fewest points accepted.

    Returns
    -------
    numpy.ndarray of float64, shape (n,)
    """
    grid = as_real_array(values, name, ndim_min=1)
    if grid.ndim != 1 or grid.size < min_size:
        raise ValueError(f"{name} must be a 1-d array of at least {min_size} alphas, got shape {grid.shape}")
    if grid.size and grid[0] < 0:
        raise ValueError(f"{name} must hold alphas >= 0, got {grid[0]:g} first")
    steps = np.diff(grid)
    if strict and np.any(steps <= 0):
        raise ValueError(f"{name} must be strictly increasing (first offending index {int(np.argmax(steps <= 0)) + 1})")
    if not strict and np.any(steps < 0):
        raise ValueError(f"{name} must be non-decreasing (first offending index {int(np.argmax(steps < 0)) + 1})")
    if alpha_max is not None and grid.size and grid[-1] > alpha_max * (1 + HORIZON_RTOL):
        raise ValueError(f"{name} goes beyond alpha_max = {alpha_max:g} (last alpha {grid[-1]:g})")
    return grid


def check_alphas(values: object, name: str) -> np.ndarray:
    """Evaluation times of a closed-form curve: finite and ``>= 0``, any order, shape kept."""
    alphas = as_real_array(values, name, ndim_min=0)
    if np.any(alphas < 0):
        raise ValueError(f"{name} must hold alphas >= 0, got a minimum of {float(np.min(alphas)):g}")
    return alphas


def overflow_error(function: str) -> ValueError:
    """The ``ValueError`` reported when the generated code of ``function`` overflows."""
    return ValueError(f"{function}: the result is not finite (floating-point overflow): the overlaps are too large")


def check_finite_result(function: str, *arrays: Any) -> None:
    """Raise :func:`overflow_error` for ``function`` if any output holds NaN or inf.

    With finite, validated input the only way there is floating-point
    overflow of the generated polynomials: the overlaps are too large.
    """
    for array in arrays:
        if not np.isfinite(array).all():
            raise overflow_error(function)


def covariance(Q: np.ndarray, R: np.ndarray, T: np.ndarray) -> np.ndarray:
    """The joint covariance ``C = [[Q, R], [R^T, T]]`` of (lambda, nu), batched.

    float64, or complex when an input is (the complex-step Jacobian, :mod:`numerics.ode.jacobian`).
    """
    p, k = R.shape[-2:]
    dtype = np.result_type(Q, R, T, np.float64)
    if Q.ndim == 2 and R.ndim == 2 and T.ndim == 2:
        # unbatched: np.broadcast_shapes alone costs more than the four copies at p = 8
        C = np.empty((p + k, p + k), dtype=dtype)
        C[:p, :p] = Q
        C[:p, p:] = R
        C[p:, :p] = R.T
        C[p:, p:] = T
        return C
    batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])
    C = np.empty(batch + (p + k, p + k), dtype=dtype)
    C[..., :p, :p] = Q
    C[..., :p, p:] = R
    C[..., p:, :p] = np.swapaxes(R, -1, -2)
    C[..., p:, p:] = T
    return C


def min_relative_eigenvalue(C: np.ndarray) -> np.ndarray:
    """Smallest eigenvalue of each covariance divided by its scale (``max(1, |C|)``)."""
    eigenvalues = np.linalg.eigvalsh(C)
    scale = np.maximum(1.0, np.max(np.abs(eigenvalues), axis=-1))
    return eigenvalues[..., 0] / scale


def is_positive_semidefinite(C: np.ndarray) -> bool:
    """Whether every (symmetric) matrix in ``C`` passes the PSD test of :func:`check_overlaps`.

    The test is ``min eigenvalue >= -PSD_RTOL * max(1, max |eigenvalue|)``. A
    Cholesky factorisation decides it cheaply for almost every input: if ``C``
    itself, or ``C + PSD_RTOL * max(1, max |C_ii|) I`` (singular but PSD
    covariances, e.g. ``R = 0`` with a rank-deficient ``T``), factorises, the
    smallest eigenvalue is above ``-PSD_RTOL`` times a scale no larger than the
    test's (``max |C_ii| <= max |eigenvalue|``), so the test passes. Only when
    both fail is the eigen-decomposition computed, which decides exactly. At
    p = 8 the first factorisation costs a few microseconds against tens for
    ``eigvalsh``.
    """
    if C.ndim == 2:
        # LAPACK's potrf directly: NumPy's cholesky adds ~20 us of gufunc set-up at this size
        if _potrf(C, lower=1, clean=0)[1] == 0:
            return True
        scale = max(1.0, float(np.max(np.abs(np.diagonal(C)))))
        if _potrf(C + (PSD_RTOL * scale) * np.eye(C.shape[-1]), lower=1, clean=0)[1] == 0:
            return True
    else:
        try:
            np.linalg.cholesky(C)
            return True
        except np.linalg.LinAlgError:
            pass
        scale = np.maximum(1.0, np.max(np.abs(np.diagonal(C, axis1=-2, axis2=-1)), axis=-1))
        try:
            np.linalg.cholesky(C + (PSD_RTOL * scale)[..., None, None] * np.eye(C.shape[-1]))
            return True
        except np.linalg.LinAlgError:
            pass
    return bool(np.min(min_relative_eigenvalue(C)) >= -PSD_RTOL)


_FLOAT64 = np.dtype(np.float64)


def _valid_unbatched(Q: object, R: object, T: object) -> bool:
    """Whether ``Q``, ``R``, ``T`` are float64 matrices of matching shapes passing every check.

    The common case of :func:`check_overlaps` with as few NumPy calls as
    possible (one copy into ``C``, one finiteness test, one exact symmetry test,
    one Cholesky factorisation): at p = 8 each NumPy call costs about as much as the
    arithmetic, so this is what keeps validation cheaper than the generated
    right-hand side. ``False`` means "not decided here": the general path then
    checks again and names what is wrong.
    """
    if not (type(Q) is np.ndarray and type(R) is np.ndarray and type(T) is np.ndarray):
        return False
    if Q.dtype is not _FLOAT64 or R.dtype is not _FLOAT64 or T.dtype is not _FLOAT64:
        return False  # (float64 arrays share one dtype instance; any other goes the general way)
    if Q.ndim != 2 or R.ndim != 2 or T.ndim != 2:
        return False
    p, k = R.shape
    if Q.shape != (p, p) or T.shape != (k, k) or p < 1 or k < 1:
        return False
    n = p + k
    C = np.empty((n, n))
    C[:p, :p] = Q
    C[:p, p:] = R
    C[p:, :p] = R.T
    C[p:, p:] = T
    # finite (first: the comparison below is then exact), exactly symmetric, positive definite
    # by Cholesky; a singular PSD covariance (e.g. R = 0 with a singular T) is left to the
    # general path
    return bool(np.isfinite(C).all()) and not (C != C.T).any() and _potrf(C, lower=1, clean=0)[1] == 0


def check_overlaps(
    Q: object, R: object, T: object, *, names: tuple[str, str, str] = ("Q", "R", "T")
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate ``Q`` (..., p, p), ``R`` (..., p, k), ``T`` (..., k, k) and return float arrays.

    Raises ``ValueError`` for non-real or non-numeric input, wrong shapes,
    ``p < 1`` or ``k < 1``, non-finite entries, non-symmetric ``Q`` or ``T``,
    and a joint covariance ``C`` that is not positive semi-definite (relative
    tolerance :data:`PSD_RTOL`). ``names`` are the caller's argument names
    (e.g. ``("Q0", "R0", "T")``), used in the messages.
    """
    if _valid_unbatched(Q, R, T):
        return Q, R, T  # type: ignore[return-value]
    name_Q, name_R, name_T = names
    Q = as_real_array(Q, name_Q, finite=False)
    R = as_real_array(R, name_R, finite=False)
    T = as_real_array(T, name_T, finite=False)
    for matrix, name, width in ((Q, name_Q, "p"), (T, name_T, "k")):
        if matrix.shape[-1] != matrix.shape[-2]:
            raise ValueError(f"{name} must be square in its last two axes, got shape {matrix.shape}")
        if matrix.shape[-1] < 1:
            raise ValueError(f"{width} must be >= 1: {name} has shape {matrix.shape}")
    p, k = Q.shape[-1], T.shape[-1]
    if R.shape[-2:] != (p, k):
        raise ValueError(
            f"{name_R} must have shape (..., p, k) = (..., {p}, {k}) to match {name_Q} and {name_T}, got {R.shape}"
        )
    try:
        if Q.ndim > 2 or R.ndim > 2 or T.ndim > 2:
            np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])
    except ValueError:
        raise ValueError(
            f"batch shapes of {name_Q} {Q.shape[:-2]}, {name_R} {R.shape[:-2]} and {name_T} {T.shape[:-2]} "
            "do not broadcast"
        ) from None
    C = covariance(Q, R, T)
    # one finiteness test on C, which holds every entry of Q, R and T; the search for the
    # culprit (for the message) only runs when it fails
    if not np.isfinite(C).all():
        for matrix, name in ((Q, name_Q), (R, name_R), (T, name_T)):
            check_finite(matrix, name)
    # C is symmetric exactly when Q and T are (its R blocks are transposes by construction):
    # one test, and the per-matrix tests (with their messages) only when it fails
    if (C - (C.T if C.ndim == 2 else np.swapaxes(C, -1, -2))).any():
        check_symmetric(Q, name_Q)
        check_symmetric(T, name_T)
    if C.size and not is_positive_semidefinite(C):
        worst = float(np.min(min_relative_eigenvalue(C)))
        raise ValueError(
            f"the covariance C = [[{name_Q}, {name_R}], [{name_R}^T, {name_T}]] is not positive semi-definite "
            f"(smallest relative eigenvalue {worst:.3g})"
        )
    return Q, R, T
