"""Saved results: IntegrationResult -> xarray -> netCDF file -> IntegrationResult, field for field."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json

import numpy as np
import pytest

import numerics
from numerics.results.persist import IntegrationResult, from_xarray, load, model_from_spec, model_spec, to_xarray
from numerics.results.settings import RunSettings

xr = pytest.importorskip("xarray")


def assert_same_value(a, b, where: str) -> None:
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, RunSettings):
        assert isinstance(b, RunSettings) and a == b, f"{where}: {a!r} != {b!r}"
        assert_same_value(a.model, b.model, f"{where}.model")
    elif dataclasses.is_dataclass(a):
        # derive.Model compares everything but its name
        assert a == b and a.name == b.name, where
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != {b!r}"


def assert_same_result(a: IntegrationResult, b: IntegrationResult) -> None:
    for f in dataclasses.fields(a):
        if f.name == "extra":
            assert a.extra.keys() == b.extra.keys()
            for key in a.extra:
                assert_same_value(a.extra[key], b.extra[key], f"extra[{key!r}]")
        else:
            assert_same_value(getattr(a, f.name), getattr(b, f.name), f.name)


def round_trip(result: IntegrationResult, tmp_path) -> IntegrationResult:
    path = result.save(tmp_path / "result.nc")
    loaded = numerics.load(path)
    assert isinstance(loaded, IntegrationResult)
    return loaded


@pytest.fixture(scope="module")
def batched_ode():
    Q0, R0, T = numerics.initial_conditions(3, 2, N=100, seed=0, batch=4)
    return numerics.integrate(Q0, R0, T, eta=0.5, alpha_max=5.0, n_points=20)


def test_integrate_round_trip_unbatched(tmp_path):
    Q0, R0, T = numerics.initial_conditions(3, 2, N=100, seed=1)
    result = numerics.integrate(Q0, R0, T, eta=0.4, alpha_max=3.0, n_points=15, second_order=False)
    loaded = round_trip(result, tmp_path)
    assert_same_result(result, loaded)
    assert loaded.second_order is False and loaded.Q.shape == (15, 3, 3)


def test_integrate_round_trip_batched(batched_ode, tmp_path):
    loaded = round_trip(batched_ode, tmp_path)
    assert_same_result(batched_ode, loaded)
    assert loaded.Q.shape == (4, 20, 3, 3) and loaded.T.shape == (2, 2)


def test_layout_names_dimensions_and_attributes(batched_ode):
    dataset = batched_ode.to_xarray()
    assert dataset["Q"].dims == ("replica", "alpha", "student", "student2")
    assert dataset["R"].dims == ("replica", "alpha", "student", "teacher")
    assert dataset["risk"].dims == ("replica", "alpha")
    assert dataset["T"].dims == ("teacher", "teacher2")
    np.testing.assert_array_equal(dataset["alpha"].values, batched_ode.alpha)
    assert float(dataset["eta"]) == 0.5 and int(dataset["nfev"]) == batched_ode.nfev
    assert dataset.attrs["wickode_version"] == importlib.metadata.version("wickode")
    assert dataset.attrs["model_description"].startswith("sigma(x) = x**2")
    assert dataset.attrs["wickode_kind"] == "IntegrationResult"
    # a selection is plain xarray
    assert float(dataset["risk"].isel(replica=2, alpha=-1)) == batched_ode.risk[2, -1]


@pytest.mark.parametrize("replicas", [1, 3])
def test_simulate_weights_round_trip(replicas, committed_models, tmp_path):
    he2 = next(m for m in committed_models if m.name == "he2")
    result = numerics.simulate(N=60, p=2, k=1, eta=0.1, alpha_max=1.0, replicas=replicas, seed=3, record=8,
                               model=he2, progress=False)
    loaded = round_trip(result, tmp_path)
    assert_same_result(result, loaded)
    assert loaded.extra["W"].shape == result.extra["W"].shape
    assert loaded.extra["model"].name == "he2"
    dataset = to_xarray(result)
    batch = ("replica",) if replicas > 1 else ()
    assert dataset["extra_W"].dims == batch + ("student", "input")
    assert dataset["extra_W_star"].dims == batch + ("teacher", "input")
    assert dataset["extra_steps"].dims == ("alpha",)
    assert dataset.attrs["model_description"] == he2.describe()
    # the rebuilt model drives the numerics again: the ODE from the saved simulation
    assert numerics.compare_ode_simulation(loaded).risk_distance == pytest.approx(
        numerics.compare_ode_simulation(result).risk_distance, rel=1e-12)


def test_the_model_a_run_carries_round_trips(committed_models, tmp_path):
    he2 = next(m for m in committed_models if m.name == "he2")
    Q0, R0, T = numerics.initial_conditions(4, 2, N=1e4, seed=0, batch=2)
    result = numerics.integrate(Q0, R0, T, eta=0.2, alpha_max=40.0, n_points=30, model=he2)
    assert result.model is he2  # what a saved file must give back
    loaded = round_trip(result, tmp_path)
    assert_same_result(result, loaded)
    assert to_xarray(result).attrs["model_description"] == he2.describe()
    # analyses that read the run's model work on the loaded run
    np.testing.assert_array_equal(numerics.escape_time(loaded), numerics.escape_time(result))


def test_settings_round_trip_with_readout_vectors_and_a_custom_model(committed_models, tmp_path):
    he2 = next(m for m in committed_models if m.name == "he2")
    Q0, R0, T = numerics.initial_conditions(3, 2, N=1e4, seed=2, batch=2)
    a0 = np.array([[0.5, -0.25, 1.0], [0.75, 0.125, -1.5]])
    settings = RunSettings(eta=0.2, model=he2, batch_size=2, eta_a=0.3, a=a0, b=np.array([1.0, 0.5]))
    result = numerics.integrate(Q0, R0, T, settings, alpha_max=2.0, n_points=8)
    assert result.settings is settings
    loaded = round_trip(result, tmp_path)
    assert_same_result(result, loaded)
    assert loaded.settings == settings and hash(loaded.settings) == hash(settings)
    assert loaded.settings.model == he2 and loaded.settings.model.name == "he2"
    np.testing.assert_array_equal(loaded.settings.a, a0)
    assert not loaded.settings.a.flags.writeable


def test_results_without_settings_still_load(tmp_path):
    result = numerics.integrate(np.eye(2), np.zeros((2, 1)), np.eye(1), eta=0.3, alpha_max=1.0, n_points=4)
    loaded = round_trip(dataclasses.replace(result, settings=None), tmp_path)
    assert loaded.settings is None and loaded.eta == 0.3


def test_simulate_overlaps_round_trip(tmp_path):
    result = numerics.simulate(N=200, p=3, k=2, eta=0.5, alpha_max=2.0, replicas=2, seed=0, record=10,
                               method="overlaps", progress=False)
    loaded = round_trip(result, tmp_path)
    assert_same_result(result, loaded)
    assert loaded.extra["method"] == "overlaps" and loaded.extra["model"] is None


def test_extra_entries_of_every_kind(tmp_path):
    base = numerics.integrate(*numerics.initial_conditions(2, 1, N=100, seed=0), eta=0.3, alpha_max=1.0,
                              n_points=5)
    extra = {
        "int": 7, "float": 0.1, "bool": False, "text": "note", "none": None,
        "list": [1, 2.5, "x"], "tuple": (1, 2), "nested": {"a": [1, 2], "b": None},
        "scalar_array": np.array(3.5), "ints": np.arange(6, dtype=np.int32).reshape(2, 3),
        "flags": np.array([True, False]), "numpy_float": np.float64(2.0), "numpy_int": np.int64(-4),
    }
    result = dataclasses.replace(base, extra=extra)
    loaded = round_trip(result, tmp_path)
    expected = dict(extra, numpy_float=2.0, numpy_int=-4)  # numpy scalars come back as Python numbers
    assert_same_result(dataclasses.replace(result, extra=expected), loaded)


def test_unstorable_extra_is_left_out_with_a_warning(tmp_path):
    base = numerics.integrate(*numerics.initial_conditions(2, 1, N=100, seed=0), eta=0.3, alpha_max=1.0,
                              n_points=5)
    result = dataclasses.replace(base, extra={"kept": 1, "callback": print})
    with pytest.warns(UserWarning, match="callback"):
        path = result.save(tmp_path / "r.nc")
    assert load(path).extra == {"kept": 1}


@pytest.mark.parametrize("fields", [
    {},
    {"student_activation": "x**2 - 0.1", "student_readout": "sqrt(2)/p", "noise_variance": "0.1", "name": "odd"},
    {"weight_decay": "1/3", "teacher_readout": "2/k", "name": "decay"},
])
def test_model_spec_round_trips_through_the_parser(fields):
    from derive import Model

    model = Model(**fields)
    back = model_from_spec(json.loads(json.dumps(model_spec(model))))
    assert back == model and back.name == model.name and back.codegen_hash() == model.codegen_hash()
    assert model_spec(None) is None and model_from_spec(None) is None


def test_from_xarray_refuses_foreign_datasets(tmp_path):
    with pytest.raises(ValueError, match="wickode_encoding"):
        from_xarray(xr.Dataset({"Q": (("a",), [1.0])}))
    xr.Dataset({"x": (("a",), [1.0])}).to_netcdf(tmp_path / "foreign.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match="numerics.save"):
        load(tmp_path / "foreign.nc")


def test_save_replaces_atomically_and_leaves_no_temporary(batched_ode, tmp_path):
    path = tmp_path / "r.nc"
    batched_ode.save(path)
    batched_ode.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["r.nc"]


def test_save_csv_of_a_batched_result(batched_ode, tmp_path):
    from numerics.figures.plotting import save_csv

    save_csv(batched_ode, tmp_path / "b.csv")
    data = np.genfromtxt(tmp_path / "b.csv", delimiter=",", names=True)
    n = batched_ode.alpha.size
    assert data.shape == (4 * n,)
    np.testing.assert_array_equal(data["replica"], np.repeat(np.arange(4), n))
    np.testing.assert_array_equal(data["alpha"], np.tile(batched_ode.alpha, 4))
    np.testing.assert_array_equal(data["Q_1_2"], batched_ode.Q[:, :, 0, 1].ravel())
    np.testing.assert_array_equal(data["R_3_2"], batched_ode.R[:, :, 2, 1].ravel())
    np.testing.assert_array_equal(data["risk"], batched_ode.risk.ravel())


def test_save_csv_unbatched_keeps_its_columns(tmp_path):
    from numerics.figures.plotting import save_csv

    result = numerics.integrate(*numerics.initial_conditions(2, 1, N=100, seed=0), eta=0.3, alpha_max=1.0,
                                n_points=5)
    save_csv(result, tmp_path / "u.csv")
    data = np.genfromtxt(tmp_path / "u.csv", delimiter=",", names=True)
    assert data.dtype.names == ("alpha", "Q_1_1", "Q_1_2", "Q_2_2", "R_1_1", "R_2_1", "risk")
    np.testing.assert_array_equal(data["risk"], result.risk)
