"""What the sub-commands of the ``wickode`` command line share (one module per sub-command in :mod:`numerics.cli`).

Every command that takes a model accepts ``--model paper|he2|he3|scm`` (a committed
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
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from numerics.runtime.registry import model_by_name as registry_model_by_name

MODEL_CHOICES = ("paper", "he2", "he3", "scm")
#: The models ``verify`` checks when no model is named (the soft committee machine's erf units take longer).
DEFAULT_VERIFY_MODELS = ("paper", "he2", "he3")

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
                           help="committed models (default: paper he2 he3, or paper when a model flag is given)")
    else:
        group.add_argument("--model", choices=MODEL_CHOICES, default="paper",
                           help="committed model (default paper; scm: Saad and Solla's soft committee machine)")
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


class CommandHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help pages with the description and example kept as written and every default shown.

    A flag whose help text already names its default keeps it as written;
    flags without a value (``store_true``) and ``None`` defaults show none.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        no_default = action.default is None or action.default is False or action.default is argparse.SUPPRESS
        if "default" in text or no_default or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def check_seed(seed: int, flag: str = "--seed") -> int:
    """``seed`` when it is a valid NumPy seed (a non-negative integer), else a :class:`CommandError`."""
    if seed < 0:
        raise CommandError(f"{flag} must be a non-negative integer, got {seed}")
    return seed


def check_positive_finite(value: float, flag: str) -> float:
    """``value`` when it is finite and positive (``inf`` and ``nan`` would make a check vacuous)."""
    if not (math.isfinite(value) and value > 0):
        raise CommandError(f"{flag} must be positive and finite, got {value}")
    return value


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--out`` and ``--force`` of the commands that write a run's files."""
    parser.add_argument("--out", type=Path, default=Path("."), help="output directory (default: here)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite the files of an identical earlier run (refused without it)")


def run_digest(model: Any, parameters: dict[str, Any]) -> str:
    """Eight hex digits identifying the model and every parameter that changes a run's result.

    ``model`` is ``None`` (the paper model) or a ``derive.Model``; two runs
    that differ in any field of the model or any entry of ``parameters`` get
    different digests, so their output files never share a name.
    """
    fields = "paper" if model is None else model.describe()
    text = json.dumps({"model": fields, "parameters": parameters}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def output_paths(directory: Path, stem: str, suffixes: tuple[str, ...], *, force: bool) -> list[Path]:
    """``directory / (stem + suffix)`` for each suffix; a :class:`CommandError` if one exists and not ``force``."""
    paths = [directory / f"{stem}{suffix}" for suffix in suffixes]
    existing = [str(path) for path in paths if path.exists()]
    if existing and not force:
        raise CommandError(
            f"{existing[0]!r} exists (the same run was written before); pass --force to overwrite it"
        )
    return paths


def csv_metadata(command: str, model: Any, label: str, parameters: dict[str, Any]) -> list[str]:
    """Header lines of a CSV (written after ``# ``): the toolkit version, the model, the parameters."""
    from numerics import __version__

    settings = ", ".join(f"{name}={value}" for name, value in parameters.items())
    return [f"wickode {__version__}: wickode {command}", f"model: {model_text(model, label)}",
            f"parameters: {settings}"]
