"""The keys of sweep points and the store of finished points (one netCDF file per point).

Point ``x`` of a sweep with ``store=<dir>`` is ``<dir>/<key>.nc``, written
atomically (:func:`numerics.results.persist.save`) by the process that runs the
sweep, so workers need no shared file system. The key is a SHA-256 of: the
task (built-in name, or the function's module, qualified name and source text),
the point, the fixed arguments, the model's spec and the toolkit version
(arrays enter through their dtype, shape and bytes; models through the text of
their fields). Changing any of them computes the point again; a file that cannot
be read, whose digest does not match its contents (an edited or damaged point:
:mod:`numerics.results.checks`) or whose stored key differs, is computed again
too, and replaced. A directory in place of a point's file is refused before any
point is computed.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from numerics.results.encoding import load_dataset, model_spec, toolkit_version
from numerics.results.persist import save

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["canonical", "point_key", "read_point", "task_identity", "write_point"]


def canonical(value: Any) -> Any:
    """A JSON-able, process-independent form of an argument (for the key).

    Raises
    ------
    TypeError
        A value that is none of: number, string, array, list, dict, None, ``derive.Model``.
    """
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
        return [canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    raise TypeError(
        f"cannot key a sweep argument of type {type(value).__name__}: use numbers, strings, arrays, "
        "lists, dicts, None or derive.Model"
    )


def task_identity(task: str | Callable[..., Any]) -> str:
    """The text naming a task in keys: a built-in name as it is, a function by module, name and source."""
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

    Parameters
    ----------
    task : str or callable
        A task name (or the :func:`task_identity` of a function), or the function itself.
    point, fixed : mapping of name -> value
        The swept values of the point, and the arguments shared by every point.

    Returns
    -------
    str
        64 hexadecimal digits (the store file is ``<key>.nc``).
    """
    model = point.get("model", fixed.get("model"))
    text = json.dumps(
        {
            "task": task_identity(task),
            "point": canonical(dict(point)),
            "fixed": canonical(dict(fixed)),
            "model": canonical(model),
            "version": toolkit_version(),
        },
        sort_keys=True,
        allow_nan=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _point_path(store: Path, key: str) -> Path:
    return store / f"{key}.nc"


def read_point(store: Path, key: str) -> xr.Dataset | None:
    """The stored dataset of the point ``key`` (attributes dropped), or None if it must be computed.

    Raises
    ------
    ValueError
        Something other than a file (a directory) is in the way of the point's file.
    """
    path = _point_path(store, key)
    if path.exists() and not path.is_file():
        raise ValueError(f"{path} (sweep store of the point {key}) is not a file: remove it or use another store")
    if not path.is_file():
        return None
    try:
        dataset = load_dataset(path)
    except Exception:  # unreadable or digest mismatch (cut short by a crash, edited, damaged): recompute
        return None
    if dataset.attrs.get("sweep_key") != key:
        return None
    dataset.attrs = {}
    return dataset


def write_point(store: Path, key: str, dataset: xr.Dataset, task_id: str, point: Mapping[str, Any]) -> None:
    """Write one finished point atomically as ``<store>/<key>.nc``, labelled with its key, task and point."""
    stored = dataset.copy()
    stored.attrs = {
        "wickode_kind": "sweep_point",
        "wickode_version": toolkit_version(),
        "sweep_key": key,
        "sweep_task": task_id,
        "sweep_point": json.dumps(canonical(dict(point))),
    }
    save(stored, _point_path(store, key))
