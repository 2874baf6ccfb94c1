"""``wickode derive [--check]``: same as ``python -m derive``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("derive", help="regenerate generated modules and docs (or --check them)")
    parser.add_argument("--check", action="store_true", help="exit 1 naming stale files instead of writing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from derive.__main__ import main

    return main(["--check"] if args.check else [])
