"""``python -m numerics.cli`` (numerics/cli/__main__.py) runs the command line with the process's arguments
and exits with its code."""

import sys

import pytest


@pytest.mark.parametrize("argv, code", [(["figures", "--list"], 0), (["run", "--eta", "-1"], 2)])
def test_the_module_exits_with_the_commands_code(argv, code, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["wickode", *argv])
    monkeypatch.delitem(sys.modules, "numerics.cli.__main__", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        import numerics.cli.__main__  # noqa: F401 - running the module is the test
    assert exit_info.value.code == code
    captured = capsys.readouterr()
    assert ("fig1" in captured.out) if code == 0 else ("wickode run: error:" in captured.err)
