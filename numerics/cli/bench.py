"""``wickode bench [--smoke]``: same as ``python -m bench`` (needs the source checkout)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from numerics.cli.common import CommandError

DESCRIPTION = """\
Run the benchmarks of bench/ (source checkout only) and print the results table:
timings of the right-hand sides, the solver, the derivation, the simulators and more."""

EXAMPLE = """\
example:
  wickode bench --smoke
  wickode bench --only rhs solve --json bench.json"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="run the benchmarks and print the results table",
                                   description=DESCRIPTION, epilog=EXAMPLE)
    parser.add_argument("--smoke", action="store_true", help="smallest sizes only")
    parser.add_argument("--only", nargs="*", help="benchmark names, e.g. rhs solve derive")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parents[2]
    if not (root / "bench" / "__main__.py").exists():
        print("wickode bench: the bench/ folder of the source checkout is not available", file=sys.stderr)
        return 2
    sys.path.insert(0, str(root))
    from bench.__main__ import main

    unknown = sorted(set(args.only or ()) - set(benchmark_names()))
    if unknown:
        known = ", ".join(benchmark_names())
        raise CommandError(f"--only: unknown benchmark {', '.join(unknown)}; choose from {known}")
    argv = (["--smoke"] if args.smoke else []) + (["--only", *args.only] if args.only else [])
    return main(argv + (["--json", args.json] if args.json else []))


def benchmark_names() -> list[str]:
    """The names ``--only`` accepts: the benchmark modules of ``bench`` without their ``bench_`` prefix."""
    from bench.common import discover

    return [module.split(".")[-1].removeprefix("bench_") for module in discover()]
