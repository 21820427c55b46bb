"""Ensemble statistics over one swept dimension: mean and spread, weighted or not."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..errors import CaseError


def _moments(x: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread over the last axis, ignoring NaN members (see :func:`ensemble_stats`)."""
    valid = np.isfinite(x)
    xs = np.where(valid, x, 0.0)
    w = valid.astype(float) if weights is None else np.where(valid, weights, 0.0)
    total = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (w * xs).sum(axis=-1) / total
        dev2 = (w * (xs - mean[..., None]) ** 2).sum(axis=-1)
        if weights is None:
            var = np.where(total >= 2, dev2 / (total - 1.0), np.nan)
        else:
            var = dev2 / total
    mean = np.where(total > 0, mean, np.nan)
    return mean, np.sqrt(np.where(total > 0, var, np.nan))


def _ensemble_weights(ds: xr.Dataset, dim: str, weights: Any) -> np.ndarray | None:
    if weights is None or (isinstance(weights, str) and weights == "equal"):
        return None
    members = ds.sizes[dim]
    if isinstance(weights, str):
        if weights != "volume":
            raise CaseError(f"weights = {weights!r}: expected 'equal', 'volume' or one number "
                            f"per value of {dim}")
        try:
            values = ds[dim].values.astype(float)
        except (TypeError, ValueError):
            raise CaseError(f"weights = 'volume' needs numeric values of {dim}") from None
        if np.any(values <= 0):
            raise CaseError(f"weights = 'volume' needs {dim} > 0 (a radius)")
        w = values**3
    else:
        try:
            w = np.asarray(weights, dtype=float).ravel()
        except (TypeError, ValueError):
            raise CaseError(f"weights = {weights!r}: expected numbers") from None
        if w.size != members or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise CaseError(f"weights: expected {members} finite numbers >= 0 (one per value "
                            f"of {dim}) with a positive sum, got {weights!r}")
    return w / w.sum()


