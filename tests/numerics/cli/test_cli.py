"""The command line: run, verify, derive --check, figures."""

import subprocess
import sys

import numpy as np
import pytest
from csv_tables import read_csv_table

from numerics.cli import main


def test_run_writes_csv_and_png(tmp_path, capsys):
    code = main(["run", "--p", "3", "--k", "1", "--eta", "0.5", "--alpha-max", "40", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "plateau risk" in out and "final risk" in out
    assert "nan" not in out
    csv = next(tmp_path.glob("*.csv"))
    data = read_csv_table(csv)
    assert {"alpha", "Q_1_1", "R_3_1", "risk"} <= set(data.dtype.names)
    assert next(tmp_path.glob("*.png")).stat().st_size > 10_000


def _printed_escape(out: str) -> float:
    line = next(line for line in out.splitlines() if line.startswith("plateau left at"))
    return float(line.split("alpha ~")[1].split()[0])


def test_run_prints_the_escape_time_of_the_same_run(tmp_path, capsys):
    from numerics import escape_time, initial_conditions, integrate
    from numerics.analyses.plateau import run_plateaus

    arguments = ["--p", "3", "--k", "2", "--eta", "0.3", "--alpha-max", "120", "--N", "1e4", "--seed", "4"]
    assert main(["run", *arguments, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    Q0, R0, T = initial_conditions(3, 2, N=1e4, q0=1.0, seed=4)
    run = integrate(Q0, R0, T, eta=0.3, alpha_max=120)
    escape = escape_time(run)
    assert f"plateau left at     alpha ~ {escape:.4g} (" in out  # the same number, as printed
    assert _printed_escape(out) == pytest.approx(escape, rel=1e-3)
    assert f"plateau risk        {run_plateaus(run)[0].risk:.6g}" in out
    assert "risk below 0.75 of the plateau risk" in out


def test_run_that_never_escapes_says_so(tmp_path, capsys):
    assert main(["run", "--p", "2", "--k", "2", "--eta", "0.01", "--alpha-max", "5", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "plateau left at     not within alpha <= 5" in out and "nan" not in out


def test_run_without_plateau_says_why(tmp_path, capsys):
    arguments = ["--p", "2", "--k", "1", "--student", "x", "--teacher", "x", "--eta", "0.1", "--alpha-max", "5"]
    assert main(["run", *arguments, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "R = 0 is not invariant" in out and "nan" not in out


def test_run_reports_bad_input(capsys):
    assert main(["run", "--eta", "-1", "--out", "/tmp"]) == 2
    assert "eta must be positive" in capsys.readouterr().err


def test_verify_small(capsys):
    assert main(["verify", "--model", "paper", "--samples", "20000", "--points", "1"]) == 0
    assert "PASS" in capsys.readouterr().out


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_console_script_derive_check():
    result = subprocess.run([sys.executable, "-m", "numerics.cli", "derive", "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_figures_list(capsys):
    assert main(["figures", "--list"]) == 0
    assert "trajectory" in capsys.readouterr().out


def test_derivation_page_shows_the_derived_paper_equations():
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    equations = (root / "docs" / "equations.md").read_text()
    paper = equations[equations.index("## Model `paper`") : equations.index("## Model `he2`")]
    page = (root / "docs" / "derivation.md").read_text()
    for line in paper.splitlines():
        if line.startswith("$$"):
            assert line in page, f"docs/derivation.md is missing the derived equation {line[:60]}..."


# --- any model from the command line -------------------------------------------------------------

CUSTOM = ["--student", "x**2 + x", "--teacher", "x**2"]


def test_derive_prints_the_equations_of_a_custom_model(capsys):
    assert main(["derive", *CUSTOM, "--noise", "0.1", "--weight-decay", "0.01", "--latex"]) == 0
    out = capsys.readouterr().out
    # by hand: D_R = (1/p) <(y - f)(2 lambda_j + 1) nu_r>, the teacher part (1/k) sum_s <nu_s^2 (2 lambda_j + 1) nu_r>
    # = (2/(k p)) (tr(T) R + 2 R T)
    assert r"\frac{2}{k p} \left(2 R T + \operatorname{tr}\left(T\right) R\right)" in out
    assert r"\mathcal{V}_Q + \frac{1}{10}\, \mathcal{N}_Q" in out  # the eta**2 (V + Delta N) term
    assert r"- \frac{1}{50}\, \eta Q" in out  # - 2 eta kappa Q
    assert r"\varepsilon = \varepsilon_0 + \frac{1}{20}" in out
    assert "$$" not in out


def test_derive_markdown_of_a_committed_model_matches_docs_equations(capsys):
    from pathlib import Path

    assert main(["derive", "--model", "he2", "--markdown"]) == 0
    out = capsys.readouterr().out
    equations = (Path(__file__).resolve().parents[3] / "docs" / "equations.md").read_text()
    he2 = equations[equations.index("## Model `he2`") : equations.index("## Model `he3`")]
    for line in he2.splitlines():
        if line.startswith("$$"):
            assert line in out
    assert r"\eta^{2} \mathcal{V}_Q" in out  # Delta = 0: no noise term


def test_run_custom_model_writes_csv_and_png(tmp_path, capsys):
    code = main(["run", *CUSTOM, "--p", "3", "--k", "2", "--alpha-max", "30", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "sigma(x) = x**2 + x" in out
    csv = next(tmp_path.glob("run_custom_*.csv"))
    data = read_csv_table(csv)
    assert {"alpha", "Q_3_3", "R_3_2", "risk"} <= set(data.dtype.names)
    assert next(tmp_path.glob("run_custom_*.png")).stat().st_size > 10_000


def test_model_flags_override_a_committed_model(capsys):
    from numerics.cli.common import build_model

    model, label = build_model("he3", {"noise_variance": "0.1"})
    assert label == "he3" and float(model.noise_variance) == 0.1 and str(model.student_activation) == "x**3 - 3*x"
    model, label = build_model("he3", {"student_activation": "x**2"})
    assert label == "custom" and str(model.teacher_activation) == "x**3 - 3*x"
    assert build_model("paper", {}) == (None, "paper")


def test_verify_custom_model(capsys):
    assert main(["verify", *CUSTOM, "--samples", "20000", "--points", "1"]) == 0
    out = capsys.readouterr().out
    assert "custom" in out and "PASS" in out


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["run", "--eta", "3", "--alpha-max", "50"], "--eta"),
        (["run", "--eta", "-1"], "--eta"),
        (["run", "--q0", "-1"], "--q0"),
        (["verify", "--samples", "0"], "--samples"),
        (["verify", "--points", "0"], "--points"),
        (["run", "--student", "__import__('os')"], "--student"),
        (["verify", "--teacher-readout", "1/(k - 2)"], "--teacher-readout"),
        (["simulate", "--noise", "-1", "--no-progress"], "--noise"),
        (["derive", "--weight-decay", "x", "--latex"], "--weight-decay"),
        (["hessian", "--student", "x**9"], "--student"),
        (["simulate", "--replicas", "0"], "--replicas"),
        (["simulate", "--batch-size", "0"], "--batch-size"),
        (["run", "--batch-size", "-2"], "--batch-size"),
    ],
)
def test_bad_flag_exits_2_with_one_line_naming_it(argv, flag, tmp_path, capsys):
    if argv[0] in ("run", "simulate"):
        argv = argv + ["--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag in err and "Traceback" not in err, err


def test_unwritable_out_exits_2_before_computing(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for command in ("run", "simulate"):
        assert main([command, "--out", str(blocker / "sub")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--out" in err


def test_bad_model_text_from_a_real_process_has_no_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "numerics.cli", "run", "--student", "__import__('os').system('echo hi')"],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "--student" in result.stderr
    assert "hi" not in result.stdout


def test_verify_refuses_to_pass_having_checked_nothing(capsys):
    assert main(["verify", "--points", "0"]) == 2
    assert "PASS" not in capsys.readouterr().out


def test_simulate_replicas_each_against_their_own_ode(tmp_path, capsys):
    argv = ["simulate", "--N", "500", "--p", "2", "--k", "1", "--eta", "0.2", "--alpha-max", "2", "--replicas", "3",
            "--record", "10", "--no-progress", "--out", str(tmp_path)]
    assert main(argv) == 0
    data = read_csv_table(next(tmp_path.glob("*.csv")))
    starts = data[data["alpha"] == 0]
    assert len(starts) == 3
    # the ODE of each replica starts from that replica's measured overlaps: same risk at alpha = 0
    np.testing.assert_allclose(starts["risk_ode"], starts["risk"], rtol=1e-10)
    assert np.ptp(starts["risk"]) > 0  # and the replicas do start apart
    assert "own measured start" in capsys.readouterr().out


def test_large_p_is_drawn_as_bands_and_saved_with_a_summary_csv(tmp_path, monkeypatch):
    import numerics
    from numerics.figures import plotting

    Q0, R0, T = numerics.initial_conditions(12, 2, N=1000, seed=0)
    result = numerics.integrate(Q0, R0, T, eta=0.5, alpha_max=1.0, n_points=5)
    figure = plotting.plot_trajectory(result)
    off_diagonal_panel = figure.axes[1]  # 66 curves > MAX_CURVES: the mean line and one band
    assert len(off_diagonal_panel.get_lines()) == 1 and len(off_diagonal_panel.collections) == 1
    assert len(figure.axes[0].get_lines()) == 12  # 12 norms: drawn one by one
    monkeypatch.setattr(plotting, "MAX_CSV_COLUMNS", 50)
    written = plotting.save_trajectory(result, tmp_path / "run.csv")
    assert [path.suffix for path in written] == [".csv", ".npz"]
    names = np.genfromtxt(written[0], delimiter=",", names=True).dtype.names
    assert names == ("alpha", "Q_diag_mean", "Q_diag_min", "Q_diag_max", "Q_offdiag_mean", "Q_offdiag_min",
                     "Q_offdiag_max", "R_mean", "R_min", "R_max", "risk")
    np.testing.assert_array_equal(np.load(written[1])["Q"], result.Q)


def test_mini_batch_run_and_simulate(tmp_path, capsys):
    assert main(["run", "--batch-size", "8", "--alpha-max", "30", "--out", str(tmp_path)]) == 0
    assert main(["simulate", "--batch-size", "4", "--N", "200", "--alpha-max", "2", "--record", "10",
                 "--no-progress", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "final risk" in out
