"""The exact Jacobian of the overlap ODEs' right-hand side, for every model and setting.

The drift is the map ``x -> dx/dalpha`` of the independent overlaps

    x = (Q[0, 0], Q[0, 1], ..., Q[p-1, p-1],  R[0, 0], ..., R[p-1, k-1]  [, a[0], ..., a[p-1]])

(the upper triangle of the symmetric ``Q`` row by row, all of ``R``, and the student readout
when it is trained), as :func:`numerics.ode.overlaps.rhs` evaluates it. A change of the
off-diagonal coordinate ``Q[i, j]`` moves ``Q[i, j]`` and ``Q[j, i]`` together.

Every generated right-hand side is an analytic function of the covariance
``C = [[Q, R], [R^T, T]]`` inside the cone of positive definite covariances: polynomials for
the index-free modules, closed forms in ``sqrt`` and ``arcsin`` for the per-tuple erf and relu
kernels (the Gaussian averages of relu are analytic in ``C`` although relu is not). The
Jacobian is therefore computed by complex steps, ``J e_i = Im f(x + i h e_i) / h`` with
``h = 1e-30``: no difference is taken, so every column is exact to round-off, and all columns
(and all starts of a batch) go through the generated code in one call. The one kernel that is
evaluated by a real quadrature (relu's ``E[theta theta relu relu]`` in the ``eta**2`` term,
:mod:`numerics.kernels.relu_quadrature`) cannot carry a complex step; there the columns are
central differences extrapolated twice (Richardson, error ``O(h**6)`` with ``h`` a thousandth
of the overlaps' scale), and so are the relu drifts, whose kernels sit on a branch point of
``sqrt`` for every repeated unit (``c00 c22 - c02**2 = 0``), detected by complex-step columns
that change with the step. Those columns are accurate to about 1e-11 relative (relu without
the ``eta**2`` term) and 1e-8 (with it: the quadrature's own error, below 1e-10, divided by the
step), and the result says which method it used (:attr:`Jacobian.method`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import block_diag

from numerics.core.validation import check_finite_result, check_flag, check_int, check_overlaps, check_scalar
from numerics.ode.flow import OverlapFlow
from numerics.ode.overlaps import rhs_unchecked
from numerics.ode.readouts import check_readouts, readout_rhs
from numerics.ode.sphere import project_rates
from numerics.results.settings import RunSettings
from numerics.runtime.registry import ResolvedModel, resolve, tuple_module

#: The imaginary step of the complex-step columns (far below round-off of any overlap).
COMPLEX_STEP = 1e-30
#: Relative agreement of the complex-step columns at two steps that marks the drift analytic.
ANALYTIC_AGREEMENT = 1e-9
#: The largest real step of the Richardson fallback, relative to the overlaps' scale: large enough that
#: the relu quadrature's error (below 1e-10) divided by the step stays near 1e-8, small enough that the
#: truncation error (h**6) does not matter.
RICHARDSON_STEP = 3e-3
#: How the columns were computed (:attr:`Jacobian.method`).
COMPLEX_METHOD, RICHARDSON_METHOD = "complex step", "Richardson"


@dataclass(frozen=True)
class Jacobian:
    """The Jacobian of the overlap drift at a point (see :func:`jacobian`).

    Attributes
    ----------
    matrix : array, shape (..., n, n)
        ``matrix[..., i, j] = d(dx_i/dalpha) / dx_j`` over the coordinates ``x`` below
        (leading axes: the batch of points).
    coordinates : tuple of str
        The names of the ``n`` coordinates, in order: ``"Q[i,j]"`` (``i <= j``),
        ``"R[j,r]"``, and ``"a[j]"`` when the readout is trained.
    method : str
        ``"complex step"`` (exact to round-off) or ``"Richardson"`` (relu: about 1e-11 relative
        without the ``eta**2`` term, 1e-8 with it).
    """

    matrix: np.ndarray
    coordinates: tuple[str, ...]
    method: str

    def block(self, rows: str, columns: str) -> np.ndarray:
        """The sub-matrix of the rows of overlap ``rows`` and the columns of ``columns`` (``"Q"``, ``"R"``, ``"a"``)."""
        select = [[name.startswith(prefix + "[") for name in self.coordinates] for prefix in (rows, columns)]
        if not any(select[0]) or not any(select[1]):
            raise ValueError(f"rows and columns must name overlaps of the state {sorted(_prefixes(self))}, "
                             f"got {rows!r}, {columns!r}")
        return self.matrix[..., np.flatnonzero(select[0]), :][..., np.flatnonzero(select[1])]


def _prefixes(result: Jacobian) -> set[str]:
    return {name.split("[")[0] for name in result.coordinates}


def coordinate_names(p: int, k: int, trained: bool) -> tuple[str, ...]:
    """Names of the state coordinates, in the order of :func:`pack_state`."""
    iu = np.triu_indices(p)
    names = [f"Q[{i},{j}]" for i, j in zip(*iu)] + [f"R[{j},{r}]" for j in range(p) for r in range(k)]
    return tuple(names + ([f"a[{j}]" for j in range(p)] if trained else []))


def pack_state(Q: np.ndarray, R: np.ndarray, a: np.ndarray | None = None) -> np.ndarray:
    """The coordinates ``x`` (..., n) of ``Q`` (..., p, p), ``R`` (..., p, k) and a trained readout ``a`` (..., p)."""
    p, k = R.shape[-2:]
    iu = np.triu_indices(p)
    batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], () if a is None else a.shape[:-1])
    parts = [np.broadcast_to(Q[..., iu[0], iu[1]], batch + (len(iu[0]),)),
             np.broadcast_to(R, batch + (p, k)).reshape(batch + (p * k,))]
    if a is not None:
        parts.append(np.broadcast_to(a, batch + (p,)))
    return np.concatenate(parts, axis=-1)


def unpack_state(x: np.ndarray, p: int, k: int, trained: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(Q, R, a)`` of coordinates ``x`` (..., n); ``a`` is None unless ``trained``."""
    iu = np.triu_indices(p)
    n_upper = len(iu[0])
    Q = np.empty(x.shape[:-1] + (p, p), dtype=x.dtype)
    Q[..., iu[0], iu[1]] = x[..., :n_upper]
    Q[..., iu[1], iu[0]] = x[..., :n_upper]
    R = x[..., n_upper : n_upper + p * k].reshape(x.shape[:-1] + (p, k))
    return Q, R, (x[..., n_upper + p * k :] if trained else None)


