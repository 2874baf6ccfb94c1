"""The figure of numerics/figures/sweep.py (a learning-rate sweep) at its small size."""

from numerics.figures import sweep as figures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_the_figure_is_written_as_a_png(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = figures.sweep_figure(tmp_path, True)
    assert path.parent == tmp_path and path.suffix == ".png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
