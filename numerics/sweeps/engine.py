"""Parameter sweeps on any executor (local processes, a dask cluster), with results that persist.

``sweep(task, grid, **fixed)`` runs ``task(**point, **fixed)`` for every point
of ``grid`` and gathers the outputs in one ``xarray.Dataset`` with a dimension
per swept parameter. With ``store=`` every finished point is written to its own
netCDF file as soon as it completes, and a rerun computes only the points not
stored yet: an interrupted sweep resumes where it stopped.

Tasks
-----
``"integrate"``
    :func:`integrate_task`: Eq. 8 starts (``p``, ``k``, ``N``, ``q0``,
    ``seed``; a list of seeds is a batch of starts, the ``replica`` dimension)
    or explicit ``Q0``, ``R0``, ``T``, integrated with :func:`numerics.integrate`
    on the output times ``alpha_eval``, which must be fixed (one array for the
    whole sweep).
``"simulate"``
    :func:`simulate_task`: :func:`numerics.simulate` with ``record`` a fixed
    array of alphas (``alpha_max`` defaults to its last entry).
``"escape_time"``
    :func:`escape_time_task`: integrate from Eq. 8 starts and summarise:
    ``escape_time``, ``plateau_risk``, ``final_risk`` (per start),
    ``mean_escape_time``, ``failed`` (the dynamics blew up, had no plateau
    or did not escape).
a function
    Called as ``task(**point, **fixed)``; returns an ``IntegrationResult``, an
    ``xarray.Dataset`` or ``DataArray``, a dict of arrays and scalars, or a
    scalar (stored as ``value``). It must be picklable for process and dask
    engines: a module-level function (dask also ships lambdas and closures).

Layout of the result
--------------------
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

Store and keys
--------------
``store`` is a directory; point ``x`` is ``<store>/<key>.nc`` (written
atomically by the process that runs ``sweep``, so workers need no shared
file system). The key is a SHA-256 of: the task (built-in name, or the
function's module, qualified name and source text), the point, the fixed
arguments, the model's spec and the toolkit version (arrays enter through
their dtype, shape and bytes; models through the text of their fields).
Changing any of them computes the point again. Failed points
(``errors="skip"``) are not stored, so a rerun retries them.

Engines
-------
``executor=None`` runs the points on a ``ProcessPoolExecutor`` with one
process per core, created and shut down by the sweep; ``"serial"`` runs them
here, in order; any ``concurrent.futures.Executor`` is used as given; a
``dask.distributed.Client`` (not a ``concurrent.futures.Executor``: it is
recognised by its type) gets the points through ``client.submit`` and
``distributed.as_completed``. Results come back to this process, which writes
the store and builds the dataset.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import inspect
import itertools
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from numerics.results.encoding import ENCODING, describe_model, load_dataset, model_spec, toolkit_version
from numerics.results.persist import save
from numerics.runtime.registry import model_by_name

if TYPE_CHECKING:
    import xarray as xr

    from numerics.results.persist import IntegrationResult

#: Names a swept parameter may not take: the dimensions and variables of the result layout.
RESERVED = frozenset({
    "alpha", "replica", "student", "student2", "teacher", "teacher2", "input", "point", "Q", "R", "risk", "T",
    "point_alpha", "point_failed", "point_error", "result_encoding", "model_description",
})

__all__ = [
    "escape_time_task",
    "integrate_task",
    "point_key",
    "simulate_task",
    "sweep",
    "sweep_point",
]


# ---------------------------------------------------------------------------------------------
# built-in tasks (module level, so every engine can pickle them by reference)


def _model(value: Any) -> Any:
    """A model argument: ``None``, a ``derive.Model``, or the name of a committed model."""
    if isinstance(value, str):
        return model_by_name(value)
    return value


def _starts(p: int, k: int, N: float, q0: float, seed: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from numerics.ode.initial import initial_conditions

    if isinstance(seed, (list, tuple, np.ndarray)):
        # one Eq. 8 start per seed, stacked: the replica axis
        starts = [initial_conditions(p, k, N=N, q0=q0, seed=int(s)) for s in seed]
        return np.stack([s[0] for s in starts]), np.stack([s[1] for s in starts]), starts[0][2]
    return initial_conditions(p, k, N=N, q0=q0, seed=seed)


def integrate_task(
    *,
    eta: float,
    alpha_eval: Sequence[float] | np.ndarray,
    p: int | None = None,
    k: int | None = None,
    N: float = 1e4,
    q0: float = 1.0,
    seed: int | Sequence[int] = 0,
    model: Any = None,
    Q0: np.ndarray | None = None,
    R0: np.ndarray | None = None,
    T: np.ndarray | None = None,
    **options: Any,
) -> IntegrationResult:
    """The ODE from an Eq. 8 start (or ``Q0, R0, T``) on the output times ``alpha_eval``.

    Parameters
    ----------
    eta : float
    alpha_eval : array, shape (n,)
        Output times (non-decreasing, from 0); the last one is ``alpha_max``.
    p, k : int
        Widths of the Eq. 8 start (not needed with ``Q0, R0, T``).
    N, q0 : float
        ``Q0 = q0 I``, ``R0 ~ N(0, q0 / N)``.
    seed : int or sequence of int
        One start, or one start per seed stacked on a leading ``replica`` axis.
    model : derive.Model, name of a committed model, or None
    Q0, R0, T : arrays, optional
        Explicit start, shapes (p, p), (p, k), (k, k) (or batched).
    **options
        ``second_order``, ``rtol``, ``atol``, ``method`` of :func:`numerics.integrate`.

    Returns
    -------
    IntegrationResult
    """
    from numerics.ode.integrate import integrate

    alpha_eval = np.asarray(alpha_eval, dtype=float)
    if Q0 is None and R0 is None:
        if p is None or k is None:
            raise ValueError("integrate needs p and k (Eq. 8 starts) or Q0, R0, T")
        Q0, R0, T_start = _starts(p, k, N, q0, seed)
        T = T_start if T is None else T
    elif Q0 is None or R0 is None or T is None:
        raise ValueError("give all of Q0, R0 and T, or none of them")
    return integrate(Q0, R0, T, eta=eta, alpha_max=float(alpha_eval[-1]), alpha_eval=alpha_eval,
                     model=_model(model), **options)


def simulate_task(*, record: Sequence[float] | np.ndarray, model: Any = None, alpha_max: float | None = None,
                  **options: Any) -> IntegrationResult:
    """:func:`numerics.simulate` measured at the alphas ``record`` (no progress bar).

    ``alpha_max`` defaults to ``record[-1]``; every other argument
    (``N``, ``p``, ``k``, ``eta``, ``seed``, ``replicas``, ``method``, ...)
    is passed on.
    """
    from numerics.simulators.weights import simulate

    record = np.asarray(record, dtype=float)
    options.pop("progress", None)
    return simulate(record=record, model=_model(model), alpha_max=float(record[-1]) if alpha_max is None else alpha_max,
                    progress=False, **options)


def escape_time_task(
    *,
    p: int,
    k: int,
    eta: float,
    alpha_max: float | None = None,
    threshold: float = 0.75,
    N: float = 1e4,
    q0: float = 1.0,
    seed: int | Sequence[int] = 0,
    model: Any = None,
    second_order: bool = True,
    n_points: int = 300,
    rtol: float = 1e-6,
    atol: float = 1e-9,
) -> dict[str, Any]:
    """Escape from the plateau, as :func:`numerics.escape_time` measures it, from Eq. 8 starts.

    ``alpha_max`` defaults to ``8 k p log(N) / eta``. The dynamics failing
    (blow-up, leaving the cone, no plateau at this eta) or the risk never
    falling below the threshold is reported, not raised.

    Returns
    -------
    dict
        ``escape_time``, ``plateau_risk`` (the run's own plateau,
        :func:`numerics.analyses.plateau.run_plateaus`) and ``final_risk``: floats, or
        arrays over the ``replica`` dimension for a list of seeds, NaN where
        there was no escape or no run; ``mean_escape_time``; ``failed`` (bool).
    """
    import xarray as xr

    from numerics.analyses.plateau import escape_time, run_plateaus
    from numerics.ode.integrate import IntegrationError, integrate

    horizon = float(alpha_max) if alpha_max is not None else 8.0 * k * p * np.log(N) / eta
    Q0, R0, T = _starts(p, k, N, q0, seed)
    shape = Q0.shape[:-2]
    try:
        result = integrate(Q0, R0, T, eta=eta, alpha_max=horizon, model=_model(model), second_order=second_order,
                           n_points=n_points, rtol=rtol, atol=atol)
        plateau = np.array([c.risk for c in run_plateaus(result)]).reshape(shape)
        times = np.asarray(escape_time(result, threshold=threshold), dtype=float)
        final = np.asarray(result.risk[..., -1], dtype=float)
        failed = bool(np.any(np.isnan(times)))
    except (IntegrationError, ValueError):  # blew up, left the cone, or no plateau at this eta
        plateau = times = final = np.full(shape, np.nan)
        failed = True
    dims = ("replica",) if shape else ()
    return {
        "escape_time": xr.DataArray(times, dims=dims),
        "mean_escape_time": float(np.mean(times)),
        "plateau_risk": xr.DataArray(plateau, dims=dims),
        "final_risk": xr.DataArray(final, dims=dims),
        "failed": failed,
    }


TASKS: dict[str, Callable[..., Any]] = {
    "integrate": integrate_task,
    "simulate": simulate_task,
    "escape_time": escape_time_task,
}
#: The fixed output grid each built-in task requires, and the name it goes by.
REQUIRED_GRID = {"integrate": "alpha_eval", "simulate": "record"}


# ---------------------------------------------------------------------------------------------
# keys


def _canonical(value: Any) -> Any:
    """A JSON-able, process-independent form of an argument (for the key)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if hasattr(value, "codegen_spec") and hasattr(value, "describe"):
        return {"model": model_spec(value)}
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        digest = hashlib.sha256(array.tobytes()).hexdigest()
        return {"array": array.dtype.str, "shape": list(array.shape), "sha256": digest}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    raise TypeError(
        f"cannot key a sweep argument of type {type(value).__name__}: use numbers, strings, arrays, "
        "lists, dicts, None or derive.Model"
    )


