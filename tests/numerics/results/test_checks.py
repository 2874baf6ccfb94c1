"""Saved data is checked on load: digest, dtypes, shapes, finiteness; clear errors naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest

import numerics
from numerics.results.checks import DIGEST, LABELS, check_core_arrays, dataset_digest
from numerics.results.encoding import ENCODING
from numerics.results.persist import IntegrationResult, load, save, to_xarray

xr = pytest.importorskip("xarray")
h5py = pytest.importorskip("h5py")


@pytest.fixture(scope="module")
def result() -> IntegrationResult:
    Q0, R0, T = numerics.initial_conditions(3, 2, N=100, seed=0)
    return numerics.integrate(Q0, R0, T, eta=0.5, alpha_max=2.0, n_points=6)


def save_edited(result: IntegrationResult, path, edit) -> None:
    """Save ``result`` after ``edit`` changed its dataset: the digest is that of the edited data."""
    dataset = to_xarray(result).copy(deep=True)  # the result's own arrays stay untouched
    edit(dataset)
    save(dataset, path)


def test_a_saved_file_carries_a_digest_that_load_verifies(result, tmp_path):
    path = save(result, tmp_path / "r.nc")
    with h5py.File(path, "r") as handle:
        assert len(handle.attrs[DIGEST]) == 64
    with h5py.File(path, "r+") as handle:
        handle["Q"][0, 0, 0] = 0.123456  # an edit that keeps the file readable
    with pytest.raises(ValueError, match=r"r\.nc.*digest"):
        load(path)


def test_flipped_bytes_give_a_value_error_naming_the_file(result, tmp_path):
    path = save(result, tmp_path / "flipped.nc")
    data = bytearray(path.read_bytes())
    at = bytes(data).find(np.ascontiguousarray(result.Q).tobytes()[:16])
    assert at > 0
    data[at + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="flipped.nc"):
        load(path)
    # bytes that are no HDF5 file at all: no h5py traceback either
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))
    with pytest.raises(ValueError, match="flipped.nc"):
        load(path)
    with pytest.raises(ValueError, match="is a directory"):
        load(tmp_path)


@pytest.mark.parametrize("dtype", ["<c16", "|O", "|i1"])
def test_an_edited_dtype_entry_is_refused(result, tmp_path, dtype):
    def edit(dataset):
        encoding = json.loads(dataset.attrs[ENCODING])
        encoding["core"]["Q"] = dtype
        dataset.attrs[ENCODING] = json.dumps(encoding)

    save_edited(result, tmp_path / "dtype.nc", edit)
    with pytest.raises(ValueError, match=r"dtype\.nc.*Q must be real floating point"):
        load(tmp_path / "dtype.nc")


def test_nan_in_Q_is_refused(result, tmp_path):
    def edit(dataset):
        dataset["Q"][0, 1, 1] = np.nan

    save_edited(result, tmp_path / "nan.nc", edit)
    with pytest.raises(ValueError, match=r"nan\.nc.*Q has NaN"):
        load(tmp_path / "nan.nc")


@pytest.mark.parametrize("encoding", ["{not json", "[]", json.dumps({"core": {}})])
def test_a_malformed_encoding_is_a_value_error_naming_the_file(result, tmp_path, encoding):
    def edit(dataset):
        dataset.attrs[ENCODING] = encoding

    save_edited(result, tmp_path / "malformed.nc", edit)
    with pytest.raises(ValueError, match="malformed.nc"):
        load(tmp_path / "malformed.nc")


def test_inconsistent_shapes_are_refused():
    n, p, k = 4, 3, 2
    good = {"alpha": np.arange(n, dtype=float), "Q": np.zeros((n, p, p)), "R": np.zeros((n, p, k)),
            "risk": np.zeros(n), "T": np.eye(k)}
    dtypes = {name: "<f8" for name in good}
    check_core_arrays(good, dtypes)
    for name, bad in [("Q", np.zeros((n, p, p + 1))), ("R", np.zeros((n + 1, p, k))), ("risk", np.zeros(n - 1)),
                      ("T", np.eye(k + 1)), ("alpha", np.zeros((n, 1)))]:
        with pytest.raises(ValueError, match="shape"):
            check_core_arrays({**good, name: bad}, dtypes)
    with pytest.raises(ValueError, match="alpha has non-finite"):
        check_core_arrays({**good, "alpha": np.array([0.0, 1.0, np.inf, 3.0])}, dtypes)


def test_the_digest_covers_variables_and_encoding(result):
    dataset = to_xarray(result)
    digest = dataset_digest(dataset, "e")
    assert digest == dataset_digest(dataset.copy(deep=True), "e")
    assert digest != dataset_digest(dataset, "f")
    changed = dataset.copy(deep=True)
    changed["risk"][0] = 1.5
    assert digest != dataset_digest(changed, "e")


def test_variables_have_cf_long_names_and_units(result, tmp_path):
    dataset = to_xarray(result)
    assert dataset["alpha"].attrs["units"] == "steps / N"
    assert dataset["Q"].attrs["long_name"] == "student-student overlaps W W^T / N"
    loaded = numerics.results.encoding.load_dataset(save(result, tmp_path / "cf.nc"))
    for name in ("alpha", "Q", "R", "T", "risk", "eta", "nfev"):
        assert (loaded[name].attrs["long_name"], loaded[name].attrs["units"]) == LABELS[name]


def test_repr_is_short(result):
    Q0, R0, T = numerics.initial_conditions(20, 2, N=400, seed=0, batch=3)
    big = numerics.integrate(Q0, R0, T, eta=0.5, alpha_max=2.0, n_points=200)
    text = repr(big)
    assert len(text) < 600 and "array" not in text
    assert "p=20" in text and "k=2" in text and "(3, 200, 20, 20)" in text and "settings=RunSettings" in text


def test_integers_beyond_int64_in_extra_round_trip(result, tmp_path):
    values = {"big": 2**70, "negative": -(2**80) - 1, "edge": 2**63 - 1}
    saved = IntegrationResult(**{**result.__dict__, "extra": values})
    loaded = load(save(saved, tmp_path / "big.nc"))
    for key, value in values.items():
        assert type(loaded.extra[key]) is int and loaded.extra[key] == value


def test_save_refuses_what_is_not_a_result_or_dataset(tmp_path):
    with pytest.raises(ValueError, match="IntegrationResult or an xarray.Dataset"):
        save({}, tmp_path / "x.nc")
