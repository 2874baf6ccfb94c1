"""Results that persist: :class:`IntegrationResult` as an ``xarray.Dataset`` and a netCDF file.

``to_xarray(result)`` (also ``result.to_xarray()``) lays a result out as a
labelled dataset, ``save(result, path)`` (``result.save(path)``) writes it as
netCDF-4 (HDF5, through the ``h5netcdf`` engine: no C netCDF library needed,
int64, bool and string variables and attributes survive), and
``load(path)`` reads it back into an ``IntegrationResult`` equal to the saved
one field by field, batched or not. Sweep datasets (:func:`numerics.sweep`)
go through the same ``save`` / ``load``; ``load`` returns them as datasets.

Layout of ``to_xarray``
-----------------------
Dimensions: ``replica`` (the batch axis of batched starts or simulation
replicas; several batch axes are ``replica_0, replica_1, ...``), ``alpha``,
``student`` and ``student2`` (p), ``teacher`` and ``teacher2`` (k), ``input``
(N, for simulated weights). Every dimension has a coordinate: ``alpha`` holds
the output times, the others the integer positions ``0, 1, ...``.

Variables:

* ``Q`` (replica..., alpha, student, student2), ``R`` (replica..., alpha,
  student, teacher), ``risk`` (replica..., alpha), ``T`` (teacher, teacher2),
  with the batch dimensions in front when ``T`` is batched like ``Q``;
* the scalar fields ``eta``, ``second_order``, ``nfev``, ``model_name``,
  ``eta_a`` (and any later scalar field) as 0-d variables;
* the student readout trajectory ``a`` (replica..., alpha, student) and the
  teacher readout ``b`` (teacher) when the run had readout vectors or a
  trained readout (``None`` otherwise, kept in the encoding);
* ``extra`` entries as ``extra_<key>``: arrays keep their dtype; ``W`` gets
  dimensions (replica..., student, input), ``W_star`` (replica..., teacher,
  input), ``steps`` (alpha), other arrays ``<key>_dim0, <key>_dim1, ...``;
  scalars (bool, int, float, str) are 0-d variables; a model object is a 0-d
  string variable holding its spec as JSON (the ``str()`` of every
  ``derive.Model`` field, which the safe parser reads back), and ``load``
  rebuilds the ``derive.Model``; ``None`` and JSON-able lists and dicts are
  kept in the ``wickode_encoding`` attribute. Anything else (an arbitrary
  object) cannot be stored: it is left out with a ``UserWarning``.

Attributes: ``wickode_kind`` (``"IntegrationResult"``), ``wickode_version``
(the toolkit's ``importlib.metadata`` version), ``model_description``
(``derive.Model.describe()``, or the generated module's description for the
paper model), ``model_name``, and ``wickode_encoding`` (JSON: the Python type
of every field and extra entry, so ``load`` gives back ints as ints, tuples of
dimensions, dtypes of padded arrays, ...).
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

    from .integrate import IntegrationResult

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

__all__ = [
    "ENGINE",
    "from_xarray",
    "load",
    "model_from_spec",
    "model_spec",
    "save",
    "to_xarray",
    "toolkit_version",
]


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
    from derive.model import Model

    return Model(**dict(spec))


def describe_model(model: Any, model_name: str) -> str:
    """One readable line: ``model.describe()``, the paper model's description, or the name."""
    if model is not None and _is_model(model):
        return str(model.describe())
    if model_name == "paper":
        from .models import resolve

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


