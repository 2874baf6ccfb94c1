"""``wickode bench`` (numerics/cli/bench.py) hands its flags to ``python -m bench``; the benchmarks
themselves are smoke-tested in tests/bench/test_bench_smoke.py."""

import bench.__main__ as bench_main
from numerics.cli import bench as command
from numerics.cli import main


def test_the_flags_reach_the_benchmark_runner(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(bench_main, "main", lambda argv: calls.append(argv) or 0)
    assert main(["bench", "--smoke", "--only", "rhs", "solve", "--json", str(tmp_path / "rows.json")]) == 0
    assert main(["bench"]) == 0
    assert calls == [["--smoke", "--only", "rhs", "solve", "--json", str(tmp_path / "rows.json")], []]
    assert command.run.__module__ == "numerics.cli.bench"


def test_the_exit_code_of_the_runner_is_returned(monkeypatch):
    monkeypatch.setattr(bench_main, "main", lambda argv: 3)
    assert main(["bench", "--smoke"]) == 3


def test_an_unknown_benchmark_is_refused_naming_the_known_ones(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(bench_main, "main", lambda argv: calls.append(argv) or 0)
    assert main(["bench", "--only", "bogus", "rhs"]) == 2
    err = capsys.readouterr().err
    assert "wickode bench: error: --only: unknown benchmark bogus" in err
    assert all(name in err for name in command.benchmark_names()) and "rhs" in command.benchmark_names()
    assert calls == []
