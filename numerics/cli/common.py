"""What the sub-commands of the ``wickode`` command line share (one module per sub-command in :mod:`numerics.cli`).

Every command that takes a model accepts ``--model paper|he2|he3`` (a committed
model) and the flags of :func:`add_model_arguments`, which override fields of
that model (``--model he3 --noise 0.1``) or, from the paper model, define any
model of the family (``--student "x**2 + x" --teacher "x**2"``). Model text is
parsed by :mod:`derive.model.parse` (a whitelisted grammar, never evaluated).

User errors (bad values, unwritable paths, a diverging run) are raised as
:class:`CommandError` or ``ValueError`` and printed by :func:`numerics.cli.main`
as one line naming the flag, with exit code 2.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from numerics.runtime.registry import model_by_name as registry_model_by_name

MODEL_CHOICES = ("paper", "he2", "he3")

#: Model flags: ``(flag, Model field, help)``.
MODEL_FLAGS = (
    ("--student", "student_activation",
     'student activation: a polynomial in x (e.g. "x**3 - 3*x"), "erf(x/sqrt(2))" or "relu(x)"'),
    ("--teacher", "teacher_activation",
     'teacher activation: a polynomial in x (e.g. "x**2"), "erf(x/sqrt(2))" or "relu(x)"'),
    ("--student-readout", "student_readout", 'student readout a_j, an expression in p and k (e.g. "1/sqrt(p)")'),
    ("--teacher-readout", "teacher_readout", 'teacher readout b_r, an expression in p and k (e.g. "1/k")'),
    ("--noise", "noise_variance", "label-noise variance Delta >= 0"),
    ("--weight-decay", "weight_decay", "weight decay kappa >= 0"),
)
#: Fields that change the generated code (the others, Delta and kappa, apply at call time).
CODE_FIELDS = ("student_activation", "teacher_activation", "student_readout", "teacher_readout")


class CommandError(Exception):
    """A user error of the command line: printed as one line, exit code 2."""


def model_by_name(name: str) -> Any:
    """A committed model by name; ``paper`` maps to ``None`` (no sympy import)."""
    try:
        return registry_model_by_name(name)
    except ValueError as error:
        raise CommandError(f"--model: {error}") from None


def add_model_arguments(parser: argparse.ArgumentParser, *, several: bool = False) -> None:
    """``--model`` and the model flags (``several``: ``--model`` takes a list, as in ``verify``)."""
    group = parser.add_argument_group(
        "model", "a committed model (--model) whose fields the other flags override; text is parsed, never evaluated"
    )
    if several:
        group.add_argument("--model", choices=MODEL_CHOICES, nargs="*", default=None,
                           help="committed models (default: all three, or paper when a model flag is given)")
    else:
        group.add_argument("--model", choices=MODEL_CHOICES, default="paper", help="committed model (default paper)")
    for flag, _, text in MODEL_FLAGS:
        group.add_argument(flag, default=None, metavar="EXPR", help=text)


def model_overrides(args: argparse.Namespace) -> dict[str, str]:
    """The model fields given on the command line, by field name."""
    return {
        field: getattr(args, flag[2:].replace("-", "_"))
        for flag, field, _ in MODEL_FLAGS
        if getattr(args, flag[2:].replace("-", "_"), None) is not None
    }


def flag_message(message: str) -> str:
    """``message`` with the model field names replaced by the flags that set them."""
    for flag, field, _ in MODEL_FLAGS:
        message = re.sub(rf"\b{field}\b", flag, message)
    return message


def build_model(base: str, overrides: dict[str, str]) -> tuple[Any, str]:
    """The model ``base`` with ``overrides`` applied, and a label for headers and file names.

    Returns ``(None, "paper")`` for the plain paper model (no sympy import).
    The label is the base name when only Delta or kappa change (the generated
    code is the base model's), ``"custom"`` otherwise.

    Raises
    ------
    CommandError
        Naming the flag whose value the model refuses.
    """
    base_model = model_by_name(base)
    if not overrides:
        return base_model, base
    from dataclasses import fields

    from derive.model.model import PAPER, Model

    start = base_model if base_model is not None else PAPER
    values = {f.name: getattr(start, f.name) for f in fields(Model) if f.name != "name"}
    values.update(overrides)
    label = "custom" if any(name in overrides for name in CODE_FIELDS) else base
    try:
        return Model(**values, name=label), label
    except ValueError as error:
        raise CommandError(flag_message(" ".join(str(error).split()))) from None


def model_from_args(args: argparse.Namespace) -> tuple[Any, str]:
    """``(model, label)`` from ``--model`` and the model flags of ``args``."""
    return build_model(args.model, model_overrides(args))


#: Library argument names and the flags that set them, per command (see :func:`library_message`).
COMMON_FLAGS = {
    "eta": "--eta",
    "alpha_max": "--alpha-max",
    "N": "--N",
    "p": "--p",
    "k": "--k",
    "q0": "--q0",
    "seed": "--seed",
    "replicas": "--replicas",
    "record": "--record",
    "n_samples": "--samples",
    "rank": "--rank",
}


def library_message(message: str, flags: dict[str, str] | None = None) -> str:
    """A library ``ValueError`` message with its leading argument name replaced by the flag.

    Validation messages start with the argument's name (``"eta must be
    positive, got -1.0"``); on the command line the flag is what the user
    typed. Model field names anywhere are replaced too.
    """
    message = flag_message(" ".join(message.split()))
    flags = COMMON_FLAGS if flags is None else flags
    match = re.match(r"(\w+)\b", message)
    if match and match.group(1) in flags:
        message = flags[match.group(1)] + message[match.end():]
    return message


def output_directory(path: Any, flag: str = "--out") -> Any:
    """Create the output directory ``path`` up front, so a bad path fails before any computation."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"{flag} {str(path)!r}: cannot create the directory ({error.strerror or error})") from None
    if not path.is_dir():
        raise CommandError(f"{flag} {str(path)!r}: not a directory")
    return path


def write_checked(write: Any, path: Any, flag: str = "--out") -> None:
    """``write(path)``, with an ``OSError`` reported as a user error naming ``flag``."""
    try:
        write(path)
    except OSError as error:
        raise CommandError(f"{flag}: cannot write {str(path)!r} ({error.strerror or error})") from None


def model_text(model: Any, label: str) -> str:
    """What the headers print for the model: its label and, for models other than the paper's, its fields."""
    return label if model is None else f"{label} ({model.describe()})"
