"""The seed papers' comparison figures (fastnai.report_figures), drawn from a small synthetic
validate folder and, where one exists, from a real one at /tmp/val."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import constants

from fastnai import report_figures
from fastnai.io import write_dataset

PNG = b"\x89PNG"
VALIDATE_FOLDER = Path("/tmp/val")
TEMPERATURES = (283.15, 298.15, 313.15, 328.15)  # [K]
ACTIVATION = {"bare Na": 72.96, "Na/VN": 61.42}  # [kJ mol-1] the paper's, as in the table


def _row(system, quantity, unit, paper, value, basis="computed", note=""):
    return {"system": system, "quantity": quantity, "unit": unit, "paper": paper,
            "fastnai": value, "basis": basis, "note": note}


def _write_group(folder: Path, model: str, rows: list[dict], datasets: dict[str, xr.Dataset]):
    for name, ds in datasets.items():
        write_dataset(ds, folder / f"{name}.nc")
    record = {"format": "fastnai.validation-group/1", "model": model, "key": {}, "rows": rows,
              "datasets": list(datasets)}
    (folder / f"{model}.group.json").write_text(json.dumps(record), encoding="utf-8")


def _cv(slope: float) -> xr.Dataset:
    """A CV family whose anodic peak is ``slope`` v^1/2 [A m-2, v in V s-1]."""
    rates = np.array([1e-4, 4e-4, 1.6e-3, 6.4e-3])
    up = np.linspace(0.2, 1.2, 100)
    volts = np.concatenate([up, up[::-1]])
    shape = np.exp(-((volts - 0.7) / 0.05) ** 2)
    sign = np.r_[np.ones(100), -np.ones(100)]  # anodic on the way up, cathodic on the way down
    current = slope * np.sqrt(rates)[:, None] * sign * shape
    return xr.Dataset({"cv_voltage": (("scan_rate", "sample"), np.broadcast_to(volts, current.shape)),
                       "cv_current_density": (("scan_rate", "sample"), current)},
                      coords={"scan_rate": rates, "sample": np.arange(200.0)})


def _eis(r_ct: float) -> xr.Dataset:
    """Three Randles spectra (R_s 1, C_dl 0.2, R_ct) at 1.2, 0.8 and 0.5 V [ohm m2]."""
    f = np.logspace(-2, 4, 31)
    z = np.array([1.0 + 1.0 / (2j * np.pi * f * 0.2 + 1.0 / (r_ct * s)) for s in (2.0, 1.0, 3.0)])
    return xr.Dataset({"impedance_real": (("spectrum", "frequency"), z.real, {"units": "ohm m2"}),
                       "impedance_imag": (("spectrum", "frequency"), z.imag, {"units": "ohm m2"}),
                       "spectrum_voltage": ("spectrum", [1.2, 0.8, 0.5])},
                      coords={"frequency": f, "spectrum": [0.0, 1.0, 2.0]})


def _film(x_bi: np.ndarray, scale: float) -> xr.Dataset:
    soc = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 0.75, 0.5, 0.25, 0.0])
    stress = np.r_[-soc[:5], 1.0 - soc[5:]] * 1e9
    return xr.Dataset({"x_Bi": ("z", x_bi), "peak_film_stress": ("soc", stress * scale),
                       "interface_stress": ("soc", stress * scale * 0.9)},
                      coords={"soc": soc, "z": np.linspace(0.0, 6e-7, x_bi.size)},
                      attrs={"kinematics": "linear", "plasticity": 0})


def _transient(plateau: float) -> xr.Dataset:
    t = np.r_[0.0, np.logspace(-6, np.log10(7200.0), 60)]
    eta = -plateau * (1.0 + 0.5 * np.exp(-t / 10.0)) * (1.0 - np.exp(-t / 1e-3))
    return xr.Dataset({"voltage": ("t", 2.0 * eta), "overpotential": ("t", eta),
                       "current_density": ("t", np.full(t.size, -5.0)),
                       "protocol_step": ("t", np.zeros(t.size))}, coords={"t": t})


def _rct(label: str, temperature: float) -> float:
    """R_ct [ohm m2] of T/R_ct = A exp(-E_a/RT) with the paper's E_a."""
    return temperature / (1e12 * math.exp(-ACTIVATION[label] * 1e3 / (constants.R * temperature)))


