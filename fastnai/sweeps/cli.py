"""``fastnai sweep``: the subcommand's arguments and its handler (exit statuses in
:mod:`fastnai.sweeps`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CaseError, Interrupted
from ..resources import THREADS_DEFAULT, check_threads
from .execute import _runs_here, run_array_task, sweep
from .files import MANIFEST, MERGED, POINTS, _scan
from .merge import merge
from .plan import JOINS, _check_count, _layer, _literal, _resolve_ensemble, _Spec, plan_sweep
from .plot import plot_sweep

logger = logging.getLogger("fastnai.sweeps")



def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``sweep`` subcommand to the ``fastnai`` parser (``sub.add_parser``)."""
    parser = subparsers.add_parser(
        "sweep", help="run a case over values of its keys on Dask and merge the results",
        description="Run a case at every point of a grid (or zipped list) of key values, as "
                    "Dask tasks, streaming one netCDF per point and writing the merged Dataset "
                    "with the swept keys as dimensions. Resumes by default.",
        epilog="SPEC: START:STOP:NUM[:log] (units allowed: '1e17 cm^-3:1e19 cm^-3:5:log'), "
               "lognormal:MEDIAN:SIGMA:NUM, or a list 'a,b,c'. Exit statuses: 0 all points ok; "
               "1 points failed (other errors) or missing; 2 bad input; 3 points did not "
               "converge; 4 interrupted (rerun to resume).")
    parser.add_argument("case", help="case file, or sweep file (TOML with a [sweep] table)")
    parser.add_argument("--vary", action="append", default=[], metavar="KEY=SPEC",
                        help="a key and its values; several make a grid")
    parser.add_argument("--zip", action="store_true", default=None,
                        help="pair the --vary values (equal lengths) instead of a grid")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="fixed override of every point")
    parser.add_argument("--seeds", type=int, metavar="N",
                        help="ensemble of N random seeds (the model's *.seed key), with mean "
                             "and std")
    parser.add_argument("--ensemble", metavar="KEY",
                        help="add mean and std over this swept key (e.g. a particle radius)")
    parser.add_argument("--weights", metavar="volume|W1,W2,...",
                        help="ensemble weights: 'volume' (value^3) or one number per value")
    parser.add_argument("--scheduler", metavar="local|threads|synchronous|ADDRESS|FILE",
                        help="Dask scheduler: a LocalCluster (default 'local'), in-process "
                             "threads, no Dask, an address tcp://host:8786, or a scheduler file")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="LocalCluster workers (default: cores // threads, or every core "
                             "when neither --threads nor NUMBA_NUM_THREADS is set)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help=f"Numba threads per point, at most the default ({THREADS_DEFAULT}, "
                             "which a LocalCluster divides among its workers: cores // workers "
                             "each)")
    parser.add_argument("-o", "--output", metavar="DIR|FILE.nc",
                        help="sweep folder, or merged file FILE.nc with the folder FILE_sweep/ "
                             "(default: CASE stem + _sweep/)")
    parser.add_argument("--no-resume", dest="resume", action="store_false",
                        help="delete earlier results in the folder and run every point")
    parser.add_argument("--join", choices=JOINS,
                        help="merge of dimensions that differ between points (default pad)")
    parser.add_argument("--variables", metavar="VAR,VAR",
                        help="keep only these result variables in the merged file")
    parser.add_argument("--plot", action="append", default=[], metavar="VAR",
                        help="write a figure of this variable (OUTDIR/sweep_VAR.png)")
    parser.add_argument("--dry-run", action="store_true", help="print the points and exit")
    parser.add_argument("--array-task", nargs="?", const="env", metavar="INDEX",
                        help="run only this batch array task's points, in-process (INDEX "
                             "default: SLURM_ARRAY_TASK_ID or PBS_ARRAY_INDEX)")
    parser.add_argument("--points-per-task", type=int, metavar="K",
                        help="points each Dask task or batch array task runs, one after another "
                             "(default: 1 per array task; on Dask, batches of up to 16 for 4 "
                             "tasks per worker)")
    parser.add_argument("--merge", action="store_true",
                        help="only merge the point files in the folder (after array tasks)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="log warnings only; print no summary")
    return parser


def _configure_logging(quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.INFO
    logger.setLevel(level)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s fastnai sweep %(levelname)s: "
                                               "%(message)s", "%Y-%m-%dT%H:%M:%S"))
        logger.addHandler(handler)
        logger.propagate = False


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM (a batch scheduler's stop) raises Interrupted in the main thread for the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted("SIGTERM")

    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _outputs(args, spec: _Spec) -> tuple[Path, Path]:
    if args.output:
        text = args.output
        if text.endswith(".nc"):
            return Path(text[: -len(".nc")] + "_sweep"), Path(text)
        return Path(text), Path(text) / MERGED
    if spec.output_dir is not None:
        return Path(spec.output_dir), Path(spec.output_dir) / MERGED
    return Path(Path(args.case).stem + "_sweep"), Path(Path(args.case).stem + "_sweep") / MERGED


def _weights_arg(text: str | None) -> Any:
    if text is None or text in ("volume", "equal"):
        return text
    items = [_literal(t.strip()) for t in text.split(",")]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
        raise CaseError(f"--weights {text!r}: expected 'volume', 'equal' or numbers 'w1,w2,...'")
    return items


def _status_of(statuses: list[str], errors: list[str]) -> int:
    failed = [e for s, e in zip(statuses, errors, strict=True) if s == "failed"]
    if "missing" in statuses:
        return 1
    if not failed:
        return 0
    return 3 if all(e.startswith("ConvergenceError") for e in failed) else 1


def cli_main(args) -> int:
    """Handle ``fastnai sweep`` (arguments from :func:`add_parser`); return the exit status.

    Raises :class:`~fastnai.errors.CaseError` (exit 2) for bad input and
    :class:`~fastnai.errors.Interrupted` (exit 4) on SIGTERM or Ctrl-C, for ``cli.main`` to
    report; returns 0, 1 or 3 after a sweep (module docstring).
    """
    _configure_logging(args.quiet)
    check_threads(args.threads, "--threads",
                  here=_runs_here(args.scheduler) or args.array_task is not None)
    _check_count(args.workers, "--workers")
    _check_count(args.points_per_task, "--points-per-task")
    if args.seeds is not None:
        _check_count(args.seeds, "--seeds")
    modes = [args.merge, args.array_task is not None, args.dry_run]
    if sum(modes) > 1:
        raise CaseError("--merge, --array-task and --dry-run exclude each other")
    if args.array_task is not None and not args.resume:
        raise CaseError("--no-resume with --array-task would delete the other tasks' points; "
                        "clear the folder before submitting the array instead")
    spec = _layer(args.case, vary=args.vary, zip=args.zip, overrides=args.overrides,
                  seeds=args.seeds, join=args.join, ensemble=args.ensemble,
                  weights=_weights_arg(args.weights), variables=args.variables)
    out, merged = _outputs(args, spec)
    plan = plan_sweep(spec.case, spec.vary, zip=spec.zip, overrides=spec.overrides,
                      seeds=spec.seeds)
    dim = _resolve_ensemble(spec, plan)
    plots = list(spec.plot) + list(args.plot)
    if args.dry_run:
        per_task = args.points_per_task or 1
        n_tasks = -(-plan.n_points // per_task)
        print(f"# {plan.n_points} points ({'zip' if plan.zipped else 'grid'} over "
              f"{', '.join(plan.dims)}; shape {'x'.join(map(str, plan.shape))}); "
              f"{n_tasks} array tasks at {per_task} per task: --array=0-{n_tasks - 1}")
        for i in range(plan.n_points):
            print(f"{i:6d}  {plan.describe(i)}")
        return 0
    if args.array_task is not None:
        index = None if args.array_task == "env" else _literal(args.array_task)
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
            raise CaseError(f"--array-task {args.array_task!r}: expected a whole number")
        with _sigterm_raises():
            records = run_array_task(args.case, args.vary, index=index,
                                     points_per_task=args.points_per_task or 1, zip=args.zip,
                                     overrides=args.overrides, seeds=args.seeds,
                                     output_dir=out, n_threads=args.threads)
        statuses = ["ok" if r["status"] == "skipped" else r["status"] for r in records]
        errors = [f"{r['error_type']}: {r['error']}" if r["status"] == "failed" else ""
                  for r in records]
        return _status_of(statuses, errors)
    if args.merge:
        ds = merge(out, join=spec.join, ensemble=dim, weights=spec.weights,
                   variables=spec.variables, output=merged)
    else:
        try:
            with _sigterm_raises():
                ds = sweep(args.case, args.vary, zip=args.zip, overrides=args.overrides,
                           seeds=args.seeds, output_dir=out, output=merged,
                           scheduler=args.scheduler, n_workers=args.workers,
                           n_threads=args.threads, resume=args.resume, join=args.join,
                           ensemble=args.ensemble, weights=_weights_arg(args.weights),
                           variables=args.variables, points_per_task=args.points_per_task)
        except (KeyboardInterrupt, Interrupted) as exc:
            done = sum(r["status"] == "ok" for r in _scan(out, plan.n_points).values())
            raise Interrupted(f"sweep interrupted ({exc or 'Ctrl-C'}): {done} of {plan.n_points} "
                              f"points are finished in {out / POINTS}; run the same command "
                              "again to resume (only the missing points run)") from None
    for var in plots:
        path = plot_sweep(ds, var, out / f"sweep_{var}.png")
        if not args.quiet:
            print(f"wrote {path}")
    statuses = [str(s) for s in np.ravel(ds["status"].values)]
    errors = [str(e) for e in np.ravel(ds["error"].values)]
    status = _status_of(statuses, errors)
    if not args.quiet:
        print(f"sweep: {statuses.count('ok')} ok, {statuses.count('failed')} failed, "
              f"{statuses.count('missing')} missing of {len(statuses)} points; wrote {merged}")
        flat = [i for i, s in enumerate(statuses) if s == "failed"]
        for i in flat[:10]:
            print(f"  point {i} ({plan.describe(i)}): {errors[i].splitlines()[0]}")
        if len(flat) > 10:
            print(f"  ... and {len(flat) - 10} more (see {out / MANIFEST})")
        if status:
            print(f"exit status {status}: "
                  + ("some points did not converge" if status == 3 else
                     "some points are missing (run the sweep or the array tasks again)"
                     if "missing" in statuses else "some points failed"))
    return status
