"""Merging the point files of a sweep into one Dataset whose swept keys are dimensions."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._version import version as _version
from ..errors import CaseError, FastnaiError
from ..io import read_dataset, write_dataset
from .ensemble import ensemble_stats
from .files import DEFINITION, MERGED, POINTS, _local_io, _point_path, _read_definition, _scan, _write_manifest
from .plan import JOINS, POINT_DIM, Plan, _as_names, _plain, _suggest

_NAN_MEANS = "the sweep point failed or was not run (see status)"
_NAN_PAD = "past the end of this point's values along a ragged dimension (join='pad')"
_NAN_OUTER = "no value of this point at that coordinate (join='outer')"


@dataclasses.dataclass
class _DimLayout:
    """How one non-swept dimension is merged: 'aligned', 'pad' or 'outer'."""

    how: str
    size: int
    coord: xr.Variable | None = None  # aligned: the shared coordinate; outer: the union
    positions: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)  # outer


def _dim_layouts(datasets: Mapping[int, xr.Dataset], join: str) -> dict[str, _DimLayout]:
    layouts: dict[str, _DimLayout] = {}
    names: list[str] = []
    for ds in datasets.values():
        names.extend(d for d in ds.dims if d not in names)
    for d in names:
        present = {i: ds for i, ds in datasets.items() if d in ds.dims}
        sizes = {ds.sizes[d] for ds in present.values()}
        coords = {i: (ds[d].variable if d in ds.coords else None) for i, ds in present.items()}
        first = next(iter(coords.values()))
        with_coord = [c is not None for c in coords.values()]
        same = len(sizes) == 1 and (not any(with_coord) or (all(with_coord) and all(
            np.array_equal(c.values, first.values) for c in coords.values())))
        if same:
            layouts[d] = _DimLayout("aligned", sizes.pop(), first)
        elif join == "exact":
            raise FastnaiError(f"dimension {d!r} differs between the points (sizes "
                               f"{', '.join(map(str, sorted(sizes)))} or coordinate values): "
                               "merge with join='pad' (each point's own values, padded) or "
                               "join='outer' (the union of the coordinate values)")
        elif join == "outer" and all(with_coord):
            for i, c in coords.items():
                if np.unique(c.values).size != c.size:
                    raise FastnaiError(f"join='outer': the coordinate {d!r} of point {i} repeats "
                                       "values, so it cannot be aligned by value: use join='pad'")
            union = np.unique(np.concatenate([c.values for c in coords.values()]))
            layout = _DimLayout("outer", union.size, xr.Variable((d,), union, first.attrs))
            layout.positions = {i: np.searchsorted(union, c.values) for i, c in coords.items()}
            layouts[d] = layout
        else:
            layouts[d] = _DimLayout("pad", max(sizes))
    return layouts


def _fill_for(dtype: np.dtype, needs_fill: bool) -> tuple[np.dtype, Any]:
    if dtype.kind in "fc":
        return dtype, np.nan
    if dtype.kind in "iub":
        return (np.dtype("float64"), np.nan) if needs_fill else (dtype, 0)
    if dtype.kind in "USO":
        return np.dtype(object), ""
    if dtype.kind in "mM":
        return dtype, np.array("NaT", dtype=dtype)
    raise FastnaiError(f"cannot merge values of dtype {dtype}")


def _assemble(plan: Plan, layouts: Mapping[str, _DimLayout], name: str,
              source: Mapping[int, xr.Variable]) -> xr.Variable:
    """One merged variable: the point axis first, then its dims as laid out."""
    first = next(iter(source.values()))
    dims = first.dims
    for i, var in source.items():
        if var.dims != dims:
            raise FastnaiError(f"variable {name!r} has dimensions {dims} in one point and "
                               f"{var.dims} in point {i}: these points cannot share one Dataset "
                               "(sweep the key that changes its dimensions in separate sweeps)")
    n = plan.n_points
    ragged = any(layouts[d].how != "aligned" for d in dims)
    needs_fill = len(source) < n or ragged
    dtype, fill = _fill_for(first.dtype, needs_fill)
    out_dims = tuple(f"{d}_index" if layouts[d].how == "pad" else d for d in dims)
    data = np.full((n, *[layouts[d].size for d in dims]), fill, dtype=dtype)
    for i, var in source.items():
        index = []
        for d, size in zip(dims, var.shape, strict=True):
            layout = layouts[d]
            index.append(layout.positions[i] if layout.how == "outer" else np.arange(size))
        if index:
            data[i][np.ix_(*index)] = var.values
        else:
            data[i] = var.values
    attrs = dict(first.attrs)
    if dtype.kind == "f" and needs_fill:
        notes = [attrs["nan_means"]] if "nan_means" in attrs else []
        notes += [v.attrs["nan_means"] for v in source.values()
                  if "nan_means" in v.attrs and v.attrs["nan_means"] not in notes]
        if len(source) < n:
            notes.append(_NAN_MEANS)
        if any(layouts[d].how == "pad" for d in dims):
            notes.append(_NAN_PAD)
        if any(layouts[d].how == "outer" for d in dims):
            notes.append(_NAN_OUTER)
        attrs["nan_means"] = "; ".join(notes)
    data = data.reshape(plan.shape + data.shape[1:])
    return xr.Variable(plan.dims + out_dims, data, attrs)


def _collect(out: Path, plan: Plan, sweep_id: str,
             fresh: Mapping[int, xr.Dataset] | None = None) -> tuple[dict[int, xr.Dataset], dict]:
    """The result of every finished point (from ``fresh`` or its file) and every record."""
    records = _scan(out, plan.n_points)
    datasets = {}
    for i, rec in records.items():
        if rec["status"] != "ok":
            continue
        path = _point_path(out / POINTS, i)
        if fresh is not None and i in fresh:
            ds = fresh[i].copy()
        else:
            try:
                with _local_io():
                    ds = read_dataset(path)
            except (OSError, ValueError) as exc:
                raise FastnaiError(f"cannot read the point file {path}: {exc}") from None
        if ds.attrs.get("sweep_id") != sweep_id:
            raise FastnaiError(f"{path} belongs to another sweep (sweep_id "
                               f"{ds.attrs.get('sweep_id')!r}, expected {sweep_id!r})")
        # the same Python types whether the result was just computed or read from its file
        ds.attrs = {k: _plain(v) for k, v in ds.attrs.items()}
        rec["wall_time_s"] = float(ds.attrs.get("wall_time_s", math.nan))
        datasets[i] = ds
    return datasets, records


def _merged_dataset(plan: Plan, datasets: Mapping[int, xr.Dataset], records: Mapping[int, dict],
                    join: str, sweep_id: str) -> xr.Dataset:
    """Merge the point results (see the module docstring)."""
    layouts = _dim_layouts(datasets, join)
    sources: dict[str, dict[int, xr.Variable]] = {}
    is_coord: dict[str, bool] = {}
    for i, ds in datasets.items():
        for name, var in ds.variables.items():
            if name in ds.dims and layouts[name].how != "pad":
                continue  # an index coordinate that stays one (aligned or outer)
            sources.setdefault(name, {})[i] = var
            is_coord[name] = is_coord.get(name, False) or name in ds.coords
    variables = {name: _assemble(plan, layouts, name, src)
                 for name, src in sources.items()}
    coords: dict[str, xr.Variable] = {}
    if plan.zipped:
        coords[POINT_DIM] = xr.Variable((POINT_DIM,), np.arange(plan.n_points),
                                        {"units": "1", "long_name": "index of the sweep point"})
    for axis in plan.axes:
        attrs = {"long_name": axis.long_name} | ({"units": axis.units} if axis.units else {})
        values = np.array(axis.values, dtype=object if isinstance(axis.values[0], str) else None)
        coords[axis.key] = xr.Variable((plan.dims[0] if plan.zipped else axis.key,), values,
                                       attrs)
    for d, layout in layouts.items():
        if layout.how in ("aligned", "outer") and layout.coord is not None:
            coords[d] = layout.coord
    data_vars = {}
    for name, var in variables.items():
        if is_coord[name]:
            coords[name] = var
        else:
            data_vars[name] = var
    status = np.array([records[i]["status"] for i in range(plan.n_points)], dtype=object)
    errors = np.array([f"{r['error_type']}: {r['error']}" if r["status"] == "failed" else ""
                       for r in (records[i] for i in range(plan.n_points))], dtype=object)
    data_vars["status"] = xr.Variable(plan.dims, status.reshape(plan.shape), {
        "long_name": "outcome of the point: ok, failed (see error) or missing (not run yet)"})
    data_vars["error"] = xr.Variable(plan.dims, errors.reshape(plan.shape), {
        "long_name": "error type and message of a failed point (empty otherwise)"})
    # numeric attributes of the points (wall time, solver statistics) as variables
    numeric = sorted({k for ds in datasets.values() for k, v in ds.attrs.items()
                      if isinstance(v, (int, float, np.integer, np.floating))
                      and not isinstance(v, bool) and k not in ("sweep_point",)})
    for k in numeric:
        values = np.full(plan.n_points, np.nan)
        for i, ds in datasets.items():
            v = ds.attrs.get(k)
            if isinstance(v, (int, float, np.integer, np.floating)):
                values[i] = float(v)
        attrs = {"units": "s" if k.endswith("_s") else "1",
                 "long_name": f"{k} of each point's run (from its attributes)"}
        if not np.all(np.isfinite(values)):
            attrs["nan_means"] = _NAN_MEANS
        data_vars[f"run_{k}"] = xr.Variable(plan.dims, values.reshape(plan.shape), attrs)
    merged = xr.Dataset(data_vars, coords)
    merged.attrs.update(_merged_attrs(plan, datasets, records, layouts, join, sweep_id))
    return merged


def _merged_attrs(plan, datasets, records, layouts, join, sweep_id) -> dict[str, Any]:
    statuses = [r["status"] for r in records.values()]
    shared: dict[str, Any] = {}
    if datasets:
        first, *rest = datasets.values()
        for k, v in first.attrs.items():
            if all(k in ds.attrs and np.array_equal(np.asarray(ds.attrs[k]), np.asarray(v))
                   for ds in rest):
                shared[k] = v
    for k in ("case", "created", "wall_time_s", "references", "sweep_point", "sweep_id"):
        shared.pop(k, None)
    references = sorted({r.strip() for ds in datasets.values()
                         for r in str(ds.attrs.get("references", "")).split(",") if r.strip()})
    fixed = "\n".join(f"{k} = {json.dumps(v)}" for k, v in plan.overrides.items())
    attrs = {
        "fastnai_version": _version,
        "model": plan.kind,
        "case": plan.case_toml,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **{k: v for k, v in shared.items() if k not in ("fastnai_version", "model")},
        "wall_time_s": float(sum(float(ds.attrs.get("wall_time_s", 0.0))
                                 for ds in datasets.values())),
        "references": ", ".join(references),
        "Conventions": "CF-1.10",
        "sweep_id": sweep_id,
        "sweep_mode": "zip" if plan.zipped else "grid",
        "sweep_keys": ", ".join(a.key for a in plan.axes),
        "sweep_dims": ", ".join(plan.dims),
        "sweep_overrides": fixed,
        "sweep_join": join,
        "sweep_ragged_dims": ", ".join(d for d, lay in layouts.items() if lay.how == "pad"),
        "sweep_n_points": plan.n_points,
        "sweep_n_ok": statuses.count("ok"),
        "sweep_n_failed": statuses.count("failed"),
        "sweep_n_missing": statuses.count("missing"),
    }
    return attrs


def merge(output_dir: str | os.PathLike, *, join: str | None = None, ensemble: str | None = None,
          weights: Any = None, variables: Iterable[str] | None = None,
          output: str | os.PathLike | None = None, write: bool = True) -> xr.Dataset:
    """Merge the point files of a sweep folder into one Dataset (and write it).

    Used by :func:`sweep` at its end, and on its own after batch array tasks
    (:func:`run_array_task`) or to merge again with another ``join``; points without a file
    are ``"missing"``. Nothing is run.

    Parameters
    ----------
    output_dir
        The sweep folder (with ``sweep.json``).
    join
        ``"pad"``, ``"outer"`` or ``"exact"`` (module docstring); default: the sweep's.
    ensemble, weights
        Add ensemble statistics over this swept key (:func:`ensemble_stats`); default: the
        sweep's.
    variables
        Keep only these result variables (and the coordinates they need) in the merged Dataset;
        default: the sweep's, or all. The point files keep everything.
    output
        Merged file; default ``output_dir/sweep.nc``.
    write
        Write the merged file and ``manifest.csv``.

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> import tempfile
    >>> from fastnai.sweeps import sweep
    >>> case = {"model": {"kind": "band_bending"}, "mesh": {"n_nodes": 200},
    ...         "semiconductor": {"material": "anatase-TiO2", "thickness": "50 nm"},
    ...         "contact": {"material": "TiC"}}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = sweep(case, {"semiconductor.thickness": "20 nm,50 nm"}, output_dir=folder,
    ...               scheduler="synchronous")
    ...     padded = merge(folder, write=False)
    ...     outer = merge(folder, join="outer", write=False)
    >>> padded.sizes["x_index"], padded.x.dims, outer.sizes["x"]
    (200, ('semiconductor.thickness', 'x_index'), 399)
    """
    out = Path(output_dir)
    definition = _read_definition(out)
    if definition is None:
        raise CaseError(f"{str(out)!r} is not a sweep folder (no {DEFINITION})")
    return _merge(out, definition, join=join, ensemble=ensemble, weights=weights,
                  variables=variables, output=output, write=write)



def _merge(out: Path, definition: Mapping, *, join: str | None, ensemble: str | None,
           weights: Any, variables: Iterable[str] | None, output: str | os.PathLike | None,
           write: bool, fresh: Mapping[int, xr.Dataset] | None = None) -> xr.Dataset:
    plan = Plan.from_json(definition)
    names = _as_names(variables if variables is not None else definition.get("variables"))
    join = join or definition.get("join", "pad")
    if join not in JOINS:
        raise CaseError(f"join = {join!r}: expected one of " + ", ".join(map(repr, JOINS)))
    if ensemble is None:
        ensemble = definition.get("ensemble")
        weights = definition.get("weights") if weights is None else weights
    datasets, records = _collect(out, plan, definition["sweep_id"], fresh)
    if names is not None and datasets:
        known = sorted({str(v) for d in datasets.values() for v in d.data_vars})
        unknown = [v for v in names if v not in known]
        if unknown:
            raise CaseError(f"variables: {', '.join(map(repr, unknown))} not in the results"
                            + _suggest(unknown[0], known) + "; they have " + ", ".join(known))
        datasets = {i: d[[v for v in names if v in d.data_vars]] for i, d in datasets.items()}
    ds = _merged_dataset(plan, datasets, records, join, definition["sweep_id"])
    if ensemble is not None:
        if ensemble not in plan.dims:
            raise CaseError(f"ensemble {ensemble!r}: expected one of the swept keys "
                            + ", ".join(plan.dims))
        ds = ensemble_stats(ds, ensemble, weights=weights)
    if write:
        with _local_io():
            write_dataset(ds, Path(output) if output is not None else out / MERGED)
        _write_manifest(out, plan, records)
    return ds
