"""``wickode figures [NAME ...]``: write the project's figures as PNG files."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Draw the project's figures (the paper's and the documentation's) as PNG files, into the
current directory unless --out is given; `wickode figures --list` names them."""

EXAMPLE = """\
example:
  wickode figures trajectory fig1 --small
  wickode figures --out docs/figures        # regenerate the documentation's figures"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("figures", help="write figures (all when no name is given)",
                                   description=DESCRIPTION, epilog=EXAMPLE)
    parser.add_argument("names", nargs="*", help="figure names (see --list)")
    parser.add_argument("--out", type=Path, default=Path("."),
                        help="directory the PNG files are written to (default: here)")
    parser.add_argument("--small", action="store_true", help="reduced sizes, for a quick look")
    parser.add_argument("--list", action="store_true", help="list the figure names and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from numerics.figures import available, make

    if args.list:
        for name, function in available().items():
            print(f"{name:12} {(function.__doc__ or '').strip().splitlines()[0]}")
        return 0
    for path in make(args.names, args.out, small=args.small):
        print(f"wrote {path}")
    return 0
