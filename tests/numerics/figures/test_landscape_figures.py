"""The landscape figures of numerics/figures/landscape.py (Figs. 5 and 6) at their small size."""

import pytest

from numerics.figures import landscape as figures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("function", [figures.fig5, figures.fig6], ids=["fig5", "fig6"])
def test_the_figure_is_written_as_a_png(function, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = function(tmp_path, True)
    assert path == tmp_path / f"{function.__name__}.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
