"""``python -m derive [--check] [--root]`` (derive/__main__.py): exit codes and messages.

The generator and the check are replaced by recording stand-ins; what they compute is tested in
tests/derive/codegen/test_derive_check.py.
"""

from pathlib import Path

import pytest

import derive.__main__ as command


@pytest.fixture
def calls(monkeypatch):
    seen = []

    def stale(root):
        seen.append(("check", root))
        return list(seen_problems)

    def regenerate(root):
        seen.append(("write", root))
        return [root / "numerics" / "_generated" / "paper.py"]

    seen_problems: list[str] = []
    monkeypatch.setattr(command, "stale_artefacts", stale)
    monkeypatch.setattr(command, "regenerate", regenerate)
    return seen, seen_problems


def test_check_of_a_fresh_tree_exits_0(calls, capsys, tmp_path):
    seen, _ = calls
    assert command.main(["--check", "--root", str(tmp_path)]) == 0
    assert seen == [("check", tmp_path)]
    assert "generated files are fresh" in capsys.readouterr().out


def test_check_of_a_stale_tree_exits_1_and_names_the_files(calls, capsys, tmp_path):
    seen, problems = calls
    problems += ["numerics/_generated/paper.py: printed code differs", "docs/equations.md: missing"]
    assert command.main(["--check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "python -m derive" in err
    assert all(problem in err for problem in problems)


def test_without_check_every_file_is_written_relative_to_the_root(calls, capsys, tmp_path):
    seen, _ = calls
    assert command.main(["--root", str(tmp_path)]) == 0
    assert seen == [("write", tmp_path)]
    out = capsys.readouterr().out
    assert f"wrote {Path('numerics/_generated/paper.py')}" in out and "done in" in out


def test_the_default_root_is_this_checkout(calls):
    seen, _ = calls
    command.main(["--check"])
    assert seen == [("check", command.ROOT)]
    assert (command.ROOT / "derive" / "__main__.py").exists()


def test_an_unknown_option_is_a_usage_error(calls, capsys):
    with pytest.raises(SystemExit) as exit_info:
        command.main(["--chek"])
    assert exit_info.value.code == 2 and "--chek" in capsys.readouterr().err
