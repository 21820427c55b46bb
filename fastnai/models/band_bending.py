"""Poisson-Fermi band bending at a metal/semiconductor contact (SPEC section 3.1).

The semiconductor (anatase TiO2 by default) lies beside a metal contact (TiCxN1-x). Energies are
referenced to the Fermi level (E_F = 0), and with no current flowing E_F is flat. Poisson's
equation

    div(eps grad psi) = -q (p - n + N_D+ - N_A - n_t),   E_C = -q psi,

is solved on a graded 1D mesh in planar, spherical-particle or metal-dot geometry, with
Fermi-Dirac (or Boltzmann) electrons and holes, donors with optional incomplete ionisation,
acceptors and electron traps. The contact is the Dirichlet condition psi(0) = -Phi_B/q with
Phi_B = phi_m - chi, or, with an interfacial layer, the Cowley-Sze Robin condition carrying
interface states. The far boundary has zero field; bulk neutrality there is a diagnostic.

Seed system: Cai et al., Small 18, 2200694 (2022), doi:10.1002/smll.202200694.

The semiclassical density at the contact is an upper bound: the electron Fermi wavelength
(~4 nm at 1e20 cm-3) is comparable to the accumulation width, and confinement lowers n(0).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import constants

from .. import schema
from .._kernels import poisson
from .._kernels._jit import PARALLEL_MIN_SIZE
from ..errors import CaseError, ConvergenceError
from ..mesh import graded_mesh
from ..variables import make_dataset, non_finite, provenance

K = schema.Key
Q = schema.QUANTITY
_CAI = "doi:10.1002/smll.202200694"

KEYS: dict[str, schema.Key] = {k.name: k for k in [
    K("model.kind", schema.CHOICE, "band_bending", choices=("band_bending",), doc="model kind"),
    K("model.geometry", schema.CHOICE, "planar", choices=("planar", "sphere", "dot"),
      doc="planar slab; sphere: particle with the contact over its surface; dot: metal dot of "
          "radius contact.radius at the surface, radial shell outward"),
    K("model.temperature", Q, 298.15, "K", 0.0, 5000.0, exclusive_minimum=True,
      doc="temperature"),
    K("semiconductor.material", schema.STRING, None, doc="material database entry"),
    K("semiconductor.thickness", Q, 50e-9, "m", 1e-11, 1e-2,
      doc="slab thickness; particle radius (sphere); shell thickness (dot)"),
    K("semiconductor.donor_density", Q, 1e24, "m^-3", 0.0, 1e29, doc="donor density",
      source=f"assumed (1e18 cm-3; {_CAI} does not give it)"),
    K("semiconductor.acceptor_density", Q, 0.0, "m^-3", 0.0, 1e29,
      doc="acceptor density (fully ionised; substitutional N)"),
    K("semiconductor.relative_permittivity", schema.NUMBER, None, None, 1.0, 1e4,
      required=True, material_property="relative_permittivity", doc="static eps_r"),
    K("semiconductor.electron_effective_mass", schema.NUMBER, None, None, 0.0, 100.0,
      exclusive_minimum=True, required=True, material_property="electron_effective_mass",
      doc="density-of-states electron mass [m0]"),
    K("semiconductor.hole_effective_mass", schema.NUMBER, None, None, 0.0, 100.0,
      exclusive_minimum=True, required=True, material_property="hole_effective_mass",
      doc="density-of-states hole mass [m0]"),
    K("semiconductor.electron_affinity", Q, None, "eV", 0.0, 20.0, required=True,
      material_property="electron_affinity", doc="electron affinity chi"),
    K("semiconductor.band_gap", Q, None, "eV", 0.0, 20.0, exclusive_minimum=True,
      required=True, material_property="band_gap", doc="band gap"),
    K("semiconductor.statistics", schema.CHOICE, "fermi-dirac",
      choices=("fermi-dirac", "boltzmann"), doc="carrier statistics"),
    K("semiconductor.holes", schema.BOOLEAN, True, doc="include valence-band holes"),
    K("semiconductor.donor_level", Q, None, "eV", 0.0, 20.0,
      doc="donor depth below E_C; set it for incomplete ionisation (unset: fully ionised)"),
    K("semiconductor.donor_degeneracy", schema.NUMBER, 2.0, None, 0.0, 1e3,
      exclusive_minimum=True, doc="donor ground-state degeneracy g_D"),
    K("semiconductor.trap_density", Q, 0.0, "m^-3", 0.0, 1e29,
      doc="electron-trap density (Ti3+ states)"),
    K("semiconductor.trap_level", Q, None, "eV", 0.0, 20.0,
      doc="trap depth below E_C (required when trap_density > 0)"),
    K("semiconductor.trap_degeneracy", schema.NUMBER, 1.0, None, 0.0, 1e3,
      exclusive_minimum=True, doc="trap degeneracy g_t"),
    K("contact.material", schema.STRING, None, doc="material database entry of the metal"),
    K("contact.work_function", Q, None, "eV", 0.0, 20.0, required=True,
      material_property="work_function", doc="metal work function phi_m"),
    K("contact.radius", Q, 1.5e-9, "m", 1e-11, 1e-3,
      doc="metal dot radius (dot geometry only)"),
    K("contact.interface_state_density", Q, 0.0, "m^-2 eV^-1", 0.0, 1e22,
      doc="interface-state density D_it (Cowley-Sze; needs an interfacial layer)"),
    K("contact.charge_neutrality_level", Q, 2.0, "eV", 0.0, 20.0,
      doc="interface-state neutrality level above E_V"),
    K("contact.interfacial_layer_thickness", Q, 0.0, "m", 0.0, 1e-7,
      doc="interfacial layer thickness delta (0: intimate contact, Dirichlet)"),
    K("contact.interfacial_layer_permittivity", schema.NUMBER, 1.0, None, 0.0, 1e4,
      exclusive_minimum=True, doc="relative permittivity eps_i of the interfacial layer"),
    K("mesh.n_nodes", schema.INTEGER, 2000, None, 3, 20_000_000, doc="nodes of the base mesh"),
    K("mesh.min_spacing", Q, 1e-11, "m", 1e-15, 1e-2,
      doc="first cell at the contact (geometric grading)"),
    K("mesh.refinement", schema.INTEGER, 1, None, 1, 1024,
      doc="split each base cell into this many (mesh-convergence studies)"),
    K("solver.tolerance", schema.NUMBER, 1e-10, None, 0.0, 1e-2, exclusive_minimum=True,
      doc="Newton convergence: max |d psi| / V_t"),
    K("solver.max_iterations", schema.INTEGER, 100, None, 1, 100_000,
      doc="Newton iterations per solve"),
    K("solver.continuation", schema.BOOLEAN, True,
      doc="ramp the barrier from flat band when a cold start fails"),
]}


def time_dependent(case) -> bool:
    """A steady model: no protocol, no checkpoints."""
    return False


def validate(case) -> None:
    """Cross-key checks (raise CaseError before any work)."""
    thickness = case["semiconductor.thickness"]
    n_nodes = case["mesh.n_nodes"]
    h0 = case["mesh.min_spacing"]
    if h0 * (n_nodes - 1) > thickness * (1 + 1e-12):
        raise CaseError(
            f"mesh.min_spacing = {h0:g} m with mesh.n_nodes = {n_nodes}: the mesh would be "
            f"{h0 * (n_nodes - 1):g} m long, more than semiconductor.thickness = {thickness:g} m; "
            "expected min_spacing * (n_nodes - 1) <= thickness")
    gap = case["semiconductor.band_gap"]
    for name in ("semiconductor.donor_level", "semiconductor.trap_level",
                 "contact.charge_neutrality_level"):
        value = case[name]
        if value is not None and value > gap:
            raise CaseError(f"{name} = {value:g} eV: expected a level inside the band gap "
                            f"(<= semiconductor.band_gap = {gap:g} eV)")
    if case["semiconductor.trap_density"] > 0 and case["semiconductor.trap_level"] is None:
        raise CaseError(f"semiconductor.trap_density = {case['semiconductor.trap_density']:g} m^-3 "
                        "needs semiconductor.trap_level (the trap depth below E_C, e.g. '0.8 eV')")
    if case["model.geometry"] == "dot" and case["contact.radius"] is None:
        raise CaseError("model.geometry = 'dot' needs contact.radius")
    n_total = n_nodes * case["mesh.refinement"]
    if n_total > 20_000_000:
        raise CaseError(f"mesh.n_nodes * mesh.refinement = {n_total}: expected at most 2e7 nodes")


@dataclass(frozen=True)
class Geometry:
    """Box-method geometry of a 1D mesh (node 0 at the contact).

    Areas and volumes are per steradian in radial geometry (the 4 pi cancels everywhere).
    """

    depth: np.ndarray  # distance from the contact [m]
    coordinate: np.ndarray  # x (planar) or r (radial) of each node [m]
    face_area: np.ndarray  # area of the face between node i and i+1 [m2]
    volume: np.ndarray  # dual-cell volume of each node [m3]
    contact_area: float  # [m2]
    name: str  # "x" or "r"


def make_geometry(kind: str, depth: np.ndarray, *, contact_radius: float | None = None) -> Geometry:
    """Face areas and dual-cell volumes for planar, sphere and dot geometry."""
    mid = 0.5 * (depth[1:] + depth[:-1])
    edges = np.concatenate(([depth[0]], mid, [depth[-1]]))
    if kind == "planar":
        return Geometry(depth, depth.copy(), np.ones(mid.size), np.diff(edges), 1.0, "x")
    if kind == "sphere":
        radius = depth[-1]
        r_edges = radius - edges
        return Geometry(depth, radius - depth, (radius - mid) ** 2,
                        (r_edges[:-1] ** 3 - r_edges[1:] ** 3) / 3.0, radius**2, "r")
    if kind == "dot":
        r_edges = contact_radius + edges
        return Geometry(depth, contact_radius + depth, (contact_radius + mid) ** 2,
                        (r_edges[1:] ** 3 - r_edges[:-1] ** 3) / 3.0, contact_radius**2, "r")
    raise ValueError(kind)


def effective_density_of_states(mass_ratio: float, temperature: float) -> float:
    """N = 2 (2 pi m* k T / h^2)^(3/2) [m-3].

    >>> f"{effective_density_of_states(1.0, 300.0):.4g}"  # the free-electron 2.51e19 cm-3
    '2.509e+25'
    """
    m = mass_ratio * constants.m_e
    return 2.0 * (2.0 * math.pi * m * constants.k * temperature / constants.h**2) ** 1.5


def charge_parameters(case, *, donor_density: float | None = None,
                      complete_ionisation: bool = False) -> np.ndarray:
    """The ``params`` vector of the space-charge kernels for a case.

    ``donor_density`` replaces the case's [m-3] (the interface layers of drift_diffusion);
    ``complete_ionisation`` ignores ``donor_level`` and ``donor_degeneracy`` (models without
    those keys).
    """
    temperature = case["model.temperature"]
    p = np.zeros(poisson.N_PARAMS)
    p[poisson.P_VT] = constants.k * temperature / constants.e
    p[poisson.P_NC] = effective_density_of_states(case["semiconductor.electron_effective_mass"],
                                                  temperature)
    p[poisson.P_NV] = effective_density_of_states(case["semiconductor.hole_effective_mass"],
                                                  temperature)
    p[poisson.P_EG] = case["semiconductor.band_gap"]
    p[poisson.P_ND] = case["semiconductor.donor_density"] if donor_density is None else donor_density
    if not complete_ionisation and case["semiconductor.donor_level"] is not None:
        p[poisson.P_DONOR_IONISATION] = 1.0
        p[poisson.P_ED] = case["semiconductor.donor_level"]
    p[poisson.P_GD] = 2.0 if complete_ionisation else case["semiconductor.donor_degeneracy"]
    p[poisson.P_NA] = case["semiconductor.acceptor_density"]
    p[poisson.P_NT] = case["semiconductor.trap_density"]
    p[poisson.P_ET] = case["semiconductor.trap_level"] or 0.0
    p[poisson.P_GT] = case["semiconductor.trap_degeneracy"]
    p[poisson.P_STATISTICS] = (poisson.STATISTICS_BOLTZMANN
                               if case["semiconductor.statistics"] == "boltzmann"
                               else poisson.STATISTICS_FERMI_DIRAC)
    p[poisson.P_HOLES] = 1.0 if case["semiconductor.holes"] else 0.0
    return p


@dataclass
class Solution:
    """Arrays of a converged solve (node 0 at the contact) and solver statistics."""

    geometry: Geometry
    psi: np.ndarray
    params: np.ndarray
    permittivity: float
    conductance: np.ndarray  # face conductances eps A / h [F]
    contact: np.ndarray
    bc_type: int
    psi_neutral: float
    newton_iterations: int
    continuation_steps: int
    history: list


@dataclass(frozen=True)
class Problem:
    """A band-bending problem as arrays and numbers: mesh, charges, contact, solver settings.

    ``layer``: ``(eps_i / delta [F m-2], D_it [m-2 eV-1], CNL [eV])`` of a Cowley-Sze
    interfacial layer (a Robin contact), or None for the intimate (Dirichlet) contact.
    """

    geometry: Geometry
    params: np.ndarray
    permittivity: float  # [F m-1]
    barrier: float  # Phi_B = phi_m - chi [eV]
    layer: tuple[float, float, float] | None = None
    tol: float = 1e-10
    max_iter: int = 200
    continuation: bool = True


def problem(case) -> Problem:
    """The :class:`Problem` of a validated band_bending case."""
    depth = graded_mesh(case["semiconductor.thickness"], case["mesh.n_nodes"],
                        case["mesh.min_spacing"], case["mesh.refinement"])
    delta = case["contact.interfacial_layer_thickness"]
    layer = None
    if delta > 0.0:
        layer = (case["contact.interfacial_layer_permittivity"] * constants.epsilon_0 / delta,
                 case["contact.interface_state_density"], case["contact.charge_neutrality_level"])
    return Problem(make_geometry(case["model.geometry"], depth, contact_radius=case["contact.radius"]),
                   charge_parameters(case),
                   case["semiconductor.relative_permittivity"] * constants.epsilon_0,
                   case["contact.work_function"] - case["semiconductor.electron_affinity"], layer,
                   case["solver.tolerance"], case["solver.max_iterations"],
                   case["solver.continuation"])


def solve(case) -> Solution:
    """Solve the band-bending problem of a validated ``case`` (arrays only, no Dataset)."""
    return solve_problem(problem(case))


def solve_problem(pr: Problem) -> Solution:
    """Damped Newton from a screened initial guess; continuation in the barrier when it fails."""
    geom, params, eps = pr.geometry, pr.params, pr.permittivity
    depth = geom.depth
    conductance = eps * geom.face_area / np.diff(depth)
    psi_neutral = poisson.neutral_potential(params)
    contact = np.zeros(poisson.N_CONTACT)
    contact[poisson.C_PSI] = -pr.barrier
    bc_type = poisson.BC_DIRICHLET
    if pr.layer is not None:
        bc_type = poisson.BC_ROBIN
        contact[poisson.C_LAYER], contact[poisson.C_DIT], contact[poisson.C_CNL] = pr.layer
    _, drho = poisson.space_charge(psi_neutral, params)
    screening = math.sqrt(eps / max(abs(drho), 1e-300))
    decay = min(screening, depth[-1] / 3.0)
    parallel = depth.size >= PARALLEL_MIN_SIZE

    def attempt(psi_contact: float, psi: np.ndarray):
        trial = contact.copy()
        trial[poisson.C_PSI] = psi_contact
        history = np.zeros((pr.max_iter, 2))
        iters = poisson.newton_solve(psi, conductance, geom.volume, geom.contact_area, params,
                                     bc_type, trial, pr.tol, pr.max_iter, parallel, history)
        rows = [tuple(map(float, row)) for row in history[: abs(iters)]]
        return iters, rows

    target = contact[poisson.C_PSI]
    psi = psi_neutral + (target - psi_neutral) * np.exp(-depth / decay)
    iters, history = attempt(target, psi)
    total, steps = abs(iters), 0
    if iters < 0 and pr.continuation:
        psi, iters, history, extra, steps = _continuation(attempt, psi_neutral, target, depth.size)
        total += extra
    if iters < 0 or not np.all(np.isfinite(psi)):
        raise ConvergenceError(
            f"band_bending: Newton did not converge to max|dpsi|/Vt <= {pr.tol:g} in "
            f"{pr.max_iter} iterations (continuation steps: {steps}); try more mesh.n_nodes, a "
            "smaller mesh.min_spacing or solver.max_iterations", history)
    return Solution(geom, psi, params, eps, conductance, contact, bc_type, float(psi_neutral), total,
                    steps, history)


def _continuation(attempt, psi_neutral: float, target: float, n: int):
    """Walk the contact potential from flat band to ``target`` in adaptive steps.

    Returns (psi, last iterations (negative: failed), history, iterations, steps).
    """
    psi = np.full(n, psi_neutral)
    s, ds = 0.0, 0.1
    good = psi.copy()
    total = steps = 0
    iters, history = -1, []
    while s < 1.0:
        s_next = min(1.0, s + ds)
        psi = good.copy()
        iters, history = attempt(psi_neutral + s_next * (target - psi_neutral), psi)
        total += abs(iters)
        steps += 1
        if iters > 0:
            s, good = s_next, psi
            ds = min(2.0 * ds, 0.5)
        else:
            ds *= 0.5
            if ds < 1e-6 or steps > 2000:
                break
    if s < 1.0:
        iters = -1
    return good, iters, history, total, steps


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


def to_dataset(case, sol: Solution, wall_time_s: float) -> xr.Dataset:
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
                      provenance("band_bending", case.to_toml(), case.references(), wall_time_s,
                                 stats))
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
    start = time.perf_counter()
    sol = solve(case)
    ds = to_dataset(case, sol, time.perf_counter() - start)
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

