"""The seed papers' own comparison figures, redrawn from what ``fastnai validate`` left in a folder.

Each figure is built from the group's record (``MODEL.group.json``: its rows) and result files
(``NAME.nc``) alone, by its own function, and puts the paper's numbers (read from the rows'
``paper`` column, never typed in here) beside the model's; its caption names the source. A figure
whose inputs the group does not have (the group was not run, a result or a row is absent) is
left out without a word; one that fails for any other reason is returned with the reason.
"""

from __future__ import annotations

import io
import json
import math
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from scipy import constants

from .errors import FastnaiError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CAI = "Cai et al., Small 18, 2200694 (2022), doi:10.1002/smll.202200694"
WANG = "Wang et al., Adv. Sci. 9, 2201209 (2022), doi:10.1002/advs.202201209"
XIA = "Xia et al., Nanoscale Horiz. 7, 899 (2022), doi:10.1039/d2nh00152g"
DPI = 130  # as fastnai.plot writes its figures
PARTICLES = (("heterostructure", "tab:blue"), ("pristine", "tab:orange"))
SUBSTRATES = (("bare Na", "deposition_bare_na_0.5mA", "tab:blue"),
              ("Na/VN", "deposition_na_vn_0.5mA", "tab:orange"))
EIS_VOLTAGE = 0.8  # [V] fastnai.validation.EIS_VOLTAGE, for a table without R_ct rows
LEGEND = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "frameon": False, "fontsize": 8}


class _Missing(Exception):
    """The group lacks an input of a figure (a result or a row): the figure is left out."""


@dataclass(frozen=True)
class _Group:
    """A model group's record and the folder that holds its result files."""

    folder: Path
    record: dict

    def rows(self, quantity: str, system: str = "") -> list[dict]:
        """Rows whose quantity fully matches the regex ``quantity`` and whose system starts with
        ``system``."""
        return [r for r in self.record.get("rows", []) if re.fullmatch(quantity, r["quantity"])
                and r["system"].startswith(system)]

    def row(self, quantity: str, system: str = "") -> dict:
        """The first row that :meth:`rows` finds; :class:`_Missing` when there is none."""
        found = self.rows(quantity, system)
        if not found:
            raise _Missing(f"no row {quantity!r} of {system!r}")
        return found[0]

    def dataset(self, name: str) -> xr.Dataset:
        """``NAME.nc``, read into memory; :class:`_Missing` when the group did not write it (a
        result the record lists but the folder lacks is an error, not a skip)."""
        from .io import read_dataset

        path = self.folder / f"{name}.nc"
        listed = self.record.get("datasets")
        if (listed is not None and name not in listed) or (listed is None and not path.exists()):
            raise _Missing(f"no result {name}")
        return read_dataset(path)


