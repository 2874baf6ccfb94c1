"""The classification error of a student against sign labels: ``P(sign f != y)``, closed form for one unit."""

from __future__ import annotations

from typing import Any

import numpy as np

from numerics.core.activations import activation_kind
from numerics.core.validation import check_overlaps
from numerics.runtime.registry import resolve


def classification_error(Q: Any, R: Any, T: Any, *, model: Any) -> float | np.ndarray:
    """Probability that the student's sign disagrees with the label, for one student and one sign teacher.

    With ``y = b sign(nu)`` (flipped to ``-y`` with probability ``epsilon = model.label_flip``) and
    ``f = a sigma(lambda)`` for an erf student (odd and increasing),
    ``sign f = sign(a) sign(lambda)`` and the arcsine law gives

        P(sign f != y) = epsilon + (1 - 2 epsilon) arccos(sign(a b) R / sqrt(Q T)) / pi.

    Parameters
    ----------
    Q, R, T : arrays, shapes (..., 1, 1)
        Overlaps of one student and one teacher (batch axes broadcast).
    model : derive.Model
        A model with teacher ``sign(x)`` (and an erf student, which such models have), readouts its own.

    Returns
    -------
    float or array of the batch shape

    Raises
    ------
    ValueError
        Widths other than p = k = 1, a teacher other than sign, a zero readout, or bad overlaps.
    """
    Q, R, T = check_overlaps(Q, R, T)
    p, k = R.shape[-2:]
    if (p, k) != (1, 1):
        raise ValueError(f"the closed form is for one student and one teacher unit, got p = {p}, k = {k}; "
                         "for committees count sign disagreements in a simulation")
    resolved = resolve(model, sizes=(1, 1))
    module = resolved.module
    if activation_kind(module, "TEACHER") != "sign":
        raise ValueError("classification_error needs a sign(x) teacher (labels +-1)")
    a, b = module.readouts(1, 1)
    if a == 0 or b == 0:
        raise ValueError(f"the readouts a = {a}, b = {b} must be nonzero for the output to have a sign")
    cosine = np.sign(a * b) * R[..., 0, 0] / np.sqrt(Q[..., 0, 0] * T[..., 0, 0])
    error = np.arccos(np.clip(cosine, -1.0, 1.0)) / np.pi
    flip = resolved.label_flip
    value = flip + (1 - 2 * flip) * error
    return float(value) if np.ndim(value) == 0 else value


__all__ = ["classification_error"]