def ensemble_stats(ds: xr.Dataset, dim: str, *, weights: Any = None,
                   ragged: str = "interp") -> xr.Dataset:
    """Add the mean and spread over an ensemble dimension of a merged sweep Dataset.

    For every numeric data variable ``v`` along ``dim`` (not ``status``, ``error``, ``run_*``)
    this adds ``v_mean`` and ``v_std`` without ``dim``, and ``ensemble_count``, the members
    that ran (status ``"ok"``). Members that failed (NaN) are left out.

    - Unweighted (``weights=None``): the mean and the sample standard deviation
      ``sqrt(sum (x - mean)^2 / (n - 1))`` (NaN for fewer than 2 members), the usual estimate
      for Monte-Carlo repetitions (seeds).
    - Weighted (``weights="volume"`` for ``value^3``, i.e. volume fractions when ``dim`` is a
      sphere radius; or one weight per member, normalised here): the weighted mean
      ``sum w x / sum w`` and the spread of the weighted distribution,
      ``sqrt(sum w (x - mean)^2 / sum w)``. The weights are stored as ``ensemble_weight``.

    A variable along a dimension that was padded in the merge (each member has its own
    coordinate, e.g. the adaptive time steps ``t`` of a transient run) is, with
    ``ragged="interp"``, first interpolated linearly onto a common grid: the union of the
    members' coordinate values within the range they all cover. The grid is a coordinate
    ``<coord>_ensemble``; it is one dimension when it is the same for every other sweep point,
    else it is padded along ``<coord>_ensemble_index`` like the merge does. This needs the
    variable to have no other non-swept dimension and the coordinate to be non-decreasing;
    variables that do not qualify (and all ragged ones with ``ragged="skip"``) are listed in
    the attribute ``ensemble_skipped``.

    Parameters
    ----------
    ds
        A merged sweep Dataset (:func:`sweep`, :func:`merge`).
    dim
        The ensemble dimension, a swept key (``nucleation.seed``, ``semiconductor.thickness``).
    weights
        ``None`` or ``"equal"``, ``"volume"``, or a sequence with one weight per member.
    ragged
        ``"interp"`` or ``"skip"``.

    Returns
    -------
    xarray.Dataset
        A copy of ``ds`` with the statistics.

    Examples
    --------
    >>> ds = xr.Dataset({"a": (("seed",), [1.0, 2.0, 6.0], {"units": "V", "long_name": "a"}),
    ...                  "status": (("seed",), ["ok", "ok", "ok"])},
    ...                 coords={"seed": [0, 1, 2]})
    >>> stats = ensemble_stats(ds, "seed")
    >>> float(stats.a_mean), float(stats.a_std), int(stats.ensemble_count)
    (3.0, 2.6457513110645907, 3)
    >>> float(ensemble_stats(ds, "seed", weights=[1, 1, 2]).a_mean)
    3.75
    """
    if dim not in ds.dims:
        raise CaseError(f"ensemble dimension {dim!r} is not a dimension of the Dataset "
                        f"({', '.join(map(str, ds.dims))})")
    if ragged not in ("interp", "skip"):
        raise CaseError(f"ragged = {ragged!r}: expected 'interp' or 'skip'")
    w = _ensemble_weights(ds, dim, weights)
    out = ds.copy()
    sweep_dims = [d for d in str(ds.attrs.get("sweep_dims", "")).split(", ") if d in ds.dims]
    if not sweep_dims:
        sweep_dims = [d for d in ds["status"].dims] if "status" in ds else [dim]
    padded = {f"{d}_index": d for d in str(ds.attrs.get("sweep_ragged_dims", "")).split(", ")
              if d}
    skipped: list[str] = []
    grids: dict[str, Any] = {}
    for name, var in ds.data_vars.items():
        if (dim not in var.dims or var.dtype.kind not in "fiu" or name.startswith("run_")
                or name in ("status", "error")):
            continue
        ragged_dims = [d for d in var.dims if d in padded]
        label = var.attrs.get("long_name", name)
        if not ragged_dims:
            order = [d for d in var.dims if d != dim] + [dim]
            mean, std = _moments(var.transpose(*order).values.astype(float), w)
            dims = tuple(order[:-1])
            _add_stats(out, name, var, dims, mean, std, dim, label)
            continue
        others = [d for d in var.dims if d not in (dim, *ragged_dims)]
        if ragged == "skip" or len(ragged_dims) > 1 or any(d not in sweep_dims for d in others):
            skipped.append(name)
            continue
        rdim = ragged_dims[0]
        coord = padded[rdim]
        if coord not in ds.coords:
            skipped.append(name)
            continue
        if coord not in grids:
            grids[coord] = _common_grid(ds, coord, rdim, dim, others)
        grid = grids[coord]
        if grid is None:
            skipped.append(name)
            continue
        means, stds = _interpolated_moments(var.transpose(*others, dim, rdim).values, grid, w)
        shape = tuple(ds.sizes[d] for d in others)
        means = means.reshape(*shape, grid["size"])
        stds = stds.reshape(*shape, grid["size"])
        _add_stats(out, name, var, (*others, grid["dim"]), means, stds, dim, label)
        if grid["coord_name"] not in out.coords:
            out.coords[grid["coord_name"]] = grid["coord"]
    _annotate(out, ds, dim, w, weights, skipped)
    return out


def _interpolated_moments(values: np.ndarray, grid: dict, w) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over the members of a padded series, each member interpolated onto its
    group's common grid; ``values`` (..., member, padded), ``grid`` of :func:`_common_grid`.
    Returns (groups, grid size) arrays, NaN beyond each group's grid."""
    values = values.astype(float)
    values = values.reshape(-1, *values.shape[-2:])
    means = np.full((values.shape[0], grid["size"]), np.nan)
    stds = np.full_like(means, np.nan)
    for g, (x_members, x_grid) in enumerate(grid["groups"]):
        ys = np.full((x_grid.size, values.shape[1]), np.nan)
        for m, x in x_members.items():
            ys[:, m] = np.interp(x_grid, x, values[g, m, : x.size])
        means[g, : x_grid.size], stds[g, : x_grid.size] = _moments(ys, w)
    return means, stds


