"""Right-hand sides of the overlap ODEs and the population risk, from generated code."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from numerics.core.validation import (
    check_finite_result,
    check_flag,
    check_int,
    check_overlaps,
    check_scalar,
    overflow_error,
)
from numerics.ode.readouts import check_readouts, readout_rhs, teacher_mixture
from numerics.ode.sam import check_sam_model, sam_rates
from numerics.ode.sphere import check_on_sphere, project_rates
from numerics.results.settings import RunSettings
from numerics.runtime.registry import resolve, tuple_module

#: The settings' defaults (the fast path of a call without settings or keywords).
_DEFAULTS = {"eta": None, **RunSettings.defaults()}

#: ``np.add.reduce``: the sum without the method-call overhead of ``ndarray.sum`` (about 1 us at p = 8).
_sum = np.add.reduce


def rhs(
    Q: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    eta: float | None = None,
    settings: RunSettings | None = None,
    *,
    check: bool = True,
    **setting_overrides: Any,
) -> tuple[np.ndarray, ...]:
    """Time derivatives ``(dQ/dalpha, dR/dalpha)`` of the overlaps (and ``da/dalpha`` with ``eta_a``).

    Parameters
    ----------
    Q : array, shape (..., p, p)
        Student-student overlaps ``W W^T / N`` (symmetric).
    R : array, shape (..., p, k)
        Student-teacher overlaps ``W W*^T / N``.
    T : array, shape (..., k, k)
        Teacher-teacher overlaps (the paper: identity).
    eta : float
        Learning rate (>= 0); default ``settings.eta``.
    settings : RunSettings, optional
        The dynamics (:class:`~numerics.results.settings.RunSettings`); its entries, or the
        same names as keywords (``model=``, ``second_order=``, ... below), override the defaults.
        Other keyword names raise ``TypeError``.
    model : derive.Model, optional
        The model; ``None`` is the paper's (``x**2``, readouts 1/p and 1/k).
    second_order : bool
        Keep the ``eta**2`` term (finite learning rate). ``False`` gives the
        gradient-flow limit.
    batch_size : int
        Mini-batch size ``B >= 1`` (each step averages the update over ``B``
        fresh samples; ``alpha`` counts steps / N). The first-order terms are
        unchanged; the ``eta**2`` term and its label-noise part are divided by
        ``B`` (docs/model.md).
    check : bool
        Validate the input and the result (default). ``False`` is for hot
        loops that already hold valid input: nothing is checked or converted
        (``Q``, ``R``, ``T`` must be float64 arrays of matching shapes with a
        positive semi-definite joint covariance, ``eta`` a float, the readouts
        of ``model`` finite at these widths), and an overflow returns inf or
        NaN (or raises ``OverflowError``) instead of a ``ValueError``. The
        result is the same as with ``check=True`` on valid input.
    a : array, shape (p,) or (..., p), optional
        Per-unit student readouts, replacing the model's scalar one (e.g. a
        trained readout's current value).
    b : array, shape (k,) or (..., k), optional
        Per-unit teacher readouts.
    eta_a : float, optional
        Learning rate of a trained student readout (>= 0); when given as a
        keyword (0 included), or when ``settings`` train the readout
        (``eta_a > 0``), the result also holds ``da/dalpha = eta_a <(y - f) sigma(lambda_j)>``.
        Readout vectors and ``eta_a`` use the model's per-tuple module
        (:mod:`numerics.ode.readouts`).
    readout_decay : float, optional
        Weight decay ``kappa_a`` of the trained readout (needs ``eta_a > 0``):
        ``da/dalpha = eta_a (<(y - f) sigma(lambda_j)> - kappa_a a_j)``.
    spherical : bool, optional
        Spherical SGD (every student renormalised to its norm after each step): the free
        right-hand side projected, ``dQ_jj = 0`` (:mod:`numerics.ode.sphere`); needs every
        ``Q_jj > 0``.
    sam_radius : float, optional
        Sharpness-aware steps with radius ``rho >= 0`` (:mod:`numerics.ode.sam`): each sample's
        gradient at its own ascent point. Exact for polynomial models with the model's scalar
        readouts (``c x**2 + c0`` at any width, others at small widths); erf, relu and sign units,
        readout vectors, ``eta_a`` and ``spherical`` are refused.

    Returns
    -------
    dQ : array, shape (..., p, p)
    dR : array, shape (..., p, k)
    da : array, shape (..., p)
        Only with ``eta_a`` (see there).

    Raises
    ------
    ValueError
        Bad input (see :mod:`numerics.core.validation`), or overlaps so large that
        the derivatives overflow (never a NaN or inf return); with
        ``check=True`` only.

    Notes
    -----
    ``dR = eta D_R - eta kappa R`` and
    ``dQ = eta D_Q + (eta**2 / B) (V_Q + Delta N_Q) - 2 eta kappa Q`` with the
    generated ``D``, ``V``, ``N`` of ``docs/equations.md``.

    At p = 8 the checks cost less than the generated computation (about 1x to
    2x the unchecked call in total, see ``bench/README.md``).
    """
    values = _DEFAULTS if settings is None and not setting_overrides else (
        RunSettings.values(settings, setting_overrides, "rhs"))
    if values["sam_radius"]:
        return _rhs_sam(Q, R, T, eta, values, setting_overrides, check)
    if values["spherical"] is not False:
        return _rhs_on_sphere(Q, R, T, eta, settings, setting_overrides, check)
    if eta is None:
        eta = values["eta"]
        if eta is None:
            raise TypeError("rhs() needs the learning rate: rhs(Q, R, T, eta) or settings=RunSettings(eta=...)")
    model, second_order, batch_size, a, b = (values[name] for name in ("model", "second_order", "batch_size", "a", "b"))
    # the readout's derivative is part of the result when eta_a is asked for, or trained
    eta_a = values["eta_a"] if "eta_a" in setting_overrides or values["eta_a"] else None
    readout_decay = values["readout_decay"]
    label_flip = getattr(model, "label_flip", 0)  # not a Model: resolve() names the problem below
    if a is not None or b is not None or eta_a is not None or readout_decay or label_flip:
        return _rhs_readouts(Q, R, T, eta, model, second_order, check, a, b, eta_a, batch_size, readout_decay)
    if not check:
        return rhs_unchecked(Q, R, T, eta, resolve(model), second_order, batch_size)
    Q, R, T = check_overlaps(Q, R, T)
    if not (type(batch_size) is int and batch_size >= 1):  # a plain int passes without a call
        batch_size = check_int(batch_size, "batch_size", minimum=1)
    if not (type(eta) is float and 0.0 <= eta < math.inf):  # a plain float passes without a call
        eta = check_scalar(eta, "eta", nonnegative=True)
    if second_order is not True and second_order is not False:
        second_order = check_flag(second_order, "second_order")
    resolved = resolve(model, sizes=R.shape[-2:])
    # NumPy overflow inside the generated polynomials only warns (silenced: the result is
    # tested instead); Python-float overflow (``x ** 2`` of a huge trace) raises
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            dQ, dR = rhs_unchecked(Q, R, T, eta, resolved, second_order, batch_size)
            # NaN or inf anywhere makes the sum non-finite; a finite sum that overflows is
            # settled by the element-wise test
            finite = math.isfinite(_sum(dQ, None) + _sum(dR, None))
    except OverflowError:
        raise overflow_error("rhs") from None
    if not finite:
        check_finite_result("rhs", dQ, dR)
    return dQ, dR


def _rhs_readouts(Q, R, T, eta, model, second_order, check, a, b, eta_a, batch_size=1, readout_decay=0.0):
    """:func:`rhs` with readout vectors or a trained readout (the per-tuple route)."""
    if check:
        Q, R, T = check_overlaps(Q, R, T)
        eta = check_scalar(eta, "eta", nonnegative=True)
        second_order = check_flag(second_order, "second_order")
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        a, b, eta_a_value = check_readouts(a, b, eta_a, *R.shape[-2:])
        readout_decay = check_scalar(readout_decay, "readout_decay", nonnegative=True)
        if readout_decay and not eta_a_value:
            raise ValueError(f"readout_decay = {readout_decay} acts on a trained student readout: set eta_a > 0")
    else:
        eta_a_value = 0.0 if eta_a is None else eta_a
    resolved = resolve(model, sizes=R.shape[-2:] if check else None)
    module = tuple_module(model)
    with np.errstate(over="ignore", invalid="ignore"):
        dQ, dR, da = readout_rhs(
            module, Q, R, T, eta, a, b, eta_a_value,
            noise_variance=resolved.noise_variance, weight_decay=resolved.weight_decay, second_order=second_order,
            batch_size=batch_size, readout_decay=readout_decay, label_flip=resolved.label_flip,
        )
    if check:
        check_finite_result("rhs", dQ, dR, da)
    return (dQ, dR, da) if eta_a is not None else (dQ, dR)


def _rhs_on_sphere(Q, R, T, eta, settings, setting_overrides, check):
    """:func:`rhs` of spherical SGD: the free right-hand side, projected (:mod:`numerics.ode.sphere`)."""
    if check and "spherical" in setting_overrides:
        check_flag(setting_overrides["spherical"], "spherical")
    free = rhs(Q, R, T, eta, settings, check=check, **{**setting_overrides, "spherical": False})
    if check:
        Q, R, T = check_overlaps(Q, R, T)
        check_on_sphere(Q)
    return (*project_rates(Q, R, free[0], free[1]), *free[2:])


def _rhs_sam(Q, R, T, eta, values, setting_overrides, check):
    """:func:`rhs` of sharpness-aware steps (:mod:`numerics.ode.sam`)."""
    if eta is None:
        eta = values["eta"]
        if eta is None:
            raise TypeError("rhs() needs the learning rate: rhs(Q, R, T, eta) or settings=RunSettings(eta=...)")
    sam_radius, second_order, batch_size = values["sam_radius"], values["second_order"], values["batch_size"]
    if check:
        Q, R, T = check_overlaps(Q, R, T)
        eta = check_scalar(eta, "eta", nonnegative=True)
        sam_radius = check_scalar(sam_radius, "sam_radius", nonnegative=True)
        second_order = check_flag(second_order, "second_order")
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        others = [name for name in ("a", "b", "spherical") if values[name] is not None and values[name] is not False]
        if "eta_a" in setting_overrides or values["eta_a"]:
            others.append("eta_a")
        if others:
            raise ValueError(f"sam_radius = {sam_radius} (sharpness-aware steps) is not derived together with "
                             f"{', '.join(others)}: use the model's scalar readouts, untrained, without the sphere")
    resolved = resolve(values["model"], sizes=R.shape[-2:] if check else None)
    if check:
        check_sam_model(resolved, *R.shape[-2:], second_order)
    with np.errstate(over="ignore", invalid="ignore"):
        dQ, dR = sam_rates(Q, R, T, eta, sam_radius, resolved, second_order, batch_size)
    if check:
        check_finite_result("rhs", dQ, dR)
    return dQ, dR


def rhs_unchecked(Q, R, T, eta, resolved, second_order, batch_size=1):
    module = resolved.module
    if second_order:
        # one generated sum: every matrix monomial of eta D + eta**2 (V + Delta N) scaled once;
        # a mini-batch averages B independent E_j E_l products, so their mean is divided by B
        eta2 = eta * eta / batch_size if batch_size != 1 else eta * eta
        dQ, dR = module.rhs_terms(Q, R, T, eta, eta2, eta2 * resolved.noise_variance)
    else:
        drift_Q, drift_R = module.first_order_terms(Q, R, T)
        dQ = eta * drift_Q
        dR = eta * drift_R
    if resolved.weight_decay:
        dQ = dQ - 2 * eta * resolved.weight_decay * Q
        dR = dR - eta * resolved.weight_decay * R
    return dQ, dR


def risk(
    Q: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    settings: RunSettings | None = None,
    *,
    check: bool = True,
    **setting_overrides: Any,
) -> float | np.ndarray:
    """Population risk ``E[(y - f)**2] / 2`` at the given overlaps.

    Shapes as in :func:`rhs`; returns a float, or an array of the batch shape
    when the overlaps carry leading batch axes. Raises ``ValueError`` for bad
    input and for overlaps so large that the risk overflows. ``check=False``
    skips every check, as in :func:`rhs` (unchecked: valid float64 input only).
    ``a`` (..., p) and ``b`` (..., k) are per-unit readouts, as in :func:`rhs`.
    The model and readouts come from ``settings`` and the keywords ``model=``,
    ``a=``, ``b=`` (any other setting is accepted and does not enter the risk).
    """
    values = _DEFAULTS if settings is None and not setting_overrides else (
        RunSettings.values(settings, setting_overrides, "risk"))
    model, a, b = values["model"], values["a"], values["b"]
    if a is not None or b is not None or getattr(model, "label_flip", 0):
        if check:
            Q, R, T = check_overlaps(Q, R, T)
            a, b, _ = check_readouts(a, b, None, *R.shape[-2:])
        resolved = resolve(model, sizes=R.shape[-2:] if check else None)
        with np.errstate(over="ignore", invalid="ignore"):
            module = tuple_module(model)
            value = teacher_mixture(lambda teacher: module.residual_risk(Q, R, T, a, teacher), module, R, b,
                                    resolved.label_flip) + resolved.noise_variance / 2
        if check:
            check_finite_result("risk", value)
        return float(value) if np.ndim(value) == 0 else value
    if not check:
        resolved = resolve(model)
        value = resolved.module.residual_risk(Q, R, T) + resolved.noise_variance / 2
        return float(value) if np.ndim(value) == 0 else value
    Q, R, T = check_overlaps(Q, R, T)
    resolved = resolve(model, sizes=R.shape[-2:])
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            value = resolved.module.residual_risk(Q, R, T) + resolved.noise_variance / 2
    except OverflowError:
        raise overflow_error("risk") from None
    check_finite_result("risk", value)
    return float(value) if np.ndim(value) == 0 else value
