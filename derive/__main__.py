"""``python -m derive [--check]``: regenerate the committed artefacts or check them."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from derive.generate import ROOT, regenerate, stale_artefacts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m derive", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 and name stale files instead of writing")
    parser.add_argument("--root", type=Path, default=ROOT, help="project root (default: this checkout)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.check:
        problems = stale_artefacts(args.root)
        if problems:
            print("stale generated files (run `python -m derive`):", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        print(f"generated files are fresh ({time.perf_counter() - start:.1f} s)")
        return 0
    for path in regenerate(args.root):
        print(f"wrote {path.relative_to(args.root)}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
