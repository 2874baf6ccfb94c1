"""``wickode hessian`` (numerics/cli/hessian.py): the spectrum at a stationary point against the closed forms."""

import argparse

from numerics.cli import hessian as command
from numerics.cli import main


def test_defaults_of_the_command():
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["hessian"])
    assert (args.point, args.p, args.k, args.N, args.rank) == ("plateau", 4, 2, 1000, None)
    assert args.func is command.run


def test_cli_hessian_agrees_with_closed_form(capsys):
    assert main(["hessian", "--point", "plateau", "--p", "4", "--k", "2", "--N", "1000"]) == 0
    out = capsys.readouterr().out
    assert "AGREE" in out and "3982" in out


def test_another_model_prints_its_spectrum_without_comparing(capsys):
    assert main(["hessian", "--model", "he3", "--point", "plateau", "--p", "2", "--k", "1", "--N", "20"]) == 0
    out = capsys.readouterr().out
    assert "closed forms exist for the paper model only" in out and "AGREE" not in out
    assert out.count("negative:") == 1


def test_a_bad_width_is_a_user_error(capsys):
    assert main(["hessian", "--p", "0"]) == 2
    assert "wickode hessian: error:" in capsys.readouterr().err


def test_a_negative_seed_is_named(capsys):
    from numerics.cli import main

    assert main(["hessian", "--seed", "-1"]) == 2
    assert "--seed" in capsys.readouterr().err
