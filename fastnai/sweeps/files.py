"""The files of a sweep folder: the definition, the point files, the manifest, and running
one point into its file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .. import api
from ..errors import CaseError, FastnaiError, Interrupted
from ..io import atomic_write_text, remove_file, write_dataset
from .plan import FORMAT, Plan

DEFINITION = "sweep.json"
MANIFEST = "manifest.csv"
MERGED = "sweep.nc"
POINTS = "points"
_POINT_FILE = re.compile(r"^(\d+)\.nc$")
_FAILED_FILE = re.compile(r"^(\d+)\.failed\.json$")


def _point_path(points: Path, index: int) -> Path:
    return points / f"{index:06d}.nc"


def _failed_path(points: Path, index: int) -> Path:
    return points / f"{index:06d}.failed.json"


def _write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, default=str) + "\n")


def _failure(index: int, exc: BaseException, wall_time_s: float) -> dict[str, Any]:
    text = str(exc)
    if not isinstance(exc, FastnaiError):  # not raised on purpose: keep where it came from
        text += "\n" + "".join(traceback.format_exception(exc))[-4000:]
    return {"index": index, "status": "failed", "wall_time_s": wall_time_s,
            "error_type": type(exc).__name__, "error": text,
            "exit_status": getattr(exc, "exit_status", 1)}


#: Serialises netCDF I/O between the threads of one process: netCDF-C and HDF5 are not
#: thread-safe, and xarray's own locks do not cover every call (two worker threads writing
#: different point files fail with "NetCDF: HDF error" without it).
_NETCDF_LOCK = threading.Lock()


@contextlib.contextmanager
def _local_io() -> Iterator[None]:
    """netCDF reads and writes under this process's lock only.

    Inside a Dask worker (or with a distributed Client active) xarray guards every netCDF write
    with a ``distributed.Lock`` held through the scheduler, which costs 0.2-0.9 s a file
    (measured here on a 2 MB file, against 0.02 s without). Each point writes its own file
    from a worker that runs one point at a time, so a process-local lock is enough: selecting
    dask's synchronous scheduler for the block makes xarray pick one, and ``_NETCDF_LOCK``
    keeps worker threads of one process (``scheduler="threads"``) out of each other's way.
    """
    with _NETCDF_LOCK:
        try:
            import dask
        except ImportError:  # no Dask: xarray uses local locks anyway
            yield
            return
        with dask.config.set(scheduler="synchronous"):
            yield


def _run_point(raw_case: Mapping, overrides: Mapping, points: str, index: int, sweep_id: str,
               n_threads: int | None, keep: bool = False) -> dict[str, Any]:
    """Run one point (in a Dask worker or in this process) and write its file.

    Writes ``points/<index>.nc`` (atomically) or, when the run raises, ``<index>.failed.json``;
    returns the record (index, status, wall time, error), with the result Dataset under
    ``"dataset"`` when ``keep`` (so that the merge need not read the file back). An
    ``Interrupted`` run (SIGTERM) propagates: the point is simply not finished.
    """
    start = time.perf_counter()
    folder = Path(points)
    if n_threads is not None:
        import numba

        numba.set_num_threads(max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        ds = api.run(raw_case, overrides, progress=False)  # the sweep reports progress per point
        ds.attrs["sweep_id"] = sweep_id
        ds.attrs["sweep_point"] = index
        with _local_io():
            write_dataset(ds, _point_path(folder, index))
    except Interrupted:
        raise
    except Exception as exc:  # one point's failure is recorded; the other points go on
        record = _failure(index, exc, time.perf_counter() - start)
        _write_json(_failed_path(folder, index), record)
        return record
    remove_file(_failed_path(folder, index))
    record = {"index": index, "status": "ok", "wall_time_s": float(ds.attrs["wall_time_s"]),
              "error_type": None, "error": None, "exit_status": 0}
    if keep:
        record["dataset"] = ds
    return record


def _run_points(raw_case: Mapping, batch: list[tuple[int, Mapping]], points: str,
                sweep_id: str, n_threads: int | None, keep: bool = False) -> list[dict[str, Any]]:
    """Run a batch of points one after another (one Dask task); one record per point.

    Each point's file is written the moment it finishes, so a batch cut short loses only its
    unfinished points.
    """
    return [_run_point(raw_case, overrides, points, index, sweep_id, n_threads, keep)
            for index, overrides in batch]


def _scan(out: Path, n_points: int) -> dict[int, dict[str, Any]]:
    """Status of every point from the files in ``out/points``."""
    records = {i: {"index": i, "status": "missing", "wall_time_s": None, "error_type": None,
                   "error": None, "exit_status": None} for i in range(n_points)}
    folder = out / POINTS
    if not folder.is_dir():
        return records
    failed = []
    for entry in os.scandir(folder):
        if m := _POINT_FILE.match(entry.name):
            i = int(m.group(1))
            if i < n_points:
                records[i].update(status="ok", exit_status=0)
        elif m := _FAILED_FILE.match(entry.name):
            failed.append((int(m.group(1)), entry.path))
    for i, path in failed:
        if i < n_points and records[i]["status"] != "ok":
            try:
                with open(path, encoding="utf-8") as fh:
                    records[i].update(json.load(fh))
            except (OSError, ValueError):
                records[i].update(status="failed", error_type="unknown",
                                  error=f"unreadable failure record {path}", exit_status=1)
    return records


def _write_manifest(out: Path, plan: Plan, records: Mapping[int, Mapping]) -> None:
    """``manifest.csv``: one row per point (index, status, wall time, values, file, error)."""
    buffer = []
    header = ["index", "status", "wall_time_s", *[a.key for a in plan.axes], "file", "error"]
    for i in range(plan.n_points):
        rec = records.get(i, {})
        status = rec.get("status", "missing")
        wall = rec.get("wall_time_s")
        error = ""
        if status == "failed":
            error = f"{rec.get('error_type')}: " + (str(rec.get("error") or "").splitlines()
                                                    or [""])[0]
        file = (f"{POINTS}/{i:06d}.nc" if status == "ok" else
                f"{POINTS}/{i:06d}.failed.json" if status == "failed" else "")
        buffer.append([i, status, "" if wall is None else f"{wall:.6g}",
                       *plan.point(i).values(), file, error])
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(buffer)
    atomic_write_text(out / MANIFEST, text.getvalue())


def _read_definition(out: Path) -> dict | None:
    path = out / DEFINITION
    if not path.is_file():
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise CaseError(f"{path}: cannot read the sweep definition ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CaseError(f"{path} is not a fastnai sweep definition (format {FORMAT!r})")
    return data


def _clear(out: Path, merged: Path) -> None:
    """Delete the files of an earlier sweep in ``out`` (resume=False)."""
    folder = out / POINTS
    if folder.is_dir():
        for entry in os.scandir(folder):
            if _POINT_FILE.match(entry.name) or _FAILED_FILE.match(entry.name):
                os.unlink(entry.path)
    for path in (out / MANIFEST, merged):
        remove_file(path)


def _prepare(plan: Plan, out: Path, merged: Path, *, resume: bool, settings: Mapping) -> None:
    """Create ``out``, check an earlier sweep there is the same one (or clear it), and write
    ``sweep.json``."""
    if out.exists() and not out.is_dir():
        raise CaseError(f"output folder {str(out)!r} is a file")
    old = _read_definition(out)
    if resume and old is not None and old.get("sweep_id") != plan.sweep_id:
        raise CaseError(f"{str(out)!r} holds a different sweep (sweep.json {old.get('sweep_id')}, "
                        f"this one {plan.sweep_id}: the case, its overrides or the swept values "
                        "changed): choose another output folder, or pass --no-resume "
                        "(resume=False) to delete its results and start again")
    if resume and old is None and (out / POINTS).is_dir() and any(
            _POINT_FILE.match(e.name) for e in os.scandir(out / POINTS)):
        raise CaseError(f"{str(out / POINTS)!r} holds point files but {str(out)!r} has no "
                        "sweep.json: choose another output folder, or pass --no-resume "
                        "(resume=False) to delete them")
    (out / POINTS).mkdir(parents=True, exist_ok=True)
    if not resume:
        _clear(out, merged)
    _write_json(out / DEFINITION, {**plan.to_json(), **settings})