def _folder(folder: Path, *, arrhenius: bool = True) -> Path:
    """A validate folder with the three groups the paper figures draw from."""
    rate = [_row(f"{name} particle, rate test (Fig. 4B)", f"discharge capacity at {c:g} C",
                 "mA h g-1", paper, value, "calibrated (electrode.series_resistance)" if c == 10 else
                 "computed")
            for name, caps in (("heterostructure", ((0.1, 358.0, 329.0), (1.0, 245.5, 308.0),
                                                    (10.0, 173.7, 173.7))),
                               ("pristine", ((0.1, 287.2, 329.0), (1.0, None, 304.0),
                                             (10.0, 114.4, 114.4))))
            for c, paper, value in caps]
    dd_rows = [_row("heterostructure / pristine CV", "apparent-D ratio, (slope ratio)^2", "1", 5.5,
                    4.0),
               _row("heterostructure particle EIS (Cai 2022 Fig. 6D)", "R_ct, Randles fit at 0.8 V",
                    "ohm m2", None, 10.0), *rate]
    _write_group(folder, "drift_diffusion", dd_rows,
                 {"drift_diffusion_heterostructure_cv": _cv(2.0), "drift_diffusion_pristine_cv": _cv(1.0),
                  "drift_diffusion_heterostructure_eis": _eis(5.0),
                  "drift_diffusion_pristine_eis": _eis(10.0)})
    film_rows = [_row(f"Bi(x)Sb(1-x) on Cu, {label}", f"peak film stress, graded {profile} vs solid "
                      "solution x = 0.33, soc = 1", "%", -35.0, value)
                 for label in ("elastic, small strain", "elastoplastic, Hencky (default)")
                 for profile, value in (("process 0.50 -> 0.23 (mean 0.33)", 5.0),
                                        ("linear 1 -> 0 (mean 0.50)", 14.0))]
    _write_group(folder, "film_stress", film_rows,
                 {"film_stress_bisb_graded": _film(np.linspace(0.5, 0.23, 12), 0.8),
                  "film_stress_bisb_solid_solution": _film(np.full(12, 0.33), 1.0)})
    dep_rows = [_row(f"{label}, 0.5 mA cm-2 to 1 mA h cm-2", "nucleation spike, symmetric cell |U|max",
                     "mV", paper, 2.0 * plateau * 1.5e3)
                for label, paper, plateau in (("bare Na", 68.0, 0.1), ("Na/VN", 36.0, 0.05))]
    if arrhenius:
        for label in ACTIVATION:
            system = f"{label}, micro-polarisation 283-328 K"
            dep_rows += [_row(system, f"R_ct at {t:.2f} K", "ohm m2", None, _rct(label, t))
                         for t in TEMPERATURES]
            dep_rows.append(_row(system, "activation energy from T/R_ct (fastnai.analysis)",
                                 "kJ mol-1", ACTIVATION[label], ACTIVATION[label],
                                 "computed (input recovered)"))
    _write_group(folder, "deposition", dep_rows,
                 {"deposition_bare_na_0.5mA": _transient(0.1), "deposition_na_vn_0.5mA": _transient(0.05)})
    return folder


def _assert_drawn(figures, count: int):
    assert [why for _, _, why in figures] == [""] * count
    for caption, png, _ in figures:
        assert png.startswith(PNG) and "doi:10." in caption


@pytest.mark.parametrize(("model", "count"), [("drift_diffusion", 3), ("film_stress", 1),
                                              ("deposition", 2)])
def test_every_paper_figure_of_a_synthetic_folder_is_a_png_with_its_source(tmp_path, model, count):
    _assert_drawn(report_figures.paper_figures(_folder(tmp_path), model), count)


