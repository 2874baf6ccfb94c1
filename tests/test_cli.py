"""The command line: run, verify, derive --check, figures."""

import subprocess
import sys

import numpy as np

from numerics.cli import main


def test_run_writes_csv_and_png(tmp_path, capsys):
    code = main(["run", "--p", "3", "--k", "1", "--eta", "0.5", "--alpha-max", "40", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "plateau risk" in out and "final risk" in out
    csv = next(tmp_path.glob("*.csv"))
    data = np.genfromtxt(csv, delimiter=",", names=True)
    assert {"alpha", "Q_1_1", "R_3_1", "risk"} <= set(data.dtype.names)
    assert next(tmp_path.glob("*.png")).stat().st_size > 10_000


def test_run_reports_bad_input(capsys):
    assert main(["run", "--eta", "-1", "--out", "/tmp"]) == 2
    assert "eta must be positive" in capsys.readouterr().err


def test_verify_small(capsys):
    assert main(["verify", "--model", "paper", "--samples", "20000", "--points", "1"]) == 0
    assert "PASS" in capsys.readouterr().out


def test_console_script_derive_check():
    result = subprocess.run([sys.executable, "-m", "numerics.cli", "derive", "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_figures_list(capsys):
    assert main(["figures", "--list"]) == 0
    assert "trajectory" in capsys.readouterr().out


def test_readme_shows_the_derived_paper_equations():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    equations = (root / "docs" / "equations.md").read_text()
    paper = equations[equations.index("## Model `paper`") : equations.index("## Model `he2`")]
    readme = (root / "README.md").read_text()
    for line in paper.splitlines():
        if line.startswith("$$"):
            assert line in readme, f"README is missing the derived equation {line[:60]}..."
