"""``wickode simulate`` (numerics/cli/simulate.py): the CSV layout of one and several replicas, flags checked."""

from types import SimpleNamespace

import numpy as np
import pytest
from csv_tables import csv_metadata_lines

from numerics.cli import main
from numerics.cli.simulate import write_simulation_csv


def _result(replicas: int | None, p: int = 2, k: int = 1, n: int = 4):
    lead = () if replicas is None else (replicas,)
    rng = np.random.default_rng(0)
    Q = rng.normal(size=lead + (n, p, p))
    return SimpleNamespace(alpha=np.linspace(0, 1, n), Q=Q, R=rng.normal(size=lead + (n, p, k)),
                           risk=rng.normal(size=lead + (n,)))


@pytest.mark.parametrize("replicas", [None, 3])
def test_the_csv_has_one_row_per_replica_and_record(replicas, tmp_path):
    sim, ode = _result(replicas), _result(replicas)
    path = tmp_path / "sim.csv"
    write_simulation_csv(sim, ode, path)
    header = path.read_text().splitlines()[0].split(",")
    assert header == ["replica", "alpha", "Q_1_1", "Q_1_2", "Q_2_2", "R_1_1", "R_2_1", "risk", "risk_ode"]
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    count = 1 if replicas is None else replicas
    assert table.shape == (4 * count, len(header))
    Q = sim.Q if replicas is not None else sim.Q[None]
    last = table[-4:]
    np.testing.assert_array_equal(last[:, 0], count - 1)
    np.testing.assert_array_equal(last[:, 1], sim.alpha)
    np.testing.assert_array_equal(last[:, 3], Q[-1][:, 0, 1])
    np.testing.assert_array_equal(last[:, -1], np.atleast_2d(ode.risk)[-1])


def test_a_small_simulation_writes_its_files(tmp_path, capsys):
    argv = ["simulate", "--N", "100", "--p", "2", "--k", "1", "--eta", "0.2", "--alpha-max", "1", "--record", "5",
            "--replicas", "2", "--no-progress", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "replicas = 2" in out and "wrote" in out
    (csv,) = tmp_path.glob("simulate_paper_N100_p2_k1_eta0.2_*.csv")
    table = np.loadtxt(csv, delimiter=",", skiprows=len(csv_metadata_lines(csv)) + 1)
    assert set(table[:, 0]) == {0.0, 1.0}
    assert csv.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("flag", ["--replicas", "--record", "--batch-size"])
def test_non_positive_counts_name_the_flag(flag, tmp_path, capsys):
    assert main(["simulate", flag, "0", "--out", str(tmp_path)]) == 2
    assert f"{flag} must be a positive integer, got 0" in capsys.readouterr().err


def test_simulations_that_differ_write_different_files_never_overwritten(tmp_path, capsys):
    argv = ["simulate", "--N", "100", "--p", "2", "--k", "1", "--eta", "0.2", "--alpha-max", "0.5", "--record", "3",
            "--no-progress", "--out", str(tmp_path)]
    for change in ([], ["--seed", "1"], ["--q0", "0.5"], ["--batch-size", "2"], ["--noise", "0.1"]):
        assert main(argv + change) == 0
    assert len(list(tmp_path.glob("simulate_paper_N100_p2_k1_eta0.2_*.csv"))) == 5
    capsys.readouterr()
    assert main(argv) == 2
    assert "pass --force to overwrite it" in capsys.readouterr().err
    assert main(argv + ["--force"]) == 0
    csv = sorted(tmp_path.glob("*.csv"))[0]
    lines = csv_metadata_lines(csv)
    assert lines[0].endswith("wickode simulate") and lines[1].startswith("model: paper")
    assert lines[2].startswith("parameters: N=100, p=2, k=1, eta=0.2")
