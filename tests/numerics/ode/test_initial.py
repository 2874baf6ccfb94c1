"""Initial conditions of the overlap ODEs (numerics/ode/initial.py, paper Eq. 8)."""

import numpy as np
import pytest

from numerics.ode.initial import initial_conditions


def test_shapes_and_the_deterministic_parts():
    Q0, R0, T = initial_conditions(3, 2, N=100, q0=0.5, seed=0)
    assert Q0.shape == (3, 3) and R0.shape == (3, 2) and T.shape == (2, 2)
    np.testing.assert_array_equal(Q0, 0.5 * np.eye(3))
    np.testing.assert_array_equal(T, np.eye(2))
    Qb, Rb, Tb = initial_conditions(3, 2, N=100, seed=0, batch=4)
    assert Qb.shape == (4, 3, 3) and Rb.shape == (4, 3, 2) and Tb.shape == (2, 2)
    Qb[0, 0, 0] = 7.0  # every start owns its array
    assert Qb[1, 0, 0] == 1.0


def test_teacher_overlaps_have_variance_q0_over_N():
    # 24 000 i.i.d. entries: the sample variance within 5 standard errors (sqrt(2/n) relative, Gaussian)
    q0, N = 0.8, 400.0
    _, R0, _ = initial_conditions(4, 3, N=N, q0=q0, seed=1, batch=2000)
    samples = R0.ravel()
    variance = q0 / N
    assert abs(samples.mean()) < 5 * np.sqrt(variance / samples.size)
    assert abs(samples.var() - variance) < 5 * variance * np.sqrt(2 / samples.size)


def test_a_seed_reproduces_the_start():
    first = initial_conditions(2, 2, N=50, seed=3)[1]
    np.testing.assert_array_equal(first, initial_conditions(2, 2, N=50, seed=3)[1])
    assert not np.array_equal(first, initial_conditions(2, 2, N=50, seed=4)[1])


@pytest.mark.parametrize(
    "arguments, name",
    [
        (dict(p=0, k=1, N=10), "p"),
        (dict(p=2, k=1.5, N=10), "k"),
        (dict(p=2, k=1, N=-1), "N"),
        (dict(p=2, k=1, N=10, q0=0), "q0"),
        (dict(p=2, k=1, N=10, batch=0), "batch"),
    ],
)
def test_bad_arguments_are_named(arguments, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        initial_conditions(arguments.pop("p"), arguments.pop("k"), **arguments)
