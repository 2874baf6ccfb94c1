"""Runs are bounded before they start: step counts, memory, widths, huge integers."""

import numpy as np
import pytest

import numerics
from derive import Model
from numerics.simulators.common import MAX_STEPS, check_memory, physical_memory

Q0, R0, T = np.eye(2) * 0.5, np.zeros((2, 2)), np.eye(2)


def test_max_steps_is_a_practical_bound():
    assert MAX_STEPS <= 10**10


def test_overlap_chain_refuses_more_than_max_steps():
    with pytest.raises(ValueError, match=r"alpha_max \* N.*MAX_STEPS"):
        numerics.simulate(method="overlaps", p=2, k=1, N=10**12, eta=0.1, alpha_max=1.0, progress=False)


def test_sde_refuses_more_than_max_steps():
    with pytest.raises(ValueError, match=r"dalpha.*MAX_STEPS"):
        numerics.simulate_sde(Q0, R0, T, N=100, alpha_max=1.0, eta=0.1, dalpha=1e-300, progress=False)


@pytest.mark.parametrize("method", ["weights", "overlaps"])
def test_integer_N_beyond_the_float_range_is_a_value_error(method):
    with pytest.raises(ValueError, match="N"):
        numerics.simulate(method=method, p=2, k=1, N=10**400, eta=0.1, alpha_max=1.0, progress=False)


def test_sde_integer_N_beyond_the_float_range_is_a_value_error():
    with pytest.raises(ValueError, match="N must be"):
        numerics.simulate_sde(Q0, R0, T, N=10**400, alpha_max=1.0, eta=0.1, progress=False)


def test_sde_accepts_integer_valued_float_replicas():
    result = numerics.simulate_sde(Q0, R0, T, N=100, alpha_max=0.1, eta=0.1, replicas=2.0, seed=0,
                                   progress=False)
    assert result.extra["replicas"] == 2


@pytest.mark.parametrize(
    "method, overrides",
    [
        ("weights", {"batch_size": 10**9}),
        ("weights", {"replicas": 10**12}),
        ("weights", {"record": 10**12}),
        ("weights", {"N": 10**9, "alpha_max": 1e-3}),
        ("overlaps", {"batch_size": 10**12}),
        ("overlaps", {"replicas": 10**12}),
        ("overlaps", {"record": 10**12}),
    ],
)
def test_huge_allocations_are_refused_saying_the_memory_needed(method, overrides):
    arguments = {"p": 2, "k": 1, "N": 40, "eta": 0.1, "alpha_max": 1.0, "progress": False} | overrides
    with pytest.raises(ValueError, match="GiB of memory"):
        numerics.simulate(method=method, **arguments)


@pytest.mark.parametrize("overrides", [{"replicas": 10**12}, {"record": 10**12}])
def test_sde_huge_allocations_are_refused_saying_the_memory_needed(overrides):
    with pytest.raises(ValueError, match="GiB of memory"):
        numerics.simulate_sde(Q0, R0, T, N=100, alpha_max=1.0, eta=0.1, progress=False, **overrides)


def test_check_memory_names_the_request():
    check_memory(1024.0, "a small thing")
    with pytest.raises(ValueError, match="the big thing needs about"):
        check_memory(physical_memory(), "the big thing")


def test_overlap_chain_checks_readout_widths():
    model = Model(student_readout="1/(p-9)")
    with pytest.raises(ValueError, match="p = 9"):
        numerics.simulate(method="overlaps", p=9, k=1, N=40, eta=0.1, alpha_max=1.0, model=model, progress=False)


def test_overlap_chain_runs_at_N_equal_p_plus_k():
    result = numerics.simulate(method="overlaps", p=2, k=1, N=3, eta=0.1, alpha_max=2.0, seed=0, progress=False)
    assert np.all(np.isfinite(result.Q))
