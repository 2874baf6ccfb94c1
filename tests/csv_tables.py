"""Reading the CSV files the command line writes: ``#`` metadata lines first, then the column names."""

from pathlib import Path

import numpy as np


def read_csv_table(path: str | Path) -> np.ndarray:
    """The table of the CSV at ``path`` as a structured array named by its header (``#`` lines skipped)."""
    lines = [line for line in Path(path).read_text().splitlines() if not line.startswith("#")]
    return np.genfromtxt(lines, delimiter=",", names=True)


def csv_metadata_lines(path: str | Path) -> list[str]:
    """The ``#`` lines heading the CSV at ``path``, without the ``# ``."""
    lines = Path(path).read_text().splitlines()
    return [line[2:] for line in lines if line.startswith("# ")]
