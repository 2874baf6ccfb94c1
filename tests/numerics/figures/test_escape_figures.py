"""One Fig. 2 learning-rate scan (numerics/figures/escape.py, ``fig2_scan``): the etas asked for, the fastest
escape among the runs that learn, failed runs blanked. The figures themselves are drawn by the slow test
of tests/numerics/figures/test_figures.py."""

import numpy as np

from numerics.figures.escape import fig2_scan


def test_a_scan_reports_the_fastest_learning_rate_of_its_grid():
    steps = [-5, -4, -3, -2]
    scan = fig2_scan(p=1, k=1, steps=steps, seeds=2)
    np.testing.assert_array_equal(scan["etas"], 2.0 ** np.array(steps))
    learned = np.isfinite(scan["mean_escape"])
    assert learned[0] and not learned[-1]  # the smallest eta learns, the largest fails
    assert np.array_equal(np.isfinite(scan["error"]), learned)
    assert scan["best_eta"] == scan["etas"][np.nanargmin(scan["mean_escape"])]
    # the best is the last eta before the first failure: an optimum at the boundary of the scan
    assert scan["boundary"] and scan["best_eta"] == scan["etas"][np.flatnonzero(learned)[-1]]
    assert scan["stop_reason"]
