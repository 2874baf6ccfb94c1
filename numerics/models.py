"""Find the generated module of a model: committed, cached, or generated on first use.

Committed modules (the paper model, He2, He3) are imported without sympy. Any
other model is generated once into a user cache directory keyed by its input
hash (``$WICKODE_CACHE_DIR``, else ``$XDG_CACHE_HOME/wickode``, else
``~/.cache/wickode``), written atomically, and loaded by path under a name
derived from the hash, so two models can never shadow each other.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ._generated import COMMITTED

_LOADED: dict[str, ModuleType] = {}


@dataclass(frozen=True)
class ResolvedModel:
    """What the numerics need from a model at call time."""

    module: ModuleType
    noise_variance: float
    weight_decay: float
    name: str
    description: str


def cache_dir() -> Path:
    """Directory for generated modules of models that are not committed."""
    if os.environ.get("WICKODE_CACHE_DIR"):
        return Path(os.environ["WICKODE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wickode"


def _load_by_path(path: Path, key: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"wickode_generated_{key}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load generated module {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generated_module(model: Any = None) -> ModuleType:
    """The generated NumPy module for ``model`` (``None``: the paper model)."""
    if model is None:
        key = "paper"
    else:
        key = model.codegen_hash()
    if key in _LOADED:
        return _LOADED[key]
    if model is None:
        module = importlib.import_module("numerics._generated.paper")
    elif key in COMMITTED:
        module = importlib.import_module(f"numerics._generated.{COMMITTED[key]}")
    else:
        path = cache_dir() / f"model_{key}.py"
        if not path.exists() or f"# input-hash: {key}" not in path.read_text():
            from derive.codegen import generate_module, write_atomically

            write_atomically(path, generate_module(model).source)
        module = _load_by_path(path, key)
    _LOADED[key] = module
    return module


def check_widths(model: Any, p: int, k: int) -> None:
    """Raise ``ValueError`` unless the readouts of ``model`` are real and finite at widths ``(p, k)``.

    A model's readouts are checked at small widths when it is built; this covers
    the widths actually used (e.g. ``1/(p - 9)`` at ``p = 9``), so the numerics
    fail with a message naming the readout and ``p, k`` instead of a division by
    zero, a math domain error or NaN. ``None`` (the paper: 1/p, 1/k) always passes.
    """
    if model is None:
        return
    from derive.model import check_readouts

    check_readouts(model, p, k)


def resolve(model: Any = None, *, sizes: tuple[int, int] | None = None) -> ResolvedModel:
    """Generated module plus the call-time parameters (Delta, kappa) of ``model``.

    With ``sizes = (p, k)`` the readouts are first checked at those widths
    (:func:`check_widths`).
    """
    if model is not None and not hasattr(model, "codegen_hash"):
        raise ValueError(f"model must be a derive.Model or None, got {type(model).__name__}")
    if sizes is not None:
        check_widths(model, *sizes)
    module = generated_module(model)
    if model is None:
        return ResolvedModel(module, 0.0, 0.0, "paper", module.MODEL_DESCRIPTION)
    return ResolvedModel(
        module,
        float(model.noise_variance),
        float(model.weight_decay),
        model.name,
        model.describe(),
    )
