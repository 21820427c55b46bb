"""netCDF I/O: exact round trip, atomic writes that leave the old file on failure, finite check."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import fastnai
from fastnai.errors import FastnaiError
from fastnai.io import read_dataset, write_dataset

SMALL = {
    "model": {"kind": "band_bending"},
    "semiconductor": {"material": "anatase-TiO2", "thickness": "30 nm"},
    "contact": {"material": "TiC"},
    "mesh": {"n_nodes": 200, "min_spacing": "0.05 nm"},
}


@pytest.fixture(scope="module")
def result() -> xr.Dataset:
    return fastnai.run(SMALL)


@pytest.fixture(scope="module")
def other_result() -> xr.Dataset:
    return fastnai.run(SMALL, {"semiconductor.donor_density": "1e17 cm^-3"})


@pytest.mark.parametrize("geometry", ["planar", "sphere", "dot"])
def test_band_bending_result_round_trips_identically_attrs_included(geometry, tmp_path):
    ds = fastnai.run(SMALL, {"model.geometry": geometry})
    path = write_dataset(ds, tmp_path / "out.nc")
    assert path == tmp_path / "out.nc"
    back = read_dataset(path)
    xr.testing.assert_identical(back, ds)
    assert back.attrs["case"] == ds.attrs["case"]
    for name in ds.variables:
        assert back[name].dtype == ds[name].dtype, name


def test_read_dataset_returns_data_in_memory_and_closes_the_file(result, tmp_path):
    path = write_dataset(result, tmp_path / "out.nc")
    back = read_dataset(path)
    path.unlink()  # the file may go: the data are already loaded
    assert float(back["band_bending"]) == float(result["band_bending"])


def test_api_run_with_output_writes_the_same_dataset(tmp_path):
    out = tmp_path / "sub" / "run.nc"
    ds = fastnai.run(SMALL, output=out)
    xr.testing.assert_identical(read_dataset(out), ds)


def test_write_creates_missing_parent_folders(result, tmp_path):
    path = write_dataset(result, tmp_path / "a" / "b" / "out.nc")
    assert path.is_file()


def test_failed_write_leaves_previous_file_byte_identical_and_no_temporaries(
        result, other_result, tmp_path, monkeypatch):
    path = tmp_path / "out.nc"
    write_dataset(result, path)
    before = path.read_bytes()

    def partial_then_fail(self, target, *args, **kwargs):
        with open(target, "wb") as fh:  # half a file, as a killed writer would leave
            fh.write(before[: len(before) // 2])
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", partial_then_fail)
    with pytest.raises(OSError, match="simulated"):
        write_dataset(other_result, path)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]
    xr.testing.assert_identical(read_dataset(path), result)


def test_failed_first_write_leaves_no_file_at_all(result, tmp_path, monkeypatch):
    def fail(self, target, *args, **kwargs):
        with open(target, "wb") as fh:
            fh.write(b"CDF\x01 truncated")
        raise KeyboardInterrupt  # a signal in the middle of the write

    monkeypatch.setattr(xr.Dataset, "to_netcdf", fail)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(result, tmp_path / "out.nc")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_successful_write_replaces_the_previous_file(result, other_result, tmp_path):
    path = tmp_path / "out.nc"
    write_dataset(result, path)
    write_dataset(other_result, path)
    xr.testing.assert_identical(read_dataset(path), other_result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_dataset_with_non_finite_variable_is_refused_and_nothing_written(result, tmp_path, bad):
    ds = result.copy(deep=True)
    ds["n"].values[3] = bad
    path = tmp_path / "out.nc"
    with pytest.raises(FastnaiError, match="'n'"):
        write_dataset(ds, path)
    assert list(tmp_path.iterdir()) == []


def test_non_finite_scalar_is_refused_over_an_existing_file(result, tmp_path):
    path = tmp_path / "out.nc"
    write_dataset(result, path)
    before = path.read_bytes()
    ds = result.copy(deep=True)
    ds["interface_field"] = ds["interface_field"] * np.nan
    with pytest.raises(FastnaiError, match="interface_field"):
        write_dataset(ds, path)
    assert path.read_bytes() == before


def test_nan_with_a_nan_means_attribute_is_written(result, tmp_path):
    ds = result.copy(deep=True)
    ds["accumulation_width"] = ds["accumulation_width"] * np.nan
    ds["accumulation_width"].attrs.update(result["accumulation_width"].attrs,
                                          nan_means="undefined for this case (test)")
    path = write_dataset(ds, tmp_path / "out.nc")
    back = read_dataset(path)
    assert np.isnan(float(back["accumulation_width"]))
    assert back["accumulation_width"].attrs["nan_means"] == "undefined for this case (test)"
