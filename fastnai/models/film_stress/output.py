"""film_stress results as the SPEC 2.2 Dataset, and derived quantities."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from ... import fem
from ..._kernels import laminate as klam
from ...lifecycle import Lifecycle
from ...spectrum_log import SpectrumLog, add_spectra, drop_single_spectrum
from ...variables import make_dataset, model_attrs
from .cell import SPECTRUM_SCALARS, Result, simulate, simulate_transport
from .setup import Stack, _site_density, soc_path

# ---------------------------------------------------------------------------------------------
# derived quantities


def point_moduli(stack: Stack, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Young's modulus and Poisson ratio at the film points; ``theta`` (n_states, n_film_layers)."""
    f = stack.film
    th = np.repeat(np.asarray(theta), 2, axis=1)
    young = np.repeat(stack.young0[f], 2)[None, :] * (1 - th) + np.repeat(stack.young1[f], 2) * th
    nu = np.repeat(stack.poisson0[f], 2)[None, :] * (1 - th) + np.repeat(stack.poisson1[f], 2) * th
    return young, nu


def current_weights(stack: Stack, theta: np.ndarray, kinematics: str) -> np.ndarray:
    """Current quadrature weights of the film points per state [m]."""
    f = stack.film
    h = np.diff(stack.z_faces)[f]
    stretch = 1.0 + stack.beta[f][None, :] * np.asarray(theta)
    if kinematics == "linear":
        stretch = np.ones_like(stretch)
    return np.repeat(0.5 * h[None, :] * stretch, 2, axis=1)


def failure_measures(case, result: Result) -> dict[str, np.ndarray]:
    """Energy release rates per state [J m-2] and the state of charge where each trips."""
    stack = result.stack
    sigma = result.stress[:, stack.film_points]
    young, nu = point_moduli(stack, result.theta)
    w = current_weights(stack, result.theta, case["model.kinematics"])
    h = w.sum(axis=1)
    mean_sigma = (sigma * w).sum(axis=1) / h
    plane = young / (1.0 - nu**2)  # E'
    e_mean = (plane * w).sum(axis=1) / h
    channel = np.where(mean_sigma > 0.0, case["failure.channel_z"] * mean_sigma**2 * h / e_mean, 0.0)
    delam = ((1.0 - nu**2) * sigma**2 / (2.0 * young) * w).sum(axis=1)
    b = case["failure.blister_half_width"] or 10.0 * case["film.thickness"]
    sigma_c = math.pi**2 * e_mean * h**2 / (12.0 * b**2)
    comp_s = -mean_sigma
    buckle = np.where(comp_s > sigma_c, (comp_s - sigma_c) * (comp_s + 3.0 * sigma_c) * h
                      / (2.0 * e_mean), 0.0)
    g_c = case["failure.toughness"]

    def trips(g):
        hit = np.flatnonzero(g >= g_c)
        return float(result.soc[hit[0]]) if hit.size else math.nan

    return {"channel_crack_energy_release_rate": channel,
            "delamination_energy_release_rate": delam,
            "buckling_energy_release_rate": buckle,
            "energy_release_rate": np.maximum(np.maximum(channel, delam), buckle),
            "mean_film_stress": mean_sigma,
            "channel_crack_soc": trips(channel), "delamination_soc": trips(delam),
            "buckling_soc": trips(buckle)}


def interface_stress(result: Result) -> np.ndarray:
    """Film stress at z = 0+ per state: the bottom film layer's linear stress extrapolated to its
    face (the stress is linear in z inside a layer) [Pa]."""
    q = 2 * result.stack.n_substrate
    s_lo, s_hi = result.stress[:, q], result.stress[:, q + 1]
    g = klam.GAUSS_HI - klam.GAUSS_LO  # the layer's Gauss points sit at 1/2 -+ g/2
    return s_lo - (s_hi - s_lo) * (0.5 - 0.5 * g) / g


