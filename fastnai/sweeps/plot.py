"""Figures of a merged sweep: one value per point against a swept key, or one series per
point.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import FastnaiError
from .plan import POINT_DIM, _fmt


def _label(ds: xr.Dataset, name: str) -> str:
    var = ds[name]
    long_name = str(var.attrs.get("long_name", ""))
    keys = str(ds.attrs.get("sweep_keys", "")).split(", ")
    text = long_name if long_name and len(long_name) <= 40 and name not in keys else name
    units = var.attrs.get("units")
    return f"{text} ({units})" if units and units != "1" else text


def _scale(ax, axis: str, values: np.ndarray) -> None:
    """Logarithmic axis for positive values spanning more than two decades; symmetric-log
    (linear below the smallest positive value) when they start at 0 and span more than three
    (a time axis with a nucleation spike in the first milliseconds)."""
    try:
        v = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return
    v = v[np.isfinite(v)]
    positive = v[v > 0]
    if v.size < 2 or positive.size < 2 or np.any(v < 0):
        return
    setter = ax.set_xscale if axis == "x" else ax.set_yscale
    if positive.size == v.size and positive.max() / positive.min() > 100.0:
        setter("log")
    elif positive.max() / positive.min() > 1000.0:
        setter("symlog", linthresh=float(positive.min()))


def plot_sweep(ds: xr.Dataset, var: str, path: str | os.PathLike | None = None, *,
               x: str | None = None, hue: str | None = None):
    """Plot one variable of a merged sweep: a value per point, or a series per point.

    - A variable with one value per point (``interface_field``) is drawn against the swept key
      ``x`` (default: the first swept dimension with more than one value; for a zipped sweep,
      the first key), one line per value of the other swept key ``hue``.
    - A variable with one more dimension (``voltage`` on ``t``, a profile on ``x``) is drawn
      against that dimension's coordinate (per point for padded dimensions), one line per
      sweep point.

    Failed points are gaps. ``<v>_mean`` is drawn with a band of plus or minus ``<v>_std``
    when that exists. Axes with positive values spanning more than two decades are
    logarithmic (symmetric-log when they start at 0, as times do).

    Parameters
    ----------
    ds
        A merged sweep Dataset.
    var
        The variable to plot.
    path
        Figure file (PNG, PDF, ...; matplotlib Agg). Default: return the figure.
    x, hue
        Swept dimensions for the horizontal axis and the line colours (one value per point).

    Returns
    -------
    pathlib.Path or matplotlib.figure.Figure

    Examples
    --------
    >>> import tempfile
    >>> from fastnai.sweeps import sweep
    >>> case = {"model": {"kind": "band_bending"}, "mesh": {"n_nodes": 200},
    ...         "semiconductor": {"material": "anatase-TiO2", "thickness": "50 nm"},
    ...         "contact": {"material": "TiC"}}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     ds = sweep(case, {"contact.work_function": "4.1 eV,4.5 eV"}, output_dir=folder,
    ...                scheduler="synchronous")
    ...     png = plot_sweep(ds, "band_bending", f"{folder}/bb.png")
    ...     png.stat().st_size > 0
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if var not in ds:
        raise FastnaiError(f"plot_sweep: no variable {var!r} in the Dataset")
    da = ds[var]
    dims = [d for d in str(ds.attrs.get("sweep_dims", "")).split(", ") if d in da.dims]
    if not dims and "status" in ds:
        dims = [d for d in ds["status"].dims if d in da.dims]
    rest = [d for d in da.dims if d not in dims]
    std = ds.get(var[: -len("_mean")] + "_std") if var.endswith("_mean") else None
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    if not rest:
        _draw_values(ax, ds, da, std, dims, x, hue)
    elif len(rest) == 1:
        _draw_series(ax, ds, da, std, dims, rest[0])
    else:
        raise FastnaiError(f"plot_sweep draws one value or one series per point; {var} has the "
                           f"dimensions {rest} besides the swept ones: select them first")
    ax.set_ylabel(_label(ds, var))
    values = np.asarray(da.values, dtype=float)
    if np.all(values[np.isfinite(values)] > 0):
        _scale(ax, "y", values)
    ax.set_title(f"{ds.attrs.get('model', '')} sweep: {var}", fontsize=9)
    fig.tight_layout()
    if path is None:
        return fig
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def _draw_values(ax, ds: xr.Dataset, da: xr.DataArray, std, dims: list, x, hue) -> None:
    """One value per point: against the swept key ``x``, one line per value of ``hue``."""
    if POINT_DIM in dims:
        keys = [k for k in str(ds.attrs.get("sweep_keys", "")).split(", ") if k in ds.coords]
        xname = x or (keys[0] if keys else POINT_DIM)
        xv = ds[xname].values
        order = np.argsort(xv, kind="stable")
        ax.plot(xv[order], da.values[order], "o-")
        if std is not None:
            s = std.values[order]
            ax.fill_between(xv[order], da.values[order] - s, da.values[order] + s, alpha=0.3)
    else:
        xname = x or next((d for d in dims if da.sizes[d] > 1), dims[0] if dims else None)
        if xname is None:
            raise FastnaiError(f"plot_sweep: {da.name} has no swept dimension to plot against")
        hues = [d for d in dims if d != xname]
        if hue is not None:
            hues = [hue] + [d for d in hues if d != hue]
        if len(hues) > 1 and any(da.sizes[d] > 1 for d in hues[1:]):
            raise FastnaiError(f"plot_sweep: {da.name} has the swept dimensions {dims}; select "
                               "all but two first, e.g. ds.isel({...: 0})")
        line = da.transpose(*(hues[:1] + [xname]), *hues[1:])
        xv = ds[xname].values
        units = ds[hues[0]].attrs.get("units") if hues else None
        for k in range(line.shape[0] if hues else 1):
            y = np.asarray(line.values[k] if hues else line.values).reshape(len(xv), -1)[:, 0]
            label = f"{hues[0]} = {_fmt(ds[hues[0]].values[k].item(), units)}" if hues else None
            ax.plot(xv, y, "o-", label=label)
            if std is not None:
                s = std.transpose(*line.dims).values
                s = np.asarray(s[k] if hues else s).reshape(len(xv), -1)[:, 0]
                ax.fill_between(xv, y - s, y + s, alpha=0.3)
        if hues:
            ax.legend(fontsize=8, frameon=False)
    ax.set_xlabel(_label(ds, xname))
    _scale(ax, "x", ds[xname].values)


