"""Public entry points: load a case, run it (and write the result), sweep it over key values.

:func:`sweep` lives in :mod:`fastnai.sweeps` (Dask, merging, ensembles); it runs every point
through :func:`run`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from .case import Case, load_case
from .errors import CaseError
from .io import write_dataset
from .models import model_module
from .sweeps import sweep

__all__ = ["load_case", "run", "sweep"]


def run(case: Case | str | Path | Mapping,
        overrides: Mapping[str, Any] | Iterable[str] | None = None, *,
        output: str | os.PathLike | None = None, checkpoint: str | os.PathLike | None = None,
        checkpoint_every: float = 600.0, resume: bool = False) -> xr.Dataset:
    """Run a case and return its result Dataset (SI units, provenance in ``attrs``).

    Parameters
    ----------
    case
        A :class:`~fastnai.case.Case`, a TOML path, or a dict of the same structure.
    overrides
        ``{"section.key": value}`` or ``["section.key=value"]``, applied after the case.
    output
        If given, the Dataset is also written there as netCDF (atomically).
    checkpoint, checkpoint_every, resume
        Time-dependent models: checkpoint file, wall-time interval between checkpoints [s]
        (SIGTERM also writes one and raises :class:`~fastnai.errors.Interrupted`), and
        whether to continue from the checkpoint.

    Examples
    --------
    >>> ds = run({"model": {"kind": "band_bending"},
    ...           "semiconductor": {"material": "anatase-TiO2", "thickness": "50 nm"},
    ...           "contact": {"material": "TiC"}, "mesh": {"n_nodes": 400}})
    >>> round(float(ds.band_bending), 2)
    0.98
    """
    if isinstance(case, Case):
        if overrides is not None:
            case = case.with_overrides(overrides)
    else:
        case = load_case(case, overrides)
    module = model_module(case.kind)
    if checkpoint is not None or resume:
        if not getattr(module, "TIME_DEPENDENT", False):
            raise CaseError(f"{case.kind} is a steady model: checkpoints and --resume apply to "
                            "time-dependent models only")
        ds = module.run(case, checkpoint=None if checkpoint is None else str(checkpoint),
                        checkpoint_every=checkpoint_every, resume=resume)
    else:
        ds = module.run(case)
    if output is not None:
        write_dataset(ds, output)
    return ds