def paper_figures(output_dir: Path, model: str) -> list[tuple[str, bytes | None, str]]:
    """The seed papers' comparison figures of a model group: ``(caption, PNG bytes, "")`` for
    each figure drawn, ``(caption, None, reason)`` for each that failed unexpectedly.

    A group without a record in ``output_dir`` (not run there), and any figure whose results or
    rows the group lacks, give nothing.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     paper_figures(Path(folder), "deposition")
    []
    """
    try:
        record = json.loads((Path(output_dir) / f"{model}.group.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    group = _Group(Path(output_dir), record)
    out = []
    for title, build in FIGURES.get(model, ()):
        try:
            caption, fig = build(group)
            out.append((caption, _png(fig), ""))
        except _Missing:
            continue
        except Exception as err:  # noqa: BLE001 - a report names what it could not draw
            out.append((title, None, f"{type(err).__name__}: {err}"))
    return out


# -- drift_diffusion: Cai 2022 ----------------------------------------------------------------


def _anodic_peaks(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Scan rates [V s-1] and anodic peak current densities [A m-2] of a CV family."""
    from .analysis import find_cv_peaks

    rates = ds.scan_rate.values
    peaks = []
    for k, rate in enumerate(rates):
        v, j = ds.cv_voltage[k].values, ds.cv_current_density[k].values
        keep = np.isfinite(v) & np.isfinite(j)  # padding of sweeps shorter than `sample`
        found = find_cv_peaks(v[keep], j[keep])
        if "anodic" not in found:
            raise FastnaiError(f"no anodic peak in the CV at {rate * 1e3:g} mV s-1")
        peaks.append(found["anodic"].current)
    return rates, np.array(peaks)


def randles_sevcik_figure(group: _Group) -> tuple[str, Figure]:
    """Cai 2022 Fig. 5: anodic peak current density vs v^1/2 of both particles, the lines
    through the origin fitted to them, and the apparent-D ratio (slope ratio)^2 against the
    paper's (both from the row "apparent-D ratio, (slope ratio)^2")."""
    from .analysis import b_value, diffusivity_ratio, randles_sevcik_diffusivity

    ratio_row = group.row(r"apparent-D ratio, \(slope ratio\)\^2")
    fig, (ax,) = _figure(8.4, 4.6)
    slopes, b_values, top = {}, {}, 0.0
    # the two particles may coincide: filled circles and solid lines inside open squares and dashes
    styles = ({"marker": "o", "ms": 6}, {"marker": "s", "ms": 10, "mfc": "none", "mew": 1.4})
    for (name, color), style, dash in zip(PARTICLES, styles, ("-", "--"), strict=True):
        rates, peaks = _anodic_peaks(group.dataset(f"drift_diffusion_{name}_cv"))
        # only the slope k of j_p = k v^1/2 is used: area and concentration scale D, not k
        fit = randles_sevcik_diffusivity(rates, peaks, area=1.0, concentration=1.0)
        slopes[name] = fit.details["slope"]
        b_values[name] = b_value(rates, peaks).value
        x = np.sqrt(rates * 1e3)  # (mV s-1)^1/2
        top = max(top, float(x.max()))
        ax.plot(x, peaks, ls="none", color=color, label=f"{name}: anodic peaks", **style)
        line = np.linspace(0.0, x.max(), 50)
        ax.plot(line, slopes[name] * line / math.sqrt(1e3), dash, color=color, lw=1.0, gid="fit",
                label=f"{name}: fit through 0")
    ratio = diffusivity_ratio(slopes["heterostructure"], slopes["pristine"]).value
    paper = ratio_row["paper"]
    if paper is not None:  # the heterostructure line the paper's ratio implies
        line = np.linspace(0.0, top, 50)
        ax.plot(line, slopes["pristine"] * math.sqrt(paper) * line / math.sqrt(1e3), ":",
                color="0.35", label=f"pristine fit × √{paper:g}\n(the paper's ratio)")
    k_text = "\n".join(f"k_{n[:3]} = {k * math.sqrt(1e-3):.3g} A m⁻² (mV s⁻¹)⁻¹ᐟ², b = {b_values[n]:.2f}"
                        for n, k in slopes.items())
    ax.text(0.03, 0.97, f"{k_text}\napparent-D ratio (k_het / k_pri)²: fastnai {ratio:.3g} "
            f"(table {ratio_row['fastnai']:.3g}), paper {_number(paper)}", transform=ax.transAxes,
            ha="left", va="top", fontsize=7.5, bbox={"fc": "white", "ec": "0.7", "lw": 0.6})
    ax.set_xlim(0.0, 1.05 * top)
    ax.set_ylim(0.0, None)
    ax.set_xlabel("(scan rate)$^{1/2}$ ((mV s$^{-1}$)$^{1/2}$)")
    ax.set_ylabel("anodic peak current density (A m$^{-2}$)")
    ax.grid(alpha=0.3)
    ax.legend(**LEGEND)
    caption = (f"Randles–Sevcik analysis as in {CAI}, Fig. 5: anodic peak current density vs "
               "(scan rate)^1/2 of the heterostructure and pristine particles "
               "(drift_diffusion_heterostructure_cv.nc, drift_diffusion_pristine_cv.nc), with "
               f"lines through the origin. Apparent-D ratio (slope ratio)^2: fastnai {ratio:.3g}, "
               f"paper {_number(paper)} (the table's row). b-values of log j_p vs log v: "
               + ", ".join(f"{n} {b:.2f}" for n, b in b_values.items())
               + " (0.5 under diffusion control, 1 in the thin-layer regime, where "
               "Randles–Sevcik does not apply).")
    return caption, fig


def rate_figure(group: _Group) -> tuple[str, Figure]:
    """Cai 2022 Fig. 4B: discharge capacity vs C-rate, the paper's (markers) beside fastnai's
    (lines and markers) for both particles, the calibration point ringed."""
    rows = group.rows(r"discharge capacity at [\d.]+ C")
    if not rows:
        raise _Missing("no rate rows")
    fig, (ax,) = _figure(7.6, 4.4)
    colors = dict(PARTICLES)
    systems = list(dict.fromkeys(r["system"] for r in rows))
    for k, system in enumerate(systems):
        mine = sorted((r for r in rows if r["system"] == system), key=_rate)
        name = system.split(" particle")[0].split(",")[0]
        color = colors.get(name, f"C{k + 2}")
        rates = np.array([_rate(r) for r in mine])
        ax.plot(rates, [r["fastnai"] for r in mine], "-o", color=color, ms=4, label=f"{name}: fastnai")
        paper = [(_rate(r), r["paper"]) for r in mine if r["paper"] is not None]
        if paper:
            ax.plot(*zip(*paper, strict=True), "s", color=color, mfc="none", ms=8, mew=1.5,
                    label=f"{name}: paper ({len(paper)} of {len(mine)} rates)")
    calibrated = [(_rate(r), r["fastnai"]) for r in rows if r["basis"].startswith("calibrated")]
    if calibrated:
        ax.plot(*zip(*calibrated, strict=True), "o", ms=15, mfc="none", mec="k", mew=0.8,
                label="calibration point\n(set to the paper's)")
    ax.set_xscale("log")
    ticks = sorted({_rate(r) for r in rows})
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("C-rate")
    ax.set_ylabel(f"discharge capacity ({_unit(rows[0]['unit'])})")
    ax.grid(alpha=0.3)
    ax.legend(**LEGEND)
    caption = (f"Rate test as in {CAI}, Fig. 4B: discharge capacity vs C-rate, the paper's values "
               "(open squares; only the rates the table places) beside fastnai's (lines), from the "
               "table's rows. The ringed point is the calibration (the series resistance is set "
               "so that it equals the paper's); the other rates are predicted.")
    return caption, fig


def nyquist_figure(group: _Group) -> tuple[str, Figure]:
    """Cai 2022 Fig. 6D in simulation: Nyquist and Bode plots of the heterostructure and
    pristine particles, the spectra nearest the voltage of the table's R_ct rows."""
    from .plot_impedance import build_nyquist_bode, pretty_unit
    from .spectra import spectrum_from_dataset

    rct = {name: group.rows(r"R_ct, Randles fit at [\d.]+ V", name) for name, _ in PARTICLES}
    target = next((float(re.search(r"at ([\d.]+) V", r[0]["quantity"]).group(1))
                   for r in rct.values() if r), EIS_VOLTAGE)  # the state the table's rows fit
    spectra, voltages = [], []
    for name, _ in PARTICLES:
        ds = group.dataset(f"drift_diffusion_{name}_eis")
        volts = np.atleast_1d(ds.spectrum_voltage.values)
        k = int(np.argmin(np.abs(volts - target)))
        spectra.append(spectrum_from_dataset(ds, k if "spectrum" in ds.dims else None))
        voltages.append(float(volts[k]))
    het, pri = spectra
    same = het.frequency.shape == pri.frequency.shape and np.allclose(het.frequency, pri.frequency)
    spread = (float(np.max(np.abs(het.impedance - pri.impedance) / np.abs(pri.impedance)))
              if same else math.nan)
    title = f"heterostructure ({voltages[0]:.3g} V) vs pristine ({voltages[1]:.3g} V)"
    if spread < 1e-3:
        title += f": the spectra coincide (largest difference {spread:.1e} of |Z|)"
    fig = build_nyquist_bode([s.frequency for s in spectra], [s.impedance for s in spectra],
                             labels=[name for name, _ in PARTICLES],
                             unit=pretty_unit(het.units), title=title)
    fits = "; ".join(f"{n} {rows[0]['fastnai']:.4g} {_unit(rows[0]['unit'])}"
                     for n, rows in rct.items() if rows)
    caption = (f"Impedance of the heterostructure and pristine particles at {voltages[0]:.3g} V "
               "(drift_diffusion_heterostructure_eis.nc, drift_diffusion_pristine_eis.nc). "
               f"{CAI}, Fig. 6D, shows a much smaller charge-transfer semicircle for the "
               "heterostructure (no numbers given)."
               + (f" R_ct of the table's Randles fits: {fits}." if fits else "")
               + (" fastnai's two spectra coincide (the table's R_ct ratio row says why)."
                  if spread < 1e-3 else ""))
    return caption, fig


def _rate(row: dict) -> float:
    """The C-rate of a "discharge capacity at X C" row."""
    return float(re.search(r"at ([\d.]+) C", row["quantity"]).group(1))


# -- film_stress: Wang 2022 -------------------------------------------------------------------


def film_stress_figure(group: _Group) -> tuple[str, Figure]:
    """Graded vs solid-solution film: peak and interface stress along the cycle, their change
    (graded / solid - 1) against the paper's, and the table's rows at soc = 1."""
    graded = group.dataset("film_stress_bisb_graded")
    solid = group.dataset("film_stress_bisb_solid_solution")
    rows = [r for r in group.rows(r"peak film stress, graded .* vs solid solution.*")
            if r["unit"] == "%"]
    papers = sorted({r["paper"] for r in rows if r["paper"] is not None})
    fig, (ax_s, ax_c, ax_r) = _figure(14.5, 5.0, ncols=3, width_ratios=[1.0, 1.0, 1.1])
    x_bi = graded.x_Bi.values
    films = ((f"graded, x_Bi {x_bi[0]:.2f} → {x_bi[-1]:.2f}", graded, "tab:blue"),
             (f"solid solution, x_Bi {float(np.mean(solid.x_Bi)):.2f}", solid, "tab:orange"))
    for label, ds, color in films:
        ax_s.plot(ds.soc, ds.peak_film_stress * 1e-9, "-", color=color, lw=2.4, alpha=0.55,
                  label=f"{label}: peak")
        ax_s.plot(ds.soc, ds.interface_stress * 1e-9, "--", color=color, lw=1.0,
                  label=f"{label}: interface")
    gap = max(float(np.max(np.abs(graded[v].values - solid[v].values)))
              for v in ("peak_film_stress", "interface_stress"))
    ax_s.set_xlabel("state of charge, film-mean θ (1)")
    ax_s.set_ylabel("in-plane film stress (GPa)")
    ax_s.set_title(f"along the cycle (graded and solid solution differ by ≤ {gap * 1e-9:.2g} GPa)",
                   fontsize=9)
    _film_change(ax_c, graded, solid)
    for ax in (ax_c, ax_r):
        for value in papers:
            ax.axhline(value, color="k", ls=":", lw=1.2, label=f"paper: {value:+g} %")
    _film_rows(ax_r, rows)
    for ax in (ax_s, ax_c):
        ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2)
    for ax in (ax_s, ax_c, ax_r):
        ax.grid(alpha=0.3)
    caption = (f"Graded vs solid-solution Bi(x)Sb(1-x) film on Cu ({WANG}; "
               "film_stress_bisb_graded.nc, film_stress_bisb_solid_solution.nc): left, the peak "
               "and interface in-plane stress along the sodiation (σ < 0) / desodiation cycle; "
               "middle, their change graded vs solid solution at each state of charge (states "
               "where the solid solution's stress is below 10 % of its largest are left out: the "
               "ratio of two vanishing stresses); right, the table's laminate rows at soc = 1 for "
               "each assumption set and composition profile. Dotted: "
               + (", ".join(f"the paper's {p:+g} %" for p in papers) if papers else "no paper number")
               + " (from the rows). The interface, 2D edge-zone and thickness rows are in the table.")
    return caption, fig


def _film_change(ax: Axes, graded: xr.Dataset, solid: xr.Dataset) -> None:
    """Peak and interface stress, graded / solid solution - 1 [%], at each state of the cycle
    where the solid solution's stress is at least 10 % of its largest (not near a reversal)."""
    for name, style in (("peak_film_stress", "-o"), ("interface_stress", "--s")):
        g, s = graded[name].values, solid[name].values
        change = np.where(np.abs(s) >= 0.1 * np.max(np.abs(s)), 100.0 * (g / np.where(s == 0, 1, s) - 1),
                          np.nan)  # NaN breaks the line where the ratio would be of two vanishing stresses
        ax.plot(solid.soc.values, change, style, ms=5 if style == "-o" else 3, mfc="none", lw=1.0,
                label=name.replace("_", " "))
    ax.set_xlabel("state of charge, film-mean θ (1)")
    ax.set_ylabel("graded vs solid solution (%)")
    ax.set_title(f"these results ({graded.attrs.get('kinematics', '?')} kinematics, plasticity "
                 f"{'on' if graded.attrs.get('plasticity') else 'off'})", fontsize=9)


def _film_rows(ax: Axes, rows: list[dict]) -> None:
    """The table's graded-vs-solid-solution rows: one column per assumption set (the row's
    system), one marker per composition profile (from its quantity)."""
    if not rows:
        ax.text(0.5, 0.5, "no graded-vs-solid-solution rows in the table", transform=ax.transAxes,
                ha="center", fontsize=8)
        return
    systems = list(dict.fromkeys(r["system"] for r in rows))
    profiles = list(dict.fromkeys(_profile(r) for r in rows))
    markers = "osD^v<>"
    for j, profile in enumerate(profiles):
        mine = [r for r in rows if _profile(r) == profile]
        shift = 0.12 * (j - 0.5 * (len(profiles) - 1))  # side by side in each column
        ax.plot([systems.index(r["system"]) + shift for r in mine], [r["fastnai"] for r in mine],
                markers[j % len(markers)], color=f"C{j + 2}", ms=6, label=f"graded {profile}")
    names = [s.split(", ", 1)[-1] for s in systems]  # after "Bi(x)Sb(1-x) on Cu, "
    ax.set_xticks(range(len(systems)), [textwrap.fill(n, 16) for n in names], fontsize=7)
    ax.set_xlim(-0.6, len(systems) - 0.4)
    ax.set_ylabel("peak film stress, graded vs solid solution (%)")
    ax.set_title("table rows, soc = 1 (x: assumption set)", fontsize=9)
    ax.legend(**LEGEND)


def _profile(row: dict) -> str:
    """The composition profile named in a graded-vs-solid-solution row's quantity."""
    match = re.search(r"graded (.*?) vs", row["quantity"])
    return match.group(1).replace("->", "→") if match else "?"


# -- deposition: Xia 2022 ---------------------------------------------------------------------


def transient_figure(group: _Group) -> tuple[str, Figure]:
    """Voltage transients of plating on bare Na and Na/VN (symmetric cell and per electrode)
    with the paper's symmetric-cell spikes (rows "nucleation spike, symmetric cell ...")."""
    present = []
    for label, name, color in SUBSTRATES:
        try:
            present.append((label, group.dataset(name), color))
        except _Missing:
            continue
    if not present:
        raise _Missing("no deposition transients")
    fig, (ax,) = _figure(8.6, 4.4)
    t_end = max(float(ds.t.values[-1]) for _, ds, _ in present)
    k_first = [int(np.argmax(np.abs(ds.voltage.values))) for _, ds, _ in present]
    log_time = max(float(ds.t.values[k]) for (_, ds, _), k in zip(present, k_first, strict=True)) \
        < 0.01 * t_end  # the spike would be a sliver on a linear axis
    scale, unit = (1.0, "s") if log_time or t_end < 7200.0 else (1.0 / 3600.0, "h")
    papers = []
    for (label, ds, color), k in zip(present, k_first, strict=True):
        t = ds.t.values
        shown = t > 0.0 if log_time else np.ones(t.size, bool)
        ax.plot(t[shown] * scale, ds.voltage.values[shown] * 1e3, "-", color=color,
                label=f"{label}: symmetric cell")
        ax.plot(t[shown] * scale, ds.overpotential.values[shown] * 1e3, "--", color=color, lw=1.0,
                label=f"{label}: per electrode")
        spike = float(ds.voltage.values[k]) * 1e3
        ax.plot(t[k] * scale, spike, "x", color=color, ms=8, mew=1.5,
                label=f"{label}: fastnai spike |U| = {abs(spike):.0f} mV")
        rows = [r for r in group.rows(r"nucleation spike, symmetric cell.*", f"{label}, ")
                if r["paper"] is not None]
        if rows:
            paper = math.copysign(rows[0]["paper"], spike)
            ax.axhline(paper, color=color, ls=":", lw=1.5,
                       label=f"{label}: paper spike |U| = {abs(paper):g} mV")
            papers.append(f"{label} {abs(paper):g} mV")
    if log_time:
        ax.set_xscale("log")
    ax.set_xlabel(f"time ({unit}{', log' if log_time else ''})")
    ax.set_ylabel("voltage (mV)")
    ax.grid(alpha=0.3)
    ax.legend(**LEGEND)
    j = abs(float(present[0][1].current_density.values[present[0][1].t.size // 2])) * 0.1
    caption = (f"Galvanostatic Na plating at {j:.3g} mA cm⁻² on bare Na and Na/VN ("
               + ", ".join(f"{name}.nc" for _, name, _ in SUBSTRATES) + "): the symmetric-cell "
               "voltage (solid) and the plating electrode against a Na reference (dashed); "
               "crosses mark fastnai's symmetric-cell spikes. Dotted: "
               + (f"the symmetric-cell nucleation spikes of {XIA}: " + ", ".join(papers)
                  + " (from the table's rows)." if papers else "no paper spike in the table."))
    return caption, fig


def arrhenius_series(group: _Group) -> dict[str, dict]:
    """Per substrate (the rows' system up to the first comma): temperatures [K], R_ct
    [ohm m2] from the rows "R_ct at T K", their fastnai.analysis.activation_energy fit and the
    paper's E_a [kJ mol-1] and that row's basis (None and "" without one)."""
    from .analysis import activation_energy

    rows = [r for r in group.rows(r"R_ct at [\d.]+ K") if r["unit"] == "ohm m2"]
    out = {}
    for system in dict.fromkeys(r["system"] for r in rows):
        mine = [r for r in rows if r["system"] == system]
        temps = np.array([float(re.search(r"at ([\d.]+) K", r["quantity"]).group(1)) for r in mine])
        if np.unique(temps).size < 2:
            continue
        rct = np.array([r["fastnai"] for r in mine])
        paper = group.rows(r"activation energy from T/R_ct.*", system)
        out[system.split(",")[0]] = {"T": temps, "R_ct": rct, "fit": activation_energy(temps, rct),
                                     "paper": paper[0]["paper"] if paper else None,
                                     "basis": paper[0]["basis"] if paper else ""}
    if not out:
        raise _Missing("no R_ct rows")
    return out


def arrhenius_figure(group: _Group) -> tuple[str, Figure]:
    """Xia 2022: ln(T/R_ct) vs 1000/T of bare Na and Na/VN with the fitted lines and, through
    the model's mean point, a line of the paper's E_a."""
    series = arrhenius_series(group)
    fig, (ax,) = _figure(8.4, 4.4)
    colors = {label: color for label, _, color in SUBSTRATES}
    for k, (label, s) in enumerate(series.items()):
        color = colors.get(label, f"C{k + 2}")
        x = 1e3 / s["T"]
        y = np.log(s["T"] / s["R_ct"])
        ea = s["fit"].value
        ax.plot(x, y, "o", color=color, label=f"{label}: R$_{{ct}}$ (fastnai)")
        line = np.linspace(x.min(), x.max(), 20)
        # ln(T/R_ct) = ln A - E_a / (R T) = ln A - E_a / (1000 R) * (1000 / T)
        ax.plot(line, s["fit"].details["ln_A"] - ea / (1e3 * constants.R) * line, "-",
                color=color, lw=1.0, gid="fit", label=f"{label}: fit, $E_a$ = {ea * 1e-3:.4g} kJ mol⁻¹")
        if s["paper"] is not None:  # a broad band under the fit: both show where they coincide
            slope = -s["paper"] * 1e3 / (1e3 * constants.R)
            ax.plot(line, y.mean() + slope * (line - x.mean()), "-", color=color, lw=6.0,
                    alpha=0.25, solid_capstyle="butt", zorder=1,
                    label=f"{label}: paper, $E_a$ = {s['paper']:g} kJ mol⁻¹")
    ax.set_xlabel("1000 / T (K$^{-1}$)")
    ax.set_ylabel("ln(T / R$_{ct}$)  (T in K, R$_{ct}$ in Ω m$^2$)")
    ax.grid(alpha=0.3)
    ax.legend(**LEGEND)
    caption = (f"Arrhenius plot of the charge-transfer resistance as in {XIA}: ln(T/R_ct) vs "
               "1000/T of simulated micro-polarisation on bare Na and Na/VN (the table's "
               "'R_ct at T K' rows), with the line fitted by fastnai.analysis.activation_energy "
               "and, as a broad band, a line of the paper's E_a (from the table's rows) through "
               "the mean of the model's points: "
               + "; ".join(f"{label} fastnai {s['fit'].value * 1e-3:.4g}, paper {_number(s['paper'])} "
                           "kJ mol⁻¹" for label, s in series.items())
               + (". The paper's E_a is the model's input: the fit checks that it is recovered."
                  if any("input" in s["basis"] for s in series.values()) else "."))
    return caption, fig


# -- drawing ----------------------------------------------------------------------------------


def _figure(width: float, height: float, *, ncols: int = 1, width_ratios=None) -> tuple[Figure, list]:
    """A constrained-layout Figure (not attached to pyplot: nothing to close) and its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, width_ratios=width_ratios, squeeze=False)[0]
    return fig, list(axes)


def _png(fig: Figure) -> bytes:
    """The figure as PNG bytes at :data:`DPI`."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _unit(units: str) -> str:
    """A row's unit as printed on an axis (``mA h g-1`` -> ``mA h g⁻¹``)."""
    from .plot_impedance import pretty_unit

    return pretty_unit(units)


def _number(value) -> str:
    return "—" if value is None else f"{value:.4g}"


#: The figures of each model group: (title, shown when the figure fails; builder).
FIGURES: dict[str, tuple[tuple[str, Callable[[_Group], tuple[str, Figure]]], ...]] = {
    "drift_diffusion": (
        (f"Randles–Sevcik analysis, heterostructure vs pristine ({CAI}, Fig. 5)", randles_sevcik_figure),
        (f"Rate test, discharge capacity vs C-rate ({CAI}, Fig. 4B)", rate_figure),
        (f"Nyquist plot, heterostructure vs pristine ({CAI}, Fig. 6D)", nyquist_figure),
    ),
    "film_stress": (
        (f"Graded vs solid-solution film stress ({WANG})", film_stress_figure),
    ),
    "deposition": (
        (f"Voltage transients, bare Na vs Na/VN ({XIA})", transient_figure),
        (f"Arrhenius plot of R_ct, bare Na vs Na/VN ({XIA})", arrhenius_figure),
    ),
}
