"""Bad input: a clear ValueError naming the argument, never a silent wrong number."""

import numpy as np
import pytest

import numerics

Q = np.eye(2)
R = np.array([[0.1], [0.0]])
T = np.eye(1)


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.eye(3), R, T), "R must have shape"),
        ((np.array([[1.0, 0.5], [0.0, 1.0]]), R, T), "Q must be symmetric"),
        ((np.eye(2), np.array([[2.0], [0.0]]), T), "not positive semi-definite"),
        ((np.array([[np.nan, 0], [0, 1]]), R, T), "Q contains NaN"),
        ((Q, R, np.array([1.0])), "T must have at least 2 axes"),
        ((Q, R, [["a"]]), "T must be a real numeric array"),
    ],
)
def test_rhs_rejects_bad_overlaps(args, message):
    with pytest.raises(ValueError, match=message):
        numerics.rhs(*args, 0.1)
    with pytest.raises(ValueError, match=message):
        numerics.risk(*args)


@pytest.mark.parametrize("eta, message", [(-0.1, "non-negative"), (np.inf, "finite"), ("x", "real number")])
def test_rhs_rejects_bad_learning_rate(eta, message):
    with pytest.raises(ValueError, match=f"eta must be .*{message}"):
        numerics.rhs(Q, R, T, eta)


def test_integrate_rejects_bad_options():
    with pytest.raises(ValueError, match="eta must be positive"):
        numerics.integrate(Q, R, T, eta=0.0, alpha_max=1.0)
    with pytest.raises(ValueError, match="alpha_max"):
        numerics.integrate(Q, R, T, eta=0.1, alpha_max=-1.0)
    with pytest.raises(ValueError, match="n_points"):
        numerics.integrate(Q, R, T, eta=0.1, alpha_max=1.0, n_points=1)
    with pytest.raises(ValueError, match="grid"):
        numerics.integrate(Q, R, T, eta=0.1, alpha_max=1.0, grid="cubic")


def test_initial_conditions_reject_bad_widths():
    with pytest.raises(ValueError, match="p must be a positive integer"):
        numerics.initial_conditions(0, 1, N=10)
    with pytest.raises(ValueError, match="N must be positive"):
        numerics.initial_conditions(2, 1, N=0)


def test_model_argument_is_checked():
    with pytest.raises(ValueError, match="model must be"):
        numerics.rhs(Q, R, T, 0.1, model="paper")
