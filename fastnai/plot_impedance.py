"""Nyquist and Bode figures of impedance spectra (matplotlib is imported only when plotting)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from .errors import FastnaiError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGSIZE = (10.0, 4.5)  # width, height [in]
LABEL_OFFSET = 0.03  # distance of a decade label from its marker, in Nyquist axes fractions
PHASE_LABEL = "−phase of Z (°)"  # capacitive positive, as −Im Z on the Nyquist panel
_PREFIXES = {-12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G"}
_SYMBOLS = {"ohm": "Ω", "ohms": "Ω", "um": "µm"}
_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def nyquist_bode_figure(frequency, impedance, path: str | Path, *, fit=None, labels=None,
                        unit: str = "Ω m²", title: str | None = None) -> Path:
    """Write a Nyquist panel (equal aspect, frequency decades marked) beside Bode |Z| and phase.

    Parameters
    ----------
    frequency
        One spectrum's frequencies, or a list of arrays (or a 2-D array, one row per
        spectrum) [Hz].
    impedance
        The complex impedance at those frequencies, in the same shape or list; Im Z < 0 for
        capacitive behaviour [unit].
    path
        Output file; the suffix picks the format (``.png`` at 130 dpi, ``.pdf``, ``.svg``).
    fit
        A fitted circuit, drawn as a line over the data markers: a ``(frequency_fit,
        z_fit)`` tuple, or a list of such tuples (``None`` entries allowed), one per spectrum.
        Its grid may be denser than the data's.
    labels
        One legend label per spectrum.
    unit
        How the impedance unit is printed on the axes.
    title
        A title over the whole figure.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> f = np.logspace(-1, 4, 26)
    >>> z = 1e-3 + 1 / (2j * np.pi * f * 0.5 + 1 / 2e-3)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     nyquist_bode_figure(f, z, pathlib.Path(tmp) / "eis.svg").name
    'eis.svg'
    """
    _check_suffix(path)
    fig = build_nyquist_bode(frequency, impedance, fit=fit, labels=labels, unit=unit, title=title)
    return _write(fig, path)


def impedance_figure(ds: xr.Dataset, path: str | Path, *, fit=None) -> Path:
    """Write the Nyquist/Bode figure of a result holding ``impedance_real``/``impedance_imag``.

    The Dataset has the coordinate ``frequency`` [Hz] and, optionally, a leading dimension
    ``spectrum`` (one spectrum per protocol step). Spectra are labelled by ``spectrum_label``
    (a variable, coordinate or attribute), else by ``spectrum_voltage`` [V], else
    "spectrum k". Non-finite entries (padding of spectra shorter than the frequency axis) are
    dropped. The unit comes from the variables' ``units`` attribute (``ohm m2`` when absent).
    ``fit`` is as in :func:`nyquist_bode_figure`.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> f = np.logspace(-1, 4, 26)
    >>> z = 1e-3 + 1 / (2j * np.pi * f * 0.5 + 1 / 2e-3)
    >>> ds = xr.Dataset({"impedance_real": ("frequency", z.real, {"units": "ohm m2"}),
    ...                  "impedance_imag": ("frequency", z.imag, {"units": "ohm m2"})},
    ...                 coords={"frequency": ("frequency", f, {"units": "Hz"})})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     impedance_figure(ds, pathlib.Path(tmp) / "eis.png").name
    'eis.png'
    """
    _check_suffix(path)
    return _write(build_impedance_figure(ds, fit=fit), path)


def build_impedance_figure(ds: xr.Dataset, *, fit=None) -> Figure:
    """The Figure :func:`impedance_figure` writes (not attached to pyplot; nothing to close)."""
    frequency, impedance, labels = _dataset_spectra(ds)
    model = ds.attrs.get("model")
    return build_nyquist_bode(frequency, impedance, fit=fit, labels=labels,
                              unit=_impedance_unit(ds), title=f"{model}: impedance" if model else None)


def build_nyquist_bode(frequency, impedance, *, fit=None, labels=None, unit: str = "Ω m²",
                       title: str | None = None) -> Figure:
    """The Figure :func:`nyquist_bode_figure` writes, laid out but not saved.

    It is a plain :class:`matplotlib.figure.Figure`, not attached to pyplot (nothing to
    close). Its axes carry the labels ``"nyquist"``, ``"bode magnitude"`` and
    ``"bode phase"``; the decade markers are the Nyquist line with gid ``"decades"``.

    Examples
    --------
    >>> f = np.logspace(0, 3, 16)
    >>> fig = build_nyquist_bode(f, 1 / (2j * np.pi * f * 1e-3 + 1.0))
    >>> [ax.get_label() for ax in fig.axes]
    ['nyquist', 'bode magnitude', 'bode phase']
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    spectra = _spectra(frequency, impedance)
    fits = _fits(fit, len(spectra))
    labels = _labels(labels, len(spectra))
    colors = _colors(len(spectra))
    fig = Figure(figsize=FIGSIZE)
    FigureCanvasAgg(fig)  # a renderer to measure the decade labels with
    grid = fig.add_gridspec(2, 2)  # no hspace: tight_layout sets the gaps
    nyquist = fig.add_subplot(grid[:, 0], label="nyquist")
    magnitude = fig.add_subplot(grid[0, 1], label="bode magnitude")
    phase = fig.add_subplot(grid[1, 1], sharex=magnitude, label="bode phase")
    for (f, z), fitted, color, label in zip(spectra, fits, colors, labels, strict=True):
        _draw_spectrum((nyquist, magnitude, phase), f, z, fitted, color, label)
    _square_limits(nyquist, spectra + [pair for pair in fits if pair is not None])
    decades = [_decade_points(f, z) for f, z in spectra]
    for (decade, x, y), color in zip(decades, colors, strict=True):
        if decade.size:
            nyquist.plot(x, y, ls="none", marker="D", ms=4.5, mfc=color, mec="k", mew=0.7,
                         zorder=4, gid="decades")
    nyquist.set_xlabel(f"Re Z ({unit})")
    nyquist.set_ylabel(f"−Im Z ({unit})")
    nyquist.set_aspect("equal", adjustable="box")  # a semicircle stays round
    magnitude.set_ylabel(f"|Z| ({unit})")
    magnitude.tick_params(labelbottom=False)  # the frequency axis is shared with the phase
    phase.set_ylabel(PHASE_LABEL)
    phase.set_xlabel("frequency (Hz)")
    for ax in (nyquist, magnitude, phase):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    legend_width = _legend(fig, labels, colors, has_decades=any(d.size for d, _, _ in decades),
                           has_fit=any(pair is not None for pair in fits))
    # the legend keeps a strip at the right, off the data; the layout comes before the decade
    # labels, which are measured in the final axes
    fig.tight_layout(rect=(0.0, 0.0, 1.0 - legend_width, 1.0))
    _label_decades(nyquist, spectra, colors)
    return fig


