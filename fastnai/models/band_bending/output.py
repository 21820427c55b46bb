"""band_bending results as the SPEC 2.2 Dataset, and derived quantities."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from scipy import constants

from ..._kernels import poisson
from ...errors import ConvergenceError
from ...variables import make_dataset, model_attrs, non_finite
from .solver import Solution, charge_parameters, solve


def _width_to_fraction(depth: np.ndarray, profile: np.ndarray, fraction: float) -> float:
    """First depth where |profile| falls to ``fraction`` of |profile[0]| (linear interpolation)."""
    level = abs(profile[0]) * fraction
    mag = np.abs(profile)
    below = np.nonzero(mag <= level)[0]
    if profile[0] == 0.0 or below.size == 0:
        return math.nan
    j = below[0]
    if j == 0:
        return 0.0
    t = (mag[j - 1] - level) / (mag[j - 1] - mag[j])
    return float(depth[j - 1] + t * (depth[j] - depth[j - 1]))


def quantities(sol: Solution) -> dict:
    """Profiles and scalar results of a solution, node 0 at the contact (SI, energies in eV)."""
    g = sol.geometry
    psi = sol.psi
    n_nodes = psi.size
    rho = np.empty(n_nodes)
    n = np.empty(n_nodes)
    p = np.empty(n_nodes)
    nd = np.empty(n_nodes)
    nt = np.empty(n_nodes)
    poisson.space_charge_profile(psi, sol.params, rho, n, p, nd, nt)
    # Gauss's law on the first (half) cell: eps A0 dpsi/dd(0) = G (psi1 - psi0) + rho0 vol0
    field0 = -(sol.conductance[0] * (psi[1] - psi[0]) + rho[0] * g.volume[0]) / (
        sol.permittivity * g.contact_area)
    field_depth = np.empty(n_nodes)
    field_depth[0] = field0
    field_depth[1:-1] = -(psi[2:] - psi[:-2]) / (g.depth[2:] - g.depth[:-2])
    field_depth[-1] = 0.0
    semiconductor_charge = float(np.sum(rho * g.volume) / g.contact_area)
    if sol.bc_type == poisson.BC_ROBIN:
        q_it, _ = poisson.interface_state_charge(psi[0], sol.params[poisson.P_EG],
                                                 sol.params[poisson.P_VT],
                                                 sol.contact[poisson.C_DIT],
                                                 sol.contact[poisson.C_CNL])
        metal_charge = sol.contact[poisson.C_LAYER] * (sol.contact[poisson.C_PSI] - psi[0])
    else:
        q_it = 0.0
        metal_charge = sol.permittivity * field0
    bending = psi[0] - psi[-1]
    fixed_scale = poisson.Q_E * max(sol.params[poisson.P_ND], sol.params[poisson.P_NA],
                                    sol.params[poisson.P_NT], n[-1], 1.0)
    _, drho = poisson.space_charge(sol.psi_neutral, sol.params)
    return {
        "potential": psi,
        "Ec": -psi,
        "Ev": -psi - sol.params[poisson.P_EG],
        "Ef": np.zeros(n_nodes),
        "n": n,
        "p": p,
        "ionized_donor_density": nd,
        "trapped_electron_density": nt,
        "charge_density": rho,
        "electric_field_depth": field_depth,
        "interface_electron_density": n[0],
        "interface_field": field0,
        "sheet_electron_density": float(np.sum((n - n[-1]) * g.volume) / g.contact_area),
        "band_bending": bending,
        "accumulation_width": _width_to_fraction(g.depth, psi - psi[-1], math.exp(-1.0)),
        "barrier_height": -psi[0],
        "ideal_barrier_height": -sol.contact[poisson.C_PSI],
        "bulk_Ec_minus_Ef": -sol.psi_neutral,
        "semiconductor_charge": semiconductor_charge,
        "interface_state_charge": q_it,
        "metal_sheet_charge": metal_charge,
        "bulk_neutrality": rho[-1] / fixed_scale,
        "far_boundary_offset": psi[-1] - sol.psi_neutral,
        "screening_length": math.sqrt(sol.permittivity / max(abs(drho), 1e-300)),
        "effective_density_of_states_conduction": sol.params[poisson.P_NC],
        "effective_density_of_states_valence": sol.params[poisson.P_NV],
    }


def to_dataset(case, sol: Solution) -> xr.Dataset:
    """Wrap a solution as the SPEC section 2.2 Dataset."""
    q = quantities(sol)
    g = sol.geometry
    # the field along the output coordinate: x grows with depth; r grows with depth for a dot
    # and against it for a sphere (contact at r = R)
    sign = -1.0 if case["model.geometry"] == "sphere" else 1.0
    q["electric_field"] = sign * q.pop("electric_field_depth")
    q["depth"] = g.depth
    order = np.argsort(g.coordinate, kind="stable")
    data = {}
    for name, value in q.items():
        value = np.asarray(value)
        data[name] = value[order] if value.ndim == 1 else value
    stats = {
        "newton_iterations": sol.newton_iterations,
        "continuation_steps": sol.continuation_steps,
        "final_update_norm": sol.history[-1][0] if sol.history else math.nan,
        "n_nodes": int(sol.psi.size),
        "geometry": case["model.geometry"],
        "statistics": case["semiconductor.statistics"],
    }
    ds = make_dataset("band_bending", data, {g.name: g.coordinate[order]},
                      model_attrs("band_bending", stats))
    if not math.isfinite(float(ds["accumulation_width"])):
        ds["accumulation_width"].attrs["nan_means"] = (
            "the band bending does not fall to 1/e of its contact value inside the domain")
    return ds


def run(case) -> xr.Dataset:
    """Solve ``case`` and return the result Dataset (checked finite).

    >>> from fastnai import load_case
    >>> ds = run(load_case({"model": {"kind": "band_bending"},
    ...                     "semiconductor": {"material": "anatase-TiO2"},
    ...                     "contact": {"material": "TiC"}, "mesh": {"n_nodes": 400}}))
    >>> f"{float(ds.interface_electron_density) * 1e-6:.3g} cm-3"
    '1.31e+20 cm-3'
    """
    sol = solve(case)
    ds = to_dataset(case, sol)
    bad = non_finite(ds)
    if bad:
        raise ConvergenceError(f"band_bending: the converged solution gives non-finite {', '.join(bad)} "
                               "(parameters outside the floating-point range of the model)",
                               sol.history)
    return ds


def first_integral_field(case, psi_contact: float, psi_far: float) -> float:
    """Contact field from the first integral of Poisson's equation (planar, zero far field).

    E_s^2 = (2/eps) integral_(psi_far)^(psi_contact) (-rho(psi)) dpsi, evaluated by adaptive
    quadrature of the same space-charge law the solver uses; signed like ``interface_field``
    (positive for accumulation). Exact for the continuous problem on any domain length, since
    it uses the computed far-boundary potential.

    >>> from fastnai import load_case
    >>> case = load_case({"model": {"kind": "band_bending"},
    ...                   "semiconductor": {"material": "anatase-TiO2"},
    ...                   "contact": {"material": "TiC"}})
    >>> sol = solve(case)
    >>> exact = first_integral_field(case, sol.psi[0], sol.psi[-1])
    >>> bool(abs(quantities(sol)["interface_field"] / exact - 1) < 1e-4)
    True
    """
    from scipy.integrate import quad

    params = charge_parameters(case)
    eps = case["semiconductor.relative_permittivity"] * constants.epsilon_0
    vt = params[poisson.P_VT]

    def minus_rho(psi: float) -> float:
        return -poisson.space_charge(psi, params)[0]

    lo, hi = sorted((psi_far, psi_contact))
    breaks = list(np.linspace(lo, hi, 2 + int((hi - lo) / (2 * vt)))[1:-1])
    integral, _ = quad(minus_rho, psi_far, psi_contact, epsabs=0.0, epsrel=1e-13, limit=2000,
                       points=breaks or None)
    return math.copysign(math.sqrt(2.0 * abs(integral) / eps), psi_contact - psi_far)


def pinning_factor(case, step: float = 0.02) -> dict:
    """Cowley-Sze pinning factor S = dPhi_B/dphi_m by central differences of two solves.

    Returns the measured S, the barrier height, and the model prediction
    1/(1 + (delta/eps_i)(C_it + C_sc)) with C_sc = -dQ_sc/dpsi(0) and C_it = -dQ_it/dpsi(0)
    (= q D_it while E_F is well inside the gap) from the same solves.
    """
    base = case["contact.work_function"]
    sols = [solve(case.with_overrides({"contact.work_function": base + s}))
            for s in (-step, step)]
    q = [quantities(s) for s in sols]
    barrier = [x["barrier_height"] for x in q]
    s_measured = (barrier[1] - barrier[0]) / (2.0 * step)
    psi0 = [s.psi[0] for s in sols]
    c_sc = -(q[1]["semiconductor_charge"] - q[0]["semiconductor_charge"]) / (psi0[1] - psi0[0])
    delta = case["contact.interfacial_layer_thickness"]
    eps_i = case["contact.interfacial_layer_permittivity"] * constants.epsilon_0
    q_it = [x["interface_state_charge"] for x in q]
    c_it = -(q_it[1] - q_it[0]) / (psi0[1] - psi0[0])  # q D_it (f(E_V) - f(E_C)) at the solution
    predicted = 1.0 / (1.0 + (delta / eps_i) * (c_it + c_sc)) if delta > 0 else 1.0
    return {"S": s_measured, "S_predicted": predicted, "C_sc": c_sc,
            "barrier_height": 0.5 * (barrier[0] + barrier[1])}
