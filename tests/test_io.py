"""File I/O: netCDF round trip and finite check, atomic writes (old file kept on failure, no
temporaries, umask modes), output-path checks before work, checkpoints."""

from __future__ import annotations

import errno
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import fastnai
import fastnai.io as fio
from fastnai.errors import CaseError, FastnaiError, OutputError, WriteError
from fastnai.io import (
    CHECKPOINT_FORMAT,
    atomic_write,
    atomic_write_text,
    check_output_path,
    read_checkpoint,
    read_dataset,
    remove_file,
    write_checkpoint,
    write_dataset,
)

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
    with pytest.raises(WriteError, match="simulated"):
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


# ---------------------------------------------------------------------------------------------
# atomic writes: modes, refusals, failures


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(params=[0o022, 0o027, 0o077], ids=["umask022", "umask027", "umask077"])
def umask(request):
    """Run a test under a given umask, then restore the previous one."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_dataset_file_mode_honours_the_umask(result, tmp_path, umask):
    path = write_dataset(result, tmp_path / "out.nc")
    assert _mode(path) == 0o666 & ~umask


def test_replaced_dataset_file_gets_the_mode_of_the_current_umask(result, tmp_path, umask):
    path = tmp_path / "out.nc"
    path.write_bytes(b"old")
    path.chmod(0o600)
    write_dataset(result, path)
    assert _mode(path) == 0o666 & ~umask


def test_text_file_mode_honours_the_umask(tmp_path, umask):
    path = atomic_write_text(tmp_path / "manifest.csv", "index,status\n")
    assert _mode(path) == 0o666 & ~umask
    assert path.read_text() == "index,status\n"


def test_checkpoint_file_mode_honours_the_umask(tmp_path, umask):
    path = write_checkpoint(tmp_path / "run.ckpt.npz", {"t": 1.0}, meta={"phase": "run"})
    assert _mode(path) == 0o666 & ~umask


def test_umask_read_without_proc_is_the_same_and_left_unchanged(monkeypatch, umask):
    def no_proc(*args, **kwargs):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory")

    monkeypatch.setattr(fio, "open", no_proc, raising=False)
    assert fio._umask() == umask
    assert fio._umask() == umask  # the fallback set it back


def test_atomic_write_returns_the_path_as_given_and_leaves_no_temporary(tmp_path):
    seen = []

    def write(tmp):
        seen.append(tmp)
        tmp.write_bytes(b"data")

    path = atomic_write(tmp_path / "a.bin", write)
    assert path == tmp_path / "a.bin"
    assert path.read_bytes() == b"data"
    assert seen[0].parent == tmp_path
    assert seen[0].name.startswith(".a.bin.") and seen[0].name.endswith(".tmp")
    assert _names(tmp_path) == ["a.bin"]


def test_long_name_uses_a_short_temporary_name_so_only_the_real_name_counts(tmp_path):
    name = "r" * (fio._name_max(tmp_path) - 3) + ".nc"  # fits; decorated it would not
    seen = []

    def write(tmp):
        seen.append(tmp.name)
        tmp.write_bytes(b"x")

    check_output_path(tmp_path / name)
    atomic_write(tmp_path / name, write)
    assert seen[0].startswith(".fastnai-") and seen[0].endswith(".tmp")
    assert _names(tmp_path) == [name]


@pytest.mark.parametrize("error", [RuntimeError("bug in the writer"), KeyboardInterrupt(),
                                   SystemExit(4)])
def test_exception_inside_the_writer_leaves_no_temporary_and_the_old_file(tmp_path, error):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def write(tmp):
        tmp.write_bytes(b"half")
        raise error

    with pytest.raises(type(error)):
        atomic_write(path, write)
    assert path.read_bytes() == b"old"
    assert _names(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EIO])
def test_disk_full_is_a_write_error_naming_the_path_and_the_reason(tmp_path, code):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    reason = os.strerror(code)

    def write(tmp):
        tmp.write_bytes(b"part")
        raise OSError(code, reason)

    with pytest.raises(WriteError, match=reason) as info:
        atomic_write(path, write)
    assert str(path) in str(info.value)
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.exit_status == 1
    assert path.read_bytes() == b"old"
    assert list(tmp_path.glob("*.tmp")) == list(tmp_path.glob(".*.tmp")) == []
    assert _names(tmp_path) == ["out.bin"]


def test_dataset_on_a_full_disk_is_a_write_error_and_the_old_file_stays(
        result, other_result, tmp_path, monkeypatch):
    path = write_dataset(result, tmp_path / "out.nc")
    before = path.read_bytes()

    def full(self, target, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    with pytest.raises(WriteError, match="No space left on device"):
        write_dataset(other_result, path)
    assert path.read_bytes() == before
    assert _names(tmp_path) == ["out.nc"]


def test_netcdf_library_error_is_a_write_error(result, tmp_path, monkeypatch):
    def hdf_error(self, target, *args, **kwargs):  # what netCDF4 raises on a really full disk
        raise RuntimeError("NetCDF: HDF error")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", hdf_error)
    with pytest.raises(WriteError, match="NetCDF: HDF error"):
        write_dataset(result, tmp_path / "out.nc")
    assert _names(tmp_path) == []


def test_checkpoint_on_a_full_disk_is_a_write_error(tmp_path, monkeypatch):
    path = write_checkpoint(tmp_path / "run.ckpt", {"t": 1.0}, meta={})
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(WriteError, match="No space left on device"):
        write_checkpoint(path, {"t": 2.0}, meta={})
    assert path.read_bytes() == before
    assert _names(tmp_path) == ["run.ckpt"]


def test_existing_fifo_is_never_replaced(tmp_path):
    fifo = tmp_path / "out.nc"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="not a regular file"):
        atomic_write_text(fifo, "x")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert _names(tmp_path) == ["out.nc"]


def test_existing_folder_is_never_replaced(result, tmp_path):
    (tmp_path / "out.nc").mkdir()
    with pytest.raises(OutputError, match="folder"):
        write_dataset(result, tmp_path / "out.nc")
    assert (tmp_path / "out.nc").is_dir()


def test_symbolic_link_is_followed_and_kept(tmp_path):
    target = tmp_path / "data" / "run.txt"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink()
    assert target.read_text() == "new"
    assert _names(target.parent) == ["run.txt"]


def test_remove_file_removes_and_ignores_a_missing_file(tmp_path):
    path = atomic_write_text(tmp_path / "run.ckpt", "x")
    remove_file(path)
    remove_file(path)
    assert _names(tmp_path) == []


def test_remove_file_on_a_folder_is_a_write_error(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(WriteError, match="sub"):
        remove_file(tmp_path / "sub")


# ---------------------------------------------------------------------------------------------
# output paths checked before work


def test_check_output_path_accepts_new_and_existing_files_and_resolves(tmp_path, monkeypatch):
    (tmp_path / "old.nc").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert check_output_path("old.nc") == (tmp_path / "old.nc").resolve()
    assert check_output_path("new.nc") == (tmp_path / "new.nc").resolve()
    assert _names(tmp_path) == ["old.nc"]  # the probe file is gone


def test_check_output_path_accepts_missing_parent_folders_without_creating_them(tmp_path):
    path = check_output_path(tmp_path / "a" / "b" / "run.nc")
    assert path == (tmp_path / "a" / "b" / "run.nc").resolve()
    assert _names(tmp_path) == []


def test_check_output_path_refuses_an_existing_folder(tmp_path):
    with pytest.raises(OutputError, match="existing folder") as info:
        check_output_path(tmp_path, role="checkpoint file")
    assert "checkpoint file" in str(info.value)
    assert str(tmp_path) in str(info.value)
    assert info.value.exit_status == 2


@pytest.mark.parametrize("parts", [("case.toml", "out.nc"), ("case.toml", "sub", "out.nc")])
def test_check_output_path_refuses_a_parent_that_is_a_file(tmp_path, parts):
    (tmp_path / "case.toml").write_text("")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_path(tmp_path.joinpath(*parts))
    assert (tmp_path / "case.toml").is_file()


@pytest.mark.parametrize("special", ["fifo", "/dev/null"])
def test_check_output_path_refuses_non_regular_files(tmp_path, special):
    if special == "fifo":
        special = tmp_path / "fifo"
        os.mkfifo(special)
    with pytest.raises(OutputError, match="not a regular file"):
        check_output_path(special)


def test_check_output_path_refuses_an_unwritable_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        writable = os.access(folder, os.W_OK)
        if writable:  # root: permissions do not stop writes, so the honest probe accepts
            assert check_output_path(folder / "out.nc") == (folder / "out.nc").resolve()
            pytest.skip("running as root (CAP_DAC_OVERRIDE): a 0o500 folder is writable; "
                        "the refusal is checked with a simulated PermissionError instead")
        with pytest.raises(OutputError, match="not writable"):
            check_output_path(folder / "sub" / "out.nc")
    finally:
        folder.chmod(0o700)


def test_check_output_path_refuses_a_folder_where_no_file_can_be_created(tmp_path, monkeypatch):
    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(fio.tempfile, "mkstemp", refused)
    with pytest.raises(OutputError, match="not writable.*Permission denied"):
        check_output_path(tmp_path / "new" / "out.nc")


def test_check_output_path_refuses_a_read_only_filesystem(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(fio.tempfile, "mkstemp", read_only)
    with pytest.raises(OutputError, match="Read-only file system"):
        check_output_path(tmp_path / "out.nc")


def test_check_output_path_refuses_a_name_too_long(tmp_path):
    with pytest.raises(OutputError, match="300 bytes long"):
        check_output_path(tmp_path / ("x" * 296 + ".nc."))
    assert _names(tmp_path) == []


def test_check_output_path_refuses_the_input_file(tmp_path, monkeypatch):
    case = tmp_path / "case.toml"
    case.write_text("[model]\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match="input file"):
        check_output_path(case, inputs=[case])
    with pytest.raises(OutputError, match="input file"):
        check_output_path("./sub/../case.toml", inputs=["case.toml"])
    assert case.read_text() == "[model]\n"


def test_check_output_path_refuses_the_input_file_through_links(tmp_path):
    case = tmp_path / "case.toml"
    case.write_text("")
    symlink = tmp_path / "link.toml"
    symlink.symlink_to(case)
    hardlink = tmp_path / "hard.toml"
    os.link(case, hardlink)
    for out, source in [(symlink, case), (case, symlink), (hardlink, case)]:
        with pytest.raises(OutputError, match="input file"):
            check_output_path(out, inputs=[source])
    assert check_output_path(tmp_path / "other.nc", inputs=[case, symlink]).name == "other.nc"


# ---------------------------------------------------------------------------------------------
# checkpoints


def _state() -> dict:
    weird = np.array([0.1, -0.0, np.inf, -np.inf, np.nan, 5e-324, np.finfo(float).max])
    weird.view(np.uint64)[4] |= 0x1234  # a NaN with a payload
    return {
        "t": 0.1 + 0.2,
        "step": 7,
        "done": False,
        "phase": "charge",
        "bdf": {
            "y": weird,
            "order": np.array(3, dtype=np.int64),
            "history": np.arange(12, dtype=np.float64).reshape(3, 4) / 7,
            "empty": np.zeros((0, 3), dtype=np.float32),
            "controller": {"dt": np.float64(1e-3), "rejected": np.int32(-2)},
        },
        "rng": {"counters": np.array([0, 2**63 - 1, -(2**63)], dtype=np.int64),
                "bytes": np.array([0, 1, 255], dtype=np.uint8),
                "key": np.uint64(2**64 - 1)},
        "labels": np.array(["cc", "cv", "rest \u00e9"]),
        "no_labels": np.array([], dtype="<U1"),
        "flags": np.array([True, False]),
        "extra": {},
    }


def _assert_same(back, expected, where=""):
    assert isinstance(back, dict) and sorted(back) == sorted(expected), where
    for key, value in expected.items():
        got = back[key]
        if isinstance(value, dict):
            _assert_same(got, value, f"{where}.{key}")
        elif isinstance(value, str):
            assert type(got) is str and got == value, (where, key)
        else:
            value = np.asarray(value)
            assert got.dtype == value.dtype, (where, key)
            assert np.shape(got) == value.shape, (where, key)
            assert np.asarray(got).tobytes() == value.tobytes(), (where, key)
            if value.ndim == 0:
                assert isinstance(got, np.generic), (where, key)


def test_checkpoint_round_trip_is_bitwise_exact(tmp_path):
    meta = {"fastnai_version": "1.2.3", "case_digest": "ab" * 32, "phase": "start"}
    path = write_checkpoint(tmp_path / "run.ckpt.npz", _state(), meta=meta)
    assert path == tmp_path / "run.ckpt.npz"
    assert _names(tmp_path) == ["run.ckpt.npz"]  # no .npz appended, no temporary
    state, back_meta = read_checkpoint(path)
    _assert_same(state, _state())
    assert back_meta == meta
    assert all(type(v) is str for v in back_meta.values())


def test_checkpoint_is_a_plain_npz_without_pickles(tmp_path):
    path = write_checkpoint(tmp_path / "run.ckpt", {"a": {"b": 1.5}}, meta={"phase": "run"})
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
    assert names == ["format.npy", "meta.phase.npy", "state.a.b.npy"]
    with np.load(path, allow_pickle=False) as archive:
        assert str(archive["format"]) == CHECKPOINT_FORMAT


def test_checkpoint_rewritten_replaces_the_old_one(tmp_path):
    path = tmp_path / "run.ckpt"
    write_checkpoint(path, {"t": 1.0}, meta={"phase": "run"})
    write_checkpoint(path, {"t": 2.0, "n": 3}, meta={"phase": "end"})
    state, meta = read_checkpoint(path)
    assert state == {"t": 2.0, "n": 3} and meta == {"phase": "end"}


@pytest.mark.parametrize("state, meta, match", [
    ({"a.b": 1.0}, {}, "without '.'"),
    ({"a": {"b.c": 1.0}}, {}, "without '.'"),
    ({"": 1.0}, {}, "non-empty"),
    ({1: 1.0}, {}, "strings"),
    ({"a": None}, {}, "cannot be stored"),
    ({"a": [1, "x", None]}, {}, "cannot be stored"),
    ({"a": 1.0}, {"version": 1}, "must be a string"),
    ({"a": 1.0}, {"a.b": "x"}, "without '.'"),
])
def test_checkpoint_with_bad_keys_or_values_is_refused_and_nothing_written(
        tmp_path, state, meta, match):
    with pytest.raises(ValueError, match=match):
        write_checkpoint(tmp_path / "run.ckpt", state, meta=meta)
    assert _names(tmp_path) == []


def test_truncated_checkpoint_is_a_case_error_naming_the_file(tmp_path):
    good = write_checkpoint(tmp_path / "good.ckpt", _state(), meta={"phase": "run"})
    data = good.read_bytes()
    bad = tmp_path / "bad.ckpt"
    for size in sorted({0, 1, 10, 100, len(data) // 3, len(data) // 2, len(data) - 30,
                        len(data) - 1}):
        bad.write_bytes(data[:size])
        with pytest.raises(CaseError, match="bad.ckpt") as info:
            read_checkpoint(bad)
        assert info.value.exit_status == 2


def test_corrupted_member_is_a_case_error(tmp_path):
    good = write_checkpoint(tmp_path / "good.ckpt", {"y": np.zeros(1000)}, meta={})
    data = bytearray(good.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = b"\xff" * 64  # inside the array's bytes
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(bytes(data))
    with pytest.raises(CaseError, match="bad.ckpt"):
        read_checkpoint(bad)


def test_netcdf_file_as_checkpoint_is_a_case_error(result, tmp_path):
    path = write_dataset(result, tmp_path / "out.nc")
    with pytest.raises(CaseError, match=r"out\.nc.*not a numpy \.npz archive"):
        read_checkpoint(path)


@pytest.mark.parametrize("kind", ["missing", "npy", "other npz", "old format"])
def test_other_files_as_checkpoint_are_case_errors(tmp_path, kind):
    path = tmp_path / "run.ckpt"
    if kind == "npy":
        with open(path, "wb") as fh:
            np.save(fh, np.arange(3))
    elif kind == "other npz":
        with open(path, "wb") as fh:
            np.savez(fh, y=np.arange(3))
    elif kind == "old format":
        with open(path, "wb") as fh:
            np.savez(fh, format=np.array("fastnai.transient/1"), y=np.arange(3))
    with pytest.raises(CaseError, match="run.ckpt"):
        read_checkpoint(path)
