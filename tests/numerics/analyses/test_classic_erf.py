"""Classic erf results: the Saad-Solla symmetric plateau and the overparameterisation trend."""

import numpy as np
import pytest

from derive.model.model import SCM
from numerics import integrate
from numerics.analyses.symmetric_fixed_point import symmetric_fixed_point


@pytest.mark.parametrize("K", [2, 3])
def test_small_learning_rate_plateau_is_saad_and_sollas_closed_form(K):
    # eta -> 0: every student is the teachers' sum scaled, Q = C = 1/(2K-1), R = 1/sqrt(K(2K-1)),
    # eps = (K/pi)(pi/6 - K arcsin(1/(2K))) from the arcsine law of erf(x/sqrt(2)) units
    # (started away from it: at eta -> 0 the spread Q - C of the students is a marginal direction,
    # its linear restoring force vanishes, so the root is found to 1e-7 there and the risk exactly)
    point = symmetric_fixed_point(K, 0.5, model=SCM, second_order=False,
                                  guess=(0.3, 0.25, 0.35))
    assert point.Q == pytest.approx(1 / (2 * K - 1), abs=1e-6)
    assert point.C == pytest.approx(1 / (2 * K - 1), abs=1e-6)
    assert point.R == pytest.approx(1 / np.sqrt(K * (2 * K - 1)), abs=1e-6)
    closed_form = K / np.pi * (np.pi / 6 - K * np.arcsin(1 / (2 * K)))
    assert point.risk == pytest.approx(closed_form, abs=1e-12)


@pytest.mark.parametrize("K, eta_a", [(2, 0.0), (3, 0.0), (2, 0.5), (3, 0.5)])
def test_the_root_is_a_fixed_point_of_the_integrated_ode(K, eta_a):
    # started on the root (identical students: a singular covariance), the integrated ODE stays there
    # within the solver's error (rtol 1e-8: transients up to 3e-8 in the risk, which then decay)
    eta = 0.5
    point = symmetric_fixed_point(K, eta, model=SCM, eta_a=eta_a)
    Q, R = point.overlaps(K)
    run = integrate(Q, R, np.eye(K), eta=eta, alpha_max=40.0, model=SCM, a=np.full(K, point.a), eta_a=eta_a,
                    n_points=20)
    np.testing.assert_allclose(run.risk, point.risk, rtol=0, atol=1e-7)
    np.testing.assert_allclose(run.Q[-1], Q, rtol=0, atol=1e-7)


@pytest.mark.parametrize("eta_a", [0.0, 0.5])
def test_the_ode_plateau_level_is_the_fixed_point(eta_a):
    # a random start with tiny teacher overlaps (R(0) ~ 7e-7) spends a long plateau next to the
    # symmetric fixed point: its closest approach equals the root-found risk to 1e-6
    from numerics import initial_conditions
    from numerics.figures.classic import plateau_statistics

    point = symmetric_fixed_point(2, 0.5, model=SCM, eta_a=eta_a)
    Q0, R0, T = initial_conditions(2, 2, N=1e12, q0=0.5, seed=2)
    run = integrate(Q0, R0, T, eta=0.5, alpha_max=1500.0, model=SCM, a=np.ones(2), eta_a=eta_a,
                    n_points=300, grid="linear")
    stats = plateau_statistics(run.alpha, run.risk, point.risk)
    assert stats.closest < 1e-6
    assert 20 < stats.entry < stats.escape < 1500
    assert stats.final < 1e-6


def test_the_plateau_numbers_of_the_readme():
    # README, "Classic erf networks": plateau risks at eta = 0.5, fixed and trained second layer
    reported = {(2, 0.0): 0.014677, (2, 0.5): 0.0137719, (3, 0.0): 0.0328179, (3, 0.5): 0.0259481}
    for (K, eta_a), value in reported.items():
        assert symmetric_fixed_point(K, 0.5, model=SCM, eta_a=eta_a).risk == pytest.approx(value, abs=1e-6)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="K must be"):
        symmetric_fixed_point(0, 0.5, model=SCM)
    with pytest.raises(ValueError, match="eta must be"):
        symmetric_fixed_point(2, -1.0, model=SCM)
    with pytest.raises(ValueError, match="guess must hold"):
        symmetric_fixed_point(2, 0.5, model=SCM, eta_a=0.5, guess=(0.3, 0.3, 0.4))
    from numerics.figures.classic import plateau_statistics

    with pytest.raises(ValueError, match="alpha and risk"):
        plateau_statistics(np.arange(3.0), np.ones(4), 0.1)


@pytest.mark.slow  # about 5 s
def test_fixed_second_layer_error_grows_with_width():
    from numerics.figures.classic import overparameterised_errors

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