def _task_identity(task: str | Callable[..., Any]) -> str:
    if isinstance(task, str):
        return task
    name = f"{getattr(task, '__module__', '?')}.{getattr(task, '__qualname__', repr(task))}"
    try:
        # the source text: editing the function invalidates its stored points
        source = inspect.getsource(task)
    except (OSError, TypeError):
        return name
    return f"{name}:{hashlib.sha256(source.encode()).hexdigest()[:16]}"


def point_key(task: str | Callable[..., Any], point: Mapping[str, Any], fixed: Mapping[str, Any]) -> str:
    """Key of one point: SHA-256 of task, point, fixed arguments, model spec and toolkit version.

    Returns
    -------
    str
        64 hexadecimal digits (the store file is ``<key>.nc``).
    """
    model = point.get("model", fixed.get("model"))
    text = json.dumps(
        {
            "task": _task_identity(task),
            "point": _canonical(dict(point)),
            "fixed": _canonical(dict(fixed)),
            "model": _canonical(model),
            "version": toolkit_version(),
        },
        sort_keys=True,
        allow_nan=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# one point: run the task, lay its output out as a dataset


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


def _as_dataset(output: Any) -> xr.Dataset:
    """The output of a task as the dataset of one point."""
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


def _run_point(function: Callable[..., Any], point: Mapping[str, Any], fixed: Mapping[str, Any]) -> xr.Dataset:
    """Worker side: one call of the task, laid out (only a dataset travels back).

    An output variable named like a swept parameter (a result's ``eta`` in a
    sweep over ``eta``) is renamed ``result_<name>``: the name is the dimension.
    """
    dataset = _as_dataset(function(**point, **fixed))
    if "model_description" in dataset and function in (integrate_task, simulate_task):
        # the model a built-in task ran is known here even when its result does not carry it
        model = _model(point.get("model", fixed.get("model")))
        dataset["model_description"] = ((), describe_model(model, "paper"))
    clashes = {name: f"result_{name}" for name in point if name in dataset.variables}
    return dataset.rename(clashes) if clashes else dataset


# ---------------------------------------------------------------------------------------------
# the grid


def _label(name: str, value: Any) -> Any:
    """Coordinate label of a parameter value."""
    if value is None:
        return "paper" if name == "model" else "None"
    if hasattr(value, "codegen_spec"):
        return value.name
    if isinstance(value, (bool, np.bool_, int, np.integer, float, np.floating, str)):
        return value
    return json.dumps(_canonical(value))


def _points(grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> tuple[list[dict], dict]:
    """Every point of the grid, and the layout (``product`` with names and values, or ``points``)."""
    if isinstance(grid, Mapping):
        names = list(grid)
        values = []
        for name in names:
            entry = grid[name]
            if isinstance(entry, (str, bytes)) or not isinstance(entry, (Sequence, np.ndarray)):
                raise ValueError(f"grid[{name!r}] must be a list of values, got {entry!r}")
            entry = list(entry)
            if not entry:
                raise ValueError(f"grid[{name!r}] is empty")
            values.append(entry)
        points = [dict(zip(names, combination)) for combination in itertools.product(*values)]
        return points, {"kind": "product", "names": names, "values": values}
    if isinstance(grid, (str, bytes)) or not isinstance(grid, Sequence) or not grid \
            or not all(isinstance(point, Mapping) for point in grid):
        raise ValueError("grid must be a mapping of names to value lists, or a non-empty list of point dicts")
    points = [dict(point) for point in grid]
    names = list(points[0])
    for point in points:
        if list(point) != names:
            raise ValueError(f"every point of a list grid must have the names {names}, got {list(point)}")
    return points, {"kind": "points", "names": names}


def _check_names(names: Sequence[str], fixed: Mapping[str, Any]) -> None:
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"swept parameter names must be identifiers, got {name!r}")
        if name in RESERVED:
            raise ValueError(f"{name!r} is a dimension or variable of the result; it cannot be swept")
        if name in fixed:
            raise ValueError(f"{name!r} is both swept and fixed")


# ---------------------------------------------------------------------------------------------
# engines


def _is_dask_client(executor: Any) -> bool:
    module = type(executor).__module__ or ""
    if not module.startswith("distributed"):
        return False
    from distributed import Client

    return isinstance(executor, Client)


def _run_serial(function, todo, stop) -> Iterator[tuple[int, Any, BaseException | None]]:
    """The points in order, here; ``stop()`` true after a failure ends the run (nothing else computes)."""
    for index, point, fixed in todo:
        try:
            yield index, _run_point(function, point, fixed), None
        except Exception as error:  # handed to the caller, which decides (raise or skip)
            yield index, None, error
            if stop():
                return


def _run_futures(submit, as_completed, function, todo, stop) -> Iterator[tuple[int, Any, BaseException | None]]:
    """Submit every point, yield them as they finish; ``stop()`` true cancels what has not started."""
    futures = {submit(_run_point, function, point, fixed): index for index, point, fixed in todo}
    cancelled = False
    try:
        for future in as_completed(list(futures)):
            if future.cancelled():
                continue
            try:
                yield futures[future], future.result(), None
            except Exception as error:
                if future.cancelled():
                    continue
                yield futures[future], None, error
            if stop() and not cancelled:
                cancelled = True
                for other in futures:
                    if not other.done():
                        other.cancel()
    finally:
        # an interrupted sweep (KeyboardInterrupt, an error in this process) leaves nothing queued
        for other in futures:
            if not other.done():
                other.cancel()


def _engine(executor: Any, function, todo, stop) -> tuple[Iterator, Callable[[], None]]:
    """Iterator of finished points on the chosen engine, and its clean-up."""
    if isinstance(executor, str):
        if executor != "serial":
            raise ValueError(f"executor must be 'serial', an Executor or a dask Client, got {executor!r}")
        return _run_serial(function, todo, stop), lambda: None
    if executor is None:
        if len(todo) <= 1:
            return _run_serial(function, todo, stop), lambda: None
        owned = cf.ProcessPoolExecutor(max_workers=min(os.cpu_count() or 1, len(todo)))
        iterator = _run_futures(owned.submit, cf.as_completed, function, todo, stop)
        return iterator, lambda: owned.shutdown(wait=True, cancel_futures=True)
    if isinstance(executor, cf.Executor):
        return _run_futures(executor.submit, cf.as_completed, function, todo, stop), lambda: None
    if _is_dask_client(executor):
        from distributed import as_completed

        def submit(fn, *args):
            # pure=False: every call runs (no deduplication by argument hashing)
            return executor.submit(fn, *args, pure=False)

        return _run_futures(submit, as_completed, function, todo, stop), lambda: None
    raise TypeError(
        f"executor must be None, 'serial', a concurrent.futures.Executor or a dask.distributed.Client, "
        f"got {type(executor).__name__}"
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


def _combine(datasets: list[xr.Dataset], layout: dict, points: list[dict]) -> xr.Dataset:
    import pandas as pd

    if layout["kind"] == "product":
        names, values = layout["names"], layout["values"]

        def build(level: int, offset: int) -> xr.Dataset:
            if level == len(names):
                return datasets[offset]
            stride = int(np.prod([len(v) for v in values[level + 1 :]], dtype=int))
            parts = [build(level + 1, offset + i * stride) for i in range(len(values[level]))]
            labels = [_label(names[level], v) for v in values[level]]
            return _concat(parts, pd.Index(labels, name=names[level]))

        return build(0, 0)
    combined = _concat(datasets, pd.Index(np.arange(len(datasets)), name="point"))
    return combined.assign_coords({name: ("point", [_label(name, p[name]) for p in points])
                                   for name in layout["names"]})


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


# ---------------------------------------------------------------------------------------------
# the store


def _store_path(store: Path, key: str) -> Path:
    return store / f"{key}.nc"


def _read_stored(store: Path, key: str) -> xr.Dataset | None:
    path = _store_path(store, key)
    if not path.is_file():
        return None
    try:
        dataset = load_dataset(path)
    except Exception:  # unreadable (e.g. a file cut short by a crash outside the atomic write): recompute
        return None
    if dataset.attrs.get("sweep_key") != key:
        return None
    dataset.attrs = {}
    return dataset


def _write_stored(store: Path, key: str, dataset: xr.Dataset, task_id: str, point: Mapping[str, Any]) -> None:
    stored = dataset.copy()
    stored.attrs = {
        "wickode_kind": "sweep_point",
        "wickode_version": toolkit_version(),
        "sweep_key": key,
        "sweep_task": task_id,
        "sweep_point": json.dumps(_canonical(dict(point))),
    }
    save(stored, _store_path(store, key))


# ---------------------------------------------------------------------------------------------
# the sweep


def sweep(
    task: str | Callable[..., Any],
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    *,
    executor: Any = None,
    store: str | os.PathLike | None = None,
    progress: bool = True,
    errors: str = "raise",
    **fixed: Any,
) -> xr.Dataset:
    """Run ``task`` at every point of ``grid`` on an executor; gather, store and resume.

    Parameters
    ----------
    task : {"integrate", "simulate", "escape_time"} or callable
        A built-in task (:func:`integrate_task`, :func:`simulate_task`,
        :func:`escape_time_task`) or a function called as
        ``task(**point, **fixed)`` (see the module docstring for what it may return).
    grid : mapping of name -> list of values, or list of dicts
        A mapping is the full product (one dimension per name, in order); a
        list of point dicts is one dimension ``point``.
    executor : None, "serial", concurrent.futures.Executor or dask.distributed.Client
        Where the points run. ``None``: a process pool with one worker per
        core (at most one per point), created and shut down here.
    store : path, optional
        Directory of finished points, one netCDF file per point, written as
        each completes; points already there are read instead of computed.
    progress : bool
        A tqdm bar over the points.
    errors : {"raise", "skip"}
        ``"raise"``: at the first failing point, cancel the points not started
        (a dask cluster also stops the running ones), keep (and store) those
        that finish, then raise the error (serially: nothing after it runs). ``"skip"``:
        failed points are NaN, flagged by the variables ``point_failed``
        (bool) and ``point_error`` (the message) over the swept dimensions,
        and not stored.
    **fixed
        Arguments shared by every point. ``"integrate"`` needs ``alpha_eval``
        and ``"simulate"`` ``record`` (an array of alphas), fixed: one output grid.

    Returns
    -------
    xarray.Dataset
        Dimensions: the swept names (or ``point``), then the task's (layout in
        the module docstring). Attributes: ``wickode_kind = "sweep"``,
        ``wickode_version``, ``sweep_task``, ``sweep_dims``, ``sweep_fixed``
        (JSON), ``model_description`` (when the model is fixed), and
        ``sweep_computed`` / ``sweep_stored`` (points computed in this call /
        read from the store).

    Raises
    ------
    ValueError
        A malformed grid, a name both swept and fixed or reserved, a built-in
        task without its fixed output grid.
    TypeError
        An unsupported executor, or arguments that cannot be keyed.
    Exception
        The first failing point's error, with ``errors="raise"``.
    """
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
    if isinstance(task, str):
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)} or pass a function")
        function = TASKS[task]
    elif callable(task):
        function = task
    else:
        raise TypeError(f"task must be a task name or a callable, got {type(task).__name__}")
    points, layout = _points(grid)
    _check_names(layout["names"], fixed)
    requested = None
    if isinstance(task, str) and task in REQUIRED_GRID:
        argument = REQUIRED_GRID[task]
        value = fixed.get(argument)
        if argument in layout["names"] or value is None or np.ndim(value) != 1:
            raise ValueError(
                f"the {task!r} task needs {argument}= fixed, as a 1-d array of alphas shared by every point "
                "(one output grid for the whole sweep)"
            )
        requested = np.asarray(value, dtype=float)
    task_id = _task_identity(task)
    keys = [point_key(task, point, fixed) for point in points]
    store_dir = None if store is None else Path(store)
    if store_dir is not None:
        store_dir.mkdir(parents=True, exist_ok=True)

    datasets: list[xr.Dataset | None] = [None] * len(points)
    for index, key in enumerate(keys):
        if store_dir is not None:
            datasets[index] = _read_stored(store_dir, key)
    n_stored = sum(d is not None for d in datasets)
    todo = [(i, points[i], fixed) for i in range(len(points)) if datasets[i] is None]
    failures: dict[int, BaseException] = {}

    from tqdm.auto import tqdm

    label = task if isinstance(task, str) else getattr(task, "__name__", "task")
    bar = tqdm(total=len(points), initial=n_stored, desc=f"sweep {label}", unit="point", disable=not progress,
               leave=False)
    iterator, close = _engine(executor, function, todo, stop=lambda: bool(failures) and errors == "raise")
    try:
        for index, dataset, error in iterator:
            bar.update(1)
            if error is not None:
                failures[index] = error
                continue
            datasets[index] = dataset
            if store_dir is not None:
                _write_stored(store_dir, keys[index], dataset, task_id, points[index])
    finally:
        iterator.close()
        close()
        bar.close()
    if failures and errors == "raise":
        index = min(failures)
        error = failures[index]
        if hasattr(error, "add_note"):
            error.add_note(f"sweep point {points[index]} ({len(failures)} point(s) failed)")
        raise error
    done = [d for d in datasets if d is not None]
    if not done:
        first = failures[min(failures)]
        raise RuntimeError(f"every point of the sweep failed; the first: {first!r}") from first
    if failures:
        template = done[0]
        for index in failures:
            datasets[index] = _nan_like(template)
    combined = _combine(datasets, layout, points)
    sweep_dims = list(layout["names"]) if layout["kind"] == "product" else ["point"]
    combined = _settle_alpha(combined, requested)
    if failures:
        shape = [combined.sizes[d] for d in sweep_dims]
        failed = np.zeros(len(points), dtype=bool)
        message = np.full(len(points), "", dtype=object)
        for index, error in failures.items():
            failed[index], message[index] = True, f"{type(error).__name__}: {error}"
        combined["point_failed"] = (sweep_dims, failed.reshape(shape))
        combined["point_error"] = (sweep_dims, message.reshape(shape).astype(str))
    for name in list(combined.data_vars):
        # text of points padded by the combination: "" instead of NaN objects (netCDF cannot store mixed)
        if combined[name].dtype == object:
            values = combined[name].values
            combined[name] = (combined[name].dims,
                              np.where([isinstance(v, str) for v in values.ravel()], values.ravel(), "")
                              .reshape(values.shape).astype(str))
    model = fixed.get("model")
    attrs = {
        "wickode_kind": "sweep",
        "wickode_version": toolkit_version(),
        "sweep_task": task_id,
        "sweep_dims": json.dumps(sweep_dims),
        "sweep_fixed": json.dumps(_canonical(dict(fixed))),
        "sweep_computed": len(todo) - len(failures),
        "sweep_stored": n_stored,
    }
    if "model" not in layout["names"] and (isinstance(task, str) or "model" in fixed):
        attrs["model_description"] = describe_model(_model(model), "paper" if model is None else str(model))
    combined.attrs = attrs
    return combined


def sweep_point(dataset: xr.Dataset, **where: Any) -> IntegrationResult:
    """One point of a sweep of results, as the exact ``IntegrationResult`` it computed.

    Parameters
    ----------
    dataset : xarray.Dataset
        From :func:`sweep` (or :func:`numerics.load` of a saved sweep) of a
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
    # fields renamed because a swept parameter has their name (see _run_point)
    renamed = {f"result_{name}": name for name in encoding["fields"] if f"result_{name}" in point.variables}
    if "point_alpha" in point:
        point = point.assign_coords(alpha=point["point_alpha"].values).drop_vars("point_alpha")
    # the labels of the point (swept names, and their coordinates along ``point``)
    point = point.drop_vars([name for name in point.coords if point[name].ndim == 0])
    point = point.rename(renamed) if renamed else point
    point.attrs = {ENCODING: encoding_text}
    return from_xarray(point)
