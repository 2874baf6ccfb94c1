"""``wickode notebooks --sync|--check``: executed copies of the notebooks, kept in the repository.

The notebooks under ``notebooks/`` are committed without outputs (their
diffs stay readable). ``--sync`` executes each one at the small size
(``WICKODE_SMALL=1``, figures written to a temporary directory) and writes
the executed copy, outputs and figures included, to ``docs/notebooks/``,
where a reader sees them. ``--check`` compares the copies with the sources
without executing anything: a copy is in sync when its cells (type and
source, in order) equal the source notebook's and every code cell of it
was executed. ``python -m numerics.cli notebooks --sync`` does the same.

Needs ``nbformat``, ``nbclient`` and ``ipykernel`` (the ``test`` extra).
The kernel imports the ``numerics`` package this command runs from (its
folder is put first on the kernel's ``PYTHONPATH``), so a checkout's
notebooks run against that checkout's code.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from numerics.cli.common import CommandError

#: The source checkout: the folder holding the ``numerics`` package.
ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIR = ROOT / "notebooks"
COPY_DIR = ROOT / "docs" / "notebooks"
#: Seconds a single cell may run (the slowest small cell takes about 30 s on a busy 2-core machine).
CELL_TIMEOUT = 600


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "notebooks", help="execute the notebooks into docs/notebooks/, or check the copies",
        description="Execute the notebooks of notebooks/ at the small size into executed copies (outputs and\n"
        "figures included), or check that every copy has the cells of its source, all executed.",
        epilog="example:\n  wickode notebooks --sync ode_trajectory\n  wickode notebooks --check",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--sync", action="store_true", help="execute the notebooks (small size) and write the copies")
    action.add_argument("--check", action="store_true", help="report copies out of sync with their sources (exit 1)")
    parser.add_argument("names", nargs="*", help="notebook names without .ipynb (default: all)")
    parser.add_argument("--source", type=Path, default=SOURCE_DIR, help="folder of the source notebooks")
    parser.add_argument("--out", type=Path, default=COPY_DIR, help="folder of the executed copies")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sources = source_notebooks(args.source, args.names)
    if args.check:
        if args.names:
            problems = [p for p in (copy_problem(source, args.out / source.name) for source in sources) if p]
        else:
            problems = out_of_sync(args.source, args.out)
        for problem in problems:
            print(problem)
        if not problems:
            print(f"{len(sources)} executed copies in {args.out} are in sync with their sources")
        return 1 if problems else 0
    for source in sources:
        print(f"wrote {sync_notebook(source, args.out)}", flush=True)
    return 0


def source_notebooks(source_dir: Path, names: list[str] | None = None) -> list[Path]:
    """The notebooks of ``source_dir``, or those named (without ``.ipynb``), sorted by name.

    Raises
    ------
    CommandError
        When the folder has no notebooks or a name is not one of them.
    """
    found = {path.stem: path for path in sorted(Path(source_dir).glob("*.ipynb"))}
    if not found:
        raise CommandError(f"--source {str(source_dir)!r}: no notebooks there (is this a source checkout?)")
    unknown = [name for name in names or [] if name not in found]
    if unknown:
        raise CommandError(f"unknown notebook(s) {unknown}; available: {', '.join(found)}")
    return [found[name] for name in names] if names else list(found.values())


def _notebook_modules() -> tuple[Any, Any]:
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError as error:
        raise CommandError(f"needs the test extra (pip install -e '.[test]'): {error}") from None
    return nbformat, NotebookClient


def execute(source: Path) -> Any:
    """The notebook ``source`` executed at the small size, as an ``nbformat`` node.

    Runs in a temporary working directory (the notebooks write their figures
    to ``figures_out/`` there; the copies embed them as outputs), with
    ``WICKODE_SMALL=1``, the Agg backend and this checkout first on the
    kernel's ``PYTHONPATH``. Timing metadata is not recorded, so a rerun
    changes a copy only where its outputs change.
    """
    nbformat, NotebookClient = _notebook_modules()
    notebook = nbformat.read(source, as_version=4)
    saved = {name: os.environ.get(name) for name in ("WICKODE_SMALL", "MPLBACKEND", "PYTHONPATH")}
    path = os.pathsep.join([str(ROOT)] + ([saved["PYTHONPATH"]] if saved["PYTHONPATH"] else []))
    # the kernel is a child process: it inherits these
    os.environ.update(WICKODE_SMALL="1", MPLBACKEND="Agg", PYTHONPATH=path)
    try:
        with tempfile.TemporaryDirectory(prefix="wickode-notebook-") as work:
            client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=False,
                                    resources={"metadata": {"path": work}})
            client.execute()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return notebook


def sync_notebook(source: Path, copy_dir: Path) -> Path:
    """Execute ``source`` and write the executed copy to ``copy_dir``; returns the copy's path."""
    nbformat, _ = _notebook_modules()
    notebook = execute(source)
    copy_dir.mkdir(parents=True, exist_ok=True)
    target = copy_dir / source.name
    nbformat.write(notebook, target)
    return target


def _cells(notebook: dict) -> list[tuple[str, str]]:
    return [(cell["cell_type"], "".join(cell["source"])) for cell in notebook["cells"]]


def copy_problem(source: Path, copy: Path) -> str | None:
    """Why the executed copy ``copy`` is out of sync with ``source``, or ``None``.

    In sync: the same cells (type and source) in the same order, every code
    cell executed, and no cell that raised an error.
    """
    import json

    if not copy.exists():
        return f"{copy}: missing (run `wickode notebooks --sync {source.stem}`)"
    wanted, have = json.loads(source.read_text()), json.loads(copy.read_text())
    ours, theirs = _cells(have), _cells(wanted)
    if ours != theirs:
        index = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
        return f"{copy}: cell {index + 1} differs from {source.name} (run `wickode notebooks --sync {source.stem}`)"
    for index, cell in enumerate(have["cells"]):
        if cell["cell_type"] != "code":
            continue
        if cell.get("execution_count") is None:
            return f"{copy}: code cell {index + 1} was not executed"
        if any(output.get("output_type") == "error" for output in cell.get("outputs", [])):
            return f"{copy}: code cell {index + 1} raised an error"
    return None


def out_of_sync(source_dir: Path = SOURCE_DIR, copy_dir: Path = COPY_DIR) -> list[str]:
    """One message per executed copy out of sync with its source, and per copy without a source."""
    sources = source_notebooks(source_dir)
    problems = [copy_problem(source, copy_dir / source.name) for source in sources]
    names = {source.name for source in sources}
    problems += [f"{copy}: no source notebook {source_dir / copy.name}" for copy in sorted(copy_dir.glob("*.ipynb"))
                 if copy.name not in names]
    return [problem for problem in problems if problem]