class Drift:
    """The drift ``x -> dx/dalpha`` over the packed coordinates, for one set of settings.

    Parameters
    ----------
    T : array, shape (..., k, k)
        Teacher overlaps (batch axes broadcast against those of ``x``).
    eta : float
    values : dict
        The settings as :meth:`RunSettings.values` gives them (``model``, ``second_order``,
        ``batch_size``, ``a``, ``b``, ``eta_a``, ``readout_decay``, ``spherical``), already checked;
        the model's label flips take the readout route, the sphere projects the free drift.
    resolved : ResolvedModel
    p, k : int
    """

    def __init__(self, T: np.ndarray, eta: float, values: dict, resolved: ResolvedModel, p: int, k: int) -> None:
        self.T, self.eta, self.values, self.resolved, self.p, self.k = T, eta, values, resolved, p, k
        if values.get("sam_radius"):
            raise ValueError("the exact Jacobian of the drift is not derived for sharpness-aware steps "
                             "(sam_radius > 0)")
        self.trained = bool(values["eta_a"])
        # label flips mix the teacher readout and its negative: the readout route has the mixture
        self.per_unit = (values["a"] is not None or values["b"] is not None or self.trained
                         or resolved.label_flip > 0)
        self.module = tuple_module(values["model"]) if self.per_unit else None

    def __call__(self, x: np.ndarray, extra_axes: int = 0) -> np.ndarray:
        """``dx/dalpha`` (..., n) at ``x`` (..., n); ``extra_axes`` axes of ``x`` before the last are not
        batch axes of ``T`` and the readouts (the columns of a Jacobian)."""
        values, resolved = self.values, self.resolved
        Q, R, a_state = unpack_state(x, self.p, self.k, self.trained)
        T, b = _expand(self.T, 2, extra_axes), _expand(values["b"], 1, extra_axes)
        a = a_state if self.trained else _expand(values["a"], 1, extra_axes)
        if self.per_unit:
            dQ, dR, da = readout_rhs(
                self.module, Q, R, T, self.eta, a, b, values["eta_a"],
                noise_variance=resolved.noise_variance, weight_decay=resolved.weight_decay,
                second_order=values["second_order"], batch_size=values["batch_size"],
                readout_decay=values.get("readout_decay", 0.0), label_flip=resolved.label_flip,
            )
        else:
            dQ, dR = rhs_unchecked(Q, R, T, self.eta, resolved, values["second_order"], values["batch_size"])
            da = None
        if values.get("spherical"):
            dQ, dR = project_rates(Q, R, dQ, dR)
        return pack_state(dQ, dR, da if self.trained else None)


