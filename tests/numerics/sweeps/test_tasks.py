"""The built-in sweep tasks: what runs at a point for a name, and that it is the run it stands for."""

from __future__ import annotations

import numpy as np
import pytest

from numerics.ode.initial import initial_conditions
from numerics.ode.integrate import integrate
from numerics.sweeps.tasks import REQUIRED_GRID, TASKS, integrate_task, point_function, resolve_model

pytest.importorskip("xarray")

ALPHA = np.linspace(0.0, 2.0, 5)


def test_integrate_task_is_the_integration_of_its_eq8_starts():
    result = integrate_task(eta=0.5, alpha_eval=ALPHA, p=2, k=2, N=1e3, seed=[3, 4])
    starts = [initial_conditions(2, 2, N=1e3, seed=s) for s in (3, 4)]
    direct = integrate(np.stack([s[0] for s in starts]), np.stack([s[1] for s in starts]), starts[0][2],
                       eta=0.5, alpha_max=2.0, alpha_eval=ALPHA)
    np.testing.assert_array_equal(result.Q, direct.Q)
    np.testing.assert_array_equal(result.R, direct.R)
    np.testing.assert_array_equal(result.alpha, ALPHA)


def test_integrate_task_needs_widths_or_a_whole_start():
    with pytest.raises(ValueError, match="p and k"):
        integrate_task(eta=0.5, alpha_eval=ALPHA)
    with pytest.raises(ValueError, match="all of Q0, R0 and T"):
        integrate_task(eta=0.5, alpha_eval=ALPHA, Q0=np.eye(2), R0=np.zeros((2, 2)))


def test_point_function_of_a_name_lays_out_the_task_with_its_model():
    from derive.model.model import HE2

    function = point_function("integrate")
    dataset = function(eta=0.2, alpha_eval=ALPHA, p=2, k=2, N=1e3, seed=3, model="he2")
    direct = integrate_task(eta=0.2, alpha_eval=ALPHA, p=2, k=2, N=1e3, seed=3, model=HE2)
    np.testing.assert_array_equal(dataset["Q"].values, direct.Q)
    # the He2 activation x**2 - 1, not the default model's x**2
    assert "sigma(x) = x**2 - 1" in str(dataset["model_description"].values)


def test_point_function_passes_a_callable_and_refuses_the_rest():
    def task(x):
        return x

    assert point_function(task) is task
    with pytest.raises(ValueError, match="unknown task"):
        point_function("integrat")
    with pytest.raises(TypeError, match="task name or a callable"):
        point_function(3)
    assert set(REQUIRED_GRID) <= set(TASKS)


def test_a_model_name_is_the_committed_model():
    from derive.model.model import HE2

    # "paper" is the default model, None
    assert resolve_model("paper") is None and resolve_model(None) is None
    assert resolve_model("he2") == HE2 and resolve_model(HE2) is HE2
    with pytest.raises(ValueError, match="paper"):
        resolve_model("no such model")
