"""Classic erf figures (numerics/figures/classic.py): the plateau statistics of an ODE run, the
overparameterisation trend, the two figures at the small size."""

import numpy as np
import pytest

from derive.model.model import SCM
from numerics import initial_conditions, integrate
from numerics.analyses.symmetric_fixed_point import symmetric_fixed_point
from numerics.figures.classic import overparameterised_errors, plateau_statistics


@pytest.mark.parametrize("eta_a", [0.0, 0.5])
def test_the_ode_plateau_level_is_the_fixed_point(eta_a):
    # a random start with tiny teacher overlaps (R(0) ~ 7e-7) spends a long plateau next to the
    # symmetric fixed point: its closest approach equals the root-found risk to 1e-6
    point = symmetric_fixed_point(2, 0.5, model=SCM, eta_a=eta_a)
    Q0, R0, T = initial_conditions(2, 2, N=1e12, q0=0.5, seed=2)
    run = integrate(Q0, R0, T, eta=0.5, alpha_max=1500.0, model=SCM, a=np.ones(2), eta_a=eta_a,
                    n_points=300, grid="linear")
    stats = plateau_statistics(run.alpha, run.risk, point.risk)
    assert stats.closest < 1e-6
    assert 20 < stats.entry < stats.escape < 1500
    assert stats.final < 1e-6


@pytest.mark.slow  # about 5 s
def test_fixed_second_layer_error_grows_with_width():
    rtol = 1e-6
    fixed = overparameterised_errors((2, 3, 4), alpha_max=1000.0, eta_a=0.0, rtol=rtol)
    trained = overparameterised_errors((3, 4), alpha_max=1000.0, eta_a=0.5, rtol=rtol)
    errors = np.array([fixed[p][3] for p in (2, 3, 4)])
    # integration error of the risk is of order rtol relative: a margin 100 times that
    margin = 100 * rtol * errors
    assert np.all(np.diff(errors) > margin[1:])
    # a trained second layer removes the growth: below the fixed-readout error at p = 3, 4
    for p in (3, 4):
        assert trained[p][3] < fixed[p][3] - 100 * rtol * fixed[p][3]


@pytest.mark.slow  # about 10 s each at the small size
@pytest.mark.parametrize("name", ["saad_solla", "overparameterised_erf"])
def test_classic_figures_at_the_small_size(name, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from numerics.figures import make

    drawn = []
    save = Figure.savefig

    def recording_savefig(self, *args, **kwargs):
        drawn.append(self)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_savefig)
    (path,) = make([name], tmp_path, small=True)
    assert path.exists() and path.stat().st_size > 10_000
    (fig,) = drawn
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert "$" in ax.get_xlabel() and "$" in ax.get_ylabel()
        assert ax.get_legend() is not None and ax.get_legend().get_texts()
        assert len(ax.get_lines()) > 0


def test_plateau_statistics_refuse_mismatched_curves():
    with pytest.raises(ValueError, match="alpha and risk"):
        plateau_statistics(np.arange(3.0), np.ones(4), 0.1)
