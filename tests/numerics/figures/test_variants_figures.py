"""The SGD variants' figures (numerics/figures/variants.py) at the small size, and the He3 closed form they use."""

from __future__ import annotations

import math

import pytest

from numerics.figures.variants import he3_escape_closed_form


def test_he3_escape_closed_form_integrates_the_flow():
    # d alpha / dm = 1 / (18 eta m^2 (1 - m^2)), by the midpoint rule on a fine grid
    m0, m1, eta, n = 0.05, 0.5, 0.1, 200000
    step = (m1 - m0) / n
    total = sum(step / (18 * eta * m * m * (1 - m * m)) for m in (m0 + (i + 0.5) * step for i in range(n)))
    assert he3_escape_closed_form(m0, m1, eta) == pytest.approx(total, rel=1e-8)
    assert math.isclose(he3_escape_closed_form(m0, m0, eta), 0.0, abs_tol=1e-12)


@pytest.mark.parametrize("name", ["spherical", "readout_decay", "classification"])
def test_variant_figures_at_the_small_size(name, tmp_path, capsys):
    from numerics.figures import make

    (path,) = make([name], tmp_path, small=True)
    assert path.exists() and path.stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert name in printed
