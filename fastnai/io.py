"""Every file fastnai writes: atomic writes that honour the umask, output-path checks made before
any work, result datasets and checkpoints.

A file is written to a temporary file in its destination folder, flushed to disk, given the
mode ``0o666 & ~umask`` (what ``open()`` would give) and renamed over the destination: a killed
write leaves the old file or the new one, never a truncated one. The temporary file is named
``.<name>.<random>.tmp``, or ``.fastnai-<random>.tmp`` when that decorated name would be longer
than the filesystem allows, so that only the length of the real name matters
(:func:`check_output_path` checks it). It is removed on every exit path Python sees (exceptions,
``KeyboardInterrupt``); only SIGKILL or a crash can leave one behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .errors import CaseError, FastnaiError, OutputError, WriteError
from .variables import non_finite

#: Format string stored in every checkpoint; :func:`read_checkpoint` refuses any other.
CHECKPOINT_FORMAT = "fastnai.checkpoint/2"

_STATE = "state."
_META = "meta."
_EMPTY = "empty."  # marks an empty nested dict, which would otherwise vanish when flattened
_FORMAT = "format"

_TMP_SUFFIX = ".tmp"
_TMP_RANDOM = 8  # characters tempfile adds to a name
_SHORT_PREFIX = ".fastnai-"
_DEFAULT_NAME_MAX = 255

_UMASK_LOCK = threading.Lock()


# ---------------------------------------------------------------------------------------------
# helpers


def _reason(exc: BaseException) -> str:
    """The OS reason of an error, without the errno number and file name Python adds."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _umask() -> int:
    """The process umask, read without changing it where Linux allows.

    ``/proc/self/status`` has had a ``Umask:`` line since Linux 4.7. Elsewhere the umask can
    only be read by setting it and setting it back, which is racy against other threads that
    create files; a module lock at least keeps two fastnai writers from racing each other.
    """
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    with _UMASK_LOCK:
        old = os.umask(0o022)
        os.umask(old)
    return old


def _name_max(folder: Path) -> int:
    """Longest file name (bytes) the filesystem of the existing ``folder`` allows."""
    try:
        value = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return _DEFAULT_NAME_MAX
    return value if value and value > 0 else _DEFAULT_NAME_MAX


def _tmp_prefix(name: str, folder: Path) -> str:
    """``.<name>.`` when ``.<name>.<random>.tmp`` fits the filesystem, else ``.fastnai-``."""
    decorated = len(os.fsencode(name)) + 2 + _TMP_RANDOM + len(_TMP_SUFFIX)
    return f".{name}." if decorated <= _name_max(folder) else _SHORT_PREFIX


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; some filesystems cannot, which is not an error."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------------------------
# atomic writes


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Write a file atomically: ``write`` fills a temporary file that is then renamed over ``path``.

    Missing parent folders are created. A symbolic link at ``path`` is followed: the file it
    points to is replaced and the link stays. The new file has the mode ``0o666 & ~umask``.

    Parameters
    ----------
    path
        Destination file.
    write
        Called once with the temporary file's path (an empty file in the destination folder,
        whose name does not end in the destination's suffix); it writes the whole file there,
        in binary or text mode as it likes, and closes it.

    Returns
    -------
    Path
        ``path``, as given.

    Raises
    ------
    OutputError
        The destination exists and is not a regular file (a folder, a device such as
        ``/dev/full``, a fifo): it is never replaced.
    WriteError
        An ``OSError`` while writing, flushing or renaming (disk full, quota, I/O error,
        read-only filesystem, permission); the previous file is left as it was. Any exception
        ``write`` raises propagates unchanged otherwise. The temporary file is removed in every
        case.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = atomic_write(f"{folder}/a.bin", lambda tmp: tmp.write_bytes(b"\\x00\\x01"))
    ...     path.read_bytes(), sorted(p.name for p in path.parent.iterdir())
    (b'\\x00\\x01', ['a.bin'])
    """
    given = Path(path)
    target = given.resolve()
    folder = target.parent
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise WriteError(f"writing {given} failed: {_reason(exc)}.") from exc
    else:
        if not stat.S_ISREG(mode):
            what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise OutputError(f"refusing to write {given}: it exists and is {what}, so it is "
                              "left untouched; choose a regular file name.")
    tmp: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=_tmp_prefix(target.name, folder), suffix=_TMP_SUFFIX,
                                    dir=folder)
        os.close(fd)
        tmp = Path(name)
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        # mkstemp makes the file 0600; give it what open() would have given
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise WriteError(f"writing {given} failed: {_reason(exc)}; the previous file, if any, "
                         "is unchanged.") from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _fsync_folder(folder)
    return given


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, line endings as given) to ``path`` atomically.

    Parameters
    ----------
    path
        Destination file.
    text
        The whole content.

    Returns
    -------
    Path
        ``path``, as given. Errors are those of :func:`atomic_write`.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     atomic_write_text(f"{folder}/a.csv", "x,y\\r\\n1,2\\n").read_bytes()
    b'x,y\\r\\n1,2\\n'
    """
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)

    return atomic_write(path, write)


