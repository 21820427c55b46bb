"""Output variables: name -> dims, units, long_name; and the one builder of result Datasets."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from ._version import version as _fastnai_version

# Dimension placeholder "space" becomes x (planar) or r (sphere, dot); "state" becomes t in a
# transient film_stress run and soc in a quasi-static one.
# Charge is written "A s" (= C): cf_xarray's pint registry reads a bare "C" as degree Celsius.


def _spectrum_variables(area: str, ohmic: str) -> dict[str, tuple[tuple[str, ...], str, str]]:
    """The impedance spectra of ``eis`` steps (every time-dependent model), per m2 of ``area``,
    with the ``ohmic`` parts, on (spectrum, frequency); the spectrum dimension is dropped when
    there is one."""
    per = f"per m2 of {area}"
    out = {name: (("spectrum", "frequency"), units, long_name) for name, units, long_name in (
        ("impedance_real", "ohm m2", f"Re Z {per} ({ohmic})"),
        ("impedance_imag", "ohm m2", f"Im Z {per} (negative for a capacitor; instrument exports "
                                     "often hold -Im Z)"),
        ("impedance_modulus", "ohm m2", f"|Z| {per}"),
        ("impedance_phase", "degree", "phase of Z (negative for a capacitor)"))}
    out.update({
        "spectrum_time": (("spectrum",), "s", "time of the state the spectrum is about"),
        "spectrum_voltage": (("spectrum",), "V", "voltage of the spectrum's DC state"),
        "spectrum_current_density": (("spectrum",), "A m-2",
                                     "Faradaic current of the spectrum's DC state"),
        "spectrum_drift_ratio": (("spectrum",), "1",
                                 "how fast the DC state moves against how fast the signal at "
                                 "frequency_min moves it: near or above 0.1 the state is not steady"),
        "spectrum_step": (("spectrum",), "1", "index of the eis [[protocol]] entry"),
    })
    return out


VARIABLES: dict[str, dict[str, tuple[tuple[str, ...], str, str]]] = {
    "band_bending": {
        "potential": (("space",), "V", "electrostatic potential (E_C = -q potential, E_F = 0)"),
        "Ec": (("space",), "eV", "conduction-band edge relative to the Fermi level"),
        "Ev": (("space",), "eV", "valence-band edge relative to the Fermi level"),
        "Ef": (("space",), "eV", "Fermi level (the metal's, the energy reference)"),
        "n": (("space",), "m-3", "conduction-band electron density"),
        "p": (("space",), "m-3", "valence-band hole density"),
        "ionized_donor_density": (("space",), "m-3", "ionised donor density"),
        "trapped_electron_density": (("space",), "m-3", "density of electrons in traps"),
        "charge_density": (("space",), "A s m-3", "space-charge density"),
        "electric_field": (("space",), "V m-1", "electric field along the coordinate"),
        "depth": (("space",), "m", "distance from the contact"),
        "interface_electron_density": ((), "m-3", "electron density at the contact"),
        "interface_field": ((), "V m-1",
                            "field at the contact, along the normal into the semiconductor "
                            "(Gauss's law on the first cell)"),
        "sheet_electron_density": ((), "m-2",
                                   "excess electrons per contact area, integral of (n - n_bulk)"),
        "band_bending": ((), "eV", "E_C(far boundary) - E_C(contact); positive for accumulation"),
        "accumulation_width": ((), "m",
                               "depth where the band bending falls to 1/e of its contact value"),
        "barrier_height": ((), "eV", "E_C(contact) - E_F: the effective contact barrier"),
        "ideal_barrier_height": ((), "eV", "work function - electron affinity (Schottky-Mott)"),
        "bulk_Ec_minus_Ef": ((), "eV", "E_C - E_F of the neutral bulk"),
        "semiconductor_charge": ((), "A s m-2", "space charge per contact area"),
        "interface_state_charge": ((), "A s m-2", "charge of the interface states per area"),
        "metal_sheet_charge": ((), "A s m-2", "charge on the metal per contact area"),
        "bulk_neutrality": ((), "1",
                            "space charge at the far boundary over the fixed-charge scale; "
                            "near 0 when the domain reaches a neutral bulk"),
        "far_boundary_offset": ((), "V", "potential at the far boundary minus the neutral bulk's"),
        "screening_length": ((), "m",
                             "linear screening (Debye) length of the neutral bulk, "
                             "sqrt(eps / |d rho / d psi|)"),
        "effective_density_of_states_conduction": ((), "m-3", "N_C"),
        "effective_density_of_states_valence": ((), "m-3", "N_V"),
    },
    "film_stress": {
        "x_Bi": (("z",), "1", "Bi fraction x of Bi(x)Sb(1-x)"),
        "theta": (("state", "z"), "1", "sodiation fraction (Na per site of Na3M)"),
        "c_Na": (("state", "z"), "mol m-3", "Na concentration per reference volume"),
        "sigma_xx": (("state", "z"), "Pa", "in-plane stress (equi-biaxial: sigma_yy = sigma_xx)"),
        "sigma_zz": (("state", "z"), "Pa", "through-thickness stress (zero in the laminate)"),
        "von_mises": (("state", "z"), "Pa", "von Mises stress"),
        "hydrostatic_stress": (("state", "z"), "Pa", "mean stress, trace(sigma)/3"),
        "plastic_strain": (("state", "z"), "1", "in-plane plastic strain"),
        "max_von_mises": (("state",), "Pa", "largest von Mises stress in the film"),
        "peak_film_stress": (("state",), "Pa", "in-plane film stress of largest magnitude (signed)"),
        "peak_stress_height": (("state",), "m", "reference height of the peak film stress"),
        "interface_stress": (("state",), "Pa", "in-plane film stress at the film-substrate interface"),
        "substrate_stress_at_interface": (("state",), "Pa",
                                          "in-plane substrate stress just below the interface"),
        "substrate_curvature": (("state",), "m-1",
                                "curvature of the plate (positive: film side convex)"),
        "film_thickness": (("state",), "m", "current film thickness"),
        "mean_film_stress": (("state",), "Pa", "thickness-averaged in-plane film stress"),
        "channel_crack_energy_release_rate": (("state",), "J m-2",
                                              "channel cracking, Z sigma^2 h / E' (tension only)"),
        "delamination_energy_release_rate": (("state",), "J m-2",
                                             "steady delamination, int (1 - nu^2) sigma^2/(2E) dz"),
        "buckling_energy_release_rate": (("state",), "J m-2",
                                         "buckle-driven delamination of a straight blister"),
        "energy_release_rate": (("state",), "J m-2", "largest of the three energy release rates"),
        "channel_crack_soc": ((), "1", "state of charge where channel cracking first trips"),
        "delamination_soc": ((), "1", "state of charge where delamination first trips"),
        "buckling_soc": ((), "1", "state of charge where buckle delamination first trips"),
        "protocol_step": (("state",), "1", "index of the [[protocol]] entry (-1: initial state)"),
        "mean_theta": (("state",), "1", "film state of charge, thickness-mean theta"),
        "von_mises_centre": (("state", "z"), "Pa", "von Mises stress along the symmetry line (2D)"),
        "edge_zone_stress": (("state",), "Pa",
                             "in-plane film stress of largest magnitude outside r < 0.15 h_f of "
                             "the film-edge corner (2D)"),
        "edge_zone_von_mises": (("state",), "Pa",
                                "largest film von Mises stress outside r < 0.15 h_f of the corner"),
        "edge_zone_x": (("state",), "m", "x of the edge-zone stress (2D)"),
        "edge_zone_z": (("state",), "m", "z above the substrate bottom of the edge-zone stress"),
        "out_of_plane_curvature": (("state",), "m-1",
                                   "kappa_y of generalised plane strain (2D free plate)"),
        "x_point": (("point",), "m", "x of the Gauss point (symmetry plane at 0)"),
        "z_point": (("point",), "m", "z of the Gauss point (substrate bottom at 0)"),
        "von_mises_map": (("point",), "Pa", "von Mises stress at the last state (2D)"),
        "sigma_xx_map": (("point",), "Pa", "in-plane stress at the last state (2D)"),
        "plastic_strain_map": (("point",), "1",
                               "equivalent plastic strain at the last state (2D)"),
        "voltage": (("t",), "V", "electrode voltage vs Na+/Na"),
        "current_density": (("t",), "A m-2", "current per film area, anodic (Na extraction) positive"),
        "na_inventory": (("t",), "mol m-2", "Na in the film from the state, per film area"),
        "jump_diffusivity_mean": ((), "m2 s-1", "thickness-mean Na diffusivity of the unsodiated film"),
        **_spectrum_variables("film", "no series resistance"),
        "spectrum_theta": (("spectrum",), "1", "film-mean sodiation of the spectrum's DC state"),
    },
    "drift_diffusion": {
        "voltage": (("t",), "V", "electrode voltage vs Na+/Na (Fermi level of the contact)"),
        "cell_voltage": (("t",), "V", "voltage with the series resistance, V + j R_s"),
        "current_density": (("t",), "A m-2",
                            "current per electrolyte-interface area, anodic (Na extraction) "
                            "positive"),
        "specific_capacity": (("t",), "mA h g-1", "Na inserted since the start, from the state"),
        "na_inventory": (("t",), "mol m-2",
                         "Na in the electrode from the state (mol m-2 of slab; mol per "
                         "particle set in spheres, the units attribute says which)"),
        "protocol_step": (("t",), "1", "index of the [[protocol]] entry (-1: initial equilibrium)"),
        "c_Na": (("t_profile", "space"), "m-3", "Na+ number density"),
        "theta": (("t_profile", "space"), "1", "site fraction c / c_max"),
        "n": (("t_profile", "space"), "m-3", "conduction-band electron density"),
        "n_trapped": (("t_profile", "space"), "m-3", "electrons on Ti3+ traps"),
        "potential": (("t_profile", "space"), "V", "electrostatic potential (E_C = -q psi)"),
        "electric_field": (("t_profile", "space"), "V m-1", "electric field along the coordinate"),
        "depth": (("space",), "m", "distance from the metal contact"),
        "particle_current": (("particle", "t"), "A",
                             "current of each particle, anodic positive (ensembles)"),
        "particle_radius": (("particle",), "m", "outer radius of each particle (ensembles)"),
        "cv_voltage": (("scan_rate", "sample"), "V", "CV: electrode voltage along the sweep"),
        "cv_current_density": (("scan_rate", "sample"), "A m-2",
                               "CV: current density along the sweep, anodic positive"),
        "cv_time": (("scan_rate", "sample"), "s", "CV: time since the start of the sweep"),
        **_spectrum_variables("electrolyte interface", "with electrode.series_resistance"),
        "impedance_mass_real": (("spectrum", "frequency"), "ohm g",
                                "Re Z times the host mass: the electrode of one gram of active "
                                "material (divide by the loading in g for ohm)"),
        "impedance_mass_imag": (("spectrum", "frequency"), "ohm g", "Im Z times the host mass"),
        "spectrum_theta": (("spectrum",), "1", "mean site fraction of the spectrum's DC state"),
        "hop_distance": ((), "m", "Na+ hop distance a"),
        "jump_diffusivity": ((), "m2 s-1", "Na+ jump diffusivity D0 at the model temperature"),
        "site_density": ((), "m-3", "Na site density c_max"),
        "one_c_current_density": ((), "A m-2", "current density of 1C"),
    },
    "deposition": {
        "phase": (("t_snapshot", "y", "plane"), "1", "phase field xi (1 Na metal, 0 electrolyte)"),
        "c_Na": (("t_snapshot", "y", "plane"), "mol m-3",
                 "salt (Na+) concentration in the electrolyte"),
        "potential": (("t_snapshot", "y", "plane"), "V",
                      "electrolyte potential vs a Na reference electrode (Phi), 0 at the top"),
        "active_sites": (("t_snapshot", "plane"), "1",
                         "1 where the substrate under (x, depth) is an active site"),
        "current_density": (("t",), "A m-2",
                            "applied current density, anodic positive (plating < 0)"),
        "overpotential": (("t",), "V", "plating electrode vs a Na reference at the top of the box "
                                       "(per-electrode convention)"),
        "voltage": (("t",), "V", "symmetric-cell voltage (working minus counter electrode)"),
        "counter_overpotential": (("t",), "V",
                                  "Butler-Volmer overpotential of the counter electrode"),
        "separator_drop": (("t",), "V",
                           "Na-referenced potential of the counter electrode's electrolyte "
                           "minus the box top's (separator column)"),
        "na_inventory": (("t",), "mol m-2",
                         "Na in the phase field per substrate area (from the state)"),
        "deposited_charge": (("t",), "A s m-2", "charge passed in the plating direction"),
        "nuclei_count": (("t",), "1", "active nucleation sites"),
        "active_site_density": (("t",), "m-1", "active sites per length of substrate (2D)"),
        "active_site_areal_density": (("t",), "m-2", "active sites per substrate area (3D)"),
        "front_height_max": (("t",), "m", "highest top of the metal (xi = 0.5) over x"),
        "front_height_mean": (("t",), "m", "mean top of the metal over x"),
        "roughness": (("t",), "m", "standard deviation of the metal top over x"),
        "dead_na_fraction": (("t",), "1",
                             "fraction of the deposited Na in islands cut off from the electrode"),
        "substrate_stripped": (("t",), "mol m-2", "Na dissolved from the substrate itself"),
        "front_concentration": (("t",), "mol m-3",
                                "lowest salt concentration just above the metal top"),
        "profile_na": (("t",), "mol m-2",
                       "Na the phase field's profile terms added, charged against the current "
                       "(round-off with the default phase_field.conservation)"),
        "time_step": (("t",), "s", "time step that ended at t"),
        "protocol_step": (("t",), "1", "index of the [[protocol]] step"),
        "site_position": (("site",), "m", "centre of each nucleation site along x"),
        "site_position_depth": (("site",), "m", "centre of each nucleation site along depth (3D)"),
        "site_activation_time": (("site",), "s", "time the site activated (NaN: never)"),
        "contact_angle": ((), "degree", "contact angle of Na on the substrate"),
        "exchange_current_density": ((), "A m-2", "j0 at the run's temperature"),
        **_spectrum_variables("substrate (projected area); symmetric cell",
                             "both electrodes, their electrolyte and the separator"),
        **{name: (("spectrum", "frequency"), units, long_name) for name, units, long_name in (
            ("electrode_impedance_real", "ohm m2",
             "Re Z of the working electrode alone (its interface and electrolyte box) per m2 of "
             "substrate"),
            ("electrode_impedance_imag", "ohm m2",
             "Im Z of the working electrode alone per m2 of substrate"))},
    },
}

COORDINATES = {
    "x": ("m", "distance from the interface into the semiconductor"),
    "r": ("m", "radial distance from the centre of the particle or dot"),
    "t": ("s", "time"),
    "t_profile": ("s", "time of the stored profiles"),
    "scan_rate": ("V s-1", "CV scan rate"),
    "particle": ("1", "particle index of the ensemble"),
    "sample": ("1", "sample index along the CV sweep (uniform in voltage)"),
    "frequency": ("Hz", "frequency of the impedance spectrum"),
    "spectrum": ("1", "impedance spectrum index (one per eis protocol step)"),
    "soc": ("1", "film state of charge (film-mean theta) of the state"),
    "z": ("m", "height above the substrate in the reference (unsodiated) film"),
    "y": ("m", "height above the substrate"),
    "t_snapshot": ("s", "time of the stored fields"),
    "site": ("1", "nucleation site index"),
    "depth": ("m", "position across the substrate normal to x (3D deposition, periodic)"),
    "point": ("1", "Gauss point of the 2D cross-section (element-major, 4 per element)"),
}


def make_dataset(kind: str, data: Mapping[str, Any], coords: Mapping[str, np.ndarray],
                 attrs: Mapping[str, Any]) -> xr.Dataset:
    """Build a result Dataset from the variable table.

    Parameters
    ----------
    kind
        Model kind (selects the table).
    data
        Variable name -> array or scalar; every name must be in the table.
    coords
        Coordinate name ("x" or "r", ...) -> values.
    attrs
        Global attributes (the caller adds solver statistics and provenance).
    """
    table = VARIABLES[kind]
    space = next((c for c in coords if c in ("x", "r")), None)
    state = "t" if "t" in coords else "soc"  # film_stress: quasi-static sweep or transient
    # one Dataset constructor call: adding the variables one by one re-aligns the Dataset at
    # every step, 0.7 ms a variable (27 of them took 60 % of a 3000-node band-bending run)
    coord_vars = {}
    for name, values in coords.items():
        units, long_name = COORDINATES[name]
        coord_vars[name] = xr.Variable((name,), np.asarray(values, dtype=np.float64),
                                       {"units": units, "long_name": long_name})
    data_vars = {}
    for name, values in data.items():
        dims, units, long_name = table[name]
        dims = tuple(space if d == "space" else state if d == "state" else d for d in dims)
        if "plane" in dims:  # the substrate plane: (x,) in 2D, (depth, x) in 3D
            i = dims.index("plane")
            dims = dims[:i] + (("depth", "x") if "depth" in coords else ("x",)) + dims[i + 1:]
        data_vars[name] = xr.Variable(dims, np.asarray(values, dtype=np.float64),
                                      {"units": units, "long_name": long_name})
    return xr.Dataset(data_vars, coord_vars, attrs=dict(attrs))


def model_attrs(model: str, stats: Mapping[str, Any]) -> dict[str, Any]:
    """A model's own global attrs: its kind and solver statistics (booleans as 0/1, which
    netCDF can store)."""
    attrs: dict[str, Any] = {"model": model}
    for key, value in stats.items():
        attrs[key] = int(value) if isinstance(value, (bool, np.bool_)) else value
    return attrs


def provenance(case, wall_time_s: float) -> dict[str, Any]:
    """The provenance attrs every result carries (SPEC section 2.2); :func:`fastnai.run` adds
    them once for every model.

    >>> from fastnai.case import load_case
    >>> case = load_case("cases/band_bending_ticn_tio2.toml")
    >>> attrs = provenance(case, 0.5)
    >>> attrs["model"], attrs["case"] == case.to_toml(), attrs["wall_time_s"]
    ('band_bending', True, 0.5)
    """
    import numba

    return {
        "fastnai_version": _fastnai_version,
        "model": case.kind,
        "case": case.to_toml(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "numba_threads": int(numba.get_num_threads()),
        "wall_time_s": float(wall_time_s),
        "references": ", ".join(f"doi:{d}" for d in case.references()),
        "Conventions": "CF-1.10",
    }


def non_finite(ds: xr.Dataset) -> list[str]:
    """Names of the float variables holding NaN or inf without a ``nan_means`` attribute
    (the one convention for diagnostics that are undefined for a case)."""
    return [name for name, var in ds.data_vars.items()
            if var.dtype.kind == "f" and "nan_means" not in var.attrs
            and not np.all(np.isfinite(var.values))]


#: What a user looks at first, per model: (variable, reduction, label).
SUMMARY = {
    "band_bending": (("band_bending", "value", "band bending"),
                     ("interface_field", "value", "interface field"),
                     ("sheet_electron_density", "value", "sheet density")),
    "drift_diffusion": (("t", "last", "t"), ("voltage", "last", "final voltage"),
                        ("specific_capacity", "max", "max capacity"),
                        ("current_density", "absmax", "peak |current|")),
    "film_stress": (("max_von_mises", "max", "peak von Mises"),
                    ("interface_stress", "absmax", "peak |interface stress|"),
                    ("voltage", "last", "final voltage")),
    "deposition": (("t", "last", "t"), ("overpotential", "absmax", "peak |overpotential|"),
                   ("nuclei_count", "last", "nuclei"), ("roughness", "last", "final roughness")),
}

_REDUCE = {"value": lambda a: a.ravel()[0], "last": lambda a: a.ravel()[-1],
           "max": np.nanmax, "absmax": lambda a: a.ravel()[np.nanargmax(np.abs(a))]}


def summary_line(ds: xr.Dataset) -> str:
    """One line of the quantities a user looks at first (units from the variables).

    >>> ds = xr.Dataset({"band_bending": ((), 0.98, {"units": "eV"})}, attrs={"model": "band_bending"})
    >>> summary_line(ds)
    'band bending 0.98 eV'
    """
    parts = []
    for name, how, label in SUMMARY.get(ds.attrs.get("model", ""), ()):
        if name not in ds.variables or ds[name].size == 0:
            continue
        value = float(_REDUCE[how](np.asarray(ds[name].values, dtype=float)))
        parts.append(f"{label} {value:.4g} {ds[name].attrs.get('units', '')}".rstrip())
    return ", ".join(parts) if parts else "(no summary quantities)"
