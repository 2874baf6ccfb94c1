"""Symbolic side of wickode: Wick's theorem, index-free overlap ODEs, code generation.

Public entry points
-------------------
``Model``, ``PAPER``, ``HE2``, ``HE3``   the model family (:mod:`derive.model.model`)
``SCM``                                the soft committee machine (erf units)
``expectation``                        Gaussian moments (:mod:`derive.gauss.wick`)
``derive_quantities``                  index-free right-hand sides and risk
``generate_module``                    NumPy code for a model

The names are imported on first use (PEP 562): the sympy-free modules that the numerics
import (``derive.codegen.artefacts``, ``derive.model.hessian_spectra``) must not pull in
sympy through this package's ``__init__``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Where each public name is defined.
_SOURCES = {
    "generate_module": "derive.codegen.module",
    "expectation": "derive.gauss.wick",
    "HE2": "derive.model.model",
    "HE3": "derive.model.model",
    "PAPER": "derive.model.model",
    "SCM": "derive.model.model",
    "Model": "derive.model.model",
    "hermite": "derive.model.model",
    "DerivedQuantities": "derive.quantities.ode",
    "derive_quantities": "derive.quantities.ode",
}

if TYPE_CHECKING:
    from derive.codegen.module import generate_module
    from derive.gauss.wick import expectation
    from derive.model.model import HE2, HE3, PAPER, SCM, Model, hermite
    from derive.quantities.ode import DerivedQuantities, derive_quantities

__all__ = [
    "HE2",
    "HE3",
    "PAPER",
    "SCM",
    "DerivedQuantities",
    "Model",
    "derive_quantities",
    "expectation",
    "generate_module",
    "hermite",
]


def __getattr__(name: str) -> Any:
    if name in _SOURCES:
        value = getattr(importlib.import_module(_SOURCES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'derive' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
