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
* the run's :class:`~numerics.results.settings.RunSettings` (``settings``) as the JSON of
  its ``to_dict()`` in the ``wickode_encoding`` attribute (the model as its spec, readout
  vectors as nested lists), rebuilt by ``load``;
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
dimensions, dtypes of padded arrays, ...). The core variables and the scalar
fields carry CF-style ``long_name`` and ``units`` attributes
(:data:`numerics.results.checks.LABELS`).

Checks
------
``save`` adds ``wickode_digest`` (SHA-256 of the variables and the encoding);
``load`` verifies it and the core arrays' dtypes, shapes and finiteness, and
raises a ``ValueError`` naming the file on any mismatch, malformed encoding or
unreadable file (:mod:`numerics.results.checks`). Integers beyond int64 in
``extra`` are stored as their decimal text and read back exactly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from numerics.results.checks import DIGEST, check_core_arrays, dataset_digest, label_variables
from numerics.results.encoding import (
    CORE,
    ENCODING,
    FIELD_DIMS,
    KIND,
    batch_dims,
    decode_value,
    describe_model,
    encode_value,
    extra_dims,
    load_dataset,
    model_from_spec,
    model_spec,
    netcdf_attrs,
    toolkit_version,
    write_atomically,
)
from numerics.results.settings import RunSettings

if TYPE_CHECKING:  # xarray is imported on first use: ``import numerics`` stays fast
    import xarray as xr



@dataclass(repr=False)
class IntegrationResult:
    """Trajectory of the overlaps.

    Attributes
    ----------
    alpha : array, shape (n,)
        Output times.
    Q : array, shape (..., n, p, p)
    R : array, shape (..., n, p, k)
    risk : array, shape (..., n)
        Population risk along the trajectory.
    T : array, shape (k, k) or (..., k, k)
    eta : float
    second_order : bool
    model_name : str
    nfev : int
        Right-hand-side evaluations used.
    extra : dict
    model : derive.Model or None
        The model the run was made with (``None``: the paper model), so that
        analyses of the run (e.g. :func:`numerics.escape_time`) use its own model.
    batch_size : int
        Mini-batch size of the run (1: one sample per step).
    a : array, shape (..., n, p), or None
        Student readout along the trajectory, when readout vectors were given
        or the readout was trained (``None``: the model's scalar readout).
    b : array, shape (k,) or (..., k), or None
        Teacher readout vector, when one was given.
    eta_a : float
        Learning rate of the student readout (0: fixed).
    settings : RunSettings or None
        The settings the run was made with (every solver sets it; ``None`` for results built
        by hand or loaded from files written before settings were stored). ``eta``,
        ``second_order``, ``model``, ``batch_size`` and ``eta_a`` above repeat its entries for
        compatibility (``b`` too; ``a`` is the readout's trajectory, ``settings.a`` its start).

    A leading batch axis ``...`` is present when the starts were batched.
    """

    alpha: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    risk: np.ndarray
    T: np.ndarray
    eta: float
    second_order: bool
    model_name: str = "paper"
    nfev: int = 0
    extra: dict = field(default_factory=dict)
    model: Any = None
    batch_size: int = 1
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    eta_a: float = 0.0
    settings: RunSettings | None = None

    def __repr__(self) -> str:
        # shapes, not whole arrays: a result can hold megabytes of trajectory
        shape = "x".join(str(n) for n in np.shape(self.Q)[:-3]) or "-"
        alpha = np.asarray(self.alpha)
        times = f"{alpha[0]:g}..{alpha[-1]:g}" if alpha.size else "none"
        extra = ", ".join(sorted(map(str, self.extra))) or "-"
        return (f"IntegrationResult(model={self.model_name!r}, p={self.p}, k={self.k}, eta={self.eta}, "
                f"n_times={alpha.size} (alpha {times}), batch={shape}, Q{np.shape(self.Q)}, R{np.shape(self.R)}, "
                f"nfev={self.nfev}, extra=[{extra}], settings={self.settings!r})")

    @property
    def p(self) -> int:
        return self.Q.shape[-1]

    @property
    def k(self) -> int:
        return self.R.shape[-1]

    def to_xarray(self) -> Any:
        """This result as an ``xarray.Dataset`` (layout: :mod:`numerics.results.persist`)."""
        return to_xarray(self)

    def save(self, path: Any) -> Any:
        """Write this result as a netCDF-4 file; ``numerics.load(path)`` reads it back. Returns the path."""
        return save(self, path)


