"""The layout of a sweep: its grid of points, each point's output as a dataset, and their combination.

A grid given as a mapping ``{name: values}`` is the full product, one
dimension per name in the mapping's order, its coordinate the values (a model
is labelled by its name, ``None`` as ``"paper"`` for ``model``, and other
non-number values by their JSON text). A grid given as a list of point dicts
(all with the same names) is one dimension ``point``, with every name a
coordinate along it. After those dimensions come the task's: for results,
the layout of :func:`numerics.results.persist.to_xarray` (``replica``, ``alpha``,
``student``, ``student2``, ``teacher``, ``teacher2``, ``input``; scalar fields
such as ``nfev`` become variables over the swept dimensions).

*Alpha.* Results are put on one ``alpha`` dimension. The built-in tasks
require a fixed output grid (``alpha_eval``, ``record``), so every point has
the same number of output times. The coordinate ``alpha`` is that grid when
every point's times equal it (ODEs; simulations at one ``N``); otherwise each
point's own times are kept in a variable ``point_alpha`` over the swept
dimensions and ``alpha`` (e.g. simulations at several ``N``, whose recorded
steps round the grid to ``1/N``), and the coordinate is the requested grid
(positions ``0, 1, ...`` for a function task). Points with fewer output
times, or a sweep over ``p``, ``k``, replicas or ``N`` (the weights' ``input``
dimension), are padded with NaN to the largest size; :func:`sweep_point`
takes one point back out as the exact ``IntegrationResult``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from numerics.results.encoding import ENCODING
from numerics.sweeps.store import canonical

if TYPE_CHECKING:
    import xarray as xr

    from numerics.results.persist import IntegrationResult

#: Names a swept parameter may not take: the dimensions and variables of the result layout.
RESERVED = frozenset({
    "alpha", "replica", "student", "student2", "teacher", "teacher2", "input", "point", "Q", "R", "risk", "T",
    "point_alpha", "point_failed", "point_error", "result_encoding", "model_description",
})

__all__ = ["RESERVED", "Grid", "as_dataset", "combine", "expand_grid", "sweep_point"]


@dataclass(frozen=True)
class Grid:
    """The points of a sweep and how they are laid out.

    Attributes
    ----------
    points : list of dict
        Every point, in order (the product's last name varies fastest).
    names : list of str
        The swept names.
    values : list of list, or None
        Per name, its values (a product grid); None for a list of points (one dimension ``point``).
    """

    points: list[dict[str, Any]]
    names: list[str]
    values: list[list[Any]] | None

    @property
    def dims(self) -> list[str]:
        """The swept dimensions of the combined dataset."""
        return list(self.names) if self.values is not None else ["point"]


def expand_grid(grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]], fixed: Mapping[str, Any]) -> Grid:
    """Every point of ``grid``, its names checked against the fixed arguments and the reserved names.

    Raises
    ------
    ValueError
        A malformed or empty grid, a name that is no identifier, reserved, or also fixed.
    """
    if isinstance(grid, Mapping):
        names = list(grid)
        values = [_values(name, grid[name]) for name in names]
        points = [dict(zip(names, combination)) for combination in itertools.product(*values)]
        expanded = Grid(points, names, values)
    else:
        if isinstance(grid, (str, bytes)) or not isinstance(grid, Sequence) or not grid \
                or not all(isinstance(point, Mapping) for point in grid):
            raise ValueError("grid must be a mapping of names to value lists, or a non-empty list of point dicts")
        points = [dict(point) for point in grid]
        names = list(points[0])
        for point in points:
            if list(point) != names:
                raise ValueError(f"every point of a list grid must have the names {names}, got {list(point)}")
        expanded = Grid(points, names, None)
    _check_names(expanded.names, fixed)
    return expanded


def _values(name: str, entry: Any) -> list[Any]:
    if isinstance(entry, (str, bytes)) or not isinstance(entry, (Sequence, np.ndarray)):
        raise ValueError(f"grid[{name!r}] must be a list of values, got {entry!r}")
    entry = list(entry)
    if not entry:
        raise ValueError(f"grid[{name!r}] is empty")
    return entry


def _check_names(names: Sequence[str], fixed: Mapping[str, Any]) -> None:
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"swept parameter names must be identifiers, got {name!r}")
        if name in RESERVED:
            raise ValueError(f"{name!r} is a dimension or variable of the result; it cannot be swept")
        if name in fixed:
            raise ValueError(f"{name!r} is both swept and fixed")


def _label(name: str, value: Any) -> Any:
    """Coordinate label of a parameter value."""
    if value is None:
        return "paper" if name == "model" else "None"
    if hasattr(value, "codegen_spec"):
        return value.name
    if isinstance(value, (bool, np.bool_, int, np.integer, float, np.floating, str)):
        return value
    return json.dumps(canonical(value))


# ---------------------------------------------------------------------------------------------
# one point


def _with_positions(dataset: xr.Dataset) -> xr.Dataset:
    # integer positions on dimensions without a coordinate, so points of different sizes align (NaN padding)
    missing = {dim: np.arange(size) for dim, size in dataset.sizes.items() if dim not in dataset.coords}
    return dataset.assign_coords(missing) if missing else dataset


def _result_dataset(result: IntegrationResult) -> xr.Dataset:
    dataset = result.to_xarray()
    alpha = dataset["alpha"].values
    dataset = dataset.drop_vars("alpha").assign(point_alpha=("alpha", alpha))
    dataset = dataset.assign_coords(alpha=np.arange(alpha.size))
    # per-point text as variables, so it survives combining points that differ (e.g. a sweep over models)
    dataset["result_encoding"] = ((), dataset.attrs[ENCODING])
    dataset["model_description"] = ((), dataset.attrs["model_description"])
    dataset.attrs = {}
    return dataset


def as_dataset(output: Any) -> xr.Dataset:
    """The output of a task as the dataset of one point.

    Parameters
    ----------
    output : IntegrationResult, xarray.Dataset or DataArray, dict of arrays and scalars, or scalar
        What the task returned (a scalar becomes the variable ``value``; a dict entry of shape
        ``s`` gets the dimensions ``<name>_dim0, ...``).

    Raises
    ------
    TypeError
        Any other output.
    """
    import xarray as xr

    from numerics.results.persist import IntegrationResult

    if isinstance(output, IntegrationResult):
        return _result_dataset(output)
    if isinstance(output, xr.Dataset):
        return _with_positions(output)
    if isinstance(output, xr.DataArray):
        return _with_positions(output.to_dataset(name=output.name or "value"))
    if isinstance(output, Mapping):
        variables = {}
        for name, value in output.items():
            if isinstance(value, xr.DataArray):
                variables[str(name)] = value
                continue
            array = np.asarray(value)
            if array.dtype.kind not in "biufU":
                raise TypeError(f"task output {name!r}: a {type(value).__name__} is not an array or a scalar")
            variables[str(name)] = (tuple(f"{name}_dim{i}" for i in range(array.ndim)), array)
        return _with_positions(xr.Dataset(variables))
    array = np.asarray(output)
    if array.ndim == 0 and array.dtype.kind in "biufU":
        return xr.Dataset({"value": ((), array)})
    raise TypeError(
        f"a sweep task must return an IntegrationResult, an xarray object, a dict of arrays and scalars, "
        f"or a scalar; got {type(output).__name__}"
    )


# ---------------------------------------------------------------------------------------------
# combining points


def _nan_like(template: xr.Dataset) -> xr.Dataset:
    """A point that failed: the template's variables, all missing (NaN, or "" for text)."""
    filled = {}
    for name, variable in template.data_vars.items():
        if variable.dtype.kind == "U":
            filled[name] = (variable.dims, np.full(variable.shape, ""))
        else:
            filled[name] = (variable.dims, np.full(variable.shape, np.nan))
    return template.assign(filled)


def _concat(parts: list[xr.Dataset], dim: Any) -> xr.Dataset:
    import xarray as xr

    return xr.concat(parts, dim=dim, data_vars="all", coords="minimal", join="outer",
                     combine_attrs="drop_conflicts", compat="equals")


def _combine_points(datasets: list[xr.Dataset], grid: Grid) -> xr.Dataset:
    import pandas as pd

    if grid.values is not None:
        names, values = grid.names, grid.values

        def build(level: int, offset: int) -> xr.Dataset:
            if level == len(names):
                return datasets[offset]
            stride = int(np.prod([len(v) for v in values[level + 1 :]], dtype=int))
            parts = [build(level + 1, offset + i * stride) for i in range(len(values[level]))]
            labels = [_label(names[level], v) for v in values[level]]
            return _concat(parts, pd.Index(labels, name=names[level]))

        return build(0, 0)
    combined = _concat(datasets, pd.Index(np.arange(len(datasets)), name="point"))
    return combined.assign_coords({name: ("point", [_label(name, p[name]) for p in grid.points])
                                   for name in grid.names})


def _settle_alpha(dataset: xr.Dataset, requested: np.ndarray | None) -> xr.Dataset:
    """Make ``alpha`` a coordinate of times (see the module docstring, *Alpha*)."""
    if "point_alpha" not in dataset:
        return dataset
    n = dataset.sizes["alpha"]
    rows = dataset["point_alpha"].transpose(..., "alpha").values.reshape(-1, n)
    # failed points are all NaN and do not count; every other point must have the same times
    rows = rows[~np.all(np.isnan(rows), axis=1)]
    if rows.size and np.all(np.isfinite(rows[0])) and np.all(rows == rows[0]):
        return dataset.drop_vars("point_alpha").assign_coords(alpha=rows[0])
    if requested is not None and requested.size == dataset.sizes["alpha"]:
        return dataset.assign_coords(alpha=requested)
    return dataset


def _flag_failures(combined: xr.Dataset, grid: Grid, failures: Mapping[int, BaseException]) -> None:
    """``point_failed`` (bool) and ``point_error`` (the message) over the swept dimensions."""
    shape = [combined.sizes[d] for d in grid.dims]
    failed = np.zeros(len(grid.points), dtype=bool)
    message = np.full(len(grid.points), "", dtype=object)
    for index, error in failures.items():
        failed[index], message[index] = True, f"{type(error).__name__}: {error}"
    combined["point_failed"] = (grid.dims, failed.reshape(shape))
    combined["point_error"] = (grid.dims, message.reshape(shape).astype(str))


def _text_as_strings(combined: xr.Dataset) -> None:
    for name in list(combined.data_vars):
        # text of points padded by the combination: "" instead of NaN objects (netCDF cannot store mixed)
        if combined[name].dtype == object:
            values = combined[name].values
            combined[name] = (combined[name].dims,
                              np.where([isinstance(v, str) for v in values.ravel()], values.ravel(), "")
                              .reshape(values.shape).astype(str))


def combine(datasets: list[xr.Dataset | None], grid: Grid, failures: Mapping[int, BaseException],
            requested: np.ndarray | None) -> xr.Dataset:
    """The points' datasets as one dataset over the swept dimensions (attributes not yet set).

    Parameters
    ----------
    datasets : list of xarray.Dataset or None
        One per point of ``grid``; None exactly at the indices of ``failures``.
    grid : Grid
    failures : mapping of point index -> exception
        Failed points: NaN, flagged by ``point_failed`` and ``point_error``.
    requested : array, shape (n,), or None
        The requested output times (the ``alpha`` coordinate when the points' own times differ).

    Raises
    ------
    RuntimeError
        Every point failed.
    """
    done = [d for d in datasets if d is not None]
    if not done:
        first = failures[min(failures)]
        raise RuntimeError(f"every point of the sweep failed; the first: {first!r}") from first
    datasets = [_nan_like(done[0]) if index in failures else dataset for index, dataset in enumerate(datasets)]
    combined = _settle_alpha(_combine_points(datasets, grid), requested)
    if failures:
        _flag_failures(combined, grid, failures)
    _text_as_strings(combined)
    return combined


# ---------------------------------------------------------------------------------------------
# one point back out


def sweep_point(dataset: xr.Dataset, **where: Any) -> IntegrationResult:
    """One point of a sweep of results, as the exact ``IntegrationResult`` it computed.

    Parameters
    ----------
    dataset : xarray.Dataset
        From :func:`numerics.sweep` (or :func:`numerics.load` of a saved sweep) of a
        task returning results (``"integrate"``, ``"simulate"``, a function).
    **where
        One label per swept dimension (``eta=0.5, p=4``), or ``point=i`` for a
        list grid.

    Returns
    -------
    IntegrationResult
        With the padding of the sweep removed, dtypes restored and the
        point's own output times.
    """
    from numerics.results.persist import from_xarray

    if "result_encoding" not in dataset:
        raise ValueError("the sweep's task did not return IntegrationResults")
    sweep_dims = json.loads(dataset.attrs.get("sweep_dims", "[]"))
    if set(where) != set(sweep_dims):
        raise ValueError(f"give one label for each swept dimension {sweep_dims}, got {sorted(where)}")
    point = dataset.sel(where)
    encoding_text = str(np.asarray(point["result_encoding"].values).item())
    if not encoding_text:
        raise ValueError(f"the point {where} failed; it has no result")
    encoding = json.loads(encoding_text)
    point = point.isel({dim: slice(0, size) for dim, size in encoding["sizes"].items() if dim in point.dims})
    # fields renamed because a swept parameter has their name (numerics.sweeps.engine.run_point)
    renamed = {f"result_{name}": name for name in encoding["fields"] if f"result_{name}" in point.variables}
    if "point_alpha" in point:
        point = point.assign_coords(alpha=point["point_alpha"].values).drop_vars("point_alpha")
    # the labels of the point (swept names, and their coordinates along ``point``)
    point = point.drop_vars([name for name in point.coords if point[name].ndim == 0])
    point = point.rename(renamed) if renamed else point
    point.attrs = {ENCODING: encoding_text}
    return from_xarray(point)
