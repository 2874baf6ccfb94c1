"""The ``wickode`` command line.

Each sub-command lives in a module listed in :data:`COMMAND_MODULES` that
defines ``register(subparsers)``; ``register`` adds its parser and sets
``func`` (called with the parsed arguments, returns an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "numerics.commands.derive_cmd",
    "numerics.commands.run",
    "numerics.commands.verify",
    "numerics.commands.figures",
    "numerics.commands.simulate",
    "numerics.commands.hessian",
    "numerics.commands.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wickode",
        description="Derive, verify and solve the overlap ODEs of one-pass SGD in teacher-student networks.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except ValueError as error:
        print(f"wickode {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