def _draw_series(ax, ds: xr.Dataset, da: xr.DataArray, std, dims: list, sdim: str) -> None:
    """A series per point along ``sdim`` (against its coordinate), one line per point."""
    coord = next((c for c in (sdim, sdim.removesuffix("_index")) if c in ds.coords
                  and ds[c].dims[-1:] == (sdim,) and set(ds[c].dims) <= set(da.dims)), None)
    combos = list(itertools.product(*[range(da.sizes[d]) for d in dims]))
    if len(combos) > 24:
        raise FastnaiError(f"plot_sweep: {len(combos)} series are too many for one figure; "
                           "select some points first, e.g. ds.isel({...: slice(0, 5)})")
    xs_all = []
    for combo in combos:
        where = dict(zip(dims, combo, strict=True))
        y = da.isel(where).values
        xv = (ds[coord].isel({d: k for d, k in where.items() if d in ds[coord].dims}).values
              if coord is not None else np.arange(y.size))
        keep = np.isfinite(y) & np.isfinite(xv)
        label = ", ".join(f"{d.split('.')[-1]} = "
                          f"{_fmt(ds[d].values[k].item(), ds[d].attrs.get('units'))}"
                          for d, k in where.items())
        ax.plot(xv[keep], y[keep], label=label or None)
        if std is not None:
            s = std.isel(where).values[keep]
            ax.fill_between(xv[keep], y[keep] - s, y[keep] + s, alpha=0.3)
        xs_all.append(xv[keep])
    if dims:
        ax.legend(fontsize=7, frameon=False)
    ax.set_xlabel(_label(ds, coord) if coord is not None else sdim)
    if xs_all:
        _scale(ax, "x", np.concatenate(xs_all))
