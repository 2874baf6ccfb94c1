"""The one registry of generated artefacts: committed, cached, or generated on first use.

Every kind of generated module is found by :func:`artefact` ``(kind, model)``:

============================  ==================================================  ==============================
kind                          what the module holds                               committed for
============================  ==================================================  ==============================
``"model"``                   overlap-ODE terms and risk (index-free, or per      paper, He2, He3, soft committee
                              tuple for erf/relu models)
``"tuples"``                  per-tuple kernels of a polynomial model (readout    paper, He2, He3
                              vectors, trained readouts)
``"hessian"``                 Gaussian averages of the gradient and Hessian       paper, He2, He3
``"fluctuations"``            increment moments (printed einsums up to degree 2,  paper, He2, He3
                              network tables for degrees 3 and 4)
``"fluctuation_networks"``    the increment moments as network tables at every    He3 (as ``"fluctuations"``)
                              degree (readout vectors need them)
``"readout_networks"``        a trained readout's averages as network tables      none
============================  ==================================================  ==============================

A committed module (``numerics/_generated``) is imported without sympy. Any other is
generated once into the user cache keyed by its input hash (``$WICKODE_CACHE_DIR``, else
``$XDG_CACHE_HOME/wickode``, else ``~/.cache/wickode``), written atomically, verified on
every load and regenerated when it is not intact, and executed under a name derived from
the kind and hash, so two models can never shadow each other (:mod:`numerics.runtime.cache`).
Modules found are kept in one in-process table, :data:`LOADED`, keyed by ``(kind, input hash)``.

``model=None`` means the paper's model (docs/model.md) everywhere in the numerics.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType
from typing import Any

from numerics._generated import COMMITTED, COMMITTED_TUPLES
from numerics.runtime.cache import cache_dir, load_generated

#: Modules found in this process, by ``(kind, input hash)``; ``"paper"`` is the paper model's key.
_LOADED: dict[tuple[str, str], ModuleType] = {}

KINDS = ("model", "tuples", "hessian", "fluctuations", "fluctuation_networks", "readout_networks")

__all__ = [
    "KINDS",
    "ResolvedModel",
    "artefact",
    "cache_dir",
    "check_model",
    "clear_loaded",
    "fluctuation_module",
    "generated_module",
    "hessian_module",
    "is_per_tuple",
    "model_by_name",
    "model_or_paper",
    "resolve",
    "tuple_module",
]


@dataclass(frozen=True)
class ResolvedModel:
    """What the numerics need from a model at call time."""

    module: ModuleType
    noise_variance: float
    weight_decay: float
    name: str
    description: str
    label_flip: float = 0.0


def check_model(model: Any) -> None:
    """Raise ``ValueError`` unless ``model`` is a :class:`derive.Model` or ``None`` (the paper's model)."""
    if model is not None and not hasattr(model, "codegen_hash"):
        raise ValueError(f"model must be a derive.Model or None, got {type(model).__name__}")


def model_or_paper(model: Any) -> Any:
    """``model``, or the paper's :class:`derive.Model` for ``None`` (for generators that need the object)."""
    if model is not None:
        return model
    from derive.model.model import PAPER

    return PAPER


def clear_loaded() -> None:
    """Forget every module found in this process (the next :func:`artefact` finds it again)."""
    _LOADED.clear()
    _RESOLVED.clear()


def _committed(kind: str, model: Any, key: str) -> str | None:
    """The dotted name of ``model``'s committed module of ``kind`` (input hash ``key``), or ``None``."""
    if kind == "readout_networks":
        return None
    if model is None:
        base = "paper"
    elif kind == "tuples":
        name = COMMITTED_TUPLES.get(key)
        return None if name is None else f"numerics._generated.{name}"
    else:
        base = COMMITTED.get(key)
    if base is None:
        return None
    suffix = {"model": "", "tuples": "_tuples", "hessian": "_hessian", "fluctuations": "_fluctuations",
              "fluctuation_networks": "_fluctuations"}[kind]
    name = f"numerics._generated.{base}{suffix}"
    if importlib.util.find_spec(name) is None:
        return None
    if kind == "fluctuation_networks" and not _defines_tables(name):
        return None
    return name


def _defines_tables(name: str) -> bool:
    return hasattr(importlib.import_module(name), "TABLES")


def _key(kind: str, model: Any) -> str:
    """The input hash ``model``'s module of ``kind`` is cached under."""
    if kind == "tuples" and model is not None:
        from derive.codegen.tuples import tuple_input_hash

        return tuple_input_hash(model)
    return "paper" if model is None else model.codegen_hash()


def _cache_kind(kind: str, model: Any) -> str:
    """The kind written in the cache file name (the two increment layouts are cached apart)."""
    if kind == "fluctuations":
        from derive.quantities.increments import uses_network_tables

        return "fluctuation_networks" if uses_network_tables(model) else "fluctuations"
    return kind


def _source(kind: str, model: Any) -> Callable[[], str]:
    """The generator of ``model``'s module of ``kind`` (called only when no intact file exists)."""
    if kind == "model":
        if not model.is_polynomial():  # erf / relu: the per-tuple module is the model's only module
            from derive.codegen.tuples import generate_tuple_module

            return lambda: generate_tuple_module(model)
        from derive.codegen.module import FIRST_USE_LAYOUT, generate_module

        return lambda: generate_module(model, FIRST_USE_LAYOUT).source
    if kind == "tuples":
        from derive.codegen.tuples import generate_tuple_module

        return lambda: generate_tuple_module(model)
    if kind == "hessian":
        from derive.codegen.hessian_module import generate_hessian_module

        return lambda: generate_hessian_module(model)
    if kind == "fluctuations":
        from derive.codegen.increments_module import generate_fluctuation_module

        return lambda: generate_fluctuation_module(model)
    from derive.codegen.network_module import generate_network_module

    layout = "increments" if kind == "fluctuation_networks" else "readout"
    return lambda: generate_network_module(model, layout)


#: Names the cached modules are executed under, by kind (kept from the first releases of the cache).
_MODULE_PREFIX = {"model": "wickode_generated_", "tuples": "wickode_tuples_", "hessian": "wickode_generated_hessian_"}


def artefact(kind: str, model: Any = None) -> ModuleType:
    """The generated module of ``kind`` (one of :data:`KINDS`) for ``model`` (``None``: the paper's).

    Raises
    ------
    ValueError
        An unknown kind, a ``model`` that is not a :class:`derive.Model`, or a model the kind
        does not cover (increment moments of erf/relu units or above degree 4).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind of generated module {kind!r}; known: {', '.join(KINDS)}")
    check_model(model)
    if kind in ("fluctuations", "fluctuation_networks", "readout_networks") and model is not None:
        if not model.is_polynomial():
            raise ValueError(f"the increment moments need polynomial activations (Wick counting); {model.describe()}")
    key = _key(kind, model)
    module = _LOADED.get((kind, key))
    if module is not None:
        return module
    committed = _committed(kind, model, key)
    if committed is not None:
        module = importlib.import_module(committed)
    else:
        source_model = model_or_paper(model)
        # the model's hash is computed once per call: hashing a model costs about a millisecond
        source_key = key if model is not None else _key(kind, source_model)
        if kind in ("fluctuations", "fluctuation_networks", "readout_networks"):
            from derive.quantities.increments import check_fluctuations_supported

            check_fluctuations_supported(source_model)
        cache_kind = _cache_kind(kind, source_model)
        prefix = _MODULE_PREFIX.get(kind, f"wickode_generated_{cache_kind}_")
        module = load_generated(cache_kind, source_key, _source(kind, source_model), f"{prefix}{source_key}")
    _LOADED[(kind, key)] = module
    return module


def generated_module(model: Any = None) -> ModuleType:
    """The generated NumPy module of ``model``'s overlap ODE (``artefact("model", model)``)."""
    return artefact("model", model)


def is_per_tuple(module: ModuleType) -> bool:
    """True for a per-tuple module (it accepts readout vectors and has ``readout_drift``)."""
    return bool(getattr(module, "PER_TUPLE", False))


def tuple_module(model: Any = None) -> ModuleType:
    """The per-tuple module of ``model`` (readout vectors, trained readouts; see :mod:`numerics.kernels.unit_tuples`).

    For a model with erf or relu activations it is the model's generated module;
    for a polynomial model (``None``: the paper model) a second module whose
    kernels come from Wick counting on small blocks.
    """
    module = generated_module(model)
    if is_per_tuple(module):
        return module
    return artefact("tuples", model)


def hessian_module(model: Any = None) -> ModuleType:
    """The generated module with ``hessian_terms(Q, R, T)`` for ``model`` (None: paper).

    Polynomial models have an index-free Hessian module; models with erf or relu
    units use their per-tuple module, whose ``hessian_terms`` takes readout vectors too.
    """
    check_model(model)
    if model is not None and not model.is_polynomial():
        return tuple_module(model)
    return artefact("hessian", model)


def fluctuation_module(model: Any = None) -> ModuleType:
    """The generated module with ``first_order_moments`` and ``second_order_moments`` for ``model``.

    Printed einsums for activations of degree <= 2, network tables contracted by
    :mod:`numerics.kernels.network_moments` for degrees 3 and 4. Higher degrees and
    non-polynomial activations raise ``ValueError``.
    """
    return artefact("fluctuations", model)


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
    from derive.model.model import check_readouts

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
        float(model.label_flip),
    )


def model_by_name(name: str) -> Any:
    """A committed model by its name (``COMMITTED_MODELS`` and ``COMMITTED_TUPLE_MODELS`` of
    ``derive.model.model``: paper, he2, he3, scm); ``"paper"`` is ``None``.

    Raises
    ------
    ValueError
        For any other name; the message lists the names.
    """
    if name == "paper":
        return None
    from derive.model.model import COMMITTED_MODELS, COMMITTED_TUPLE_MODELS

    committed = COMMITTED_MODELS + COMMITTED_TUPLE_MODELS
    for model in committed:
        if model.name == name:
            return model
    names = ["paper"] + [model.name for model in committed if model.name != "paper"]
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(names)}")
