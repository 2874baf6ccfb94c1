"""How values are stored in netCDF files (numerics/results/encoding.py): every kind round-trips through
a file, models through their text, attributes become what netCDF-4 accepts."""

import json

import numpy as np
import pytest
import xarray as xr

from derive.model.model import HE3, Model
from numerics.results.encoding import (
    batch_dims,
    decode_value,
    describe_model,
    encode_value,
    load_dataset,
    model_from_spec,
    model_spec,
    netcdf_attrs,
    write_atomically,
)


def test_a_model_round_trips_through_its_text():
    model = Model(student_activation="erf(x/sqrt(2))", teacher_activation="x**2 - 1", noise_variance="1/10",
                  name="mine")
    spec = model_spec(model)
    assert all(isinstance(text, str) for text in spec.values())
    assert model_from_spec(spec) == model
    assert model_spec(None) is None and model_from_spec(None) is None
    with pytest.raises(TypeError, match="model must be a derive.Model or None, got str"):
        model_spec("x**2")


VALUES = {
    "none": None,
    "flag": True,
    "count": np.int64(7),
    "rate": 0.25,
    "label": "escape",
    "table": np.arange(6, dtype=np.int32).reshape(2, 3),
    "pairs": (1, 2, 3),  # a tuple comes back a tuple
    "options": {"method": "overlaps", "levels": [0.5, 0.75]},
    "model": HE3,
}


def test_every_kind_of_value_round_trips_through_a_file(tmp_path):
    variables, encoding = {}, {}
    for name, value in VALUES.items():
        variable, entry = encode_value(name, value, None)
        encoding[name] = entry
        if variable is not None:
            variables[name] = variable
    path = tmp_path / "values" / "stored.nc"
    write_atomically(xr.Dataset(variables, attrs={"encoding": json.dumps(encoding)}), path)
    assert [p.name for p in path.parent.iterdir()] == ["stored.nc"]  # no temporary left behind
    dataset = load_dataset(path)
    stored = json.loads(dataset.attrs["encoding"])
    for name, value in VALUES.items():
        got = decode_value(stored[name], dataset.get(name))
        if isinstance(value, np.ndarray):
            assert got.dtype == value.dtype
            np.testing.assert_array_equal(got, value)
        else:
            assert got == value and type(got) is type(value if not isinstance(value, np.integer) else 0), name


def test_an_array_gets_its_dims_or_generic_ones():
    (dims, _), entry = encode_value("Q", np.zeros((2, 3, 3)), ("replica", "student", "student_"))
    assert dims == ("replica", "student", "student_") and entry["dims"] == list(dims)
    (dims, _), _ = encode_value("Q", np.zeros((2, 3)), ("only_one",))
    assert dims == ("Q_dim0", "Q_dim1")


def test_a_value_netcdf_cannot_hold_is_dropped_with_a_warning():
    with pytest.warns(UserWarning, match="handle: a object cannot be stored"):
        variable, entry = encode_value("handle", object(), None)
    assert variable is None and entry == {"kind": "dropped", "type": "object"}
    with pytest.raises(ValueError, match="unknown encoding kind 'pickle'"):
        decode_value({"kind": "pickle"}, None)


def test_batch_dims_and_attributes():
    assert batch_dims(1) == ("replica",) and batch_dims(2) == ("replica_0", "replica_1") and batch_dims(0) == ()
    safe = netcdf_attrs({"flag": True, "missing": None, "n": 3, "x": 0.5, "levels": [1, 2], "grid": np.arange(3)})
    assert safe["flag"] == 1 and safe["missing"] == "" and safe["n"] == 3 and safe["x"] == 0.5
    assert json.loads(safe["levels"]) == [1, 2]
    np.testing.assert_array_equal(safe["grid"], np.arange(3))


def test_model_descriptions():
    assert describe_model(HE3, "he3") == HE3.describe()
    from derive.model.model import PAPER

    assert describe_model(None, "paper") == PAPER.describe()  # the paper model is stored as None
    assert describe_model(None, "custom_1") == "model 'custom_1' (no description stored)"
