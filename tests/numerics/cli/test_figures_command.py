"""``wickode figures`` (numerics/cli/figures.py): the list of figures, one written at the small size, an
unknown name refused."""

import argparse
from pathlib import Path

from numerics.cli import figures as command
from numerics.cli import main
from numerics.figures import available


def test_defaults_of_the_command():
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["figures"])
    assert args.names == [] and args.out == Path(".") and not args.small and not args.list


def test_the_list_names_every_figure_once(capsys):
    assert main(["figures", "--list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == list(available())


def test_a_small_figure_is_written_where_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["figures", "fig5", "--small", "--out", "out"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {Path('out') / 'fig5.png'}"
    assert (tmp_path / "out" / "fig5.png").read_bytes()[:4] == b"\x89PNG"


def test_an_unknown_figure_is_a_user_error(tmp_path, capsys):
    assert main(["figures", "fig99", "--out", str(tmp_path)]) == 2
    assert "unknown figure(s) ['fig99']" in capsys.readouterr().err


def test_without_out_the_figure_is_written_here(tmp_path, monkeypatch, capsys):
    # the old default, docs/figures, overwrote the committed figures of a clone
    monkeypatch.chdir(tmp_path)
    assert main(["figures", "fig5", "--small"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {Path('.') / 'fig5.png'}"
    assert [path.name for path in tmp_path.iterdir()] == ["fig5.png"]
