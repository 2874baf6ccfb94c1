"""relu increment moments per student pair (the route the covariance and the SDE take) against the tuple-by-tuple
reference: numerics/noise/tuple_fluctuations.py."""

from __future__ import annotations

import numpy as np
from sample_points import random_overlaps, relative_error

from derive.model.model import Model
from numerics.noise.tuple_fluctuations import relu_increment_moments, relu_increment_moments_by_tuples
from numerics.runtime.registry import resolve

RELU = Model(student_activation="relu(x)", teacher_activation="relu(x)")


def test_relu_moments_per_pair_equal_the_tuple_by_tuple_reference_with_readouts_and_noise():
    rng = np.random.default_rng(23)
    Q, R, T = random_overlaps(rng, (2,), 2, 2)
    module = resolve(RELU, sizes=(2, 2)).module
    a, b = rng.normal(size=(2, 2)), rng.normal(size=(2, 2))
    for readouts in ({}, {"a": a, "b": b}):
        got = relu_increment_moments(module, Q, R, T, 0.4, **readouts)
        want = relu_increment_moments_by_tuples(module, Q, R, T, 0.4, **readouts)
        assert got.shape == want.shape == (2, 2, 4, 2, 4)
        assert relative_error(got, want) < 1e-12
