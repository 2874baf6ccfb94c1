"""Per-unit and trained second-layer readouts: checks and the right-hand side with readouts in the state.

Conventions (docs/model.md, "The family beyond polynomials"): the student output is
``f = sum_j a_j sigma(lambda_j)``, the teacher's ``y = sum_r b_r sigma*(nu_r) + sqrt(Delta) xi``.
Fixed readout vectors ``a`` (length p) and ``b`` (length k) replace the model's
scalar readouts; a trained student readout follows
``a_j <- a_j + (eta_a / N) (y - f) sigma(lambda_j)``, so that

    da_j/dalpha = eta_a <(y - f) sigma(lambda_j)>   (label noise has zero mean and drops out).

Every such quantity comes from the model's per-tuple module
(:func:`numerics.runtime.registry.tuple_module`, evaluated by :mod:`numerics.kernels.unit_tuples`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numerics.core.validation import as_real_array, check_scalar


def check_readout_vector(value: Any, name: str, width: int, width_name: str) -> np.ndarray:
    """A readout vector as float64 of shape (..., width).

    Raises
    ------
    ValueError
        Not real, not finite, or a last axis that is not ``width`` long; the
        message names the argument and the width (p or k).
    """
    array = as_real_array(value, name, ndim_min=1)
    if array.shape[-1] != width:
        raise ValueError(
            f"{name} must have length {width_name} = {width} (one entry per unit, last axis), got shape {array.shape}"
        )
    return array


def check_readouts(a: Any, b: Any, eta_a: Any, p: int, k: int) -> tuple[np.ndarray | None, np.ndarray | None, float]:
    """Validated ``(a, b, eta_a)``: vectors or ``None`` (the model's scalar readouts), ``eta_a >= 0`` (0 if None)."""
    a = None if a is None else check_readout_vector(a, "a", p, "p")
    b = None if b is None else check_readout_vector(b, "b", k, "k")
    eta_a = 0.0 if eta_a is None else check_scalar(eta_a, "eta_a", nonnegative=True)
    return a, b, eta_a


def check_readout_batch(a: np.ndarray | None, b: np.ndarray | None, batch: tuple[int, ...], what: str) -> None:
    """Raise ``ValueError`` unless the leading axes of ``a`` and ``b`` broadcast to ``batch``.

    ``what`` names the batch in the message (e.g. ``"the batch of starts"``, ``"the replicas"``).
    """
    for name, vector in (("a", a), ("b", b)):
        if vector is None:
            continue
        try:
            shape = np.broadcast_shapes(vector.shape[:-1], batch)
        except ValueError:
            shape = None
        if shape != batch:
            raise ValueError(
                f"{name} has shape {vector.shape}: its leading axes {vector.shape[:-1]} do not match "
                f"{what} {batch}"
            )


def teacher_readout_vector(module: Any, R: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``b`` as a vector (..., k): the model's scalar teacher readout on every unit when ``None``."""
    if b is not None:
        return np.asarray(b, dtype=float)
    p, k = R.shape[-2:]
    return np.full(k, module.readouts(p, k)[1])


def teacher_mixture(function: Any, module: Any, R: np.ndarray, b: np.ndarray | None, label_flip: float) -> Any:
    """``(1 - epsilon) function(b) + epsilon function(-b)``: an average over labels flipped with probability epsilon."""
    b = teacher_readout_vector(module, R, b)
    return (1 - label_flip) * function(b) + label_flip * function(-b)


def readout_rhs(
    module: Any,
    Q: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    eta: float,
    a: np.ndarray | None,
    b: np.ndarray | None,
    eta_a: float,
    *,
    noise_variance: float,
    weight_decay: float,
    second_order: bool,
    batch_size: int = 1,
    readout_decay: float = 0.0,
    label_flip: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dQ, dR, da)`` from a per-tuple module with readout vectors (``da`` is zero when ``eta_a == 0``).

    Parameters
    ----------
    module
        A per-tuple generated module.
    Q, R, T : arrays, shapes (..., p, p), (..., p, k), (..., k, k)
    eta : float
        Learning rate of the first layer.
    a, b : arrays, shapes (..., p) and (..., k), or None
        Readout vectors (``None``: the model's scalar readouts on every unit).
    eta_a : float
        Learning rate of the student readout (0: fixed readout).
    noise_variance, weight_decay : float
        ``Delta`` and ``kappa`` of the model (weight decay acts on the first layer only).
    second_order : bool
        Keep the ``eta**2`` term.
    batch_size : int
        Mini-batch size ``B``: the ``eta**2`` term (label noise included) is divided by ``B``;
        the first-order terms and the readout drift (a mean) are not.
    readout_decay : float
        Weight decay ``kappa_a`` of the trained readout: ``da = eta_a (<(y - f) sigma> - kappa_a a)``.
    label_flip : float
        Probability ``epsilon`` that a label is ``-y``: the result is the mixture
        ``(1 - epsilon) F(b) + epsilon F(-b)`` of the teacher and its negative.
    """
    if label_flip:
        # every average is over the data: labels -y with probability epsilon mix the two teachers
        b = teacher_readout_vector(module, R, b)
        kept = readout_rhs(module, Q, R, T, eta, a, b, eta_a, noise_variance=noise_variance,
                           weight_decay=weight_decay, second_order=second_order, batch_size=batch_size,
                           readout_decay=readout_decay)
        flipped = readout_rhs(module, Q, R, T, eta, a, -b, eta_a, noise_variance=noise_variance,
                              weight_decay=weight_decay, second_order=second_order, batch_size=batch_size,
                              readout_decay=readout_decay)
        return tuple((1 - label_flip) * x + label_flip * y for x, y in zip(kept, flipped))
    eta2 = eta * eta / batch_size if second_order else 0.0
    dQ, dR = module.rhs_terms(Q, R, T, eta, eta2, eta2 * noise_variance, a, b)
    if weight_decay:
        dQ = dQ - 2 * eta * weight_decay * Q
        dR = dR - eta * weight_decay * R
    if eta_a:
        da = eta_a * module.readout_drift(Q, R, T, a, b)
        if readout_decay:
            if a is None:  # the model's scalar readout on every unit
                a = np.full(Q.shape[-1], module.readouts(Q.shape[-1], R.shape[-1])[0])
            da = da - (eta_a * readout_decay) * a
    else:
        da = np.zeros(np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2]) + (Q.shape[-1],))
    return dQ, dR, da


__all__ = [
    "check_readout_batch",
    "check_readout_vector",
    "check_readouts",
    "readout_rhs",
    "teacher_mixture",
    "teacher_readout_vector",
]
