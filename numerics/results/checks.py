"""Checks of saved data: a digest written at save and verified at load, and the core arrays' dtypes and shapes.

A file written by :func:`numerics.results.persist.save` carries the attribute
``wickode_digest``: the SHA-256 of every variable (name, dimensions, dtype,
shape and bytes; text as its characters) and of the ``wickode_encoding``
attribute. Loading recomputes it, so an edited or damaged file is refused with a
``ValueError`` naming it instead of being returned silently. Files written
before the digest existed (no attribute) are read unchecked.

The core arrays of a result are checked too (:func:`check_core_arrays`): real
floating dtypes, shapes that fit together, finite output times and teacher
overlaps, and no NaN in ``Q``, ``R`` or ``risk`` (an infinite risk of a run
that diverged is kept).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["DIGEST", "LABELS", "check_core_arrays", "dataset_digest", "label_variables"]

#: Attribute holding the SHA-256 digest of a saved file's variables and encoding.
DIGEST = "wickode_digest"

#: CF-style ``long_name`` and ``units`` of the variables of a saved result (``"1"``: dimensionless).
LABELS: dict[str, tuple[str, str]] = {
    "alpha": ("training time: steps / N", "steps / N"),
    "Q": ("student-student overlaps W W^T / N", "1"),
    "R": ("student-teacher overlaps W W*^T / N", "1"),
    "T": ("teacher-teacher overlaps W* W*^T / N", "1"),
    "risk": ("population risk (half mean squared error)", "1"),
    "a": ("student readout along the trajectory", "1"),
    "b": ("teacher readout", "1"),
    "eta": ("learning rate of the student weights", "1"),
    "eta_a": ("learning rate of the student readout", "1"),
    "second_order": ("second-order (eta^2) terms included", "1"),
    "nfev": ("right-hand-side evaluations", "1"),
    "batch_size": ("samples per step", "1"),
    "extra_W": ("student weights", "1"),
    "extra_W_star": ("teacher weights", "1"),
    "extra_steps": ("simulation steps at the output times", "1"),
}


def label_variables(dataset: xr.Dataset) -> None:
    """Give the variables and coordinates listed in :data:`LABELS` their ``long_name`` and ``units``."""
    for name, (long_name, units) in LABELS.items():
        if name in dataset.variables:
            dataset[name].attrs.update(long_name=long_name, units=units)


def _variable_bytes(values: np.ndarray) -> bytes:
    if values.dtype.kind in "OUS":
        # text comes back from a file as objects or fixed-width strings: hash the characters
        return json.dumps([str(v) for v in values.ravel()]).encode()
    if values.dtype.kind == "f":
        # every NaN hashes alike (a file's fill value decodes to the canonical NaN)
        values = np.where(np.isnan(values), np.nan, values)
    little = values.dtype.newbyteorder("<") if values.dtype.byteorder == ">" else values.dtype
    return np.ascontiguousarray(values, dtype=little).tobytes()


def dataset_digest(dataset: xr.Dataset, encoding: str = "") -> str:
    """SHA-256 of every variable of ``dataset`` (sorted by name) and of the ``encoding`` text.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    digest = hashlib.sha256()
    digest.update(encoding.encode())
    for name in sorted(str(n) for n in dataset.variables):
        values = np.asarray(dataset[name].values)
        header = {"name": name, "dims": list(dataset[name].dims), "shape": list(values.shape),
                  "kind": values.dtype.kind if values.dtype.kind not in "OUS" else "text"}
        digest.update(json.dumps(header).encode())
        digest.update(_variable_bytes(values))
    return digest.hexdigest()


def _require_real(name: str, array: np.ndarray, dtype_text: Any) -> None:
    try:
        stored = np.dtype(dtype_text)
    except TypeError as error:
        raise ValueError(f"{name}: stored dtype {dtype_text!r} is not a dtype") from error
    if stored.kind != "f" or array.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be real floating point, the file gives {stored} (stored as {array.dtype})")


def check_core_arrays(values: Mapping[str, np.ndarray], dtypes: Mapping[str, Any]) -> None:
    """Refuse core arrays a result cannot have.

    Parameters
    ----------
    values : mapping of name -> array
        ``alpha`` (n,), ``Q`` (..., n, p, p), ``R`` (..., n, p, k), ``risk`` (..., n), ``T`` (..., k, k)
        as read from the file.
    dtypes : mapping of name -> dtype text
        The dtypes the encoding says the arrays had.

    Raises
    ------
    ValueError
        A dtype that is not real floating point, shapes that do not fit together, a NaN in ``Q``,
        ``R`` or ``risk``, or a non-finite output time or teacher overlap.
    """
    for name in ("alpha", "Q", "R", "risk", "T"):
        _require_real(name, np.asarray(values[name]), dtypes.get(name))
    alpha, Q, R, risk, T = (np.asarray(values[n]) for n in ("alpha", "Q", "R", "risk", "T"))
    if alpha.ndim != 1 or Q.ndim < 3 or Q.shape[-1] != Q.shape[-2]:
        raise ValueError(f"alpha must have shape (n,) and Q (..., n, p, p), got {alpha.shape} and {Q.shape}")
    n, p = alpha.shape[0], Q.shape[-1]
    batch = Q.shape[:-3]
    if Q.shape[-3] != n or R.shape[:-1] != batch + (n, p) or risk.shape != batch + (n,):
        raise ValueError(f"shapes do not fit together: alpha {alpha.shape}, Q {Q.shape}, R {R.shape}, "
                         f"risk {risk.shape} (expected Q (..., n, p, p), R (..., n, p, k), risk (..., n))")
    k = R.shape[-1]
    if T.ndim < 2 or T.shape[-2:] != (k, k):
        raise ValueError(f"T must have shape (..., {k}, {k}), got {T.shape}")
    for name, array in (("alpha", alpha), ("T", T)):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} has non-finite entries")
    for name, array in (("Q", Q), ("R", R), ("risk", risk)):
        if np.any(np.isnan(array)):
            raise ValueError(f"{name} has NaN entries")
