"""``wickode verify`` (numerics/cli/verify.py): generated functions against Monte Carlo, a verdict that can fail."""

import argparse

import pytest

from numerics.cli import main
from numerics.cli import verify as command


def test_defaults_of_the_command():
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["verify"])
    assert (args.samples, args.points, args.threshold, args.model) == (200_000, 2, 5.0, None)


def test_the_verdict_follows_the_threshold(capsys):
    argv = ["verify", "--model", "paper", "--samples", "2000", "--points", "1", "--seed", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("PASS")
    assert sum(line.startswith("paper ") for line in out.splitlines()) == 4  # one line per (p, k)
    # a threshold no Monte Carlo estimate meets: the same run fails
    assert main([*argv, "--threshold", "1e-9"]) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("FAIL")


@pytest.mark.parametrize(
    "flags, message",
    [(["--samples", "1"], "--samples must be at least 2"), (["--threshold", "0"], "--threshold must be positive")],
)
def test_bad_flags_are_named(flags, message, capsys):
    assert main(["verify", *flags]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("threshold", ["inf", "nan", "0", "-1"])
def test_a_vacuous_threshold_is_refused_naming_the_flag(threshold, capsys):
    assert main(["verify", "--model", "paper", "--samples", "100", "--points", "1", "--threshold", threshold]) == 2
    assert "wickode verify: error: --threshold must be positive and finite, got" in capsys.readouterr().err


def test_a_negative_seed_is_refused_naming_the_flag(capsys):
    assert main(["verify", "--model", "paper", "--samples", "100", "--points", "1", "--seed", "-1"]) == 2
    assert "wickode verify: error: --seed must be a non-negative integer, got -1" in capsys.readouterr().err
