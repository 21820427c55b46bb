"""drift_diffusion results as the SPEC 2.2 Dataset, and derived quantities."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from scipy import constants

from ..._kernels import drift_diffusion as kdd
from ..._kernels import poisson
from ...errors import CaseError
from ...lifecycle import Lifecycle
from ...spectrum_log import add_spectra, drop_single_spectrum
from ...variables import make_dataset, model_attrs
from .cell import Result, simulate
from .setup import Setup, build

# ---------------------------------------------------------------------------------------------
# output


def cv_curves(result: Result, samples_per_volt: float = 1000.0) -> dict | None:
    """CV sweeps resampled uniformly in voltage along the path, one row per scan rate."""
    rec = result.recorder
    cv_segments = [(i, s) for i, s in enumerate(result.segments) if s.scan_index >= 0]
    if not cv_segments:
        return None
    t = np.asarray(rec.t)
    v = np.asarray(rec.voltage)
    j = np.asarray(rec.current) / float(np.sum(result.setup.electrolyte_area))
    seg = np.asarray(rec.segment)
    rates = sorted({s.scan_index for _, s in cv_segments})
    rows = []
    for k in rates:
        idx = [i for i, s in cv_segments if s.scan_index == k]
        mask = np.isin(seg, idx)
        tk, vk, jk = t[mask], v[mask], j[mask]
        order = np.argsort(tk, kind="stable")
        tk, vk, jk = tk[order], vk[order], jk[order]
        keep = np.concatenate(([True], np.diff(tk) > 0))
        tk, vk, jk = tk[keep], vk[keep], jk[keep]
        path = np.concatenate(([0.0], np.cumsum(np.abs(np.diff(vk)))))
        rows.append((tk - tk[0], vk, jk, path))
    length = min(r[3][-1] for r in rows)
    n = max(2, int(length * samples_per_volt) + 1)
    grid = np.linspace(0.0, length, n)
    out_v = np.empty((len(rows), n))
    out_j = np.empty((len(rows), n))
    out_t = np.empty((len(rows), n))
    for r, (tk, vk, jk, path) in enumerate(rows):
        out_t[r] = np.interp(grid, path, tk)
        out_v[r] = np.interp(out_t[r], tk, vk)
        out_j[r] = np.interp(out_t[r], tk, jk)
    scan = [s for _, s in cv_segments]
    scan_rates = np.array([next(s.rate for s in scan if s.scan_index == k) for k in rates])
    return {"scan_rate": scan_rates, "cv_voltage": out_v, "cv_current_density": out_j,
            "cv_time": out_t}


def spectrum_data(rec, setup: Setup) -> dict | None:
    """The recorded impedance spectra as Dataset variables (None without eis steps).

    Besides Z per m2 of interface, Z times the host mass (ohm g): the impedance of an electrode
    holding one gram of these particles (or of this slab), ``impedance_mass_*`` / m for an
    electrode of m grams, the unit of a spectrum normalised by its loading.
    """
    if not len(rec.spectra):
        return None
    out = rec.spectra.variables()
    grams_per_area = 1e3 * float(np.sum(setup.mass) / np.sum(setup.electrolyte_area))
    out["impedance_mass_real"] = out["impedance_real"] * grams_per_area
    out["impedance_mass_imag"] = out["impedance_imag"] * grams_per_area
    return out


def profiles(setup: Setup, y: np.ndarray, particle: int = 0) -> dict:
    """Profiles of one particle of the state ``y`` (flat, with V last)."""
    s = setup
    state = y[:-1].reshape(s.n_particles, s.n_nodes, 3)[particle]
    z = np.empty_like(state)
    kdd.unknowns_from_state(state, float(y[-1]), s.region[particle], s.params, s.sc[particle], z)
    n = np.empty(s.n_nodes)
    nt = np.empty(s.n_nodes)
    for i in range(s.n_nodes):
        consts = poisson.charge_constants(s.params[s.region[particle, i]])
        dens = poisson.densities(z[i, 0] - z[i, 2], consts)
        n[i], nt[i] = dens[0], dens[6]
    psi = state[:, 0]
    depth = s.depth[particle]
    field_depth = np.empty(s.n_nodes)
    field_depth[1:-1] = -(psi[2:] - psi[:-2]) / (depth[2:] - depth[:-2])
    field_depth[0] = -(psi[1] - psi[0]) / (depth[1] - depth[0])
    field_depth[-1] = -(psi[-1] - psi[-2]) / (depth[-1] - depth[-2])
    sign = -1.0 if s.case["model.geometry"] == "sphere" else 1.0
    return {"c_Na": state[:, 1], "theta": state[:, 1] / s.c_max, "n": n, "n_trapped": nt,
            "potential": psi, "electric_field": sign * field_depth}


def to_dataset(case, result: Result) -> xr.Dataset:
    """Wrap a :class:`Result` as the SPEC section 2.2 Dataset."""
    s = result.setup
    rec = result.recorder
    t = np.asarray(rec.t)
    order = np.argsort(t, kind="stable")
    spheres = s.coordinate_name == "r"
    area = float(np.sum(s.electrolyte_area))
    mass = float(np.sum(s.mass)) * (4.0 * math.pi if spheres else 1.0)  # kg (per m2 in slabs)
    inv = np.asarray(rec.inventory)
    data: dict = {
        "voltage": np.asarray(rec.voltage)[order],
        "cell_voltage": np.asarray(rec.cell_voltage)[order],
        "current_density": (np.asarray(rec.current) / area)[order],
        "specific_capacity": ((inv - inv[0]) * constants.physical_constants["Faraday constant"][0]
                              / 3.6 / (mass * 1e3))[order],
        "na_inventory": inv[order],
        "protocol_step": np.asarray(rec.step, dtype=float)[order],
        "hop_distance": case["semiconductor.hop_distance"],
        "jump_diffusivity": float(s.d0_face[0, 0]),
        "site_density": s.c_max,
        "one_c_current_density": s.one_c_current / area,
    }
    coords: dict = {"t": t[order]}
    # profiles (single particle or slab)
    if s.n_particles == 1:
        pt = np.asarray(rec.profile_t)
        porder = np.argsort(pt, kind="stable")
        rows = [profiles(s, rec.profiles[i]) for i in porder]
        for name in ("c_Na", "theta", "n", "n_trapped", "potential", "electric_field"):
            data[name] = np.array([r[name] for r in rows])
        coords["t_profile"] = pt[porder]
        geo_order = np.argsort(s.coordinate[0], kind="stable")
        for name in ("c_Na", "theta", "n", "n_trapped", "potential", "electric_field"):
            data[name] = data[name][:, geo_order]
        data["depth"] = s.depth[0][geo_order]
        coords[s.coordinate_name] = s.coordinate[0][geo_order]
    else:
        data["particle_current"] = np.array(rec.particle_current).T[:, order] * 4.0 * math.pi
        data["particle_radius"] = s.radii
        coords["particle"] = np.arange(s.n_particles, dtype=float)
    spectra = spectrum_data(rec, s)
    if spectra is not None:
        add_spectra(data, coords, spectra)
    cv = cv_curves(result)
    if cv is not None:
        coords["scan_rate"] = cv.pop("scan_rate")
        coords["sample"] = np.arange(cv["cv_voltage"].shape[1], dtype=float)
        data.update(cv)
    stats = {**result.stats.as_attrs(), "n_nodes": s.n_nodes, "n_particles": s.n_particles,
             "geometry": case["model.geometry"], "electrons": case["model.electrons"],
             "current_convention": "anodic (Na extraction) positive"}
    ds = make_dataset("drift_diffusion", data, coords,
                      model_attrs("drift_diffusion", stats))
    ds = drop_single_spectrum(ds)
    if spheres:
        ds["na_inventory"].attrs["units"] = "mol"
        ds["na_inventory"].attrs["long_name"] = "Na in the particles (all of them), from the state"
    return ds


def run(case, *, lifecycle: Lifecycle | None = None, progress=None) -> xr.Dataset:
    """Run the case's protocol and return the result Dataset."""
    return to_dataset(case, simulate(case, lifecycle=lifecycle, progress=progress))