def _annotate(out: xr.Dataset, ds: xr.Dataset, dim: str, w, weights, skipped: list) -> None:
    """The members that ran, their weights and what was skipped, on ``out``."""
    ok = (ds["status"] == "ok") if "status" in ds else xr.ones_like(ds[dim], dtype=bool)
    out["ensemble_count"] = ok.sum(dim).astype("int64")
    out["ensemble_count"].attrs = {"units": "1", "long_name": f"ensemble members along {dim} "
                                                             "that ran (status ok)"}
    if w is not None:
        out.coords["ensemble_weight"] = ((dim,), w, {
            "units": "1", "long_name": f"normalised weight of each ensemble member along {dim}"})
    out.attrs["ensemble_dim"] = dim
    out.attrs["ensemble_weights"] = ("equal" if w is None else weights if isinstance(weights, str)
                                     else "given")
    out.attrs["ensemble_skipped"] = ", ".join(skipped)


def _add_stats(out, name, var, dims, mean, std, dim, label) -> None:
    units = {"units": var.attrs["units"]} if "units" in var.attrs else {}
    for suffix, data, method, what in (("mean", mean, "mean", "mean"),
                                       ("std", std, "standard_deviation", "standard deviation")):
        attrs = {**units, "long_name": f"ensemble {what} over {dim} of {label}",
                 "cell_methods": f"{dim}: {method}"}
        if not np.all(np.isfinite(data)):
            attrs["nan_means"] = ("no member ran, fewer than two members (std), or outside the "
                                  "range all members cover")
        out[f"{name}_{suffix}"] = xr.Variable(dims, data, attrs)


def _common_grid(ds, coord, rdim, dim, others) -> dict | None:
    """Per other-sweep point: the members' coordinates and the union grid they all cover."""
    c = ds[coord]
    if set(c.dims) != {*others, dim, rdim}:
        return None
    values = c.transpose(*others, dim, rdim).values.astype(float)
    values = values.reshape(-1, *values.shape[-2:])
    groups = []
    for g in range(values.shape[0]):
        members = {}
        for m in range(values.shape[1]):
            x = values[g, m]
            x = x[: np.flatnonzero(np.isfinite(x))[-1] + 1] if np.isfinite(x).any() else x[:0]
            if x.size == 0:
                continue
            if not np.all(np.isfinite(x)) or np.any(np.diff(x) < 0):
                return None
            members[m] = x
        if members:
            lo = max(x[0] for x in members.values())
            hi = min(x[-1] for x in members.values())
            union = np.unique(np.concatenate(list(members.values())))
            grid = union[(union >= lo) & (union <= hi)]
        else:
            grid = np.zeros(0)
        groups.append((members, grid))
    size = max((gr.size for _, gr in groups), default=0)
    name = f"{coord}_ensemble"
    attrs = {**{k: v for k, v in c.attrs.items() if k in ("units",)},
             "long_name": f"common grid of the ensemble statistics: {coord} of all members "
                          "within the range they all cover"}
    same = all(gr.size == groups[0][1].size and np.array_equal(gr, groups[0][1])
               for _, gr in groups)
    if same:
        return {"groups": groups, "size": size, "dim": name, "coord_name": name,
                "coord": xr.Variable((name,), groups[0][1] if groups else np.zeros(0), attrs)}
    data = np.full((len(groups), size), np.nan)
    for g, (_, gr) in enumerate(groups):
        data[g, : gr.size] = gr
    shape = tuple(ds.sizes[d] for d in others)
    attrs["nan_means"] = "past the end of this sweep point's common grid"
    return {"groups": groups, "size": size, "dim": f"{name}_index", "coord_name": name,
            "coord": xr.Variable((*others, f"{name}_index"), data.reshape(*shape, size), attrs)}
