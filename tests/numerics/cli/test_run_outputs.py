"""What ``wickode run`` (numerics/cli/run.py, numerics/cli/common.py) writes: file names that identify the run,
never overwritten without ``--force``, a metadata header, and a memory check before large runs."""

from csv_tables import csv_metadata_lines, read_csv_table

import numerics
from derive.model.model import HE2, Model
from numerics.cli import main
from numerics.cli import run as command
from numerics.cli.common import run_digest

BASE = ["run", "--p", "2", "--k", "1", "--eta", "0.2", "--alpha-max", "5", "--N", "1000"]

#: Flags that change the result, each with a value other than the default.
CHANGES = [
    [], ["--seed", "1"], ["--N", "500"], ["--alpha-max", "6"], ["--q0", "0.5"], ["--gradient-flow"],
    ["--batch-size", "2"], ["--noise", "0.1"], ["--weight-decay", "0.01"], ["--n-points", "50"],
]


def test_runs_that_differ_in_any_parameter_write_different_files(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for change in CHANGES:
        assert main(BASE + change) == 0, change
    capsys.readouterr()
    assert len(list(tmp_path.glob("run_paper_p2_k1_eta0.2_*.csv"))) == len(CHANGES)
    assert len(list(tmp_path.glob("run_paper_p2_k1_eta0.2_*.png"))) == len(CHANGES)


def test_models_that_differ_get_different_digests():
    # `--student "x**3"` and `--student "x**2 + x"` both had the label "custom" and wrote the same file
    models = [None, HE2, HE2.with_noise(0.1),
              Model(student_activation="x**3", teacher_activation="x**2", name="custom"),
              Model(student_activation="x**2 + x", teacher_activation="x**2", name="custom")]
    digests = {run_digest(model, {"p": 2}) for model in models}
    assert len(digests) == len(models)
    assert run_digest(None, {"p": 2}) == run_digest(None, {"p": 2}) != run_digest(None, {"p": 3})


def test_an_existing_file_is_kept_unless_forced(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(BASE) == 0
    (csv,) = tmp_path.glob("*.csv")
    csv.write_text("kept")
    capsys.readouterr()
    assert main(BASE) == 2
    err = capsys.readouterr().err
    assert "wickode run: error:" in err and csv.name in err and "--force" in err
    assert csv.read_text() == "kept"
    assert main(BASE + ["--force"]) == 0
    assert csv.read_text() != "kept"


def test_the_csv_names_the_model_the_parameters_and_the_version(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(BASE + ["--seed", "3", "--noise", "0.1"]) == 0
    (csv,) = tmp_path.glob("*.csv")
    lines = csv_metadata_lines(csv)
    assert lines[0] == f"wickode {numerics.__version__}: wickode run"
    assert lines[1].startswith("model: paper (") and "Delta = 1/10" in lines[1]
    assert "p=2, k=1, eta=0.2, alpha_max=5.0, N=1000.0, q0=1.0, seed=3" in lines[2]
    assert {"alpha", "Q_1_1", "R_2_1", "risk"} <= set(read_csv_table(csv).dtype.names)


def test_simulate_zero_is_reported_as_the_simulate_flag(tmp_path, capsys):
    assert main(["run", "--simulate", "0", "--out", str(tmp_path)]) == 2
    assert "wickode run: error: --simulate must be a positive integer, got 0" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_run_whose_snapshots_do_not_fit_is_refused_before_integrating(tmp_path, monkeypatch, capsys):
    # 400 snapshots of p = 5, k = 1: 3 copies x 8 bytes x 400 x 30 floats = 288,000 bytes
    monkeypatch.setattr(command, "available_memory", lambda: 200_000)
    assert main(["run", "--p", "5", "--k", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "wickode run: error: --p 5 with 400 recorded points needs about" in err
    assert "lower --n-points (at most about 277 points fit)" in err
    assert list(tmp_path.iterdir()) == []
    assert main(["run", "--p", "5", "--k", "1", "--eta", "0.2", "--alpha-max", "5", "--n-points", "100",
                 "--out", str(tmp_path)]) == 0


def test_a_plateau_that_does_not_fit_is_reported_not_computed(tmp_path, monkeypatch, capsys):
    # the trajectory fits (3 x 8 x 10 x 930 bytes), the plateau's dense Jacobian (2 x 8 x 465**2 bytes) does not
    monkeypatch.setattr(command, "available_memory", lambda: 1_000_000)
    argv = ["run", "--p", "30", "--k", "1", "--eta", "0.2", "--alpha-max", "1", "--n-points", "10"]
    assert main(argv + ["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "plateau             not computed (locating it at p = 30 needs about" in out
    assert "final risk" in out


def test_without_a_known_budget_nothing_is_refused(monkeypatch):
    monkeypatch.setattr(command, "available_memory", lambda: None)
    command.check_memory(10**6, 10, 400)
