"""The network-table module (derive/codegen/network_module.py) against the printed moments module.

Residual factors as single vertices over all units against the student/teacher split contracted by
matrix products: two independent derivations of the same six averages, exact up to rounding, on
degree <= 2 models.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sample_points import random_point

from derive.model.model import HE2, PAPER, Model
from numerics.runtime.registry import fluctuation_module

# an uncommitted model (generated into the cache on first use)
MIXED_QUADRATIC = Model(student_activation="x**2 + x/2 - 1", teacher_activation="x**2 - x",
                        student_readout="1/sqrt(p)")


def _relative_error(got, want):
    return float(np.max(np.abs(got - want))) / max(1.0, float(np.max(np.abs(want))))


@pytest.fixture(scope="module")
def network_module_of(tmp_path_factory):
    """The network-table module of any model, generated into a private cache (whatever its degree)."""
    from derive.codegen.network_module import generate_network_module
    from numerics.runtime.cache import load_generated

    patch = pytest.MonkeyPatch()
    patch.setenv("WICKODE_CACHE_DIR", str(tmp_path_factory.mktemp("network-cache")))
    modules = {}

    def load(model):
        key = model.codegen_hash()
        if key not in modules:
            modules[key] = load_generated(
                "network_test", key, lambda: generate_network_module(model), f"network_test_{key}"
            )
        return modules[key]

    yield load
    patch.undo()


@pytest.mark.parametrize(
    "model",
    [PAPER, HE2, pytest.param(MIXED_QUADRATIC, marks=pytest.mark.slow)],
    ids=["paper", "he2", "mixed-quadratic"],
)
def test_network_tables_equal_printed_moments(model, network_module_of):
    """Residual factors as single vertices over all units == student/teacher split, matrix products."""
    printed = fluctuation_module(None if model is PAPER else model)
    networks = network_module_of(model)
    assert not hasattr(printed, "TABLES") and hasattr(networks, "TABLES")  # two different routes
    rng = np.random.default_rng(5)
    for (p, k), kind in itertools.product([(1, 1), (2, 1), (1, 3), (3, 2)], ["random", "singular"]):
        Q, R, T = random_point(p, k, rng, kind)
        for function in ("first_order_moments", "second_order_moments"):
            want = getattr(printed, function)(Q, R, T, 0.3)
            got = getattr(networks, function)(Q, R, T, 0.3)
            for g, w in zip(got, want):
                assert g.shape == w.shape
                assert _relative_error(g, w) < 1e-12, (function, p, k, kind)