def _expand(array: np.ndarray | None, core: int, extra_axes: int) -> np.ndarray | None:
    """``array`` with ``extra_axes`` axes of length one inserted before its last ``core`` axes."""
    if array is None or not extra_axes:
        return array
    return np.expand_dims(array, tuple(range(array.ndim - core, array.ndim - core + extra_axes)))


def drift_jacobian(drift: Any, x: np.ndarray, method: str | None = None) -> tuple[np.ndarray, str]:
    """``(J, method)``: the Jacobian (..., n, n) of ``drift`` at ``x`` (..., n), all columns in one call.

    ``drift(x, extra_axes)`` evaluates the drift with ``extra_axes`` axes before the last that
    belong to ``x`` only (:class:`Drift`). Complex steps where the drift is analytic; a drift
    that drops the imaginary part (a real quadrature inside) or is evaluated on a branch point
    (relu's ``sqrt(c00 c22 - c02**2)`` is exactly zero for a repeated unit) is differentiated by
    Richardson-extrapolated central differences instead. A branch point is recognised by its
    complex-step columns changing with the step (``Im sqrt(i h) / h ~ h**-0.5``), where an
    analytic drift gives the same columns to round-off for every step. ``method``, the method
    an earlier call on the same drift returned, skips that test.
    """
    if method == COMPLEX_METHOD:
        return _complex_columns(drift, x, COMPLEX_STEP), COMPLEX_METHOD
    steps = () if method == RICHARDSON_METHOD else (COMPLEX_STEP, COMPLEX_STEP * 1e10)
    columns = [_complex_columns(drift, x, step) for step in steps] or [None]
    if len(columns) == 2 and columns[0] is not None and columns[1] is not None:
        scale = np.max(np.abs(columns[0]), axis=(-2, -1), keepdims=True) + np.finfo(float).tiny
        if np.all(np.abs(columns[0] - columns[1]) <= ANALYTIC_AGREEMENT * scale):
            return columns[0], COMPLEX_METHOD
    scale = np.maximum(1.0, np.max(np.abs(x), axis=-1))[..., None, None]
    identity = np.eye(x.shape[-1])

    def central(h: np.ndarray) -> np.ndarray:
        step = h * identity
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return (drift(x[..., None, :] + step, 1) - drift(x[..., None, :] - step, 1)) / (2 * h)

    # three levels h, h/2, h/4; each extrapolation removes the next even power of h
    h = RICHARDSON_STEP * scale
    d1, d2, d4 = central(h), central(h / 2), central(h / 4)
    first, second = (4 * d2 - d1) / 3, (4 * d4 - d2) / 3
    return np.swapaxes((16 * second - first) / 15, -1, -2), RICHARDSON_METHOD


def _complex_columns(drift: Any, x: np.ndarray, step: float) -> np.ndarray | None:
    """The complex-step Jacobian with imaginary ``step``, or None where the drift drops the imaginary part."""
    try:
        with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            values = drift(x[..., None, :] + 1j * step * np.eye(x.shape[-1]), 1)
    except (np.exceptions.ComplexWarning, TypeError):
        return None
    if not np.iscomplexobj(values):
        return None
    return np.swapaxes(values.imag, -1, -2) / step


def jacobian(
    Q: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    eta: float | None = None,
    settings: RunSettings | None = None,
    **setting_overrides: Any,
) -> Jacobian:
    """The exact Jacobian of the overlap drift :func:`numerics.rhs` at ``(Q, R[, a])``.

    Parameters
    ----------
    Q : array, shape (..., p, p)
    R : array, shape (..., p, k)
    T : array, shape (..., k, k)
        The point (leading axes: a batch of points) and the teacher overlaps, as in :func:`numerics.rhs`.
    eta : float
        Learning rate (>= 0); default ``settings.eta``.
    settings : RunSettings, optional
        The dynamics, or the same names as keywords: ``model``, ``second_order``,
        ``batch_size``, readout vectors ``a`` (..., p) and ``b`` (..., k), and ``eta_a``: a
        trained readout (``eta_a > 0``) adds ``a`` to the coordinates, at the value ``a``
        (default: the model's scalar readout on every unit); ``readout_decay``, ``spherical``
        (the projected drift, over the same coordinates) and the model's label flips.

    Returns
    -------
    Jacobian
        ``matrix`` of shape (..., n, n), ``n = p (p + 1) / 2 + p k (+ p)``, over the named
        :attr:`Jacobian.coordinates`.

    Raises
    ------
    ValueError
        Bad input (named), or a drift that is not finite at the point.
    TypeError
        No learning rate, or a keyword that is not a setting.

    Examples
    --------
    >>> J = jacobian(0.5 * np.eye(2), np.zeros((2, 2)), np.eye(2), 0.1, model=SCM)  # doctest: +SKIP
    >>> J.coordinates[:3], J.matrix.shape                                              # doctest: +SKIP
    (('Q[0,0]', 'Q[0,1]', 'Q[1,1]'), (7, 7))
    """
    drift, x = drift_at(Q, R, T, eta, settings, setting_overrides, "jacobian")
    matrix, method = drift_jacobian(drift, x)
    check_finite_result("jacobian", matrix)
    return Jacobian(matrix, coordinate_names(drift.p, drift.k, drift.trained), method)


