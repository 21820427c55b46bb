"""deposition results as the SPEC 2.2 Dataset, and derived quantities."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from ...lifecycle import Lifecycle
from ...spectrum_log import SpectrumLog, add_spectra, drop_single_spectrum
from ...variables import make_dataset, model_attrs
from .cell import SPECTRUM_PARTS, SPECTRUM_SCALARS, Result, simulate

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
    spectra = result.spectra
    if spectra is not None:
        add_spectra(data, coords,
                    SpectrumLog(SPECTRUM_SCALARS, SPECTRUM_PARTS).variables(spectra))
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
    ds = drop_single_spectrum(ds)
    ds["x"].attrs["long_name"] = "position along the substrate (periodic)"
    ds["site_activation_time"].attrs["nan_means"] = "the site never activated"
    return ds


def run(case, *, lifecycle: Lifecycle | None = None, progress=None) -> xr.Dataset:
    """Run the case and return its Dataset."""
    return to_dataset(case, simulate(case, lifecycle=lifecycle, progress=progress))