def remove_file(path: str | os.PathLike) -> None:
    """Remove the file ``path`` if it is there (a checkpoint after the run that resumed from it).

    Parameters
    ----------
    path
        File to remove; a missing file is not an error.

    Raises
    ------
    WriteError
        The file is there but cannot be removed (a folder, a read-only filesystem...).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = atomic_write_text(f"{folder}/run.ckpt.npz", "x")
    ...     remove_file(path)
    ...     remove_file(path)  # already gone: nothing to do
    ...     path.exists()
    False
    """
    try:
        Path(path).unlink(missing_ok=True)
    except OSError as exc:
        raise WriteError(f"removing {path} failed: {_reason(exc)}.") from exc


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries a killed writer of ``path`` left (``.<name>.<random>.tmp``).

    SIGKILL (or a power cut) between the temporary's creation and its rename leaves it
    behind; the next run that writes ``path`` calls this first. Returns what was removed.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = (pathlib.Path(folder) / ".out.nc.a1b2c3d4.tmp").write_text("half a file")
    ...     [p.name for p in remove_stale_temporaries(f"{folder}/out.nc")]
    ['.out.nc.a1b2c3d4.tmp']
    """
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    pattern = f".{path.name}." + "?" * _TMP_RANDOM + _TMP_SUFFIX
    for stale in path.parent.glob(pattern):
        with contextlib.suppress(OSError):
            stale.unlink()
            removed.append(stale)
    return removed


# ---------------------------------------------------------------------------------------------
# output paths


def check_output_path(path: str | os.PathLike, *, role: str = "output file",
                      inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Check, before any work, that ``path`` can be written as a new or replaced regular file.

    Nothing is created: missing parent folders are accepted when the nearest existing one is a
    writable folder (they are created when the file is written). Writability is tested by
    creating and removing a temporary file there, which is right also for root and for
    read-only filesystems. The name must fit the filesystem's limit (``PC_NAME_MAX``, 255 if
    unknown); the temporary file of :func:`atomic_write` falls back to a short name, so the real
    name is all that counts.

    Parameters
    ----------
    path
        The file to be written.
    role
        What the file is for, for the message: ``"output file"``, ``"checkpoint file"``...
    inputs
        Files the run reads (the case file, a checkpoint resumed from); ``path`` must be none of
        them, through symbolic or hard links included.

    Returns
    -------
    Path
        ``path`` made absolute with symbolic links resolved: the file that will be written.

    Raises
    ------
    OutputError
        One paragraph: the role, the path, why it cannot be used and what to do instead.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     ok = check_output_path(f"{folder}/new/run.nc")
    ...     try:
    ...         check_output_path(folder)
    ...     except OutputError as exc:
    ...         print("refused:", "is an existing folder" in str(exc))
    ...     ok.name, ok.parent.exists()
    refused: True
    ('run.nc', False)
    """
    given = Path(path)

    def refuse(reason: str, advice: str) -> OutputError:
        return OutputError(f"cannot use {str(given)!r} as the {role}: {reason}. {advice} "
                           "Nothing was run.")

    if not str(given) or given.name in ("", ".", ".."):
        raise refuse("it names a folder, not a file", "Give a file name, e.g. 'run.nc'.")
    try:
        target = given.expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic-link loop
        raise refuse(f"it cannot be resolved ({_reason(exc)})", "Fix the path.") from exc

    _check_not_a_folder_or_device(target, given, refuse)
    ancestor = _writable_ancestor(target, refuse)
    _check_name_lengths(target, ancestor, refuse)
    _check_not_an_input(target, inputs, refuse)
    return target


def _check_not_a_folder_or_device(target: Path, given: Path, refuse) -> None:
    """``target`` is absent or an existing regular file (which is replaced)."""
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:  # a parent is a file: found by _writable_ancestor
        mode = None
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:  # a name too long is found by _check_name_lengths
            raise refuse(f"it cannot be examined ({_reason(exc)})",
                         "Choose a path you can write.") from exc
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise refuse("it is an existing folder", "Give a file name inside it, e.g. "
                     f"{str(given / 'run.nc')!r}.")
    if mode is not None and not stat.S_ISREG(mode):
        raise refuse("it exists and is not a regular file (a device, fifo or socket), which is "
                     "never replaced", "Choose a regular file name.")


