"""Sub-commands of the ``wickode`` command line, one module each."""

from __future__ import annotations

from typing import Any

MODEL_CHOICES = ("paper", "he2", "he3")


def model_by_name(name: str) -> Any:
    """A committed model by name; ``paper`` maps to ``None`` (no sympy import)."""
    if name == "paper":
        return None
    from derive.model import COMMITTED_MODELS

    for model in COMMITTED_MODELS:
        if model.name == name:
            return model
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_CHOICES)}")
