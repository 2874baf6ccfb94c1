"""Notebooks: every one runs at a small size, and its executed copy in docs/notebooks/ is in sync."""

import json
import os
import shutil
from pathlib import Path

import pytest

from numerics.cli.notebooks import COPY_DIR, SOURCE_DIR, copy_problem, execute, out_of_sync

NOTEBOOKS = sorted(SOURCE_DIR.glob("*.ipynb"))


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path):
    notebook = execute(path)
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert all(cell.get("execution_count") for cell in notebook.cells if cell.cell_type == "code")


def test_there_are_notebooks():
    assert NOTEBOOKS or os.environ.get("WICKODE_ALLOW_NO_NOTEBOOKS")


def test_executed_copies_are_in_sync_with_the_sources():
    # `wickode notebooks --sync` rewrites them; this only compares cells, it executes nothing
    assert out_of_sync() == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_executed_copies_show_a_figure_and_no_progress_bar(path):
    copy = json.loads((COPY_DIR / path.name).read_text())
    outputs = [output for cell in copy["cells"] for output in cell.get("outputs", [])]
    assert any("image/png" in output.get("data", {}) for output in outputs)
    streams = "".join("".join(output["text"]) for output in outputs if output["output_type"] == "stream")
    # a text progress bar stores every refresh, separated by carriage returns
    assert "\r" not in streams and "step/s" not in streams


def _edit_first_code_cell(path: Path) -> None:
    notebook = json.loads(path.read_text())
    cell = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    cell["source"] = ["".join(cell["source"]) + "\nprint('edited')"]
    path.write_text(json.dumps(notebook))


def test_an_edited_source_or_a_missing_copy_is_out_of_sync(tmp_path):
    source = NOTEBOOKS[0]
    sources, copies = tmp_path / "notebooks", tmp_path / "copies"
    sources.mkdir()
    copies.mkdir()
    shutil.copy(source, sources / source.name)
    shutil.copy(COPY_DIR / source.name, copies / source.name)
    assert copy_problem(sources / source.name, copies / source.name) is None
    _edit_first_code_cell(sources / source.name)
    problem = copy_problem(sources / source.name, copies / source.name)
    assert problem and "differs" in problem and source.stem in problem
    (copies / source.name).unlink()
    assert "missing" in out_of_sync(sources, copies)[0]


def test_an_unexecuted_copy_is_out_of_sync(tmp_path):
    # the source itself, committed without outputs, is not an executed copy
    source = NOTEBOOKS[0]
    assert "not executed" in copy_problem(source, source)


def test_a_copy_without_a_source_is_reported(tmp_path):
    shutil.copytree(SOURCE_DIR, tmp_path / "notebooks")
    shutil.copytree(COPY_DIR, tmp_path / "copies")
    (tmp_path / "notebooks" / NOTEBOOKS[0].name).unlink()
    problems = out_of_sync(tmp_path / "notebooks", tmp_path / "copies")
    assert problems == [f"{tmp_path / 'copies' / NOTEBOOKS[0].name}: no source notebook "
                        f"{tmp_path / 'notebooks' / NOTEBOOKS[0].name}"]


def test_the_check_command_exits_1_when_out_of_sync(tmp_path, capsys):
    from numerics.cli import main

    shutil.copytree(SOURCE_DIR, tmp_path / "notebooks")
    (tmp_path / "copies").mkdir()
    code = main(["notebooks", "--check", "--source", str(tmp_path / "notebooks"), "--out", str(tmp_path / "copies")])
    assert code == 1 and "missing" in capsys.readouterr().out
    assert main(["notebooks", "--check"]) == 0


def test_an_unknown_notebook_name_is_a_user_error(capsys):
    from numerics.cli import main

    assert main(["notebooks", "--sync", "no_such_notebook"]) == 2
    assert "unknown notebook(s) ['no_such_notebook']" in capsys.readouterr().err
