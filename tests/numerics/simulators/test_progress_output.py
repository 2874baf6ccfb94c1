"""Progress: a tqdm.auto bar on a terminal or in a notebook, a log line per 10 % otherwise, off by a switch."""

import logging

import numpy as np

import numerics
from numerics.simulators import common
from numerics.simulators.common import LogProgress, progress_bar


def test_a_redirected_stderr_gets_a_log_line_per_tenth_not_a_bar(caplog, capsys, monkeypatch):
    from numerics.simulators import overlap_chain

    monkeypatch.setattr(overlap_chain, "PROGRESS_WORK", 0)  # a short run that still reports
    # pytest captures stderr: not a terminal
    with caplog.at_level(logging.INFO, logger="numerics.simulators"):
        numerics.simulate(method="overlaps", p=2, k=1, N=1000, eta=0.1, alpha_max=30.0, seed=0, record=5,
                          progress=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "numerics.simulators"]
    assert 1 <= len(lines) <= 10
    assert lines[-1].startswith("SGD steps (overlaps): 100%")
    assert "\r" not in capsys.readouterr().err


def test_the_sde_reports_by_log_lines_too(caplog, capsys, monkeypatch):
    from numerics.simulators import sde

    monkeypatch.setattr(sde, "PROGRESS_WORK", 0)  # a short run that still reports
    with caplog.at_level(logging.INFO, logger="numerics.simulators"):
        numerics.simulate_sde(np.eye(2) * 0.5, np.zeros((2, 2)), np.eye(2), N=1000, alpha_max=1.0, eta=0.1,
                              dalpha=1e-2, seed=0, record=5, progress=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "numerics.simulators"]
    assert lines and lines[-1].startswith("SDE steps: 100%")
    assert "\r" not in capsys.readouterr().err


def test_progress_false_is_silent(caplog, capsys):
    with caplog.at_level(logging.INFO, logger="numerics.simulators"):
        numerics.simulate(method="overlaps", p=2, k=1, N=1000, eta=0.1, alpha_max=30.0, seed=0, record=5,
                          progress=False)
    assert not [r for r in caplog.records if r.name == "numerics.simulators"]
    assert capsys.readouterr().err == ""


def test_a_terminal_gets_a_tqdm_auto_bar(monkeypatch):
    from tqdm.auto import tqdm

    monkeypatch.setattr(common, "interactive_output", lambda: True)
    bar = progress_bar(True, 10, "steps")
    assert isinstance(bar, tqdm)
    bar.close()
    monkeypatch.setattr(common, "interactive_output", lambda: False)
    assert isinstance(progress_bar(True, 10, "steps"), LogProgress)
    assert progress_bar(False, 10, "steps") is None


def test_log_progress_reports_each_tenth_once(caplog):
    with caplog.at_level(logging.INFO, logger="numerics.simulators"):
        bar = LogProgress(1000, "work")
        for _ in range(1000):
            bar.update(1)
        bar.close()
    assert [r.getMessage().split(":")[1].split("%")[0].strip() for r in caplog.records] == [
        str(10 * i) for i in range(1, 11)
    ]
