"""The sweep engine on a plain callable: the same dataset on every executor, the store, failed points."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from numerics.sweeps.engine import check_errors, run_point, run_sweep
from numerics.sweeps.layout import expand_grid

xr = pytest.importorskip("xarray")

GRID = {"eta": [0.25, 0.5, 1.0], "p": [1, 2]}
FIXED = {"offset": 10.0}


def product(eta, p, *, offset):
    return {"value": eta * p + offset, "curve": eta * np.arange(3.0) + p}


def fails_at_p_two(eta, p, *, offset):
    if p == 2:
        raise RuntimeError("p = 2 fails")
    return product(eta, p, offset=offset)


def _run(function, executor, **kwargs):
    return run_sweep(function, expand_grid(GRID, FIXED), FIXED, task_id="product", label="product",
                     executor=executor, progress=False, **kwargs)


def test_serial_and_thread_pool_give_the_same_dataset():
    serial = _run(product, "serial")
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = _run(product, pool)
    xr.testing.assert_identical(serial, threaded)
    # every point is the function's value there
    for eta in GRID["eta"]:
        for p in GRID["p"]:
            assert serial["value"].sel(eta=eta, p=p).item() == eta * p + 10.0
            np.testing.assert_array_equal(serial["curve"].sel(eta=eta, p=p).values, eta * np.arange(3.0) + p)
    assert serial.attrs["sweep_computed"] == 6 and serial.attrs["sweep_stored"] == 0


def test_stored_points_are_read_not_computed(tmp_path):
    first = _run(product, "serial", store=tmp_path)
    calls = []

    def counted(eta, p, *, offset):
        calls.append((eta, p))
        return product(eta, p, offset=offset)

    again = _run(counted, "serial", store=tmp_path)
    assert calls == [] and again.attrs["sweep_stored"] == 6 and again.attrs["sweep_computed"] == 0
    xr.testing.assert_identical(again.drop_attrs(), first.drop_attrs())


def test_a_failed_point_raises_or_is_skipped():
    with pytest.raises(RuntimeError, match="p = 2 fails"):
        _run(fails_at_p_two, "serial")
    skipped = _run(fails_at_p_two, "serial", errors="skip")
    assert np.isnan(skipped["value"].sel(p=2).values).all()
    np.testing.assert_array_equal(skipped["value"].sel(p=1).values, np.array(GRID["eta"]) + 10.0)
    with pytest.raises(ValueError, match="errors"):
        check_errors("ignore")


def test_an_output_named_like_a_swept_parameter_is_renamed():
    dataset = run_point(lambda eta, offset: {"eta": 2 * eta}, {"eta": 0.5}, {"offset": 1.0})
    assert "result_eta" in dataset and dataset["result_eta"].item() == 1.0


def test_an_unknown_executor_is_refused():
    with pytest.raises(ValueError, match="serial"):
        _run(product, "threads")
    with pytest.raises(TypeError, match="executor"):
        _run(product, 3)
