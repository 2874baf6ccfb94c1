"""The run loop of a sweep: points on an executor, finished ones stored, all gathered in one dataset.

The engine knows no task: it runs a callable ``function(**point, **fixed)``
(:mod:`numerics.sweeps.tasks` names the built-in ones, :func:`numerics.sweep`
resolves a name). Points already in the store are read instead of computed
(:mod:`numerics.sweeps.store`); every point that finishes is written there at
once, so an interrupted sweep resumes where it stopped. Failed points
(``errors="skip"``) are not stored, so a rerun retries them; with ``"skip"`` the
workers return a failure instead of raising it (:func:`run_point_or_error`), so
an executor's logger (dask's) prints no traceback for it.

Engines
-------
``executor=None`` runs the points on a ``ProcessPoolExecutor`` with one
process per core, created and shut down by the sweep; ``"serial"`` runs them
here, in order; any ``concurrent.futures.Executor`` is used as given; a
``dask.distributed.Client`` (not a ``concurrent.futures.Executor``: it is
recognised by its type) gets the points through ``client.submit`` and
``distributed.as_completed``. Results come back to this process, which writes
the store and builds the dataset (:mod:`numerics.sweeps.layout`).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from numerics.results.encoding import toolkit_version
from numerics.sweeps.layout import Grid, as_dataset, combine
from numerics.sweeps.store import canonical, point_key, read_point, write_point

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["check_errors", "run_point", "run_point_or_error", "run_sweep"]

#: One finished point: its index, its dataset (None if it failed) and its error (None if it did not).
Finished = tuple[int, Any, "BaseException | None"]


def check_errors(errors: str) -> None:
    """Refuse an ``errors`` policy other than ``"raise"`` or ``"skip"``."""
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")


def run_point(function: Callable[..., Any], point: Mapping[str, Any], fixed: Mapping[str, Any]) -> xr.Dataset:
    """Worker side: one call of the task, laid out (only a dataset travels back).

    An output variable named like a swept parameter (a result's ``eta`` in a
    sweep over ``eta``) is renamed ``result_<name>``: the name is the dimension.
    """
    dataset = as_dataset(function(**point, **fixed))
    clashes = {name: f"result_{name}" for name in point if name in dataset.variables}
    return dataset.rename(clashes) if clashes else dataset


def run_point_or_error(function: Callable[..., Any], point: Mapping[str, Any],
                       fixed: Mapping[str, Any]) -> tuple[xr.Dataset | None, Exception | None]:
    """Worker side with ``errors="skip"``: :func:`run_point`, a failure returned instead of raised.

    The worker sees no exception, so its executor (a dask worker's logger) prints no traceback
    for a point the sweep skips anyway.
    """
    try:
        return run_point(function, point, fixed), None
    except Exception as error:
        return None, error


# ---------------------------------------------------------------------------------------------
# engines


def _is_dask_client(executor: Any) -> bool:
    module = type(executor).__module__ or ""
    if not module.startswith("distributed"):
        return False
    from distributed import Client

    return isinstance(executor, Client)


def _run_serial(function, todo, stop) -> Iterator[Finished]:
    """The points in order, here; ``stop()`` true after a failure ends the run (nothing else computes)."""
    for index, point, fixed in todo:
        try:
            yield index, run_point(function, point, fixed), None
        except Exception as error:  # handed to the caller, which decides (raise or skip)
            yield index, None, error
            if stop():
                return


def _run_futures(submit, as_completed, function, todo, stop, capture: bool = False) -> Iterator[Finished]:
    """Submit every point, yield them as they finish; ``stop()`` true cancels what has not started.

    ``capture``: the workers return failures as values (:func:`run_point_or_error`).
    """
    target = run_point_or_error if capture else run_point
    futures = {submit(target, function, point, fixed): index for index, point, fixed in todo}
    cancelled = False
    try:
        for future in as_completed(list(futures)):
            if future.cancelled():
                continue
            try:
                yield (futures[future], *future.result()) if capture else (futures[future], future.result(), None)
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


def _engine(executor: Any, function, todo, stop,
            capture: bool = False) -> tuple[Iterator[Finished], Callable[[], None]]:
    """Iterator of finished points on the chosen engine, and its clean-up (``capture``: :func:`_run_futures`)."""
    if isinstance(executor, str):
        if executor != "serial":
            raise ValueError(f"executor must be 'serial', an Executor or a dask Client, got {executor!r}")
        return _run_serial(function, todo, stop), lambda: None
    if executor is None:
        if len(todo) <= 1:
            return _run_serial(function, todo, stop), lambda: None
        owned = cf.ProcessPoolExecutor(max_workers=min(os.cpu_count() or 1, len(todo)))
        iterator = _run_futures(owned.submit, cf.as_completed, function, todo, stop, capture)
        return iterator, lambda: owned.shutdown(wait=True, cancel_futures=True)
    if isinstance(executor, cf.Executor):
        return _run_futures(executor.submit, cf.as_completed, function, todo, stop, capture), lambda: None
    if _is_dask_client(executor):
        from distributed import as_completed

        def submit(fn, *args):
            # pure=False: every call runs (no deduplication by argument hashing)
            return executor.submit(fn, *args, pure=False)

        return _run_futures(submit, as_completed, function, todo, stop, capture), lambda: None
    raise TypeError(
        f"executor must be None, 'serial', a concurrent.futures.Executor or a dask.distributed.Client, "
        f"got {type(executor).__name__}"
    )


# ---------------------------------------------------------------------------------------------
# the run loop


def _compute(function: Callable[..., Any], grid: Grid, fixed: Mapping[str, Any], datasets: list, *,
             executor: Any, on_done: Callable[[int, xr.Dataset], None], stop_on_failure: bool,
             bar: Any) -> dict[int, BaseException]:
    """Run the points whose dataset is still None; fill them in; return the failures by index."""
    todo = [(i, grid.points[i], fixed) for i in range(len(grid.points)) if datasets[i] is None]
    failures: dict[int, BaseException] = {}
    iterator, close = _engine(executor, function, todo, stop=lambda: bool(failures) and stop_on_failure,
                              capture=not stop_on_failure)
    try:
        for index, dataset, error in iterator:
            bar.update(1)
            if error is not None:
                failures[index] = error
                continue
            datasets[index] = dataset
            on_done(index, dataset)
    finally:
        iterator.close()
        close()
    return failures


def run_sweep(
    function: Callable[..., Any],
    grid: Grid,
    fixed: Mapping[str, Any],
    *,
    task_id: str,
    label: str,
    executor: Any = None,
    store: str | os.PathLike | None = None,
    progress: bool = True,
    errors: str = "raise",
    requested: np.ndarray | None = None,
) -> xr.Dataset:
    """Run ``function(**point, **fixed)`` at every point of ``grid``; gather, store and resume.

    Parameters
    ----------
    function : callable
        The task (picklable for process and dask engines).
    grid : Grid
        From :func:`numerics.sweeps.layout.expand_grid`.
    fixed : mapping of name -> value
        Arguments shared by every point.
    task_id : str
        The task in the points' keys and the attribute ``sweep_task``
        (:func:`numerics.sweeps.store.task_identity`).
    label : str
        The task's name on the progress bar.
    executor, store, progress, errors
        As :func:`numerics.sweep`.
    requested : array, shape (n,), optional
        The fixed output times, the ``alpha`` coordinate when the points' own times differ.

    Returns
    -------
    xarray.Dataset
        The combined points, with the attributes ``wickode_kind``, ``wickode_version``, ``sweep_task``,
        ``sweep_dims``, ``sweep_fixed``, ``sweep_computed`` and ``sweep_stored``.
    """
    check_errors(errors)
    keys = [point_key(task_id, point, fixed) for point in grid.points]
    store_dir = None if store is None else Path(store)
    if store_dir is not None:
        store_dir.mkdir(parents=True, exist_ok=True)
    datasets = [None if store_dir is None else read_point(store_dir, key) for key in keys]
    n_stored = sum(d is not None for d in datasets)

    def on_done(index: int, dataset: xr.Dataset) -> None:
        if store_dir is not None:
            write_point(store_dir, keys[index], dataset, task_id, grid.points[index])

    from tqdm.auto import tqdm

    with tqdm(total=len(grid.points), initial=n_stored, desc=f"sweep {label}", unit="point",
              disable=not progress, leave=False) as bar:
        failures = _compute(function, grid, fixed, datasets, executor=executor, on_done=on_done,
                            stop_on_failure=errors == "raise", bar=bar)
    if failures and errors == "raise":
        index = min(failures)
        error = failures[index]
        if hasattr(error, "add_note"):
            error.add_note(f"sweep point {grid.points[index]} ({len(failures)} point(s) failed)")
        raise error
    combined = combine(datasets, grid, failures, requested)
    combined.attrs = {
        "wickode_kind": "sweep",
        "wickode_version": toolkit_version(),
        "sweep_task": task_id,
        "sweep_dims": json.dumps(grid.dims),
        "sweep_fixed": json.dumps(canonical(dict(fixed))),
        "sweep_computed": len(grid.points) - n_stored - len(failures),
        "sweep_stored": n_stored,
    }
    return combined
