"""Running a sweep: points as tasks on a Dask cluster (or in this process, or as batch
array tasks), progress, and the entry points :func:`sweep` and :func:`run_array_task`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from ..case import Case
from ..errors import CaseError, FastnaiError
from ..resources import check_threads, max_threads, numba_threads
from .files import (
    MERGED,
    POINTS,
    _failed_path,
    _failure,
    _point_path,
    _prepare,
    _read_definition,
    _run_point,
    _run_points,
    _scan,
    _write_json,
    _write_manifest,
)
from .merge import _merge
from .plan import Plan, _check_count, _layer, _resolve_ensemble, plan_sweep

logger = logging.getLogger("fastnai.sweeps")

#: Scheduler names that need no address ("local": LocalCluster of processes; "threads":
#: LocalCluster of threads in this process; "synchronous": no Dask, one point after another).
SCHEDULERS = ("local", "threads", "synchronous")
#: LocalCluster options for no dashboard and a free port for the scheduler's HTTP server (its
#: default, 8787, is often taken by another cluster on a shared machine: a UserWarning).
LOCAL_CLUSTER_QUIET = {"dashboard_address": None, "scheduler_kwargs": {"dashboard_address": ":0"}}
#: Dask tasks per worker that automatic batching aims at (several, so that the workers stay
#: busy to the end when the points take different times).
TASKS_PER_WORKER = 4
#: Most points in one Dask task under automatic batching.
MAX_AUTO_BATCH = 16
#: Environment variables that give the index of a batch array task.
ARRAY_INDEX_VARIABLES = ("SLURM_ARRAY_TASK_ID", "PBS_ARRAY_INDEX")
_MANIFEST_INTERVAL = 5.0  # s between manifest rewrites while points finish


class _Tracker:
    """Records finished points: log lines (or a tqdm bar on a terminal) and the manifest."""

    def __init__(self, plan: Plan, out: Path, records: dict, todo: list[int],
                 progress: bool | None):
        self.plan, self.out, self.records = plan, out, records
        self.total, self.count, self.failed = len(todo), 0, 0
        self.last_write = time.monotonic()
        self.bar = None
        if progress is None:
            progress = all(s is not None and s.isatty() for s in (sys.stdout, sys.stderr))
        if progress and self.total:
            try:
                from tqdm import tqdm
            except ImportError:  # tqdm is an optional extra: log lines then
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=self.total, unit="point", desc="sweep", file=sys.stderr)

    def done(self, record: dict[str, Any]) -> None:
        self.count += 1
        i = record["index"]
        self.records[i] = record
        where = f"point {i} ({self.count}/{self.total})"
        if record["status"] == "ok":
            if self.bar is None:
                logger.info("%s ok in %.3g s: %s", where, record["wall_time_s"],
                            self.plan.describe(i))
        else:
            self.failed += 1
            first = (str(record["error"]).splitlines() or [""])[0]
            logger.warning("%s FAILED: %s: %s (%s)", where, record["error_type"], first,
                           self.plan.describe(i))
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(failed=self.failed, refresh=False)
        if time.monotonic() - self.last_write > _MANIFEST_INTERVAL:
            self.write()

    def write(self) -> None:
        _write_manifest(self.out, self.plan, self.records)
        self.last_write = time.monotonic()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.write()


def _runs_here(scheduler: Any) -> bool:
    """Whether the points run on this machine: a LocalCluster started here, or no Dask."""
    return scheduler is None or (isinstance(scheduler, str) and scheduler in SCHEDULERS)


def _local_layout(n_workers: int | None, n_threads: int | None, n_points: int) -> tuple[int, int]:
    """Workers and Numba threads per point of a LocalCluster started here.

    ``n_threads`` defaults as ``fastnai run``'s ``--threads`` does: ``NUMBA_NUM_THREADS`` if
    set, else all cores, here divided among the workers (each runs one point at a time), so
    that the points running at once use every core. The workers default to cores //
    n_threads (every core a worker when neither is given), at most one per point.

    >>> _local_layout(2, 1, 10), _local_layout(None, 1, 1)
    ((2, 1), (1, 1))
    """
    from dask.system import CPU_COUNT

    if n_threads is None and "NUMBA_NUM_THREADS" in os.environ:
        n_threads = max_threads()
    if n_threads is None:
        workers = max(1, min(n_workers or CPU_COUNT, n_points))
        return workers, max(1, CPU_COUNT // workers)
    return max(1, min(n_workers or CPU_COUNT // n_threads, n_points)), n_threads


@contextlib.contextmanager
def _client(scheduler: Any, n_workers: int | None, n_threads: int | None) -> Iterator:
    """A ``distributed.Client`` for ``scheduler``; clusters started here are closed after
    (``n_workers`` and ``n_threads`` as :func:`_local_layout` resolved them)."""
    try:
        import distributed
    except ImportError:
        raise FastnaiError("sweeps on Dask need dask.distributed: pip install "
                           "'dask[distributed]' (or use scheduler='synchronous')") from None
    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    if scheduler is not None and not isinstance(scheduler, (str, os.PathLike)):
        if not hasattr(scheduler, "scheduler_address"):
            raise CaseError(f"scheduler = {scheduler!r}: expected a name ("
                            + ", ".join(SCHEDULERS) + "), an address, a scheduler file, a "
                            "distributed.Client or a cluster object")
        with distributed.Client(scheduler) as client:  # e.g. dask_jobqueue.SLURMCluster
            yield client
        return
    if scheduler in (None, "local", "threads"):
        processes = scheduler != "threads"
        kwargs: dict[str, Any] = {"n_workers": n_workers, "threads_per_worker": 1,
                                  "processes": processes, "silence_logs": logging.ERROR,
                                  **LOCAL_CLUSTER_QUIET}
        if processes:  # read at import in each worker: Numba's pool and the BLAS threads
            kwargs["env"] = dict.fromkeys(("NUMBA_NUM_THREADS", "OMP_NUM_THREADS",
                                           "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"),
                                          str(n_threads))
        logger.info("starting a LocalCluster: %d worker %s x %d Numba thread(s)", n_workers,
                    "processes" if processes else "threads", n_threads)
        with distributed.LocalCluster(**kwargs) as cluster, distributed.Client(cluster) as client:
            yield client
        return
    text = os.fspath(scheduler)
    try:
        if "://" in text:
            client = distributed.Client(text, timeout="30s")
        elif Path(text).is_file():
            client = distributed.Client(scheduler_file=text, timeout="30s")
        else:
            raise CaseError(f"scheduler = {text!r}: expected one of " + ", ".join(SCHEDULERS)
                            + ", an address such as tcp://host:8786, or an existing scheduler "
                            "file (dask scheduler --scheduler-file FILE)")
    except (OSError, TimeoutError) as exc:
        raise CaseError(f"scheduler {text!r}: cannot connect ({exc})") from None
    with client:
        yield client


def _check_scheduler(scheduler: Any) -> None:
    if isinstance(scheduler, (str, os.PathLike)):
        text = os.fspath(scheduler)
        if text not in SCHEDULERS and "://" not in text and not Path(text).is_file():
            raise CaseError(f"scheduler = {text!r}: expected one of " + ", ".join(SCHEDULERS)
                            + ", an address such as tcp://host:8786, or an existing scheduler "
                            "file (dask scheduler --scheduler-file FILE)")



def _batch_size(points_per_task: int | None, n_todo: int, n_workers: int) -> int:
    """Points per Dask task: as given, else enough tasks for TASKS_PER_WORKER per worker, at
    most MAX_AUTO_BATCH points each (a worker count of 0, an adaptive cluster still starting,
    counts as 1)."""
    if points_per_task is not None:
        return points_per_task
    return max(1, min(MAX_AUTO_BATCH, n_todo // (TASKS_PER_WORKER * max(1, n_workers))))


def _lost(out: Path, index: int, exc: BaseException) -> dict[str, Any]:
    """The record of a point whose task raised outside ``_run_point`` (the worker died, the
    task was cancelled): ok when its file was written before, else failed."""
    if _point_path(out / POINTS, index).is_file():
        return {"index": index, "status": "ok", "wall_time_s": math.nan, "error_type": None,
                "error": None, "exit_status": 0}
    record = _failure(index, exc, math.nan)
    _write_json(_failed_path(out / POINTS, index), record)
    return record


def _execute(plan: Plan, out: Path, todo: list[int], records: dict, *, scheduler: Any,
             n_workers: int | None, n_threads: int | None, points_per_task: int | None,
             progress: bool | None) -> dict[int, xr.Dataset]:
    """Run the points ``todo``; every finished point is on disk before it is recorded.

    Returns the Datasets of the points that ran (the merge uses them instead of reading their
    files back).
    """
    points = str(out / POINTS)
    tracker = _Tracker(plan, out, records, todo, progress)
    fresh: dict[int, xr.Dataset] = {}

    def done(record: dict) -> None:
        if "dataset" in record:
            fresh[record["index"]] = record.pop("dataset")
        tracker.done(record)

    try:
        if scheduler == "synchronous":
            with numba_threads(n_threads):  # None: NUMBA_NUM_THREADS if set, else all cores
                for i in todo:
                    done(_run_point(plan.raw_case, plan.overrides_for(i), points, i,
                                    plan.sweep_id, None, True))
            return fresh
        if scheduler in (None, "local", "threads"):
            n_workers, n_threads = _local_layout(n_workers, n_threads, len(todo))
        # on other schedulers None leaves each worker its own default (its NUMBA_NUM_THREADS)
        with _client(scheduler, n_workers, n_threads) as client:
            from distributed import as_completed

            token = uuid.uuid4().hex[:8]
            size = _batch_size(points_per_task, len(todo),
                               len(client.scheduler_info().get("workers", {})))
            batches = [todo[k:k + size] for k in range(0, len(todo), size)]
            if size > 1:
                logger.info("%d tasks of up to %d points each", len(batches), size)
            futures = {}
            try:
                for batch in batches:
                    future = client.submit(
                        _run_points, plan.raw_case, [(i, plan.overrides_for(i)) for i in batch],
                        points, plan.sweep_id, n_threads, True,
                        key=f"fastnai-points-{batch[0]}-{token}", pure=False)
                    futures[future] = batch
                for future in as_completed(list(futures)):
                    batch = futures.pop(future)
                    try:
                        batch_records = future.result()
                    except Exception as exc:  # the worker died (KilledWorker) or was cancelled
                        batch_records = [_lost(out, i, exc) for i in batch]
                    future.release()
                    for record in batch_records:
                        done(record)
            finally:
                if futures:
                    client.cancel(list(futures))
        return fresh
    finally:
        tracker.close()



def sweep(case: Case | str | os.PathLike | Mapping,
          vary: Mapping[str, Any] | Iterable[str] | None = None, *,
          zip: bool | None = None, overrides: Mapping[str, Any] | Iterable[str] | None = None,
          seeds: int | None = None, output_dir: str | os.PathLike | None = None,
          output: str | os.PathLike | None = None, scheduler: Any = None,
          n_workers: int | None = None, n_threads: int | None = None, resume: bool = True,
          join: str | None = None, ensemble: str | None = None, weights: Any = None,
          variables: Iterable[str] | None = None, points_per_task: int | None = None,
          progress: bool | None = None) -> xr.Dataset:
    """Run a case over values of some of its keys, as Dask tasks, and merge the results.

    Parameters
    ----------
    case
        A case (TOML path, dict, :class:`~fastnai.case.Case`), or a sweep file (TOML with a
        ``[sweep]`` table), whose settings the other arguments override.
    vary
        ``{key: spec}`` or ``["KEY=SPEC", ...]``: ranges ``"START:STOP:NUM[:log]"`` with or
        without units, ``"lognormal:MEDIAN:SIGMA:NUM"``, lists (module docstring).
    zip
        Pair the keys' values along ``sweep_point`` instead of making a grid (default False).
    overrides
        Fixed overrides of every point (``--set``).
    seeds
        Add the model's ``*.seed`` key with this many values (a seed ensemble; implies
        ``ensemble`` on it).
    output_dir
        Folder of the point files, ``sweep.json``, ``manifest.csv`` and the merged file;
        required unless the sweep file sets it. It must be reachable by the workers.
    output
        The merged netCDF file (default ``output_dir/sweep.nc``).
    scheduler
        ``None`` or ``"local"``: a LocalCluster of worker processes sized to the machine;
        ``"threads"``: a LocalCluster of threads in this process; ``"synchronous"``: no Dask,
        one point after another here; an address (``"tcp://host:8786"``), a scheduler file, a
        ``distributed.Client`` or a cluster object (``dask_jobqueue.SLURMCluster``, ...).
    n_workers
        Workers of a LocalCluster (default: cores // n_threads; every core when neither
        ``n_threads`` nor ``NUMBA_NUM_THREADS`` is set), at most one per point.
    n_threads
        Numba threads per point, 1 to ``NUMBA_NUM_THREADS`` on this machine (default, as for
        ``fastnai run``: ``NUMBA_NUM_THREADS`` if set, else all cores; on a LocalCluster the
        cores are divided among the workers, cores // n_workers each; on another scheduler
        each worker's own default). Each worker runs one point at a time.
    resume
        Run only the points without a result file (default); False deletes earlier results.
    join
        How to merge a dimension whose coordinate differs between points: ``"pad"`` (default),
        ``"outer"`` or ``"exact"``.
    ensemble, weights
        Add ``<var>_mean`` and ``<var>_std`` over this swept key (:func:`ensemble_stats`).
    variables
        Keep only these result variables in the merged Dataset (sweeps of large profiles whose
        scalars matter); the point files keep everything.
    points_per_task
        Points each Dask task runs, one after another (each still writes its own file when it
        finishes). Default: enough tasks for 4 per worker, at most 16 points a task, so that
        points of a few milliseconds do not pay Dask's per-task cost each (on 2 workers of a
        2-core machine, 64 band-bending points of 3000 nodes ran 1.5x faster in 8 tasks than
        in 64). Give 1 for points of very different lengths.
    progress
        A tqdm bar (True) or log lines (False); default: a bar when stdout and stderr are
        terminals.

    Returns
    -------
    xarray.Dataset
        The merged Dataset (module docstring): swept keys as dimensions with units,
        ``status`` and ``error`` per point. Failed points do not raise.

    Raises
    ------
    CaseError
        Bad case, key, value or setting; nothing ran.
    KeyboardInterrupt, Interrupted
        The sweep was stopped; finished points are on disk, and the same call resumes.

    Examples
    --------
    >>> import tempfile
    >>> case = {"model": {"kind": "band_bending"}, "mesh": {"n_nodes": 200},
    ...         "semiconductor": {"material": "anatase-TiO2", "thickness": "50 nm"},
    ...         "contact": {"material": "TiC"}}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     ds = sweep(case, {"contact.work_function": "4.1 eV:4.5 eV:3"}, output_dir=folder,
    ...                scheduler="synchronous")
    >>> ds["contact.work_function"].values.tolist(), ds["contact.work_function"].units
    ([4.1, 4.3, 4.5], 'eV')
    >>> ds.band_bending.dims, ds.status.values.tolist()
    (('contact.work_function',), ['ok', 'ok', 'ok'])
    >>> [round(float(v), 2) for v in ds.barrier_height]
    [-1.0, -0.8, -0.6]
    """
    spec = _layer(case, vary=vary, zip=zip, overrides=overrides, seeds=seeds,
                  output_dir=output_dir, join=join, ensemble=ensemble, weights=weights,
                  variables=variables)
    plan = plan_sweep(spec.case, spec.vary, zip=spec.zip, overrides=spec.overrides,
                      seeds=spec.seeds)
    dim = _resolve_ensemble(spec, plan)
    if spec.output_dir is None:
        raise CaseError("output_dir is required: the folder for the point files and the merged "
                        "result (-o DIR)")
    _check_scheduler(scheduler)
    _check_count(n_workers, "n_workers")
    check_threads(n_threads, "n_threads", here=_runs_here(scheduler))
    _check_count(points_per_task, "points_per_task")
    out = Path(spec.output_dir)
    merged = Path(output) if output is not None else out / MERGED
    _prepare(plan, out, merged, resume=resume,
             settings={"join": spec.join, "ensemble": dim, "weights": spec.weights,
                       "variables": spec.variables})
    records = _scan(out, plan.n_points)
    todo = [i for i, r in records.items() if r["status"] != "ok"]
    logger.info("sweep %s: %d points over %s, %d to run (%d finished before), into %s",
                plan.sweep_id, plan.n_points, ", ".join(plan.dims), len(todo),
                plan.n_points - len(todo), out)
    fresh = {}
    if todo:
        fresh = _execute(plan, out, todo, records, scheduler=scheduler, n_workers=n_workers,
                         n_threads=n_threads, points_per_task=points_per_task,
                         progress=progress)
    ds = _merge(out, _read_definition(out), join=spec.join, ensemble=dim, weights=spec.weights,
                variables=spec.variables, output=merged, write=True, fresh=fresh)
    logger.info("sweep %s: %d ok, %d failed; wrote %s", plan.sweep_id, ds.attrs["sweep_n_ok"],
                ds.attrs["sweep_n_failed"], merged)
    return ds


def array_index_from_environment() -> int:
    """The index of this batch array task, from ``SLURM_ARRAY_TASK_ID`` or ``PBS_ARRAY_INDEX``."""
    for name in ARRAY_INDEX_VARIABLES:
        text = os.environ.get(name)
        if text is not None:
            if not text.strip().isdigit():
                raise CaseError(f"{name} = {text!r}: expected a whole number")
            return int(text)
    raise CaseError("no array index: pass it (--array-task INDEX), or run inside a SLURM "
                    "(SLURM_ARRAY_TASK_ID) or PBS (PBS_ARRAY_INDEX) array job")


def run_array_task(case: Case | str | os.PathLike | Mapping,
                   vary: Mapping[str, Any] | Iterable[str] | None = None, *,
                   index: int | None = None, points_per_task: int = 1, zip: bool | None = None,
                   overrides: Mapping[str, Any] | Iterable[str] | None = None,
                   seeds: int | None = None, output_dir: str | os.PathLike | None = None,
                   n_threads: int | None = None) -> list[dict[str, Any]]:
    """Run the points of one batch array task in this process, without Dask.

    Task ``index`` runs points ``index * points_per_task`` up to the next task's first, skipping
    those already finished; a SLURM job array ``--array=0-(ceil(n_points/points_per_task) - 1)``
    covers the sweep (``fastnai sweep ... --dry-run`` prints the range). Afterwards
    :func:`merge` (``fastnai sweep ... --merge``) builds the merged Dataset.

    Parameters
    ----------
    case, vary, zip, overrides, seeds, output_dir
        As for :func:`sweep` (every task must give the same ones).
    index
        The array index; default from the environment (:func:`array_index_from_environment`).
    points_per_task
        Points each task runs.
    n_threads
        Numba threads, 1 to ``NUMBA_NUM_THREADS`` (default: ``NUMBA_NUM_THREADS`` if set, else
        all cores).

    Returns
    -------
    list of dict
        One record per point of the task: index, status (``"ok"``, ``"failed"``, or
        ``"skipped"`` when it was already finished), wall time, error.

    Examples
    --------
    >>> import os, tempfile
    >>> from fastnai.sweeps import merge
    >>> case = {"model": {"kind": "band_bending"}, "mesh": {"n_nodes": 200},
    ...         "semiconductor": {"material": "anatase-TiO2", "thickness": "50 nm"},
    ...         "contact": {"material": "TiC"}}
    >>> vary = {"contact.work_function": "4.1 eV,4.3 eV,4.5 eV"}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     for task in range(2):  # as if SLURM ran tasks 0 and 1 of --array=0-1
    ...         _ = run_array_task(case, vary, index=task, points_per_task=2, output_dir=folder)
    ...     ds = merge(folder)
    >>> ds.status.values.tolist()
    ['ok', 'ok', 'ok']
    """
    spec = _layer(case, vary=vary, zip=zip, overrides=overrides, seeds=seeds,
                  output_dir=output_dir)
    plan = plan_sweep(spec.case, spec.vary, zip=spec.zip, overrides=spec.overrides,
                      seeds=spec.seeds)
    dim = _resolve_ensemble(spec, plan)
    if spec.output_dir is None:
        raise CaseError("output_dir is required: the folder for the point files (-o DIR)")
    _check_count(points_per_task, "points_per_task")
    check_threads(n_threads, "n_threads")
    if index is None:
        index = array_index_from_environment()
    n_tasks = -(-plan.n_points // points_per_task)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n_tasks:
        raise CaseError(f"array index {index!r}: this sweep has {plan.n_points} points, "
                        f"{points_per_task} per task, so tasks 0 to {n_tasks - 1}")
    out = Path(spec.output_dir)
    _prepare(plan, out, out / MERGED, resume=True,
             settings={"join": spec.join, "ensemble": dim, "weights": spec.weights,
                       "variables": spec.variables})
    points = out / POINTS
    records = []
    with numba_threads(n_threads):
        for i in range(index * points_per_task, min(plan.n_points, (index + 1) * points_per_task)):
            if _point_path(points, i).is_file():
                records.append({"index": i, "status": "skipped", "wall_time_s": None,
                                "error_type": None, "error": None, "exit_status": 0})
                logger.info("point %d already finished: skipped", i)
                continue
            record = _run_point(plan.raw_case, plan.overrides_for(i), str(points), i,
                                plan.sweep_id, None)
            if record["status"] == "ok":
                logger.info("point %d ok in %.3g s: %s", i, record["wall_time_s"],
                            plan.describe(i))
            else:
                logger.warning("point %d FAILED: %s: %s (%s)", i, record["error_type"],
                               (str(record["error"]).splitlines() or [""])[0], plan.describe(i))
            records.append(record)
    return records
