"""``python -m bench [--smoke] [--only NAME ...] [--json PATH] [--list]``: run every benchmark, print the table.

Each ``bench/bench_*.py`` module exposing ``run(smoke) -> list[dict]`` runs in
a subprocess twice: BLAS pinned to one thread, then with the default threads.
Modules whose dependencies are missing are listed as skipped.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.common import discover, run_in_subprocess, table


def run_all(*, smoke: bool, only: list[str] | None = None, threads: tuple = (1, None)) -> list[dict]:
    rows = []
    for module in discover():
        if only and module.split(".")[-1].removeprefix("bench_") not in only:
            continue
        for setting in threads:
            rows.extend(run_in_subprocess(module, smoke=smoke, threads=setting))
            print(f"done {module} (BLAS threads: {setting or 'default'})", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="smallest sizes only (checks the benchmarks run)")
    parser.add_argument("--only", nargs="*", help="benchmark names, e.g. rhs solve derive sweep")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--list", action="store_true", help="name the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        print(" ".join(module.split(".")[-1].removeprefix("bench_") for module in discover()))
        return 0
    rows = run_all(smoke=args.smoke, only=args.only)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
