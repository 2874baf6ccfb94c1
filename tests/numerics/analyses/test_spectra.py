"""Sign counts relative to the largest eigenvalue and the spectrum record (numerics/analyses/spectra.py)."""

import numpy as np
import pytest

from numerics.analyses.spectra import SPECTRUM_RTOL, Spectrum, count_signs


def test_null_means_small_relative_to_the_largest_magnitude():
    values = np.array([-3.0, -1e-12, 0.0, 2e-9, 1.0])
    # tolerance 1e-8 * 3: the two tiny values and zero are null
    assert count_signs(values) == {"negative": 1, "null": 3, "positive": 1}
    assert count_signs(values * 1e6) == count_signs(values)
    assert count_signs(values, tol=1e-10) == {"negative": 1, "null": 2, "positive": 2}


def test_all_zero_eigenvalues_are_null():
    assert count_signs(np.zeros(4)) == {"negative": 0, "null": 4, "positive": 0}


@pytest.mark.parametrize("tol", [0.0, -1.0, 1.0])
def test_tolerance_outside_zero_one_is_named(tol):
    with pytest.raises(ValueError, match="tol"):
        count_signs(np.ones(2), tol=tol)


def test_expanded_repeats_each_eigenvalue_by_its_multiplicity():
    spectrum = Spectrum(eigenvalues=np.array([-1.0, 0.0, 2.0]), multiplicities=np.array([1, 3, 2]),
                        negative=1, null=3, positive=2, N=3, rank=1, tolerance=SPECTRUM_RTOL)
    np.testing.assert_array_equal(spectrum.expanded(), [-1.0, 0.0, 0.0, 0.0, 2.0, 2.0])
    assert spectrum.counts() == {"negative": 1, "null": 3, "positive": 2}
