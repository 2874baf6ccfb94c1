"""Sweeps: the same values on every engine (serial, processes, a dask cluster), a store that resumes."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import numerics
from numerics.sweeps.api import sweep
from numerics.sweeps.layout import sweep_point
from numerics.sweeps.store import point_key

xr = pytest.importorskip("xarray")

ALPHA = np.linspace(0.0, 4.0, 9)
GRID = {"eta": [0.3, 0.5], "p": [2, 3]}
FIXED = {"k": 2, "alpha_eval": ALPHA, "seed": [0, 1], "N": 1e4}


def without_counts(dataset):
    # how many points were computed or read differs between runs; nothing else may
    dataset = dataset.copy()
    dataset.attrs = {k: v for k, v in dataset.attrs.items() if k not in ("sweep_computed", "sweep_stored")}
    return dataset


def assert_same_sweep(a, b) -> None:
    xr.testing.assert_identical(without_counts(a), without_counts(b))


def calls(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def counted(eta, p, *, counter, flag=None, fail=()):
    """A task that counts its calls in a file (one line per call, appended atomically)."""
    with open(counter, "a") as handle:
        handle.write(f"{eta},{p}\n")
    if flag is not None and os.path.exists(flag) and [eta, p] in [list(f) for f in fail]:
        raise RuntimeError(f"interrupted at eta={eta}, p={p}")
    return {"product": eta * p, "curve": eta * np.arange(p, dtype=float), "label": f"p{p}"}


@pytest.fixture(scope="module")
def serial_sweep():
    return sweep("integrate", GRID, executor="serial", progress=False, **FIXED)


def test_integrate_sweep_layout_and_values(serial_sweep):
    ds = serial_sweep
    assert ds["Q"].dims == ("eta", "p", "replica", "alpha", "student", "student2")
    assert ds.sizes["student"] == 3 and ds.sizes["replica"] == 2
    np.testing.assert_array_equal(ds["alpha"].values, ALPHA)
    assert "point_alpha" not in ds  # one output grid: alpha is a coordinate of times
    # p = 2 is padded with NaN to the width 3 of p = 3
    assert np.isnan(ds["Q"].sel(eta=0.3, p=2).values[..., 2, :]).all()
    assert ds.attrs["wickode_kind"] == "sweep" and ds.attrs["sweep_task"] == "integrate"
    # each point is the integration it stands for, exactly
    starts = [numerics.initial_conditions(2, 2, N=1e4, seed=s) for s in (0, 1)]
    direct = numerics.integrate(np.stack([s[0] for s in starts]), np.stack([s[1] for s in starts]), np.eye(2),
                                eta=0.5, alpha_max=4.0, alpha_eval=ALPHA)
    np.testing.assert_array_equal(ds["risk"].sel(eta=0.5, p=2).values, direct.risk)
    point = sweep_point(ds, eta=0.5, p=2)
    assert point.Q.shape == (2, 9, 2, 2) and point.eta == 0.5 and point.nfev == direct.nfev
    np.testing.assert_array_equal(point.Q, direct.Q)
    np.testing.assert_array_equal(point.alpha, direct.alpha)


def test_dask_cluster_equals_serial_and_fills_a_store(serial_sweep, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            on_dask = sweep("integrate", GRID, executor=client, store=tmp_path / "store", progress=False, **FIXED)
    assert on_dask.attrs["sweep_computed"] == 4
    assert_same_sweep(on_dask, serial_sweep)
    # the store written from the dask results serves a serial rerun: nothing computes
    rerun = sweep("integrate", GRID, executor="serial", store=tmp_path / "store", progress=False, **FIXED)
    assert rerun.attrs["sweep_computed"] == 0 and rerun.attrs["sweep_stored"] == 4
    assert_same_sweep(rerun, serial_sweep)


def test_process_pool_equals_serial(serial_sweep):
    with ProcessPoolExecutor(2) as pool:
        pooled = sweep("integrate", GRID, executor=pool, progress=False, **FIXED)
    assert_same_sweep(pooled, serial_sweep)


def test_default_engine_and_function_tasks_equal_serial(tmp_path):
    grid = {"eta": [0.5, 1.5], "p": [1, 2, 3]}
    fixed = {"counter": str(tmp_path / "count")}
    serial = sweep(counted, grid, executor="serial", progress=False, **fixed)
    assert serial["product"].sel(eta=1.5, p=3).item() == 4.5
    np.testing.assert_array_equal(serial["curve"].sel(eta=0.5, p=2).values, [0.0, 0.5, np.nan])
    assert serial["label"].sel(eta=0.5, p=3).item() == "p3"
    parallel = sweep(counted, grid, progress=False, **fixed)  # default: local processes
    assert_same_sweep(parallel, serial)
    assert calls(tmp_path / "count") == 12


def test_rerun_with_a_store_computes_nothing(tmp_path):
    grid = {"eta": [0.5, 1.5], "p": [1, 2]}
    counter = tmp_path / "count"
    first = sweep(counted, grid, executor="serial", store=tmp_path / "s", progress=False, counter=str(counter))
    assert calls(counter) == 4 and len(list((tmp_path / "s").glob("*.nc"))) == 4
    again = sweep(counted, grid, executor="serial", store=tmp_path / "s", progress=False, counter=str(counter))
    assert calls(counter) == 4
    assert_same_sweep(first, again)
    # a larger grid computes only its new points
    sweep(counted, {"eta": [0.5, 1.5, 2.5], "p": [1, 2]}, executor="serial", store=tmp_path / "s",
          progress=False, counter=str(counter))
    assert calls(counter) == 6


def test_interrupted_serial_sweep_resumes_with_the_missing_points(tmp_path):
    grid = {"eta": [0.5, 1.5, 2.5], "p": [1, 2]}
    counter, flag = tmp_path / "count", tmp_path / "flag"
    fixed = {"counter": str(counter), "flag": str(flag), "fail": [[1.5, 2]]}
    flag.touch()
    with pytest.raises(RuntimeError, match="interrupted at eta=1.5, p=2"):
        sweep(counted, grid, executor="serial", store=tmp_path / "s", progress=False, **fixed)
    # points run in order: three stored, the fourth raised, the last two never ran
    assert calls(counter) == 4 and len(list((tmp_path / "s").glob("*.nc"))) == 3
    flag.unlink()
    resumed = sweep(counted, grid, executor="serial", store=tmp_path / "s", progress=False, **fixed)
    assert calls(counter) == 4 + 3
    assert resumed.attrs["sweep_computed"] == 3 and resumed.attrs["sweep_stored"] == 3
    fresh = sweep(counted, grid, executor="serial", progress=False, **dict(fixed, counter=str(tmp_path / "c2")))
    xr.testing.assert_identical(resumed.drop_attrs(), fresh.drop_attrs())


def test_interrupted_process_sweep_resumes_with_the_missing_points(tmp_path):
    grid = {"eta": [0.5, 1.5, 2.5, 3.5], "p": [1, 2, 3]}
    counter, flag = tmp_path / "count", tmp_path / "flag"
    fixed = {"counter": str(counter), "flag": str(flag), "fail": [[0.5, 2]]}
    flag.touch()
    with ProcessPoolExecutor(2) as pool, pytest.raises(RuntimeError, match="interrupted"):
        sweep(counted, grid, executor=pool, store=tmp_path / "s", progress=False, **fixed)
    stored = len(list((tmp_path / "s").glob("*.nc")))
    first_calls = calls(counter)
    assert stored < 12 and first_calls == stored + 1  # the failing call is not stored
    flag.unlink()
    with ProcessPoolExecutor(2) as pool:
        resumed = sweep(counted, grid, executor=pool, store=tmp_path / "s", progress=False, **fixed)
    assert calls(counter) - first_calls == 12 - stored
    assert resumed["product"].sel(eta=3.5, p=3).item() == 10.5


def test_failed_points_can_be_skipped_and_are_retried(tmp_path):
    grid = {"eta": [0.5, 1.5], "p": [1, 2]}
    counter, flag = tmp_path / "count", tmp_path / "flag"
    fixed = {"counter": str(counter), "flag": str(flag), "fail": [[1.5, 1]]}
    flag.touch()
    ds = sweep(counted, grid, executor="serial", store=tmp_path / "s", progress=False, errors="skip", **fixed)
    assert ds["point_failed"].sel(eta=1.5, p=1).item() and ds["point_failed"].sum() == 1
    assert "interrupted" in ds["point_error"].sel(eta=1.5, p=1).item()
    assert np.isnan(ds["product"].sel(eta=1.5, p=1).item())
    assert ds["product"].sel(eta=1.5, p=2).item() == 3.0
    numerics.save(ds, tmp_path / "with_failures.nc")  # padded text and flags are storable
    flag.unlink()
    ds = sweep(counted, grid, executor="serial", store=tmp_path / "s", progress=False, errors="skip", **fixed)
    assert calls(counter) == 5 and "point_failed" not in ds


def test_sweep_over_N_keeps_each_points_times_and_round_trips(tmp_path):
    # simulations round the recorded alphas to whole steps, 1/N apart: the times differ between N
    record = np.array([0.0, 0.1, 0.35, 1.0])
    grid = {"N": [30, 45]}
    ds = sweep("simulate", grid, executor="serial", progress=False, p=2, k=1, eta=0.3, record=record, seed=5,
               replicas=2)
    assert "point_alpha" in ds and ds["extra_W"].dims == ("N", "replica", "student", "input")
    np.testing.assert_array_equal(ds["alpha"].values, record)
    path = numerics.save(ds, tmp_path / "sweep.nc")
    loaded = numerics.load(path)
    xr.testing.assert_identical(loaded, ds)
    for N in (30, 45):
        direct = numerics.simulate(N=N, p=2, k=1, eta=0.3, alpha_max=1.0, record=record, seed=5, replicas=2,
                                   progress=False)
        point = sweep_point(loaded, N=N)
        assert point.extra["W"].shape == (2, 2, N)
        for name in ("alpha", "Q", "R", "risk", "T"):
            np.testing.assert_array_equal(getattr(point, name), getattr(direct, name))
        np.testing.assert_array_equal(point.extra["W"], direct.extra["W"])
        assert point.extra["steps"].dtype == np.int64 and point.extra["N"] == N


def test_overlap_simulations_over_a_point_list(tmp_path):
    record = np.linspace(0.0, 1.0, 5)
    points = [{"eta": 0.2, "seed": 0}, {"eta": 0.4, "seed": 1}]
    ds = sweep("simulate", points, executor="serial", progress=False, N=100, p=3, k=2, record=record,
               method="overlaps")
    assert ds["Q"].dims == ("point", "alpha", "student", "student2")
    np.testing.assert_array_equal(ds["result_eta"].values, [0.2, 0.4])
    np.testing.assert_array_equal(ds["seed"].values, [0, 1])
    direct = numerics.simulate(N=100, p=3, k=2, eta=0.4, alpha_max=1.0, record=record, seed=1, method="overlaps",
                               progress=False)
    point = sweep_point(numerics.load(numerics.save(ds, tmp_path / "p.nc")), point=1)
    np.testing.assert_array_equal(point.Q, direct.Q)
    assert point.extra["method"] == "overlaps" and point.eta == 0.4


def test_sweep_over_models_labels_them_by_name():
    ds = sweep("integrate", {"model": [None, "he2"]}, executor="serial", progress=False, p=2, k=1,
               alpha_eval=np.linspace(0.0, 1.0, 3), eta=0.2)
    assert list(ds["model"].values) == ["paper", "he2"]
    assert ds["model_name"].sel(model="he2").item() == "he2"
    assert ds["model_description"].sel(model="he2").item().startswith("sigma(x) = x**2 - 1")
    assert "model_description" not in ds.attrs
    he2 = sweep_point(ds, model="he2")
    assert he2.model.name == "he2" and he2.model.describe().startswith("sigma(x) = x**2 - 1")
    assert sweep_point(ds, model="paper").model is None


def test_escape_time_task_matches_escape_time():
    ds = sweep("escape_time", {"eta": [0.5, 2.0]}, executor="serial", progress=False, p=4, k=2, seed=[0, 1])
    starts = [numerics.initial_conditions(4, 2, N=1e4, seed=s) for s in (0, 1)]
    horizon = 8.0 * 2 * 4 * np.log(1e4) / 0.5
    result = numerics.integrate(np.stack([s[0] for s in starts]), np.stack([s[1] for s in starts]), np.eye(2),
                                eta=0.5, alpha_max=horizon, n_points=300, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(ds["escape_time"].sel(eta=0.5).values, numerics.escape_time(result))
    assert not ds["failed"].sel(eta=0.5).item()
    assert ds["failed"].sel(eta=2.0).item() and np.isnan(ds["escape_time"].sel(eta=2.0)).all()


def test_keys_change_with_every_ingredient(monkeypatch):
    from derive import HE2, Model

    point, fixed = {"eta": 0.5}, {"alpha_eval": ALPHA, "p": 2}
    key = point_key("integrate", point, fixed)
    assert key == point_key("integrate", {"eta": 0.5}, {"alpha_eval": ALPHA.copy(), "p": 2})
    assert key != point_key("simulate", point, fixed)
    assert key != point_key("integrate", {"eta": 0.6}, fixed)
    assert key != point_key("integrate", point, {"alpha_eval": ALPHA[:-1], "p": 2})
    assert key != point_key("integrate", point, dict(fixed, model=HE2))
    # a model enters through its spec: an equal model built from text has the same key, another one does not
    assert point_key("integrate", point, dict(fixed, model=HE2)) == point_key(
        "integrate", point, dict(fixed, model=Model("x**2 - 1", "x**2 - 1", name="he2")))
    assert point_key("integrate", point, dict(fixed, model=HE2)) != point_key(
        "integrate", point, dict(fixed, model=HE2.with_noise("0.1")))
    assert key != point_key(counted, point, fixed)
    monkeypatch.setattr("numerics.sweeps.store.toolkit_version", lambda: "999")
    assert key != point_key("integrate", point, fixed)


@pytest.mark.parametrize("call, error", [
    (lambda: sweep("integrate", {"eta": [0.5]}, executor="serial", p=2, k=1), "alpha_eval"),
    (lambda: sweep("integrate", {"alpha_eval": [ALPHA]}, executor="serial", p=2, k=1, eta=0.5), "alpha_eval"),
    (lambda: sweep("simulate", {"eta": [0.5]}, executor="serial", record=10, N=10, p=1, k=1), "record"),
    (lambda: sweep("integrate", {"eta": [0.5]}, executor="serial", eta=0.4, alpha_eval=ALPHA), "both swept"),
    (lambda: sweep("integrate", {"alpha": [1.0]}, executor="serial", alpha_eval=ALPHA), "cannot be swept"),
    (lambda: sweep("integrate", {"eta": []}, executor="serial", alpha_eval=ALPHA), "empty"),
    (lambda: sweep("fly", {"eta": [1]}), "unknown task"),
    (lambda: sweep(counted, "eta", executor="serial", counter="x"), "list of point dicts"),
    (lambda: sweep(counted, [{"eta": 1, "p": 1}, {"eta": 1}], executor="serial", counter="x"), "must have the names"),
    (lambda: sweep(counted, {"eta": [1]}, executor="parallel", p=1, counter="x"), "executor"),
])
def test_bad_arguments_are_refused(call, error):
    with pytest.raises(ValueError, match=error):
        call()


def test_unsupported_executor_and_unkeyable_argument_are_type_errors():
    with pytest.raises(TypeError, match="executor"):
        sweep(counted, {"eta": [1]}, executor=object(), p=1, counter="x")
    with pytest.raises(TypeError, match="cannot key"):
        sweep(counted, {"eta": [1]}, executor="serial", p=1, counter=object())


def test_the_sweep_figure_is_drawn_from_one_sweep(tmp_path, capsys):
    from numerics.figures import make

    (path,) = make(["sweep"], tmp_path, small=True)
    assert path.exists() and path.stat().st_size > 10_000
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("sweep p=4")]
    assert len(lines) == 3  # one per eta of the grid
