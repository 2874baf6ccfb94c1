"""How saved results are encoded: netCDF-safe values with their Python types, models as specs, atomic files.

The layout of a saved result is described in :mod:`numerics.results.persist`; this module holds
the pieces it is built from (and that the sweep store shares).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # xarray is imported on first use: ``import numerics`` stays fast
    import xarray as xr


#: xarray engine used for every file (netCDF-4 on HDF5, pure Python over h5py).
ENGINE = "h5netcdf"



#: Attribute naming what a file holds: ``"IntegrationResult"`` or ``"sweep"``.
KIND = "wickode_kind"



#: Attribute with the JSON encoding of types (see the module docstring).
ENCODING = "wickode_encoding"



#: The core arrays of a result, stored with named dimensions.
CORE = ("alpha", "Q", "R", "risk", "T")



#: Dimension names of array fields beyond the core ones, given the batch dimensions.
FIELD_DIMS = {
    "a": lambda batch: batch + ("alpha", "student"),
    "b": lambda batch: ("teacher",),
}



#: Dimensions of known ``extra`` arrays: (preceded by the batch dimensions?, trailing dimensions).
KNOWN_EXTRA_DIMS: dict[str, tuple[bool, tuple[str, ...]]] = {
    "W": (True, ("student", "input")),
    "W_star": (True, ("teacher", "input")),
    "steps": (False, ("alpha",)),
}



@lru_cache(maxsize=1)
def toolkit_version() -> str:
    """Installed version of the ``wickode`` distribution (``"unknown"`` when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wickode")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"



def _is_model(value: object) -> bool:
    return hasattr(value, "codegen_spec") and hasattr(value, "describe")



def model_spec(model: Any) -> dict[str, str] | None:
    """Text of every field of a ``derive.Model`` (``None`` for ``None``, the paper model).

    ``str()`` of a field is text the model parser reads back to the same
    expression, so ``model_from_spec(model_spec(m)) == m`` (name included).
    """
    if model is None:
        return None
    if not (_is_model(model) and dataclasses.is_dataclass(model)):
        raise TypeError(f"model must be a derive.Model or None, got {type(model).__name__}")
    return {f.name: str(getattr(model, f.name)) for f in dataclasses.fields(model)}



def model_from_spec(spec: Mapping[str, str] | None) -> Any:
    """The ``derive.Model`` of a :func:`model_spec` (``None`` stays ``None``).

    The text goes through ``derive.Model``'s safe parser (never evaluated).
    """
    if spec is None:
        return None
    from derive.model.model import Model

    return Model(**dict(spec))



def describe_model(model: Any, model_name: str) -> str:
    """One readable line: ``model.describe()``, the paper model's description, or the name."""
    if model is not None and _is_model(model):
        return str(model.describe())
    if model_name == "paper":
        from numerics.runtime.registry import resolve

        return resolve(None).description
    return f"model {model_name!r} (no description stored)"



def batch_dims(ndim: int) -> tuple[str, ...]:
    """Names of ``ndim`` leading batch axes: ``("replica",)`` for one, ``replica_0, ...`` for more."""
    if ndim == 1:
        return ("replica",)
    return tuple(f"replica_{i}" for i in range(ndim))



def _scalar_kind(value: object) -> str | None:
    # order matters: bool is an int subclass, numpy bools are not
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "str"
    return None



_PYTHON = {"bool": bool, "int": int, "float": float, "str": str}
_INT64 = np.iinfo(np.int64)



def _json_or_none(value: object) -> str | None:
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return None
    # tuples come back as lists: accepted only when that is the whole difference
    return text if json.loads(text) == _listify(value) else None



def _listify(value: object) -> object:
    if isinstance(value, (list, tuple)):
        return [_listify(v) for v in value]
    if isinstance(value, dict):
        return {k: _listify(v) for k, v in value.items()}
    return value



def encode_value(
    name: str, value: object, dims: tuple[str, ...] | None
) -> tuple[tuple[tuple[str, ...], Any] | None, dict]:
    """Variable (dims, data) and encoding entry for one field or extra entry.

    ``dims`` gives the array's dimension names (``None``: generic ``<name>_dim<i>``).
    Returns ``(None, entry)`` when the value lives in the encoding only.
    """
    if value is None:
        return None, {"kind": "none"}
    if _is_model(value):
        return ((), json.dumps(model_spec(value))), {"kind": "model"}
    kind = _scalar_kind(value)
    if kind == "int" and not _INT64.min <= int(value) <= _INT64.max:
        # beyond int64 (netCDF's widest integer): its decimal text, read back exactly
        return ((), str(int(value))), {"kind": "bigint"}
    if kind is not None:
        return ((), _PYTHON[kind](value)), {"kind": kind}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufU":
        if dims is None or len(dims) != value.ndim:
            dims = tuple(f"{name}_dim{i}" for i in range(value.ndim))
        return (dims, value), {"kind": "array", "dtype": value.dtype.str, "dims": list(dims)}
    text = _json_or_none(value)
    if text is not None:
        return None, {"kind": "json", "value": json.loads(text), "tuple": isinstance(value, tuple)}
    warnings.warn(
        f"{name}: a {type(value).__name__} cannot be stored in a netCDF file; it is left out",
        UserWarning,
        stacklevel=4,
    )
    return None, {"kind": "dropped", "type": type(value).__name__}



def decode_value(entry: dict, variable: Any) -> object:
    kind = entry["kind"]
    if kind == "none":
        return None
    if kind == "json":
        value = entry["value"]
        return tuple(value) if entry.get("tuple") else value
    if kind == "model":
        return model_from_spec(json.loads(str(np.asarray(variable.values).item())))
    if kind in _PYTHON:
        return _PYTHON[kind](np.asarray(variable.values).item())
    if kind == "bigint":
        return int(str(np.asarray(variable.values).item()))
    if kind == "array":
        # padded sweeps turn ints into floats with NaN; the stored dtype says what it was
        return np.asarray(variable.values).astype(np.dtype(entry["dtype"]), copy=True)
    raise ValueError(f"unknown encoding kind {kind!r}")



def extra_dims(key: str, value: np.ndarray, batch: tuple[str, ...], batch_shape: tuple[int, ...]) -> tuple | None:
    if key not in KNOWN_EXTRA_DIMS:
        return None
    batched, tail = KNOWN_EXTRA_DIMS[key]
    dims = (batch if batched else ()) + tail
    if value.ndim != len(dims) or (batched and value.shape[: len(batch)] != batch_shape):
        return None
    return dims



def netcdf_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes netCDF-4 accepts: bools as ints, ``None`` as ``""``, anything else as JSON text."""
    safe = {}
    for key, value in attrs.items():
        if isinstance(value, (bool, np.bool_)):
            safe[key] = int(value)
        elif value is None:
            safe[key] = ""
        elif isinstance(value, (str, int, float, np.integer, np.floating)):
            safe[key] = value
        elif isinstance(value, np.ndarray) and value.dtype.kind in "iufU":
            safe[key] = value
        else:
            safe[key] = json.dumps(value, default=str)
    return safe



def write_atomically(dataset: xr.Dataset, path: Path) -> None:
    # a reader (or a resumed sweep) never sees a half-written file
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        dataset.to_netcdf(temporary, engine=ENGINE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise



def load_dataset(path: str | os.PathLike) -> xr.Dataset:
    """The dataset of a file written by :func:`save`, read into memory (the file is closed), its digest checked.

    The ``wickode_digest`` attribute (:mod:`numerics.results.checks`) is verified and removed;
    the variables' on-disk encodings are dropped, so saving the dataset again writes what it holds.

    Raises
    ------
    ValueError
        The path is not a readable netCDF-4 file (naming it), or its digest does not match its contents.
    """
    import xarray as xr

    from numerics.results.checks import DIGEST, dataset_digest

    if isinstance(path, (str, os.PathLike)) and Path(path).is_dir():
        raise ValueError(f"{os.fspath(path)} is a directory, not a file written by numerics.save")
    try:
        with xr.open_dataset(path, engine=ENGINE) as dataset:
            dataset = dataset.load()
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        raise ValueError(f"{path} cannot be read as a netCDF-4 file written by numerics.save: "
                         f"{type(error).__name__}: {error}") from error
    dataset = dataset.drop_encoding()
    stored = dataset.attrs.pop(DIGEST, None)
    if stored is not None and stored != dataset_digest(dataset, str(dataset.attrs.get(ENCODING, ""))):
        raise ValueError(f"{path}: the digest of its contents does not match the one written at save "
                         "(the file was edited or damaged)")
    return dataset


__all__ = [
    "CORE",
    "ENCODING",
    "ENGINE",
    "FIELD_DIMS",
    "KIND",
    "KNOWN_EXTRA_DIMS",
    "batch_dims",
    "decode_value",
    "describe_model",
    "encode_value",
    "extra_dims",
    "load_dataset",
    "model_from_spec",
    "model_spec",
    "netcdf_attrs",
    "toolkit_version",
    "write_atomically",
]
