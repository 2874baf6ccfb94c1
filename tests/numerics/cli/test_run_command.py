"""``wickode run`` (numerics/cli/run.py): the CSV holds the integrated trajectory of the Eq. 8 start it names."""

import argparse

import numpy as np
import pytest
from csv_tables import read_csv_table

from numerics.cli import main
from numerics.cli import run as command
from numerics.ode.initial import initial_conditions
from numerics.ode.integrate import integrate


def test_defaults_of_the_command():
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["run"])
    assert (args.p, args.k, args.eta, args.alpha_max, args.N, args.batch_size) == (4, 2, 0.5, 200.0, 10000.0, 1)
    assert args.func is command.run


@pytest.mark.parametrize("gradient_flow", [False, True])
def test_the_csv_is_the_integrated_trajectory(gradient_flow, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--p", "2", "--k", "1", "--eta", "0.2", "--alpha-max", "20", "--N", "1000", "--seed", "3"]
    assert main(argv + (["--gradient-flow"] if gradient_flow else [])) == 0
    (csv,) = tmp_path.glob("run_paper_p2_k1_eta0.2_*.csv")
    assert csv.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    table = read_csv_table(csv)
    columns = {name: table[name] for name in table.dtype.names}
    Q0, R0, T = initial_conditions(2, 1, N=1000, seed=3)
    want = integrate(Q0, R0, T, eta=0.2, alpha_max=20.0, second_order=not gradient_flow)
    np.testing.assert_allclose(columns["alpha"], want.alpha, rtol=1e-6)
    np.testing.assert_allclose(columns["risk"], want.risk, rtol=1e-6, atol=1e-12)
    assert "wrote" in capsys.readouterr().out


def test_a_bad_batch_size_names_the_flag(tmp_path, capsys):
    assert main(["run", "--batch-size", "0", "--out", str(tmp_path)]) == 2
    assert "--batch-size must be a positive integer, got 0" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