def _writable_ancestor(target: Path, refuse) -> Path:
    """The nearest existing folder above ``target``, checked writable with a probe file."""
    ancestor = target.parent
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise refuse(f"{str(ancestor)!r} is a file, not a folder",
                     "Choose a path whose parent is a folder.")
    try:
        fd, probe = tempfile.mkstemp(prefix=_SHORT_PREFIX, suffix=".probe", dir=ancestor)
    except OSError as exc:
        raise refuse(f"the folder {str(ancestor)!r} is not writable ({_reason(exc)})",
                     "Choose a folder you can write, or fix its permissions.") from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return ancestor


def _check_name_lengths(target: Path, ancestor: Path, refuse) -> None:
    """The file name and the whole path fit the filesystem's limits."""
    name_bytes = len(os.fsencode(target.name))
    name_max = _name_max(ancestor)
    if name_bytes > name_max:
        raise refuse(f"its name is {name_bytes} bytes long and the filesystem allows at most "
                     f"{name_max}", "Choose a shorter name.")
    try:
        path_max = os.pathconf(ancestor, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        path_max = 0
    if path_max and path_max > 0 and len(os.fsencode(str(target))) >= path_max:
        raise refuse(f"the full path is longer than the system allows ({path_max} bytes)",
                     "Choose a shorter path.")


def _check_not_an_input(target: Path, inputs, refuse) -> None:
    """``target`` is none of the run's input files, through symbolic or hard links included."""
    for item in inputs:
        source = Path(item)
        same = source.expanduser().resolve() == target
        if not same:
            with contextlib.suppress(OSError):
                same = os.path.samefile(source, target)
        if same:
            raise refuse(f"it is the input file {str(source)!r}, which would be overwritten",
                         "Choose a different name.")


# ---------------------------------------------------------------------------------------------
# result datasets


def _space_hint(folder: Path) -> str:
    """A note on the free space of ``folder``'s filesystem, for a failed netCDF write."""
    try:
        info = os.statvfs(folder)
    except (OSError, AttributeError):
        return ""
    free = info.f_bavail * info.f_frsize
    if free < 1 << 20:
        return f" (the disk holding it has {free} bytes free: it is probably full)"
    return " (check the free space and the quota there)"


def write_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to netCDF atomically; a killed write leaves the old file or none.

    The data are checked to be finite first (NaN is allowed only in scalar diagnostics that
    are undefined for the case, which carry a ``nan_means`` attribute).

    Parameters
    ----------
    ds
        The result.
    path
        Destination file.

    Returns
    -------
    Path
        ``path``, as given.

    Raises
    ------
    FastnaiError
        A variable is not finite; nothing is written.
    OutputError, WriteError
        As :func:`atomic_write`. The netCDF library reports a full disk as "NetCDF: HDF error",
        which becomes a ``WriteError`` too.

    Examples
    --------
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

    def write(tmp: Path) -> None:
        try:
            ds.to_netcdf(tmp, engine="netcdf4")
        except RuntimeError as exc:
            if not str(exc).startswith(("NetCDF", "HDF")):
                raise
            raise WriteError(f"writing {path} failed: the netCDF library reported "
                             f"{str(exc)!r}{_space_hint(tmp.parent)}; the previous file, if "
                             "any, is unchanged.") from exc

    return atomic_write(path, write)


def read_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Read a result file fully into memory and close it.

    Examples
    --------
    >>> import tempfile, xarray as xr
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_dataset(xr.Dataset({"a": ("x", [1.0])}), f"{folder}/out.nc")
    ...     float(read_dataset(path)["a"][0])
    1.0
    """
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()


# ---------------------------------------------------------------------------------------------
# checkpoints


def _flatten(state: Mapping, prefix: str, members: dict[str, np.ndarray], where: str) -> None:
    for key, value in state.items():
        if not isinstance(key, str) or not key or "." in key:
            raise ValueError(f"checkpoint state key {key!r} at {where or 'top level'}: keys must "
                             "be non-empty strings without '.'")
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if not value:
                members[_EMPTY + name[len(_STATE):]] = np.array(True)
            _flatten(value, name + ".", members, name[len(_STATE):])
            continue
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise ValueError(f"checkpoint state {name[len(_STATE):]!r}: {type(value).__name__} "
                             "values cannot be stored (numbers, strings, bools and numeric or "
                             "string arrays only)")
        members[name] = array


def _nest(flat: Mapping[str, Any], empty: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dotted in sorted(empty):
        node = out
        for part in dotted.split("."):
            node = node.setdefault(part, {})
    for dotted, value in flat.items():
        *parents, last = dotted.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def write_checkpoint(path: str | os.PathLike, state: Mapping[str, Any], *,
                     meta: Mapping[str, str]) -> Path:
    """Write a checkpoint (an uncompressed ``.npz`` archive, no pickle) atomically.

    Nested dicts are flattened to archive members named by their keys joined with ``"."``
    under ``state.``; ``meta`` goes under ``meta.`` as 0-d string arrays, beside ``format``
    (:data:`CHECKPOINT_FORMAT`). Arrays are stored byte for byte (NaN payloads included).

    Parameters
    ----------
    path
        Checkpoint file; any name (``.npz`` is not appended).
    state
        Nested dict with string keys (no ``"."`` in them); values are numpy arrays, numbers,
        strings, bools or such dicts.
    meta
        Flat dict of strings: ``fastnai_version``, ``case_digest``, ``phase``...

    Returns
    -------
    Path
        ``path``, as given.

    Raises
    ------
    ValueError
        A key with ``"."`` in it, a non-string meta value, a value numpy can store only by
        pickling (``None``, objects); nothing is written.
    OutputError, WriteError
        As :func:`atomic_write`.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> state = {"t": 0.5, "bdf": {"y": np.array([1.0, 2.0]), "order": 2}}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_checkpoint(f"{folder}/run.ckpt", state, meta={"phase": "run"})
    ...     back, meta = read_checkpoint(path)
    >>> back["bdf"]["y"].tolist(), int(back["bdf"]["order"]), float(back["t"]), meta["phase"]
    ([1.0, 2.0], 2, 0.5, 'run')
    """
    members: dict[str, np.ndarray] = {_FORMAT: np.array(CHECKPOINT_FORMAT)}
    for key, value in meta.items():
        if not isinstance(key, str) or not key or "." in key:
            raise ValueError(f"checkpoint meta key {key!r}: keys must be non-empty strings "
                             "without '.'")
        if not isinstance(value, str):
            raise ValueError(f"checkpoint meta {key!r} must be a string, got "
                             f"{type(value).__name__}")
        members[_META + key] = np.array(value)
    _flatten(state, _STATE, members, "")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append .npz to a name
            np.savez(fh, allow_pickle=False, **members)

    return atomic_write(path, write)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, str]]:
    """Read a checkpoint written by :func:`write_checkpoint`.

    Parameters
    ----------
    path
        Checkpoint file.

    Returns
    -------
    state : dict
        The nested state; 0-d arrays come back as numpy scalars (``str`` for strings), other
        arrays with their dtype and shape.
    meta : dict
        The meta strings.

    Raises
    ------
    CaseError
        The file is missing, unreadable, truncated, not an ``.npz`` archive or not of
        :data:`CHECKPOINT_FORMAT`; the message names the file and the reason.

    Examples
    --------
    See :func:`write_checkpoint`.
    """
    path = Path(path)
    try:
        # np.load given a name leaks the open file when the archive is damaged: open it here
        with open(path, "rb") as fh:
            if fh.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):  # how zip archives start
                raise ValueError("it is not a numpy .npz archive (a zip file)")
            fh.seek(0)
            archive = np.load(fh, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("it is a single .npy array, not an .npz archive")
            with archive:
                raw = {name: archive[name] for name in archive.files}
    except FileNotFoundError as exc:
        raise CaseError(f"cannot read checkpoint {path}: it does not exist") from exc
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        reason = _reason(exc).rstrip(".")
        raise CaseError(f"cannot read checkpoint {path}: {reason}; it may be truncated or "
                        "damaged. Delete it to start the run from the beginning.") from exc
    fmt = raw.pop(_FORMAT, None)
    fmt = str(fmt[()]) if fmt is not None and fmt.ndim == 0 else None
    if fmt != CHECKPOINT_FORMAT:
        raise CaseError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint (format {fmt!r}); it "
                        "was written by another program or another fastnai version. Delete it "
                        "to start the run from the beginning.")
    state: dict[str, Any] = {}
    meta: dict[str, str] = {}
    empty: list[str] = []
    for name, array in raw.items():
        if name.startswith(_META):
            meta[name[len(_META):]] = str(array[()])
        elif name.startswith(_EMPTY):
            empty.append(name[len(_EMPTY):])
        elif name.startswith(_STATE):
            value = array[()] if array.ndim == 0 else array
            state[name[len(_STATE):]] = str(value) if isinstance(value, np.str_) else value
        else:
            raise CaseError(f"{path}: unexpected member {name!r} in a {CHECKPOINT_FORMAT} "
                            "checkpoint (the file is damaged)")
    return _nest(state, empty), meta


__all__ = ["CHECKPOINT_FORMAT", "atomic_write", "atomic_write_text", "check_output_path",
           "read_checkpoint", "read_dataset", "remove_file", "write_checkpoint", "write_dataset"]
