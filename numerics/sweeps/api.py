"""``numerics.sweep``: a task by name or as a function, run over a grid by the engine.

``sweep(task, grid, **fixed)`` runs ``task(**point, **fixed)`` for every point
of ``grid`` and gathers the outputs in one ``xarray.Dataset`` with a dimension
per swept parameter. With ``store=`` every finished point is written to its own
netCDF file as soon as it completes, and a rerun computes only the points not
stored yet: an interrupted sweep resumes where it stopped.

The tasks are in :mod:`numerics.sweeps.tasks`, the layout of the result in
:mod:`numerics.sweeps.layout`, the keys and the store in
:mod:`numerics.sweeps.store`, the executors in :mod:`numerics.sweeps.engine`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from numerics.results.encoding import describe_model
from numerics.sweeps.engine import check_errors, run_sweep
from numerics.sweeps.layout import expand_grid
from numerics.sweeps.store import task_identity
from numerics.sweeps.tasks import REQUIRED_GRID, point_function, resolve_model

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["sweep"]


def _requested_grid(task: str | Callable[..., Any], names: Sequence[str],
                    fixed: Mapping[str, Any]) -> np.ndarray | None:
    """The fixed output times a built-in task requires (None for the others)."""
    if not isinstance(task, str) or task not in REQUIRED_GRID:
        return None
    argument = REQUIRED_GRID[task]
    value = fixed.get(argument)
    if argument in names or value is None or np.ndim(value) != 1:
        raise ValueError(
            f"the {task!r} task needs {argument}= fixed, as a 1-d array of alphas shared by every point "
            "(one output grid for the whole sweep)"
        )
    return np.asarray(value, dtype=float)


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
        A built-in task (:func:`~numerics.sweeps.tasks.integrate_task`,
        :func:`~numerics.sweeps.tasks.simulate_task`,
        :func:`~numerics.sweeps.tasks.escape_time_task`) or a function called as
        ``task(**point, **fixed)`` (see :mod:`numerics.sweeps.tasks` for what it may return).
    grid : mapping of name -> list of values, or list of dicts
        A mapping is the full product (one dimension per name, in order); a
        list of point dicts is one dimension ``point``.
    executor : None, "serial", concurrent.futures.Executor or dask.distributed.Client
        Where the points run. ``None``: a process pool with one worker per
        core (at most one per point), created and shut down here.
    store : path, optional
        Directory of finished points, one netCDF file per point, written as
        each completes; points already there are read instead of computed
        (keys in :mod:`numerics.sweeps.store`).
    progress : bool
        A tqdm bar over the points.
    errors : {"raise", "skip"}
        ``"raise"``: at the first failing point, cancel the points not started
        (a dask cluster also stops the running ones), keep (and store) those
        that finish, then raise the error (serially: nothing after it runs). ``"skip"``:
        failed points are NaN, flagged by the variables ``point_failed``
        (bool) and ``point_error`` (the message) over the swept dimensions,
        and not stored (a rerun retries them); the workers return the failure
        instead of raising it, so no traceback is logged (by dask's workers).
    **fixed
        Arguments shared by every point. ``"integrate"`` needs ``alpha_eval``
        and ``"simulate"`` ``record`` (an array of alphas), fixed: one output grid.

    Returns
    -------
    xarray.Dataset
        Dimensions: the swept names (or ``point``), then the task's (layout in
        :mod:`numerics.sweeps.layout`). Attributes: ``wickode_kind = "sweep"``,
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
    check_errors(errors)
    function = point_function(task)
    expanded = expand_grid(grid, fixed)
    requested = _requested_grid(task, expanded.names, fixed)
    label = task if isinstance(task, str) else getattr(task, "__name__", "task")
    combined = run_sweep(function, expanded, fixed, task_id=task_identity(task), label=label, executor=executor,
                         store=store, progress=progress, errors=errors, requested=requested)
    if "model" not in expanded.names and (isinstance(task, str) or "model" in fixed):
        model = fixed.get("model")
        combined.attrs["model_description"] = describe_model(resolve_model(model),
                                                             "paper" if model is None else str(model))
    return combined