def test_a_group_not_run_or_without_figures_gives_none(tmp_path):
    assert report_figures.paper_figures(tmp_path, "deposition") == []
    _folder(tmp_path)
    assert report_figures.paper_figures(tmp_path, "band_bending") == []


def test_figures_whose_inputs_the_group_lacks_are_left_out(tmp_path):
    _folder(tmp_path, arrhenius=False)  # the table before its R_ct rows existed
    figures = report_figures.paper_figures(tmp_path, "deposition")
    _assert_drawn(figures, 1)
    assert "Na plating" in figures[0][0]
    record = json.loads((tmp_path / "drift_diffusion.group.json").read_text())
    record["datasets"].remove("drift_diffusion_pristine_eis")  # the group did not write it
    record["rows"] = [r for r in record["rows"] if "discharge capacity" not in r["quantity"]]
    (tmp_path / "drift_diffusion.group.json").write_text(json.dumps(record))
    figures = report_figures.paper_figures(tmp_path, "drift_diffusion")
    _assert_drawn(figures, 1)  # only the Randles-Sevcik figure is left
    assert "Randles–Sevcik" in figures[0][0]


def test_a_figure_that_fails_unexpectedly_is_named_with_its_reason(tmp_path):
    _folder(tmp_path)
    (tmp_path / "film_stress_bisb_graded.nc").write_bytes(b"not netCDF")  # listed, but broken
    [(caption, png, why)] = report_figures.paper_figures(tmp_path, "film_stress")
    assert png is None and why and "Graded vs solid-solution" in caption


def test_randles_sevcik_figure_reads_the_paper_ratio_from_the_row(tmp_path):
    group = report_figures._Group(_folder(tmp_path), json.loads(
        (tmp_path / "drift_diffusion.group.json").read_text()))
    caption, fig = report_figures.randles_sevcik_figure(group)
    assert "fastnai 4, paper 5.5" in caption  # (2 / 1)^2 from the synthetic peaks; 5.5 from the row
    lines = [line for line in fig.axes[0].lines if line.get_gid() == "fit"]
    slopes = [np.polyfit(*line.get_xydata().T, 1)[0] for line in lines]
    assert slopes[0] / slopes[1] == pytest.approx(2.0, rel=1e-6)


def test_arrhenius_fit_recovers_the_activation_energy_of_synthetic_rows(tmp_path):
    group = report_figures._Group(_folder(tmp_path), json.loads(
        (tmp_path / "deposition.group.json").read_text()))
    series = report_figures.arrhenius_series(group)
    assert sorted(series) == sorted(ACTIVATION)
    for label, s in series.items():
        assert s["fit"].value * 1e-3 == pytest.approx(ACTIVATION[label], rel=1e-9)
        assert s["paper"] == ACTIVATION[label]
    caption, fig = report_figures.arrhenius_figure(group)
    fits = [line for line in fig.axes[0].lines if line.get_gid() == "fit"]
    for line, label in zip(fits, series, strict=True):
        slope = np.polyfit(*line.get_xydata().T, 1)[0]  # per 1000/T
        assert -slope * 1e3 * constants.R * 1e-3 == pytest.approx(ACTIVATION[label], rel=1e-9)
    assert "72.96" in caption and "61.42" in caption


@pytest.mark.skipif(not VALIDATE_FOLDER.is_dir(), reason="no `fastnai validate` folder at /tmp/val")
@pytest.mark.parametrize("model", ["drift_diffusion", "film_stress", "deposition"])
def test_every_figure_a_validate_folder_supports_renders(model):
    figures = report_figures.paper_figures(VALIDATE_FOLDER, model)
    assert [(caption, why) for caption, png, why in figures if png is None] == []
    assert all(png.startswith(PNG) for _, png, _ in figures)
    if (VALIDATE_FOLDER / f"{model}.group.json").exists():
        assert figures  # a group that ran has at least its first figure's inputs
