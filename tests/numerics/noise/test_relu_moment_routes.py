"""relu increment moments per student pair (the route the covariance and the SDE take) against the tuple-by-tuple
reference: numerics/noise/tuple_fluctuations.py."""

from __future__ import annotations

import numpy as np
from sample_points import random_overlaps, relative_error

from derive.model.model import Model
from numerics.noise.tuple_fluctuations import (
    relu_increment_moments,
    relu_increment_moments_by_tuples,
    relu_readout_moments,
    relu_readout_moments_by_tuples,
)
from numerics.runtime.registry import resolve

RELU = Model(student_activation="relu(x)", teacher_activation="relu(x)")


def test_relu_moments_per_pair_equal_the_tuple_by_tuple_reference_with_readouts_and_noise():
    rng = np.random.default_rng(23)
    Q, R, T = random_overlaps(rng, (1,), 2, 2)
    module = resolve(RELU, sizes=(2, 2)).module
    a, b = rng.normal(size=(1, 2)), rng.normal(size=(1, 2))
    for readouts in ({}, {"a": a, "b": b}):
        got = relu_increment_moments(module, Q, R, T, 0.4, **readouts)
        want = relu_increment_moments_by_tuples(module, Q, R, T, 0.4, **readouts)
        assert got.shape == want.shape == (1, 2, 4, 2, 4)
        assert relative_error(got, want) < 1e-12


def test_relu_readout_moments_are_slices_of_the_pair_moments():
    """A trained readout's ``Y[j, m, x]`` and ``S[j, m]`` against the tuple-by-tuple reference, coinciding
    students included."""
    rng = np.random.default_rng(29)
    Q, R, T = random_overlaps(rng, (2,), 2, 1, coincide=True)
    module = resolve(RELU, sizes=(2, 1)).module
    a, b = rng.normal(size=(2, 2)), rng.normal(size=(2, 1))
    got = relu_readout_moments(module, Q, R, T, 0.4, a, b)
    want = relu_readout_moments_by_tuples(module, Q, R, T, 0.4, a, b)
    for g, w, shape in zip(got, want, ((2, 2, 2, 3), (2, 2, 2))):
        assert g.shape == w.shape == shape
        assert relative_error(g, w) < 1e-12
