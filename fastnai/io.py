"""Reading and writing results: atomic netCDF writes (temporary file + rename)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import xarray as xr

from .errors import FastnaiError
from .variables import non_finite


def write_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to netCDF atomically; a killed write leaves the old file or none.

    The data are checked to be finite first (NaN is allowed only in scalar diagnostics that
    are undefined for the case, which carry a ``nan_means`` attribute).

    >>> import tempfile, xarray as xr
    >>> ds = xr.Dataset({"a": ("x", [1.0, 2.0])})
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_dataset(ds, f"{folder}/out.nc")
    ...     xr.testing.assert_identical(read_dataset(path), ds)
    """
    path = Path(path)
    bad = non_finite(ds)
    if bad:
        raise FastnaiError(f"refusing to write {path}: variable {bad[0]!r} is not finite")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="netcdf4")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Read a result file fully into memory and close it."""
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()
