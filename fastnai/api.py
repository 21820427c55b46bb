"""Public entry points: load a case, run it (and write the result), sweep it over key values.

:func:`run` is the one place a run's lifecycle is put together: the output and checkpoint
paths are checked and the memory estimated before any work, signals are caught from then to
the written file (:class:`~fastnai.lifecycle.Lifecycle`), and the result gets its provenance
attributes and is checked finite before it is returned or written, once for every model.
:func:`sweep` (in :mod:`fastnai.sweeps`) runs every point through :func:`run`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from .case import Case, load_case
from .errors import CaseError, ConvergenceError
from .io import check_output_path, remove_stale_temporaries, write_dataset
from .lifecycle import Lifecycle, StopNow
from .models import model_module
from .resources import check_memory

__all__ = ["default_checkpoint", "load_case", "run", "sweep", "time_dependent"]


def sweep(*args, **kwargs):
    """Run a case over a grid of key values on Dask; see :func:`fastnai.sweeps.sweep`."""
    from .sweeps import sweep as _sweep

    return _sweep(*args, **kwargs)


def time_dependent(case: Case) -> bool:
    """Whether ``case`` runs a protocol in time (and so takes checkpoints)."""
    return model_module(case.kind).time_dependent(case)


def default_checkpoint(output: str | os.PathLike) -> Path:
    """The checkpoint beside an output file: ``OUT.nc`` -> ``OUT.ckpt.npz``.

    >>> default_checkpoint("runs/gitt.nc").as_posix()
    'runs/gitt.ckpt.npz'
    """
    return Path(output).with_suffix(".ckpt.npz")


def run(case: Case | str | Path | Mapping,
        overrides: Mapping[str, Any] | Iterable[str] | None = None, *,
        output: str | os.PathLike | None = None, checkpoint: str | os.PathLike | None = None,
        checkpoint_every: float = 600.0, resume: bool = False, keep_checkpoint: bool = False,
        progress: bool | Callable | None = None) -> xr.Dataset:
    """Run a case and return its result Dataset (SI units, provenance in ``attrs``).

    Parameters
    ----------
    case
        A :class:`~fastnai.case.Case`, a TOML path, or a dict of the same structure.
    overrides
        ``{"section.key": value}`` or ``["section.key=value"]``, applied after the case.
    output
        If given, the Dataset is also written there as netCDF (atomically, umask modes).
    checkpoint
        Time-dependent models: checkpoint file; default beside ``output`` (``OUT.ckpt.npz``)
        when there is one, else none.
    checkpoint_every
        Wall time between periodic checkpoints over the whole run [s]; SIGTERM or SIGINT
        always writes one and raises :class:`~fastnai.errors.Interrupted`.
    resume
        Continue from the checkpoint (written for the same case and fastnai version).
    keep_checkpoint
        Keep the checkpoint once the output is written (it is removed by default).
    progress
        None: a bar on a terminal, log lines on the ``fastnai`` logger otherwise; False:
        silent; a callable gets a dict per report.

    Raises
    ------
    CaseError
        Bad input, found before any work (exit status 2 on the command line).
    OutputError
        An output or checkpoint path that cannot be written, found before any work (exit 2).
    Interrupted
        A signal stopped the run; the checkpoint (if any) is named in it (exit 4).

    Examples
    --------
    >>> ds = run({"model": {"kind": "band_bending"},
    ...           "semiconductor": {"material": "anatase-TiO2", "thickness": "50 nm"},
    ...           "contact": {"material": "TiC"}, "mesh": {"n_nodes": 400}})
    >>> round(float(ds.band_bending), 2)
    0.98
    """
    inputs = [case] if isinstance(case, (str, Path)) else []
    if isinstance(case, Case):
        if overrides is not None:
            case = case.with_overrides(overrides)
    else:
        case = load_case(case, overrides)
    module = model_module(case.kind)
    timed = module.time_dependent(case)
    if not timed and (checkpoint is not None or resume):
        raise CaseError(f"{case.kind} is a steady model here: checkpoints and --resume apply to "
                        "time-dependent runs only")
    if output is not None:
        output = check_output_path(output, role="output file", inputs=inputs)
        if checkpoint is None and timed:
            checkpoint = default_checkpoint(output)
    if checkpoint is not None:
        checkpoint = check_output_path(checkpoint, role="checkpoint",
                                       inputs=inputs + ([output] if output else []))
        if resume and not checkpoint.is_file():
            raise CaseError(f"--resume: checkpoint {str(checkpoint)!r} does not exist")
    check_memory(case)
    for path in (output, checkpoint):
        if path is not None:
            remove_stale_temporaries(path)
    life = Lifecycle(case, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                     resume=resume, keep_checkpoint=keep_checkpoint, progress=progress)
    if resume:
        life.read()  # an edited case or another version: CaseError before any work
    with life:
        try:
            start = time.perf_counter()
            ds = module.run(case, lifecycle=life) if timed else module.run(case)
            ds.attrs = {**provenance(case, time.perf_counter() - start), **ds.attrs}
            bad = _non_finite(ds)
            if bad:
                raise ConvergenceError(f"{case.kind}: non-finite {', '.join(bad)} in the result",
                                       [])
            life.raise_if_stopped()
            if output is not None:
                write_dataset(ds, output)
            life.raise_if_stopped()
        except StopNow:
            raise life.stop_at_start() from None
    life.finished()
    return ds


def _non_finite(ds: xr.Dataset) -> list[str]:
    from .variables import non_finite

    return non_finite(ds)


def provenance(case: Case, wall_time_s: float) -> dict:
    """The provenance attrs of SPEC 2.2 (:func:`fastnai.variables.provenance`)."""
    from .variables import provenance as attrs

    return attrs(case, wall_time_s)
