"""The printed increment moments of uncommitted quadratic models, for readouts the committed ones lack."""

import numpy as np
import pytest
from gauss_quadrature import exact_increment_covariance
from sample_points import random_point

from derive import Model
from numerics.noise.fluctuations import increment_covariance


@pytest.mark.parametrize("readouts", [{"student_readout": "1"}, {"student_readout": "2", "teacher_readout": "1"},
                                      {"teacher_readout": "1/sqrt(k)"}])
def test_constant_readouts_are_printed_with_the_widths(readouts, tmp_path, monkeypatch):
    # a constant readout leaves p and k out of every coefficient; the printed module must
    # still define them, since they size its outputs (generator version 6 did not)
    monkeypatch.setenv("WICKODE_CACHE_DIR", str(tmp_path))
    model = Model(student_activation="x**2 + x", teacher_activation="x**2", **readouts)
    Q, R, T = random_point(2, 2, np.random.default_rng(5))
    got = increment_covariance(Q, R, T, 0.4, model=model)
    want = exact_increment_covariance(model, Q, R, T, 0.4)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
