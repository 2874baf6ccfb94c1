"""Write docs/api.md: signature and docstring of every top-level public name of ``numerics`` and ``derive``.

    python docs/api.py                 # (re)write docs/api.md
    python docs/api.py --check         # exit 1 if docs/api.md is not what this script would write
    python docs/api.py --output PATH   # write (or with --check, compare) PATH instead

Plain Python (importlib + inspect). The output is deterministic: memory addresses in
reprs (``<... at 0x7f...>``) are removed.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "docs" / "api.md"
PACKAGES = ("numerics", "derive")
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def stable(text: str) -> str:
    """``text`` without memory addresses."""
    return ADDRESS.sub("", text)


def signature(obj: object) -> str | None:
    try:
        return stable(str(inspect.signature(obj)))
    except (TypeError, ValueError):
        return None


def entry(package: str, name: str, obj: object) -> list[str]:
    out = [f"### `{package}.{name}`", ""]
    if inspect.isclass(obj) or callable(obj):
        kind = "class" if inspect.isclass(obj) else "function"
        sig = signature(obj)
        out += ["```text", f"{kind} {name}{sig if sig is not None else '(...)'}", "```", ""]
        doc = inspect.getdoc(obj)
    else:
        out += ["```text", stable(f"{name} = {obj!r}"), "```", ""]
        doc = inspect.getdoc(obj) if type(obj).__doc__ != obj.__doc__ else None
        if doc is None:
            out += [f"An instance of `{type(obj).__name__}`.", ""]
    if doc:
        out += ["```text", stable(doc), "```", ""]
    elif inspect.isclass(obj) or callable(obj):
        out += ["(no docstring)", ""]
    return out


def render() -> str:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python docs/api.py` (do not edit; "
        "`python docs/api.py --check` tells when it is stale). Every name in "
        "`numerics.__all__` and `derive.__all__`, sorted.",
        "",
    ]
    for package in PACKAGES:
        module = importlib.import_module(package)
        lines += [f"## `{package}`", ""]
        summary = inspect.getdoc(module)
        if summary:
            lines += [summary.splitlines()[0], ""]
        for name in sorted(set(module.__all__), key=lambda s: (s.lower(), s)):
            lines += entry(package, name, getattr(module, name))
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 if different")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="file to write or check")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        try:
            current = args.output.read_text(encoding="utf-8")
        except OSError as error:
            print(f"{args.output}: cannot read ({error}); run python docs/api.py")
            return 1
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(), text.splitlines(), str(args.output), "expected", lineterm="", n=1
            )
            shown = "\n".join(list(diff)[:20])
            print(f"{args.output} is out of date; run python docs/api.py\n{shown}")
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
