"""deposition results as the SPEC 2.2 Dataset, and derived quantities."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from ...lifecycle import Lifecycle
from ...variables import make_dataset, model_attrs
from .cell import Result, simulate

_SERIES_OUT = ("current_density", "overpotential", "voltage", "counter_overpotential",
               "separator_drop", "na_inventory", "deposited_charge", "nuclei_count",
               "active_site_density", "front_height_max", "front_height_mean", "roughness",
               "dead_na_fraction", "substrate_stripped", "profile_na", "front_concentration",
               "time_step")


def to_dataset(case, result: Result) -> xr.Dataset:
    """The result Dataset (SPEC 2.2): fields at the snapshot times, series on t, sites."""
    s = result.setup
    x = (np.arange(s.nx) + 0.5) * s.dx
    y = (np.arange(s.ny) + 0.5) * s.dx
    ser = result.series
    data = {name: ser[name] for name in _SERIES_OUT}
    plane = (s.nz, s.nx) if s.nz > 1 else (s.nx,)
    for name, snaps in result.snapshots.items():
        data[name] = snaps.reshape(snaps.shape[:-1] + plane) if snaps.size else snaps
    data["protocol_step"] = ser["protocol_step"]
    data["site_position"] = s.site_position
    data["site_activation_time"] = result.site_time
    data["contact_angle"] = math.degrees(s.contact_angle)
    data["exchange_current_density"] = s.j0
    coords = {"t": ser["t"], "t_snapshot": result.snapshot_t, "x": x, "y": y,
              "site": np.arange(s.site_position.size)}
    spectra = spectrum_data(result.spectra)
    if spectra is not None:
        coords["frequency"] = spectra.pop("frequency")
        coords["spectrum"] = np.arange(spectra["spectrum_time"].size, dtype=float)
        data.update(spectra)
    if s.nz > 1:
        coords["depth"] = (np.arange(s.nz) + 0.5) * s.dx
        data["site_position_depth"] = s.site_position_depth
        data["active_site_areal_density"] = data.pop("active_site_density")
    stats = result.stats
    attrs = model_attrs("deposition", stats)
    attrs["contact_angle_basis"] = case["substrate.contact_angle_model"]
    attrs["potential_convention"] = (
        "potential = Phi, the electrolyte potential measured by a Na reference electrode "
        "(phi_l + RT/F ln(c/c_ref)); eta = V - Phi; V (overpotential) is the plating electrode "
        "against a Na reference at the top of the box")
    if spectra is not None:
        attrs["impedance_convention"] = (
            "small signal about the state, morphology frozen; anodic current positive; per m2 "
            "of substrate; impedance_*: symmetric cell (working electrode, separator, flat "
            "counter electrode of the same kinetics); electrode_impedance_*: working electrode "
            "against the Na reference at the top of the box")
    ds = make_dataset("deposition", data, coords, attrs)
    if spectra is not None and ds.sizes["spectrum"] == 1:
        ds = ds.squeeze("spectrum", drop=True)
    ds["x"].attrs["long_name"] = "position along the substrate (periodic)"
    ds["site_activation_time"].attrs["nan_means"] = "the site never activated"
    return ds


def spectrum_data(spectra: dict | None) -> dict | None:
    """The recorded impedance spectra as Dataset variables (None without eis steps): the
    symmetric cell's ``impedance_*``, the working electrode's ``electrode_impedance_*`` and each
    spectrum's DC state."""
    if spectra is None:
        return None
    z = spectra["real"] + 1j * spectra["imag"]
    out = {"frequency": spectra["frequency"], "impedance_real": z.real, "impedance_imag": z.imag,
           "impedance_modulus": np.abs(z), "impedance_phase": np.degrees(np.angle(z)),
           "electrode_impedance_real": spectra["electrode_real"],
           "electrode_impedance_imag": spectra["electrode_imag"]}
    for name in ("t", "voltage", "current_density", "drift_ratio", "step"):
        out["spectrum_" + ("time" if name == "t" else name)] = spectra[name]
    return out


def run(case, *, lifecycle: Lifecycle | None = None, progress=None) -> xr.Dataset:
    """Run the case and return its Dataset."""
    return to_dataset(case, simulate(case, lifecycle=lifecycle, progress=progress))
