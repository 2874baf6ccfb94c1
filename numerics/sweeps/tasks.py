"""The built-in sweep tasks, by name: what ``numerics.sweep("integrate", ...)`` and its kin run.

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

Every task is a module-level function, so every engine can pickle it by reference.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from numerics.results.encoding import describe_model
from numerics.runtime.registry import model_by_name
from numerics.sweeps.layout import as_dataset

if TYPE_CHECKING:
    import xarray as xr

    from numerics.results.persist import IntegrationResult

__all__ = [
    "REQUIRED_GRID",
    "TASKS",
    "escape_time_task",
    "integrate_task",
    "point_function",
    "resolve_model",
    "simulate_task",
]


def resolve_model(value: Any) -> Any:
    """A model argument as a model: ``None`` and a ``derive.Model`` as they are, a name as the committed model."""
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
                     model=resolve_model(model), **options)


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
    return simulate(record=record, model=resolve_model(model),
                    alpha_max=float(record[-1]) if alpha_max is None else alpha_max, progress=False, **options)


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
        result = integrate(Q0, R0, T, eta=eta, alpha_max=horizon, model=resolve_model(model),
                           second_order=second_order, n_points=n_points, rtol=rtol, atol=atol)
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


#: The built-in tasks, by the name :func:`numerics.sweep` knows them by.
TASKS: dict[str, Callable[..., Any]] = {
    "integrate": integrate_task,
    "simulate": simulate_task,
    "escape_time": escape_time_task,
}
#: The fixed output grid each built-in task requires, and the name it goes by.
REQUIRED_GRID = {"integrate": "alpha_eval", "simulate": "record"}


def _described(task: Callable[..., IntegrationResult], /, **arguments: Any) -> xr.Dataset:
    """A result task's point, its ``model_description`` that of the model the task ran."""
    dataset = as_dataset(task(**arguments))
    if "model_description" in dataset:
        # the model a built-in task ran is known here even when its result does not carry it
        dataset["model_description"] = ((), describe_model(resolve_model(arguments.get("model")), "paper"))
    return dataset


def point_function(task: str | Callable[..., Any]) -> Callable[..., Any]:
    """What the engine runs at a point for ``task`` (a built-in name or a function).

    Raises
    ------
    ValueError
        An unknown task name.
    TypeError
        A task that is neither a name nor callable.
    """
    if isinstance(task, str):
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)} or pass a function")
        function = TASKS[task]
    elif callable(task):
        function = task
    else:
        raise TypeError(f"task must be a task name or a callable, got {type(task).__name__}")
    if function is integrate_task or function is simulate_task:
        # a partial of module-level functions: picklable by every engine
        return functools.partial(_described, function)
    return function
