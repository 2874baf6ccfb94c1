"""Find the generated module of a model: committed, cached, or generated on first use.

Committed modules (the paper model, He2, He3) are imported without sympy. Any
other model is generated once into a user cache directory keyed by its input
hash (``$WICKODE_CACHE_DIR``, else ``$XDG_CACHE_HOME/wickode``, else
``~/.cache/wickode``), written atomically, verified on every load and
regenerated when it is not intact, and executed under a name derived from the
hash, so two models can never shadow each other (see :mod:`numerics.cache`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType
from typing import Any

from ._generated import COMMITTED, COMMITTED_TUPLES
from .cache import cache_dir, load_generated

#: Modules loaded in this process, by input hash ("paper" for the default model).
_LOADED: dict[str, ModuleType] = {}

__all__ = ["ResolvedModel", "cache_dir", "generated_module", "is_per_tuple", "resolve", "tuple_module"]


@dataclass(frozen=True)
class ResolvedModel:
    """What the numerics need from a model at call time."""

    module: ModuleType
    noise_variance: float
    weight_decay: float
    name: str
    description: str


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
        module = load_generated("model", key, lambda: _model_source(model), f"wickode_generated_{key}")
    _LOADED[key] = module
    return module


def _model_source(model: Any) -> str:
    if not model.is_polynomial():
        # erf / relu: the per-tuple module is the model's only module
        from derive.tuples import generate_tuple_module

        return generate_tuple_module(model)
    from derive.codegen import generate_module

    return generate_module(model).source


def is_per_tuple(module: ModuleType) -> bool:
    """True for a per-tuple module (it accepts readout vectors and has ``readout_drift``)."""
    return bool(getattr(module, "PER_TUPLE", False))


def tuple_module(model: Any = None) -> ModuleType:
    """The per-tuple module of ``model`` (readout vectors, trained readouts; see :mod:`numerics.unit_tuples`).

    For a model with erf or relu activations it is the model's generated module;
    for a polynomial model (``None``: the paper model) a second module whose
    kernels come from Wick counting on small blocks, committed for the models of
    ``derive.model.COMMITTED_MODELS`` and generated into the cache otherwise.
    """
    module = generated_module(model)
    if is_per_tuple(module):
        return module
    if model is None:
        key = "tuples:paper"
        if key not in _LOADED:
            _LOADED[key] = importlib.import_module("numerics._generated.paper_tuples")
        return _LOADED[key]
    from derive.tuples import generate_tuple_module, tuple_input_hash

    key = tuple_input_hash(model)
    if "tuples:" + key in _LOADED:
        return _LOADED["tuples:" + key]
    if key in COMMITTED_TUPLES:
        module = importlib.import_module(f"numerics._generated.{COMMITTED_TUPLES[key]}")
    else:
        module = load_generated("tuples", key, lambda: generate_tuple_module(model), f"wickode_tuples_{key}")
    _LOADED["tuples:" + key] = module
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
    _check_readouts_once(model, int(p), int(k))


@lru_cache(maxsize=1024)
def _check_readouts_once(model: Any, p: int, k: int) -> None:
    # an exact sympy evaluation: once per model and widths, not once per call
    from derive.model import check_readouts

    check_readouts(model, p, k)


#: Resolved models by object identity: ``id(model) -> _Entry``. Looking a model up by
#: its content hash costs about 1 ms (``srepr`` of every field, then SHA-256), far more
#: than a right-hand side at small p, so each model object is hashed once. The entry
#: holds the model itself, so its ``id`` cannot be reused while the entry exists.
_RESOLVED: dict[int, _Entry] = {}
#: Most model objects remembered; the oldest entry is dropped beyond this.
RESOLVED_CACHE_SIZE = 256


@dataclass
class _Entry:
    model: Any
    resolved: ResolvedModel
    loaded: dict  # the module table it was filled from (tests swap ``_LOADED`` to force a reload)
    checked_sizes: set = field(default_factory=set)


def resolve(model: Any = None, *, sizes: tuple[int, int] | None = None) -> ResolvedModel:
    """Generated module plus the call-time parameters (Delta, kappa) of ``model``.

    With ``sizes = (p, k)`` the readouts are first checked at those widths
    (:func:`check_widths`). The result is cached per model object (a frozen
    :class:`derive.Model` cannot change), so repeated calls with the same
    object cost a dictionary look-up.
    """
    entry = _RESOLVED.get(id(model))
    if entry is not None and entry.model is model and entry.loaded is _LOADED:
        if sizes is not None and sizes not in entry.checked_sizes:
            check_widths(model, *sizes)
            entry.checked_sizes.add(tuple(sizes))
        return entry.resolved
    if model is not None and not hasattr(model, "codegen_hash"):
        raise ValueError(f"model must be a derive.Model or None, got {type(model).__name__}")
    # widths first: a model whose readouts fail at these widths is not generated at all
    if sizes is not None:
        check_widths(model, *sizes)
    entry = _Entry(model, _resolve_uncached(model), _LOADED)
    if sizes is not None:
        entry.checked_sizes.add(tuple(sizes))
    if len(_RESOLVED) >= RESOLVED_CACHE_SIZE:
        del _RESOLVED[next(iter(_RESOLVED))]
    _RESOLVED[id(model)] = entry
    return entry.resolved


def _resolve_uncached(model: Any) -> ResolvedModel:
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