def _encode_value(
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


def _decode_value(entry: dict, variable: Any) -> object:
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
    if kind == "array":
        # padded sweeps turn ints into floats with NaN; the stored dtype says what it was
        return np.asarray(variable.values).astype(np.dtype(entry["dtype"]), copy=True)
    raise ValueError(f"unknown encoding kind {kind!r}")


def _extra_dims(key: str, value: np.ndarray, batch: tuple[str, ...], batch_shape: tuple[int, ...]) -> tuple | None:
    if key not in KNOWN_EXTRA_DIMS:
        return None
    batched, tail = KNOWN_EXTRA_DIMS[key]
    dims = (batch if batched else ()) + tail
    if value.ndim != len(dims) or (batched and value.shape[: len(batch)] != batch_shape):
        return None
    return dims


def to_xarray(result: IntegrationResult) -> xr.Dataset:
    """The result as an ``xarray.Dataset`` (layout in the module docstring).

    Parameters
    ----------
    result : IntegrationResult
        From :func:`numerics.integrate`, :func:`numerics.simulate` (either
        method) or built by hand; batched or not.

    Returns
    -------
    xarray.Dataset
        ``Q`` (replica..., alpha, student, student2), ``R`` (replica..., alpha,
        student, teacher), ``risk`` (replica..., alpha), ``T``, the scalar
        fields as 0-d variables, ``extra_<key>`` variables, and the
        attributes ``wickode_kind``, ``wickode_version``,
        ``model_description``, ``model_name`` and ``wickode_encoding``.
    """
    import xarray as xr

    Q = np.asarray(result.Q)
    R = np.asarray(result.R)
    risk = np.asarray(result.risk)
    T = np.asarray(result.T)
    alpha = np.asarray(result.alpha)
    batch_shape = Q.shape[:-3]
    batch = batch_dims(len(batch_shape)) if batch_shape else ()
    if T.shape[:-2] == batch_shape:
        T_dims = batch + ("teacher", "teacher2")
    else:  # e.g. one T for a batch of starts given with a leading axis of 1
        T_dims = tuple(f"T_dim{i}" for i in range(T.ndim - 2)) + ("teacher", "teacher2")
    variables: dict[str, Any] = {
        "Q": (batch + ("alpha", "student", "student2"), Q),
        "R": (batch + ("alpha", "student", "teacher"), R),
        "risk": (batch + ("alpha",), risk),
        "T": (T_dims, T),
    }
    encoding: dict[str, Any] = {
        "batch_dims": list(batch),
        "core": {name: np.asarray(getattr(result, name)).dtype.str for name in CORE},
        "T_dims": list(T_dims),
        "fields": {},
        "extra": {},
    }
    model = None
    for f in dataclasses.fields(result):
        if f.name in CORE or f.name == "extra":
            continue
        value = getattr(result, f.name)
        if f.name == "model":
            model = value
        variable, entry = _encode_value(f.name, value, FIELD_DIMS.get(f.name, lambda _b: None)(batch))
        encoding["fields"][f.name] = entry
        if variable is not None:
            variables[f.name] = variable
    for key, value in result.extra.items():
        if not isinstance(key, str) or "/" in key or not key:
            warnings.warn(f"extra key {key!r} is not a valid variable name; it is left out", UserWarning,
                          stacklevel=2)
            continue
        if key == "model" and model is None:
            model = value
        dims = _extra_dims(key, value, batch, batch_shape) if isinstance(value, np.ndarray) else None
        variable, entry = _encode_value(f"extra_{key}", value, dims)
        encoding["extra"][key] = entry
        if variable is not None:
            variables[f"extra_{key}"] = variable
    dataset = xr.Dataset(variables)
    # integer positions on every dimension without a coordinate: combining datasets of
    # different widths (a sweep over p) then pads with NaN instead of failing
    coords = {dim: np.arange(size) for dim, size in dataset.sizes.items() if dim != "alpha"}
    coords["alpha"] = alpha
    dataset = dataset.assign_coords(coords)
    # the sizes let a point of a NaN-padded sweep be cut back to its own (numerics.sweep_point)
    encoding["sizes"] = {str(dim): int(size) for dim, size in dataset.sizes.items()}
    dataset.attrs = {
        KIND: "IntegrationResult",
        "wickode_version": toolkit_version(),
        "model_name": str(result.model_name),
        "model_description": describe_model(model, str(result.model_name)),
        ENCODING: json.dumps(encoding),
    }
    return dataset


def from_xarray(dataset: xr.Dataset) -> IntegrationResult:
    """Rebuild the :class:`IntegrationResult` a :func:`to_xarray` dataset describes.

    Fields the running toolkit's ``IntegrationResult`` does not have (a file
    written by a newer version) are ignored; a missing ``wickode_encoding``
    attribute means the dataset was not written by :func:`to_xarray`.
    """
    from .integrate import IntegrationResult

    if ENCODING not in dataset.attrs:
        raise ValueError("not a saved IntegrationResult: the dataset has no 'wickode_encoding' attribute")
    encoding = json.loads(dataset.attrs[ENCODING])
    core = encoding["core"]
    values: dict[str, Any] = {"alpha": np.asarray(dataset["alpha"].values).astype(core["alpha"], copy=True)}
    for name in ("Q", "R", "risk", "T"):
        values[name] = np.asarray(dataset[name].values).astype(core[name], copy=True)
    known = {f.name for f in dataclasses.fields(IntegrationResult)}
    for name, entry in encoding["fields"].items():
        if name in known:
            values[name] = _decode_value(entry, dataset.get(name))
    extra = {}
    for key, entry in encoding["extra"].items():
        if entry["kind"] == "dropped":
            continue
        extra[key] = _decode_value(entry, dataset.get(f"extra_{key}"))
    return IntegrationResult(**values, extra=extra)


def _netcdf_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
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


def _write_atomically(dataset: xr.Dataset, path: Path) -> None:
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


def save(obj: IntegrationResult | xr.Dataset, path: str | os.PathLike) -> Path:
    """Write a result or a sweep dataset as a netCDF-4 file (engine ``h5netcdf``).

    Parameters
    ----------
    obj : IntegrationResult or xarray.Dataset
        A result (laid out by :func:`to_xarray`) or a dataset, e.g. from
        :func:`numerics.sweep`.
    path : str or path-like
        Target file (conventionally ``.nc``), replaced atomically.

    Returns
    -------
    pathlib.Path
    """
    import xarray as xr

    dataset = obj if isinstance(obj, xr.Dataset) else to_xarray(obj)
    dataset = dataset.copy()
    dataset.attrs = _netcdf_attrs(dataset.attrs)
    for name in dataset.variables:
        dataset[name].attrs = _netcdf_attrs(dataset[name].attrs)
    path = Path(path)
    _write_atomically(dataset, path)
    return path


def load_dataset(path: str | os.PathLike) -> xr.Dataset:
    """The dataset of a file written by :func:`save`, read into memory (the file is closed)."""
    import xarray as xr

    with xr.open_dataset(path, engine=ENGINE) as dataset:
        return dataset.load()


def load(path: str | os.PathLike) -> IntegrationResult | xr.Dataset:
    """Read a file written by :func:`save` (or ``IntegrationResult.save``).

    Returns
    -------
    IntegrationResult
        For a saved result: every field as saved (arrays with their dtype,
        scalars with their Python type, ``extra`` entries, models rebuilt).
    xarray.Dataset
        For a saved sweep (``wickode_kind == "sweep"``); see
        :func:`numerics.sweep_point` for one point as a result.
    """
    dataset = load_dataset(path)
    kind = dataset.attrs.get(KIND)
    if kind == "IntegrationResult":
        return from_xarray(dataset)
    if kind == "sweep":
        return dataset
    raise ValueError(f"{os.fspath(path)} was not written by numerics.save (wickode_kind = {kind!r})")
