"""The implicit-bias figures of numerics/figures/implicit.py (Figs. 3 and 4) at their small size."""

import pytest

from numerics.figures import implicit as figures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("function", [figures.fig3, figures.fig4], ids=["fig3", "fig4"])
def test_the_figure_is_written_as_a_png(function, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = function(tmp_path, True)
    assert path == tmp_path / f"{function.__name__}.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
