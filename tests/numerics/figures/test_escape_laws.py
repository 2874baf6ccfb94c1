"""The escape-law study (numerics/figures/escape_laws.py): its first-passage and fitting helpers on
synthetic cases with known answers, and the figure at its small size."""

import numpy as np
import pytest

from numerics.figures import escape_laws


def test_first_passage_interpolates_and_gives_nan_without_a_crossing():
    alpha = np.linspace(0.0, 10.0, 11)
    values = np.stack([alpha / 10, -alpha / 20, np.full(11, 0.7), np.zeros(11)])
    escape = escape_laws.first_passage(alpha, values, 0.5)
    assert escape[0] == pytest.approx(5.0) and escape[1] == pytest.approx(10.0)
    assert escape[2] == 0.0 and np.isnan(escape[3])
    # between records: |R| from 0.4 to 0.6 over one unit crosses 0.5 half-way
    assert escape_laws.first_passage(np.array([0.0, 1.0]), np.array([0.4, 0.6]), 0.5) == pytest.approx(0.5)


def test_first_passage_rejects_bad_input():
    with pytest.raises(ValueError, match="alpha of shape"):
        escape_laws.first_passage(np.arange(3.0), np.zeros(4), 0.5)
    with pytest.raises(ValueError, match="level"):
        escape_laws.first_passage(np.arange(3.0), np.zeros(3), 0.0)


def _synthetic(law, slope, Ns, replicas, seed):
    rng = np.random.default_rng(seed)
    x = np.log(Ns)
    centre = {"power": 3.0 * Ns**slope, "log": 2.0 + slope * x, "log2": 2.0 + slope * x**2}[law]
    # exponential spread around the law, as escape times from a random start
    return [c * rng.exponential(size=replicas) for c in centre]


@pytest.mark.parametrize("law, slope, wrong", [("power", 0.5, (0.0, 1.0)), ("log", 5.0, (0.0, 10.0)),
                                               ("log2", 0.5, (0.0, 1.0))])
def test_fit_escape_law_recovers_a_known_law_and_excludes_wrong_ones(law, slope, wrong):
    Ns = np.array([1e2, 1e3, 1e4, 1e5])
    fit = escape_laws.fit_escape_law(Ns, _synthetic(law, slope, Ns, 400, 1), law, boot=300)
    low, high = fit.interval
    assert fit.law == law and low < slope < high
    # power: the interval is narrow enough to exclude slopes one unit (a whole law) away
    assert not any(low < w < high for w in wrong)


def test_fit_escape_law_drops_unescaped_runs_and_rejects_bad_input():
    Ns = np.array([1e2, 1e4])
    samples = [np.array([10.0, np.nan, 10.0]), np.array([100.0, 100.0])]
    fit = escape_laws.fit_escape_law(Ns, samples, "power")
    assert fit.slope == pytest.approx(0.5) and fit.interval == pytest.approx((0.5, 0.5))
    with pytest.raises(ValueError, match="escaped"):
        escape_laws.fit_escape_law(Ns, [np.array([np.nan]), np.array([1.0])], "power")
    with pytest.raises(ValueError, match="unknown law"):
        escape_laws.fit_escape_law(Ns, samples, "cubic")


def test_scaled_learning_rates_follow_the_information_exponent():
    N = 1e6
    assert escape_laws.scaled_eta(1, N) == escape_laws.ETA
    assert escape_laws.scaled_eta(2, N) == pytest.approx(escape_laws.ETA * np.log(100) / np.log(N))
    assert escape_laws.scaled_eta(3, N) == pytest.approx(escape_laws.ETA_HE3 * 1e-2)
    with pytest.raises(ValueError, match="k_star"):
        escape_laws.scaled_eta(0, N)
    with pytest.raises(ValueError, match="schedule"):
        escape_laws.learning_rate(1, N, "cosine")


@pytest.mark.slow
def test_escape_laws_figure_small(tmp_path, capsys):
    path = escape_laws.escape_laws(tmp_path, small=True)
    assert path.exists() and path.stat().st_size > 10_000
    out = capsys.readouterr().out
    # He2 at fixed eta: the ODE escape grows with N (a log law, positive slope)
    assert "k*=2 (x**2 - 1), eta fixed" in out and "fit ODE      log" in out