__all__ = [
    "IntegrationResult",
    "from_xarray",
    "load",
    "model_from_spec",
    "model_spec",
    "save",
    "to_xarray",
    "toolkit_version",
]




























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
        elif f.name == "settings" and value is not None:
            value = value.to_dict()  # JSON in the encoding attribute (the model as its spec)
        variable, entry = encode_value(f.name, value, FIELD_DIMS.get(f.name, lambda _b: None)(batch))
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
        dims = extra_dims(key, value, batch, batch_shape) if isinstance(value, np.ndarray) else None
        variable, entry = encode_value(f"extra_{key}", value, dims)
        encoding["extra"][key] = entry
        if variable is not None:
            variables[f"extra_{key}"] = variable
    dataset = xr.Dataset(variables)
    # integer positions on every dimension without a coordinate: combining datasets of
    # different widths (a sweep over p) then pads with NaN instead of failing
    coords = {dim: np.arange(size) for dim, size in dataset.sizes.items() if dim != "alpha"}
    coords["alpha"] = alpha
    dataset = dataset.assign_coords(coords)
    label_variables(dataset)
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
    from numerics.results.persist import IntegrationResult

    if ENCODING not in dataset.attrs:
        raise ValueError("not a saved IntegrationResult: the dataset has no 'wickode_encoding' attribute")
    encoding = json.loads(dataset.attrs[ENCODING])
    core = encoding["core"]
    stored = {name: np.asarray(dataset[name].values) for name in CORE}
    check_core_arrays(stored, core)
    values: dict[str, Any] = {name: stored[name].astype(core[name], copy=True) for name in CORE}
    known = {f.name for f in dataclasses.fields(IntegrationResult)}
    for name, entry in encoding["fields"].items():
        if name in known:
            values[name] = decode_value(entry, dataset.get(name))
    if values.get("settings") is not None:
        values["settings"] = RunSettings.from_dict(values["settings"])
    extra = {}
    for key, entry in encoding["extra"].items():
        if entry["kind"] == "dropped":
            continue
        extra[key] = decode_value(entry, dataset.get(f"extra_{key}"))
    return IntegrationResult(**values, extra=extra)






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

    if not isinstance(obj, (IntegrationResult, xr.Dataset)):
        raise ValueError(f"save takes an IntegrationResult or an xarray.Dataset, got {type(obj).__name__}")
    dataset = obj if isinstance(obj, xr.Dataset) else to_xarray(obj)
    # encodings carried over from a file read earlier (an int64 dtype of a variable now padded
    # with NaN) would write sentinels: the data is written as it is held
    dataset = dataset.copy().drop_encoding()
    dataset.attrs = netcdf_attrs(dataset.attrs)
    for name in dataset.variables:
        dataset[name].attrs = netcdf_attrs(dataset[name].attrs)
    dataset.attrs.pop(DIGEST, None)
    dataset.attrs[DIGEST] = dataset_digest(dataset, str(dataset.attrs.get(ENCODING, "")))
    path = Path(path)
    write_atomically(dataset, path)
    return path




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

    Raises
    ------
    ValueError
        Naming the file: it cannot be read, its digest does not match its contents (edited or
        damaged), its encoding is malformed, or its core arrays are not real floating point of
        consistent shapes (``Q`` (..., n, p, p), ``R`` (..., n, p, k), ``risk`` (..., n),
        ``alpha`` (n,)), with finite ``alpha`` and ``T`` and no NaN in ``Q``, ``R``, ``risk``
        (:mod:`numerics.results.checks`).
    """
    dataset = load_dataset(path)
    kind = dataset.attrs.get(KIND)
    if kind == "IntegrationResult":
        try:
            return from_xarray(dataset)
        except (KeyError, TypeError, AttributeError, ValueError) as error:  # a malformed encoding or array
            raise ValueError(f"{os.fspath(path)} does not hold a valid saved IntegrationResult: "
                             f"{type(error).__name__}: {error}") from error
    if kind == "sweep":
        return dataset
    raise ValueError(f"{os.fspath(path)} was not written by numerics.save (wickode_kind = {kind!r})")
