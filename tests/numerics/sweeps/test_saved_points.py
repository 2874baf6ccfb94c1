"""Saved sweeps: failed points without integer sentinels, store points checked by digest, no directory clobbered."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import numerics
from numerics.sweeps.api import sweep
from numerics.sweeps.engine import run_point_or_error
from numerics.sweeps.store import point_key, task_identity

xr = pytest.importorskip("xarray")
h5py = pytest.importorskip("h5py")

ALPHA = np.linspace(0.0, 2.0, 5)
FIXED = {"k": 2, "p": 2, "alpha_eval": ALPHA, "seed": [0], "N": 1e4, "executor": "serial", "progress": False}


def test_failed_points_keep_types_and_have_no_sentinels_after_a_store_round_trip(tmp_path):
    store = tmp_path / "store"
    sweep("integrate", {"eta": [0.5]}, store=store, errors="skip", **FIXED)
    # the stored point is read back, the second one fails (the solver stops): padding meets a stored int
    ds = sweep("integrate", {"eta": [0.5, 1e6]}, store=store, errors="skip", **FIXED)
    assert ds["point_failed"].values.tolist() == [False, True]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no SerializationWarning, no invalid cast
        loaded = numerics.load(numerics.save(ds, tmp_path / "skip.nc"))
    for name in ("nfev", "batch_size", "second_order"):
        assert loaded[name].dtype == ds[name].dtype, name
        assert np.isnan(loaded[name].sel(eta=1e6).item()), name
    assert loaded["nfev"].sel(eta=0.5).item() == ds["nfev"].sel(eta=0.5).item() > 0
    assert loaded["point_failed"].dtype == bool and loaded["point_failed"].values.tolist() == [False, True]


def test_an_edited_store_point_is_computed_again(tmp_path):
    store = tmp_path / "store"
    first = sweep("integrate", {"eta": [0.4, 0.5]}, store=store, **FIXED)
    files = sorted(store.glob("*.nc"))
    assert len(files) == 2
    with h5py.File(files[0], "r+") as handle:
        handle["Q"][...] = handle["Q"][...] + 1.0  # edited: readable, but not what was computed
    again = sweep("integrate", {"eta": [0.4, 0.5]}, store=store, **FIXED)
    assert again.attrs["sweep_computed"] == 1 and again.attrs["sweep_stored"] == 1
    xr.testing.assert_equal(again["Q"], first["Q"])
    # the replaced file is good again: a third run reads both points
    assert sweep("integrate", {"eta": [0.4, 0.5]}, store=store, **FIXED).attrs["sweep_stored"] == 2


def record_call(eta, *, counter):
    with open(counter, "a") as handle:
        handle.write(f"{eta}\n")
    return {"double": 2 * eta}


def test_a_directory_in_place_of_a_store_file_is_refused_before_computing(tmp_path):
    store, counter = tmp_path / "store", tmp_path / "counter"
    key = point_key(task_identity(record_call), {"eta": 1.0}, {"counter": str(counter)})
    (store / f"{key}.nc").mkdir(parents=True)
    with pytest.raises(ValueError, match=rf"{key}\.nc.*not a file"):
        sweep(record_call, {"eta": [0.5, 1.0]}, store=store, executor="serial", progress=False, counter=str(counter))
    assert not Path(counter).exists()


def fail_above_one(eta):
    if eta > 1:
        raise RuntimeError("too large")
    return {"half": eta / 2}


class RecordingExecutor(ThreadPoolExecutor):
    """Remembers which worker function each point was submitted with."""

    def __init__(self) -> None:
        super().__init__(2)
        self.targets: list[str] = []

    def submit(self, fn, /, *args, **kwargs):
        self.targets.append(fn.__name__)
        return super().submit(fn, *args, **kwargs)


def test_skipped_failures_are_returned_by_the_workers_not_raised():
    with RecordingExecutor() as executor:
        ds = sweep(fail_above_one, {"eta": [0.5, 2.0]}, executor=executor, progress=False, errors="skip")
    # a worker that raises makes dask's logger print the whole traceback; a returned failure does not
    assert executor.targets == ["run_point_or_error"] * 2
    assert ds["point_failed"].values.tolist() == [False, True] and "too large" in ds["point_error"].values[1]
    dataset, error = run_point_or_error(fail_above_one, {"eta": 3.0}, {})
    assert dataset is None and isinstance(error, RuntimeError)
