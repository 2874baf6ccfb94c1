"""CSV files of numerics/figures/plotting.py: ``#`` metadata lines head the file, the columns follow unchanged."""

from types import SimpleNamespace

import numpy as np
from csv_tables import csv_metadata_lines, read_csv_table

from numerics.figures.plotting import csv_header, save_trajectory


def test_the_header_puts_each_metadata_line_after_a_hash():
    assert csv_header(["alpha", "risk"], ["model: paper", "parameters: p=2"]) == (
        "# model: paper\n# parameters: p=2\nalpha,risk"
    )
    assert csv_header(["alpha", "risk"]) == "alpha,risk"


def test_a_saved_trajectory_reads_back_below_its_metadata(tmp_path):
    n, p, k = 5, 2, 1
    rng = np.random.default_rng(0)
    result = SimpleNamespace(alpha=np.linspace(0, 1, n), Q=rng.normal(size=(n, p, p)), R=rng.normal(size=(n, p, k)),
                             risk=rng.random(n), T=np.eye(k))
    (path,) = save_trajectory(result, tmp_path / "run.csv", ["wickode 0.1.0: wickode run", "model: paper"])
    assert csv_metadata_lines(path) == ["wickode 0.1.0: wickode run", "model: paper"]
    table = read_csv_table(path)
    np.testing.assert_array_equal(table["risk"], result.risk)
    np.testing.assert_array_equal(np.loadtxt(path, delimiter=",", skiprows=3)[:, 0], result.alpha)
