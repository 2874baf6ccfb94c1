"""The closed-form increment moments of erf networks (numerics/kernels/erf_increments.py).

Against the generated six-slot kernels of the per-tuple route (themselves checked against quadratures in
tests/numerics/noise/test_tuple_fluctuations.py) and against their own long-double evaluation.
"""

from __future__ import annotations

import numpy as np
import pytest
from sample_points import random_overlaps, relative_error

from derive.model.model import SCM
from numerics.kernels.erf_increments import erf_pair_moments, student_pairs
from numerics.noise.tuple_fluctuations import increment_moments
from numerics.runtime.registry import resolve


@pytest.mark.parametrize("coincide", [False, True])
def test_closed_form_erf_moments_equal_the_generated_kernels(coincide):
    rng = np.random.default_rng(11)
    p, k = 3, 2
    Q, R, T = random_overlaps(rng, (2,), p, k, coincide=coincide)
    a, b = rng.normal(size=(2, p)), rng.normal(size=(2, k))
    module = resolve(SCM, sizes=(p, k)).module
    generated = increment_moments(module, Q, R, T, 0.4, a, b)
    C = np.block([[Q, R], [np.swapaxes(R, -1, -2), T]])
    c = np.concatenate([-a, b], axis=-1)
    pairs = student_pairs(p)[2]
    got = np.einsum("bj,bi,bjixy->bjxiy", a, a, erf_pair_moments(C, c, 0.4, p)[:, pairs])
    extended = erf_pair_moments(C.astype(np.longdouble), c.astype(np.longdouble), 0.4, p)[:, pairs]
    reference = np.einsum("bj,bi,bjixy->bjxiy", a, a, extended).astype(float)
    assert relative_error(got, reference) < 1e-14
    # the generated kernels agree to 1e-12 on distinct units; two equal students cost them digits (about 6e-13)
    assert relative_error(got, generated) < (1e-11 if coincide else 1e-12)
    # a wrong readout sign would be caught: the closed form is sensitive to it
    flipped = erf_pair_moments(C, np.concatenate([a, b], axis=-1), 0.4, p)[:, pairs]
    assert relative_error(np.einsum("bj,bi,bjixy->bjxiy", a, a, flipped), generated) > 1e-3


def test_student_pairs_are_the_upper_triangle():
    rows, columns, pair_of = student_pairs(3)
    assert rows.tolist() == [0, 0, 0, 1, 1, 2] and columns.tolist() == [0, 1, 2, 1, 2, 2]
    assert np.array_equal(pair_of, pair_of.T) and pair_of[1, 2] == 4