# ---------------------------------------------------------------------------------------------
# electrode-level quantities of the rate test


def discharge_capacity(case, c_rate: float, *, series_resistance: float | None = None) -> float:
    """Capacity [mA h g-1] delivered by the case's first step, a constant current, at ``c_rate``.

    The step runs to its cut-off voltage (the cell voltage, including the drop j R_s over
    ``electrode.series_resistance``, which ``series_resistance`` [ohm m2] overrides).
    """
    steps = case["protocol"]
    if not steps or steps[0]["step"] != "constant_current":
        raise CaseError("discharge_capacity needs a case whose first protocol step is "
                        "constant_current")
    over = {"protocol.0.c_rate": c_rate}
    if series_resistance is not None:
        over["electrode.series_resistance"] = series_resistance
    ds = run(case.with_overrides(over), progress=False)
    return float(np.max(np.abs(ds.specific_capacity.values)))


def calibrate_series_resistance(case, c_rate: float, capacity: float, *,
                                rtol: float = 1e-4) -> float:
    """``electrode.series_resistance`` [ohm m2] with which ``c_rate`` delivers ``capacity``.

    The capacity falls monotonically as the resistance grows; the root is bracketed between 0
    and the resistance whose drop j R_s spans the whole voltage window, and found by Brent's
    method to ``rtol``. A capacity above what the electrode gives without resistance cannot be
    reached by a resistance: that raises :class:`~fastnai.errors.CaseError`.
    """
    from scipy.optimize import brentq

    free = discharge_capacity(case, c_rate, series_resistance=0.0)
    if capacity >= free:
        raise CaseError(f"{capacity:.4g} mA h g-1 at {c_rate:g} C is above the "
                        f"{free:.4g} mA h g-1 the electrode gives with no series resistance")
    setup = build(case)
    j = c_rate * setup.one_c_current / float(np.sum(setup.electrolyte_area))
    window = abs(case["initial.voltage"] - case["protocol"][0]["cutoff_voltage"])
    r_hi = 2.0 * window / j

    def gap(r):
        return discharge_capacity(case, c_rate, series_resistance=r) - capacity

    return float(brentq(gap, 0.0, r_hi, xtol=rtol * capacity / (free / r_hi), rtol=rtol))
