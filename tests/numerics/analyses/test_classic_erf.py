"""Classic erf results: the Saad-Solla symmetric plateau (its figures: tests/numerics/figures/test_classic.py)."""

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


def test_the_plateau_numbers_of_the_classic_erf_page():
    # docs/classic_erf.md: plateau risks at eta = 0.5, fixed and trained second layer
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
