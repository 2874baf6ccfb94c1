"""The escape-law study at width p = 4 (numerics/figures/escape_laws_width.py): weak recovery on
synthetic overlaps with a known answer, and the figure at its small size."""

import numpy as np
import pytest

from numerics.figures import escape_laws_width


def test_weak_recovery_normalises_by_the_student_norm_and_ignores_signs():
    alpha = np.linspace(0.0, 10.0, 11)
    n = alpha.size
    # two students: the first keeps |R| = 0.3 while its norm shrinks, Q = (0.3 / cosine)**2 with the
    # cosine rising as alpha / 10 (crossing 1/2 at alpha = 5); the second has R growing negative,
    # |R| = alpha / 20 at Q = 1 (cosine 1/2 at alpha = 10); a dead third student (Q = R = 0)
    cosine = np.maximum(alpha / 10, 1e-3)
    Q = np.zeros((n, 3, 3))
    Q[:, 0, 0], Q[:, 1, 1] = (0.3 / cosine) ** 2, 1.0
    R = np.zeros((n, 3, 1))
    R[:, 0, 0], R[:, 1, 0] = 0.3, -alpha / 20
    assert escape_laws_width.weak_recovery(alpha, Q, R) == pytest.approx(5.0)
    # without the first student the second one crosses at alpha = 10; a batch axis is kept
    both = escape_laws_width.weak_recovery(alpha, np.stack([Q, Q[:, [2, 1, 2]][:, :, [2, 1, 2]]]),
                                           np.stack([R, R[:, [2, 1, 2]]]))
    assert both == pytest.approx([5.0, 10.0])
    # the teacher's norm enters: T = 4 halves every cosine, the first student's reaches 1/2 at alpha = 10
    assert escape_laws_width.weak_recovery(alpha, Q, R, T=4.0) == pytest.approx(10.0)
    assert np.isnan(escape_laws_width.weak_recovery(alpha, Q, R, T=4.0, level=0.6))


def test_weak_recovery_rejects_bad_input():
    alpha = np.arange(3.0)
    with pytest.raises(ValueError, match="R \\(..., n, p, k\\)"):
        escape_laws_width.weak_recovery(alpha, np.zeros((3, 2, 2)), np.zeros((3, 3, 1)))
    with pytest.raises(ValueError, match="level"):
        escape_laws_width.weak_recovery(alpha, np.ones((3, 1, 1)), np.zeros((3, 1, 1)), level=1.5)


@pytest.mark.slow  # about 10 s on a loaded machine, like the p = 1 study's figure test
def test_the_width_figure_runs_at_its_small_size(tmp_path, capsys):
    path = escape_laws_width.escape_laws_width(tmp_path, small=True)
    assert path.exists() and path.stat().st_size > 0
    printed = capsys.readouterr().out
    assert "ODE p=4 N=  1e+02" in printed and "overlaps p=4 N=  1e+02: recovery" in printed
