"""The ``wickode`` command line (``python -m numerics.cli`` runs it too).

Each sub-command lives in a module of this package listed in
:data:`COMMAND_MODULES` that defines ``register(subparsers)``; ``register`` adds its parser and sets
``func`` (called with the parsed arguments, returns an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMAND_MODULES = (
    "numerics.cli.derive_cmd",
    "numerics.cli.run",
    "numerics.cli.verify",
    "numerics.cli.figures",
    "numerics.cli.simulate",
    "numerics.cli.hessian",
    "numerics.cli.bench",
    "numerics.cli.notebooks",
)


def build_parser() -> argparse.ArgumentParser:
    """The ``wickode`` parser: ``--version`` and one sub-parser per module of :data:`COMMAND_MODULES`.

    Every sub-command's help page shows its description and example as
    written and the default of every flag (:class:`~numerics.cli.common.CommandHelpFormatter`).
    """
    from numerics import __version__
    from numerics.cli.common import CommandHelpFormatter

    parser = argparse.ArgumentParser(
        prog="wickode",
        description="Derive, verify and solve the overlap ODEs of one-pass SGD in teacher-student networks.",
        epilog="example:\n  wickode run --p 3 --k 2 --eta 0.5\n  wickode COMMAND --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    for subparser in subparsers.choices.values():
        subparser.formatter_class = CommandHelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for user errors, one line on stderr, no traceback)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # the reader went away (e.g. `wickode derive --latex | head`): nothing left to report to
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python's documented way to silence the flush at exit
        return 1
    except Exception as error:  # noqa: BLE001 - only user errors are caught, see user_error
        message = user_error(error)
        if message is None:
            raise
        print(f"wickode {args.command}: error: {message}", file=sys.stderr)
        return 2


def user_error(error: BaseException) -> str | None:
    """The one-line message for an error caused by the user's input, ``None`` for a bug (re-raised).

    Bad values (``ValueError``, messages naming the flag), paths that cannot be
    written (``OSError``) and runs that diverge at the values given
    (``IntegrationError``, ``SimulationError``: the learning rate is almost
    always the cause) are user errors.
    """
    from numerics.cli.common import CommandError, library_message

    if isinstance(error, CommandError):
        return " ".join(str(error).split())
    if isinstance(error, ValueError):
        return library_message(str(error))
    if isinstance(error, OSError):
        where = f" {error.filename!r}" if error.filename else ""
        return f"cannot write or read{where}: {error.strerror or error}"
    from numerics.ode.integrate import IntegrationError
    from numerics.simulators.common import SimulationError

    if isinstance(error, IntegrationError):
        return f"the ODE integration failed (try a smaller --eta): {' '.join(str(error).split())}"
    if isinstance(error, SimulationError):
        return f"the simulation failed (try a smaller --eta): {' '.join(str(error).split())}"
    return None