def format_frequency(hz: float) -> str:
    """A power of ten in Hz with an SI prefix: ``1 mHz``, ``100 mHz``, ``10 Hz``, ``1 kHz``.

    >>> [format_frequency(f) for f in (1e-3, 0.1, 10.0, 1e3, 1e5)]
    ['1 mHz', '100 mHz', '10 Hz', '1 kHz', '100 kHz']
    """
    exponent = int(round(np.log10(hz)))
    group = 3 * (exponent // 3)
    if group not in _PREFIXES:
        return f"1e{exponent} Hz"
    return f"{10 ** (exponent - group)} {_PREFIXES[group]}Hz"


def pretty_unit(units: str) -> str:
    """A UDUNITS string as printed on an axis: ``ohm m2`` -> ``Ω m²``.

    >>> [pretty_unit(u) for u in ("ohm m2", "ohm", "ohm g", "ohm cm^2")]
    ['Ω m²', 'Ω', 'Ω g', 'Ω cm²']
    """
    words = []
    for token in units.replace("*", " ").split():
        match = re.fullmatch(r"([A-Za-zµΩ]+)\^?(-?\d+)?", token)
        if match is None:
            words.append(token)
            continue
        symbol, power = match.groups()
        words.append(_SYMBOLS.get(symbol, symbol) + (power or "").translate(_SUPERSCRIPTS))
    return " ".join(words)


def _draw_spectrum(axes: tuple[Axes, Axes, Axes], f: np.ndarray, z: np.ndarray, fitted, color,
                   label: str | None) -> None:
    """Data markers (a faint line between them when there is no fit) and the fit line."""
    nyquist, magnitude, phase = axes
    data = {"color": color, "marker": "o", "ms": 3.5, "mfc": "none", "mew": 0.9, "zorder": 2,
            "ls": "-" if fitted is None else "none", "lw": 0.6, "gid": "data"}
    nyquist.plot(z.real, -z.imag, label=label, **data)
    magnitude.loglog(f, np.abs(z), **data)
    phase.semilogx(f, -np.degrees(np.angle(z)), **data)
    if fitted is None:
        return
    f_fit, z_fit = fitted
    line = {"color": color, "lw": 1.3, "zorder": 3, "gid": "fit"}  # over the markers
    nyquist.plot(z_fit.real, -z_fit.imag, **line)
    magnitude.loglog(f_fit, np.abs(z_fit), **line)
    phase.semilogx(f_fit, -np.degrees(np.angle(z_fit)), **line)


def _square_limits(ax: Axes, spectra: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Equal x and y spans around all points, −Im Z from (just below) zero: a square panel."""
    x = np.concatenate([z.real for _, z in spectra])
    y = np.concatenate([-z.imag for _, z in spectra])
    y_low = min(float(y.min()), 0.0)
    span = max(float(x.max() - x.min()), float(y.max()) - y_low)
    if span <= 0.0:  # a single point, or all spectra at one point
        span = max(float(np.abs(x).max()), float(np.abs(y).max()), 1e-30)
    margin = 0.06 * span
    span += 2.0 * margin
    # centred, but no Re Z < 0 shown for data that have none (a steep, blocking spectrum)
    x_low = max(0.5 * float(x.max() + x.min() - span), min(float(x.min()), 0.0) - margin)
    ax.set_xlim(x_low, x_low + span)
    ax.set_ylim(y_low - margin, y_low - margin + span)


def _decade_points(f: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The powers of ten of frequency within a spectrum's range [Hz, as log10] and where the
    spectrum passes them on the Nyquist plane (Re Z, −Im Z), interpolated in log f."""
    log_f = np.log10(f)
    decades = np.arange(np.ceil(log_f[0] - 1e-9), np.floor(log_f[-1] + 1e-9) + 1.0)
    return decades, np.interp(decades, log_f, z.real), np.interp(decades, log_f, -z.imag)


def _label_decades(ax: Axes, spectra: list[tuple[np.ndarray, np.ndarray]], colors: list) -> None:
    """Label each decade marker with its frequency where the label fits.

    A label goes off the curve on the side away from the spectrum's centre, or failing that at
    45° to it or on the other side. A position is refused when the label's measured box leaves
    the axes, overlaps a label already placed (on any spectrum) or covers a data or fit line;
    with every position refused the decade keeps its marker and goes unlabelled.
    """
    renderer = ax.figure.canvas.get_renderer()
    ax.apply_aspect()  # the final box, so that text and data share one display scale
    frame = ax.get_window_extent(renderer)
    lines = [line for line in ax.lines if line.get_gid() in ("data", "fit")]
    obstacles = np.concatenate([_densify(ax.transData.transform(line.get_xydata()))
                                for line in lines])
    placed = []
    for (f, z), color in zip(spectra, colors, strict=True):
        curve = ax.transLimits.transform(np.column_stack([z.real, -z.imag]))  # axes fractions
        centre = curve.mean(axis=0)
        for decade, x, y in zip(*_decade_points(f, z), strict=True):
            point = ax.transLimits.transform((x, y))
            for direction in _directions(f, z, decade, point - centre, ax):
                anchor = point + LABEL_OFFSET * direction
                text = ax.text(anchor[0], anchor[1], format_frequency(10.0**decade),
                               transform=ax.transAxes, fontsize=7, color=color,
                               gid="decade label", **_alignment(direction))
                box = text.get_window_extent(renderer).padded(2.0)
                inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 \
                    and box.y1 <= frame.y1
                covers = np.any((obstacles[:, 0] > box.x0) & (obstacles[:, 0] < box.x1)
                                & (obstacles[:, 1] > box.y0) & (obstacles[:, 1] < box.y1))
                if inside and not covers and not any(box.overlaps(other) for other in placed):
                    placed.append(box)
                    break
                text.remove()


def _directions(f: np.ndarray, z: np.ndarray, decade: float, outward: np.ndarray,
                ax: Axes) -> list[np.ndarray]:
    """Unit vectors (axes fractions) to try a decade label at: the normal to the curve that
    points ``outward``, then 45° either side of it, then the opposite normal."""
    log_f = np.log10(f)
    around = decade + np.array([-0.15, 0.15])
    before, after = ax.transLimits.transform(np.column_stack(
        [np.interp(around, log_f, z.real), np.interp(around, log_f, -z.imag)]))
    tangent = after - before
    length = float(np.hypot(*tangent))
    tangent = tangent / length if length > 1e-9 else np.array([1.0, 0.0])
    normal = np.array([-tangent[1], tangent[0]])
    if np.dot(normal, outward) < 0.0:
        normal = -normal
    diagonal = np.sqrt(0.5)
    return [normal, diagonal * (normal + tangent), diagonal * (normal - tangent), -normal]


def _alignment(direction: np.ndarray) -> dict[str, str]:
    """Text alignment that puts a label on the ``direction`` side of its anchor."""
    ha = "left" if direction[0] > 0.4 else "right" if direction[0] < -0.4 else "center"
    va = "bottom" if direction[1] > 0.4 else "top" if direction[1] < -0.4 else "center"
    return {"ha": ha, "va": va}


def _densify(xy: np.ndarray, n_sub: int = 8) -> np.ndarray:
    """Points along a polyline, ``n_sub`` per segment, so that a label cannot sit across it."""
    if len(xy) < 2:
        return xy
    t = np.linspace(0.0, len(xy) - 1.0, (len(xy) - 1) * n_sub + 1)
    k = np.arange(len(xy))
    return np.column_stack([np.interp(t, k, xy[:, 0]), np.interp(t, k, xy[:, 1])])


def _legend(fig: Figure, labels: list[str | None], colors: list, *, has_decades: bool,
            has_fit: bool) -> float:
    """The figure's legend at its top right: spectra, the decade marker and the fit line (a
    second column beyond 16 entries). Returns its width as a fraction of the figure's."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=color, marker="o", ms=4, mfc="none", ls="none",
                      label=label or "data") for label, color in zip(labels, colors, strict=True)]
    if has_decades:
        handles.append(Line2D([], [], color="k", marker="D", ms=4.5, mfc="0.7", mew=0.7,
                              ls="none", label="frequency decade"))
    if has_fit:
        handles.append(Line2D([], [], color="0.3", lw=1.3, label="fitted circuit"))
    top = 0.92 if fig.get_suptitle() else 0.98
    legend = fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(1.0, top),
                        frameon=False, fontsize=8, ncols=1 + (len(handles) - 1) // 16)
    return legend.get_window_extent(fig.canvas.get_renderer()).width / fig.bbox.width


def _write(fig: Figure, path: str | Path) -> Path:
    """Write a laid-out figure, creating the folder; the suffix picks the format (png at 130
    dpi, as :func:`fastnai.plot._save` writes; no second layout pass, which would drop the
    legend's strip)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    return path


def _check_suffix(path: str | Path) -> None:
    """Refuse, before any work, an output whose suffix names no format matplotlib writes."""
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = Path(path).suffix.lower().lstrip(".")
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix not in formats:
        raise FastnaiError(f"cannot write a figure to {str(path)!r}: the suffix must name a format, "
                           f"e.g. .png, .pdf or .svg (supported: {', '.join(sorted(formats))})")


def _colors(n: int) -> list:
    """Distinct colours for up to ten spectra, an ordered colour map beyond."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](k) for k in range(n)]
    return [colormaps["viridis"](k / (n - 1)) for k in range(n)]


def _labels(labels, n: int) -> list[str | None]:
    """One label (or None) per spectrum."""
    if labels is None:
        return [None] * n
    if isinstance(labels, str):
        labels = [labels]
    labels = [str(label) for label in labels]
    if len(labels) != n:
        raise FastnaiError(f"{len(labels)} labels given for {n} spectra: give one label per spectrum")
    return labels


def _spectra(frequency, impedance) -> list[tuple[np.ndarray, np.ndarray]]:
    """Checked (frequency, impedance) pairs, one per spectrum, sorted by frequency."""
    frequencies = _split(frequency, "frequency")
    impedances = _split(impedance, "impedance")
    if len(frequencies) != len(impedances):
        raise FastnaiError(f"{len(frequencies)} frequency arrays but {len(impedances)} impedance "
                           "arrays: give one impedance array per spectrum")
    return [_checked(f, z, f"spectrum {k}")
            for k, (f, z) in enumerate(zip(frequencies, impedances, strict=True))]


def _split(values, name: str) -> list[np.ndarray]:
    """A 1-D array, a 2-D array (one row each) or a list of 1-D arrays -> list of arrays."""
    if isinstance(values, (list, tuple)) and values and np.ndim(values[0]) > 0:
        arrays = [np.asarray(v) for v in values]
    else:
        array = np.asarray(values)
        arrays = list(array) if array.ndim == 2 else [array]
    for array in arrays:
        if array.ndim != 1:
            raise FastnaiError(f"{name} must be 1-D per spectrum, got shape {array.shape}")
    return arrays


def _checked(f, z, what: str) -> tuple[np.ndarray, np.ndarray]:
    """One spectrum's frequency [Hz] and complex impedance, validated and sorted by frequency."""
    f, z = np.asarray(f), np.asarray(z)
    if f.ndim != 1 or z.ndim != 1:
        raise FastnaiError(f"{what}: frequency and impedance must be 1-D, got shapes {f.shape} "
                           f"and {z.shape}")
    if f.size == 0 or z.size == 0:
        raise FastnaiError(f"{what}: empty arrays ({f.size} frequencies, {z.size} impedance values)")
    if f.size != z.size:
        raise FastnaiError(f"{what}: {f.size} frequencies but {z.size} impedance values")
    if np.iscomplexobj(f) or not np.issubdtype(f.dtype, np.number):
        raise FastnaiError(f"{what}: frequency must be real numbers [Hz], got dtype {f.dtype}")
    if not np.issubdtype(z.dtype, np.number):
        raise FastnaiError(f"{what}: impedance must be complex numbers, got dtype {z.dtype}")
    f, z = f.astype(float), z.astype(complex)
    if not np.all(np.isfinite(f) & (f > 0.0)):
        raise FastnaiError(f"{what}: frequencies must be finite and positive [Hz]; found "
                           f"{f[~(np.isfinite(f) & (f > 0.0))][:3].tolist()}")
    if not np.all(np.isfinite(z)):
        raise FastnaiError(f"{what}: impedance has {int(np.sum(~np.isfinite(z)))} non-finite values")
    order = np.argsort(f)
    return f[order], z[order]


def _fits(fit, n: int) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """One checked (frequency, impedance) fit pair, or None, per spectrum."""
    if fit is None:
        return [None] * n
    if isinstance(fit, tuple) and len(fit) == 2 and _is_vector(fit[0]):
        fit = [fit]
    if not isinstance(fit, (list, tuple)) or len(fit) != n:
        count = len(fit) if isinstance(fit, (list, tuple)) else "no list of"
        raise FastnaiError(f"fit: {count} (frequency, impedance) pairs for {n} spectra: give a "
                           "(frequency_fit, z_fit) tuple, or a list of them (or None) per spectrum")
    pairs = []
    for k, pair in enumerate(fit):
        if pair is not None and not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise FastnaiError(f"fit {k}: expected a (frequency_fit, z_fit) pair or None")
        pairs.append(None if pair is None else _checked(pair[0], pair[1], f"fit {k}"))
    return pairs


def _is_vector(values) -> bool:
    """Whether ``values`` is one 1-D array of numbers (not a pair of arrays)."""
    if isinstance(values, (list, tuple)):
        return all(np.ndim(v) == 0 for v in values)
    return np.ndim(values) == 1


def _dataset_spectra(ds: xr.Dataset) -> tuple[list[np.ndarray], list[np.ndarray], list | None]:
    """Frequencies [Hz], complex impedances and labels of the spectra in a result Dataset."""
    missing = [name for name in ("frequency", "impedance_real", "impedance_imag")
               if name not in ds.variables]
    if missing:
        raise FastnaiError(f"the Dataset has no {', '.join(missing)}: an impedance figure needs "
                           "frequency [Hz], impedance_real and impedance_imag")
    real, imag, frequency = ds["impedance_real"], ds["impedance_imag"], ds["frequency"]
    several = "spectrum" in real.dims
    if several:
        real = real.transpose("spectrum", ...)
        imag = imag.transpose(*real.dims)
        if "spectrum" in frequency.dims:
            frequency = frequency.transpose("spectrum", ...)
    if real.shape != imag.shape or real.ndim != 1 + several:
        raise FastnaiError(f"impedance_real {real.dims} and impedance_imag {imag.dims} must both "
                           "have dims (frequency,) or (spectrum, frequency)")
    z = np.atleast_2d(real.values + 1j * imag.values)
    rows = np.broadcast_to(frequency.values, z.shape) if frequency.ndim == 1 else frequency.values
    if rows.shape != z.shape:
        raise FastnaiError(f"frequency {frequency.dims} does not match impedance_real {real.dims}")
    keep = [np.isfinite(z_k) & np.isfinite(f_k) for f_k, z_k in zip(rows, z, strict=True)]
    labels = _spectrum_labels(ds, z.shape[0], several)
    return ([f_k[k] for f_k, k in zip(rows, keep, strict=True)],
            [z_k[k] for z_k, k in zip(z, keep, strict=True)], labels)


def _spectrum_labels(ds: xr.Dataset, n: int, several: bool) -> list[str] | None:
    """``spectrum_label`` (variable, coordinate or attribute), else ``spectrum_voltage``, else
    "spectrum k" (k the ``spectrum`` coordinate when there is one); a Dataset without a
    ``spectrum`` dimension and neither variable has no label."""
    if "spectrum_label" in ds.variables:
        labels = [str(v) for v in np.atleast_1d(ds["spectrum_label"].values)]
    elif "spectrum_label" in ds.attrs:
        labels = [str(v) for v in np.atleast_1d(ds.attrs["spectrum_label"])]
    elif "spectrum_voltage" in ds.variables:
        labels = [f"{float(v):.3g} V" for v in np.atleast_1d(ds["spectrum_voltage"].values)]
    elif several:
        index = ds["spectrum"].values if "spectrum" in ds.coords else range(n)
        labels = [f"spectrum {k:g}" if isinstance(k, (int, float, np.number)) else f"spectrum {k}"
                  for k in index]
    else:
        return None
    if len(labels) != n:
        raise FastnaiError(f"{len(labels)} spectrum labels for {n} spectra")
    return labels


def _impedance_unit(ds: xr.Dataset) -> str:
    """The printed unit of ``impedance_real``/``impedance_imag`` (``ohm m2`` when unset)."""
    units = {ds[name].attrs.get("units", "ohm m2") for name in ("impedance_real", "impedance_imag")}
    if len(units) != 1:
        raise FastnaiError(f"impedance_real and impedance_imag have different units: {sorted(units)}")
    return pretty_unit(units.pop())


def plot_spectra(path: str | Path, out: str | Path, *, circuit: str | None = None,
                 guess=None) -> list[str]:
    """The figure of ``fastnai plot`` for impedance: the spectra of a result file (netCDF) or
    of a measured file (EC-Lab ``.mpt``, ``.csv``, ``.txt``), each with a fitted circuit when
    ``circuit`` is given; returns the lines that report the fits.

    The default start values of the Randles circuit ``R0-p(C1,R1-Wo1)`` are read off each
    spectrum (:func:`fastnai.spectra.charge_transfer_resistance`); other circuits need
    ``guess``. A fit that does not converge is a :class:`~fastnai.errors.FastnaiError` with its
    residual.
    """
    from . import spectra
    from .errors import CaseError

    path = Path(path)
    _check_suffix(out)
    if path.suffix.lower() in (".mpt", ".csv", ".txt"):
        try:  # a measured file that cannot be read is bad input (exit status 2)
            measured = spectra.read_spectrum(path)
        except FastnaiError as err:
            raise CaseError(str(err)) from None
        items = [(measured.frequency, measured.impedance, path.name)]
        unit = pretty_unit(measured.units)
    else:
        from .io import read_dataset

        ds = read_dataset(path)
        freqs, zs, labels = _dataset_spectra(ds)
        labels = labels or [None] * len(zs)
        items = list(zip(freqs, zs, labels, strict=True))
        unit = _impedance_unit(ds)
    fits, lines = [], []
    for k, (f, z, label) in enumerate(items):
        if circuit is None:
            fits.append(None)
            continue
        if guess is None and circuit != spectra.RANDLES:
            raise CaseError(f"--fit {circuit!r}: give the start values with --guess (only the "
                               f"Randles circuit {spectra.RANDLES} has automatic ones)")
        fit = (spectra.fit_circuit(f, z, circuit, guess) if guess is not None
               else spectra.charge_transfer_resistance(f, z).details["fit"])
        dense = np.logspace(np.log10(f.min()), np.log10(f.max()), 200)
        fits.append((dense, fit.predict(dense)))
        values = ", ".join(f"{name} = {p.value:.5g} ± {p.stderr:.2g} "
                           f"{_fit_unit(p.details['unit'], unit)}"
                           for name, p in fit.parameters.items())
        lines.append(f"{label or f'spectrum {k}'}: {circuit}: {values} (relative rms residual "
                     f"{fit.residual:.2g})")
    fig = build_nyquist_bode([i[0] for i in items], [i[1] for i in items], fit=fits,
                             labels=[i[2] for i in items], unit=unit)
    _write(fig, out)
    return lines


def _fit_unit(unit: str, data_unit: str) -> str:
    """impedance.py's parameter unit for a spectrum in ``data_unit``: per area when the
    spectrum is (Ohm -> Ω m², F -> F m⁻², a CPE's Ohm^-1 sec^a -> Ω⁻¹ m⁻² s^a)."""
    unit = unit.replace("sec", "s")
    if "m²" not in data_unit:
        return unit.replace("Ohm", "Ω")
    if unit.startswith("Ohm^-1"):
        return unit.replace("Ohm^-1", "Ω⁻¹ m⁻²")
    return unit.replace("Ohm", "Ω m²").replace("F", "F m⁻²")