def to_dataset(case, result: Result) -> xr.Dataset:
    """The SPEC 2.2 Dataset: profiles on (state, z), scalars per state; the state dimension is
    ``soc`` for a quasi-static sweep and ``t`` for a transient run (which adds the voltage,
    current and inventory series)."""
    stack = result.stack
    fp = stack.film_points
    sigma = result.stress[:, fp]
    theta_pts = np.repeat(result.theta, 2, axis=1)
    fail = failure_measures(case, result)
    peak_index = np.argmax(np.abs(sigma), axis=1)
    z = result.z_points[fp]
    x_pts = np.repeat(stack.x_bi, 2)
    c_max = _site_density(case, x_pts)
    res = result.results
    data = {
        "x_Bi": x_pts,
        "theta": theta_pts,
        "c_Na": theta_pts * c_max[None, :],
        "sigma_xx": sigma,
        "sigma_zz": np.zeros_like(sigma),
        "von_mises": np.abs(sigma),
        "hydrostatic_stress": 2.0 * sigma / 3.0,
        "plastic_strain": result.plastic[:, fp],
        "max_von_mises": np.abs(sigma).max(axis=1),
        "peak_film_stress": sigma[np.arange(sigma.shape[0]), peak_index],
        "peak_stress_height": z[peak_index],
        "interface_stress": interface_stress(result),
        "substrate_stress_at_interface": result.stress[:, fp.start - 1],
        "substrate_curvature": res[:, klam.R_KAPPA],
        "film_thickness": res[:, klam.R_THICKNESS] - case["substrate.thickness"],
        "protocol_step": result.step.astype(float),
        "mean_theta": result.soc,
        **{k: v for k, v in fail.items()},
    }
    coords = {"soc": result.soc, "z": z}
    extra = {}
    if result.series is not None:
        s = result.series
        coords = {"t": s["t"], "z": z}
        data.update({"voltage": s["voltage"], "current_density": s["current"],
                     "na_inventory": s["inventory"], "jump_diffusivity_mean": s["mean_diffusivity"]})
        extra = dict(result.stats)
        extra["one_c_current_density"] = s["one_c"]
        if result.spectra is not None:
            add_spectra(data, coords, SpectrumLog(SPECTRUM_SCALARS).variables(result.spectra))
    stats = {**extra, "newton_iterations": int(res[:, klam.R_ITERATIONS].sum()),
             "max_scaled_residual": float(res[:, klam.R_RESIDUAL].max()),
             "film_layers": case["mesh.film_layers"], "mechanics": case["model.mechanics"],
             "kinematics": case["model.kinematics"], "plasticity": bool(case["model.plasticity"]),
             "film_mean_x_Bi": float(np.mean(stack.x_bi))}  # equal layers: midpoint rule
    ds = make_dataset("film_stress", data, coords,
                      model_attrs("film_stress", stats))
    for name in ("channel_crack_soc", "delamination_soc", "buckling_soc"):
        ds[name].attrs["nan_means"] = "never reached failure.toughness in this protocol"
    return drop_single_spectrum(ds)


def cross_section_dataset(case, xs, res) -> xr.Dataset:
    """The plane-strain Dataset: the symmetry-line profile on (soc, z), the edge-zone stress per
    state, and the von Mises and plastic-strain maps of the last state on ``point``."""
    z = xs.centre_z
    x_pts = xs.x_bi[xs.centre].mean(axis=1)
    theta = np.repeat(res.soc[:, None], z.size, axis=1)
    sigma = res.centre_stress
    peak = np.argmax(np.abs(sigma), axis=1)
    gp = xs.model.gauss_points
    data = {
        "x_Bi": x_pts, "theta": theta, "c_Na": theta * _site_density(case, x_pts)[None, :],
        "sigma_xx": sigma, "von_mises_centre": res.centre_von_mises,
        "plastic_strain": res.centre_plastic,
        "interface_stress": sigma[:, 0],
        "peak_film_stress": sigma[np.arange(sigma.shape[0]), peak],
        "peak_stress_height": z[peak],
        "edge_zone_stress": res.edge_stress, "edge_zone_von_mises": res.edge_von_mises,
        "max_von_mises": res.edge_von_mises,  # the whole film but r < 0.15 h_f of the corner
        "edge_zone_x": res.edge_position[:, 0], "edge_zone_z": res.edge_position[:, 1],
        "out_of_plane_curvature": res.gps[:, 1],
        "protocol_step": res.step.astype(float), "mean_theta": res.soc,
        "x_point": gp[..., 0].ravel(), "z_point": gp[..., 1].ravel(),
        "von_mises_map": fem.von_mises(res.final_stress).ravel(),
        "sigma_xx_map": res.final_stress[..., 0].ravel(),
        "plastic_strain_map": res.final_alpha.ravel(),
    }
    coords = {"soc": res.soc, "z": z, "point": np.arange(gp.shape[0] * 4, dtype=float)}
    stats = {"newton_iterations": res.newton_iterations, "mechanics": "plane_strain",
             "out_of_plane": case["plane.out_of_plane"], "support": case["plane.support"],
             "n_elements": xs.mesh.n_elements, "n_dofs": xs.model.n_dofs,
             "kinematics": case["model.kinematics"], "plasticity": bool(case["model.plasticity"]),
             "film_width": case["film.width"], "edge_exclusion_radius": 0.15 * case["film.thickness"]}
    return make_dataset("film_stress", data, coords,
                        model_attrs("film_stress", stats))


def run(case, *, lifecycle: Lifecycle | None = None, progress=None) -> xr.Dataset:
    """Run the case's protocol and return the result Dataset."""
    if case["model.mechanics"] == "plane_strain":
        from . import cross_section as fcs

        xs = fcs.build(case)
        soc, step = soc_path(case)
        res = fcs.sweep(case, xs, soc, step)
        ds = cross_section_dataset(case, xs, res)
    elif case["model.sodiation"] == "diffusion":
        ds = to_dataset(case, simulate_transport(case, lifecycle=lifecycle, progress=progress))
    else:
        ds = to_dataset(case, simulate(case))
    return ds