def drift_at(
    Q: Any, R: Any, T: Any, eta: Any, settings: RunSettings | None, overrides: dict, where: str
) -> tuple[Drift, np.ndarray]:
    """The checked :class:`Drift` of the settings and the packed point ``x`` (..., n)."""
    values = RunSettings.values(settings, overrides, where)
    eta = values["eta"] if eta is None else eta
    if eta is None:
        raise TypeError(f"{where}() needs the learning rate: {where}(Q, R, T, eta) or settings=RunSettings(eta=...)")
    Q, R, T = check_overlaps(Q, R, T)
    p, k = R.shape[-2:]
    values["eta"] = check_scalar(eta, "eta", nonnegative=True)
    values["second_order"] = check_flag(values["second_order"], "second_order")
    values["batch_size"] = check_int(values["batch_size"], "batch_size", minimum=1)
    values["a"], values["b"], values["eta_a"] = check_readouts(values["a"], values["b"], values["eta_a"], p, k)
    resolved = resolve(values["model"], sizes=(p, k))
    drift = Drift(T, values["eta"], values, resolved, p, k)
    a_state = values["a"]
    if drift.trained and a_state is None:
        a_state = np.full(p, tuple_module(values["model"]).readouts(p, k)[0])
    return drift, pack_state(Q, R, a_state if drift.trained else None)


def flow_jacobian(flow: OverlapFlow) -> Any:
    """``jac(alpha, y)`` for ``solve_ivp``: the Jacobian of an :class:`OverlapFlow` in its own coordinates.

    The solver's state is ``(S, R[, a])`` with ``S = Q - R T^+ R^T`` (:mod:`numerics.ode.flow`);
    the derivative ``dS = dQ - dR T^+ R^T - R T^+ dR^T`` is differentiated by complex steps
    through the same drift (Richardson for relu's ``eta**2`` term). The projection of ``S`` onto
    the positive semi-definite cone is left out: it only acts at round-off level. A batch of
    starts gives a block-diagonal sparse matrix.
    """
    settings = flow.settings
    values = {name: getattr(settings, name) for name in RunSettings.field_names()}
    p, k, batch = flow.p, flow.k, flow.batch
    drift = Drift(flow.T, settings.eta, values, flow.resolved, p, k)
    T_pinv = flow.T_pinv

    def solver_drift(y: np.ndarray, extra_axes: int = 0) -> np.ndarray:
        S, R, a = unpack_state(y, p, k, drift.trained)
        pinv = _expand(T_pinv, 2, extra_axes)
        part = R @ pinv @ np.swapaxes(R, -1, -2)
        Q = S + (part + np.swapaxes(part, -1, -2)) / 2
        dx = drift(pack_state(Q, R, a), extra_axes)
        dQ, dR, da = unpack_state(dx, p, k, drift.trained)
        cross = dR @ pinv @ np.swapaxes(R, -1, -2)
        return pack_state(dQ - cross - np.swapaxes(cross, -1, -2), dR, da)

    known: list[str] = []  # the method of the first call: the drift's analyticity does not change along a run

    def jac(_alpha: float, y: np.ndarray) -> Any:
        states = y.reshape(batch + (-1,))
        matrix, method = drift_jacobian(solver_drift, states, known[0] if known else None)
        known[:] = [method]
        if not batch:
            return matrix
        return block_diag(list(matrix.reshape((-1,) + matrix.shape[-2:])), format="csc")

    return jac


__all__ = [
    "ANALYTIC_AGREEMENT",
    "COMPLEX_METHOD",
    "COMPLEX_STEP",
    "Drift",
    "Jacobian",
    "RICHARDSON_METHOD",
    "RICHARDSON_STEP",
    "coordinate_names",
    "drift_at",
    "drift_jacobian",
    "flow_jacobian",
    "jacobian",
    "pack_state",
    "unpack_state",
]
