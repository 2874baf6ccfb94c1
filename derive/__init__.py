"""Symbolic side of wickode: Wick's theorem, index-free overlap ODEs, code generation.

Public entry points
-------------------
``Model``, ``PAPER``, ``HE2``, ``HE3``   the model family (:mod:`derive.model.model`)
``SCM``                                the soft committee machine (erf units)
``expectation``                        Gaussian moments (:mod:`derive.gauss.wick`)
``derive_quantities``                  index-free right-hand sides and risk
``generate_module``                    NumPy code for a model
"""

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
