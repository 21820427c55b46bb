"""Coupled Na+ / electron drift-diffusion through a metal/TiO2 junction (SPEC section 3.2).

Na+ hops between interstitial sites of anatase TiO2 (site density c_max) with the exact
lattice-hopping flux of :mod:`fastnai._kernels.hopping`; electrons are in quasi-equilibrium with
the contact (flat quasi-Fermi level, the default) or move by Scharfetter-Gummel drift-diffusion;
trapped electrons (Ti3+) are algebraic in the electron quasi-Fermi level; Poisson's equation
couples them through the space charge. The metal contact (TiCxN1-x, or the current collector
of pristine TiO2) is a Dirichlet boundary for psi and the electrons and blocks Na+; the
electrolyte interface exchanges Na+ by neutral-insertion Butler-Volmer kinetics. The kernel
module docstring gives the equations.

The seed paper (Cai et al., Small 18, 2200694 (2022), doi:10.1002/smll.202200694) attributes a
5.5-fold rise of the apparent diffusivity to the built-in field. This model gives
heterostructure and pristine electrodes identical transport parameters (they differ only in
contact work function and doping) so that simulated CVs, analysed exactly as the paper did,
test that claim.

Protocols (``[[protocol]]`` entries, run in order after the initial equilibrium):
``equilibrate`` (the equilibrium state at a voltage), ``rest`` (open circuit),
``constant_current`` (C-rate to a cut-off voltage), ``constant_voltage`` / ``potential_step``,
``cv`` (cyclic voltammetry at a list of scan rates, each from the step's starting state) and
``gitt`` (current pulses and rests).

Sign conventions: ``current_density`` is anodic positive (Na extraction, charge of the half
cell); a discharge (sodiation) has negative current. ``specific_capacity`` is the Na inserted
since the start, from the state, in mA h g-1 of host.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy import constants

from .. import protocol_steps as steps
from .. import schema
from .. import transient as tr
from .._kernels import drift_diffusion as kdd
from .._kernels import poisson
from ..errors import CaseError, ConvergenceError
from ..lifecycle import Lifecycle
from ..mesh import graded_mesh
from ..protocol import compile_protocol
from ..runner import SolverStats, run_protocol
from ..variables import make_dataset, provenance
from . import band_bending as bb

K = schema.Key
Q = schema.QUANTITY
_CAI = "doi:10.1002/smll.202200694"
_BAZANT = "10.1021/ar300145c"


GEOMETRIES = ("separated", "co-located", "sphere", "core-shell")

KEYS: dict[str, schema.Key] = {k.name: k for k in [
    K("model.kind", schema.CHOICE, "drift_diffusion", choices=("drift_diffusion",),
      doc="model kind"),
    K("model.geometry", schema.CHOICE, "separated", choices=GEOMETRIES,
      doc="separated: slab, metal contact at x = 0, electrolyte at x = L; co-located: slab with "
          "contact and electrolyte at x = 0, blocking wall at L; sphere: particle of radius "
          "semiconductor.thickness, contact and electrolyte over its surface; core-shell: metal "
          "core of radius contact.radius, TiO2 shell of semiconductor.thickness, electrolyte "
          "outside"),
    bb.KEYS["model.temperature"],
    K("model.electrons", schema.CHOICE, "quasi-equilibrium",
      choices=("quasi-equilibrium", "drift-diffusion"),
      doc="quasi-equilibrium: flat electron quasi-Fermi level at the contact's (exact at battery "
          "time scales); drift-diffusion: Scharfetter-Gummel electron transport"),
    K("model.electrostatics", schema.BOOLEAN, True,
      doc="solve Poisson; false: electroneutral electrode (psi = V, Na+ moves with its electrons, "
          "the closed-form diffusion limit)"),
    bb.KEYS["semiconductor.material"],
    K("semiconductor.thickness", Q, 50e-9, "m", 1e-10, 1e-2,
      doc="slab thickness; particle radius (sphere); shell thickness (core-shell)"),
    bb.KEYS["semiconductor.donor_density"],
    K("semiconductor.acceptor_density", Q, 0.0, "m^-3", 0.0, 1e29, doc="acceptor density"),
    bb.KEYS["semiconductor.relative_permittivity"],
    bb.KEYS["semiconductor.electron_effective_mass"],
    bb.KEYS["semiconductor.hole_effective_mass"],
    bb.KEYS["semiconductor.electron_affinity"],
    bb.KEYS["semiconductor.band_gap"],
    bb.KEYS["semiconductor.statistics"],
    K("semiconductor.holes", schema.BOOLEAN, False, doc="include valence-band holes"),
    K("semiconductor.trap_density", Q, 2.93e28, "m^-3", 0.0, 1e30,
      doc="Ti3+ electron-trap density (default: one per Na site, c_max)",
      source="assumed (SPEC 3.2: density ~ c_max)"),
    K("semiconductor.trap_level", Q, 0.3, "eV", 0.0, 20.0, doc="trap depth below E_C",
      source="assumed (SPEC 3.2: ~ E_C - 0.3 eV)"),
    bb.KEYS["semiconductor.trap_degeneracy"],
    K("semiconductor.electron_mobility", Q, 1e-4, "m^2 V^-1 s^-1", 0.0, 1.0,
      exclusive_minimum=True, doc="electron mobility (drift-diffusion electrons)",
      source="assumed (1 cm2 V-1 s-1; SPEC 3.2 range 1e-4-20)"),
    K("semiconductor.density", Q, None, "kg m^-3", 0.0, 1e5, exclusive_minimum=True,
      required=True, material_property="density", doc="mass density (specific capacity)"),
    K("sodium.site_density", Q, 4.86e4, "mol m^-3", 0.0, 1e6, exclusive_minimum=True,
      doc="Na site density c_max (one per TiO2: 3.89 g cm-3, 335 mA h g-1)",
      source="calibrated at 0.1 C (SPEC 3.2)"),
    K("sodium.jump_diffusivity", Q, 7.9e-16, "m^2 s^-1", 0.0, 1.0, exclusive_minimum=True,
      doc="jump diffusivity D0 = a^2 nu exp(-E_a/kT) at sodium.reference_temperature",
      source="assumed (7.9e-12 cm2 s-1, SPEC 3.2)"),
    K("semiconductor.hop_barrier", Q, None, "eV", 0.0, 5.0, material_property="hop_barrier",
      doc="hopping barrier E_a (temperature dependence of D0)"),
    K("sodium.reference_temperature", Q, 298.15, "K", 0.0, 5000.0, exclusive_minimum=True,
      doc="temperature at which jump_diffusivity is given"),
    K("semiconductor.hop_distance", Q, None, "m", 1e-11, 1e-8, required=True,
      material_property="hop_distance", doc="hop distance a (the barrier tilts by q a E / 2)"),
    K("sodium.ocv_u0", Q, 0.75, "V", -5.0, 10.0,
      doc="U0 of U(theta) = U0 - (kT/q) ln(theta/(1-theta)) - Omega (1 - 2 theta)",
      source="calibrated at 0.1 C (SPEC 3.2 placeholder)"),
    K("sodium.ocv_interaction", Q, -0.6, "eV", -10.0, 10.0,
      doc="Omega of U(theta) (must be below 2 kT for a monotone U)",
      source="calibrated at 0.1 C (SPEC 3.2 placeholder)"),
    bb.KEYS["contact.material"],
    bb.KEYS["contact.work_function"],
    K("contact.radius", Q, 1.5e-9, "m", 1e-11, 1e-3, doc="metal core radius (core-shell only)"),
    K("interface.exchange_current", Q, 1e-3, "A m^-2", 0.0, 1e6, exclusive_minimum=True,
      doc="i0_ref of i0 = i0_ref 2 sqrt(theta_eq (1 - theta_eq)) per true area",
      source=f"calibrated (SPEC 3.2: ~1e-3 A m-2, range 1e-4-1e-2); {_BAZANT}"),
    K("interface.transfer_coefficient", schema.NUMBER, 0.5, None, 0.0, 1.0,
      exclusive_minimum=True, doc="Butler-Volmer alpha"),
    K("electrode.theoretical_capacity", Q, 335.5, "mA h / g", 0.0, 1e5, exclusive_minimum=True,
      doc="capacity that defines 1C", source=_CAI.removeprefix("doi:")),
    K("electrode.series_resistance", Q, 0.0, "ohm m^2", 0.0, 1e6,
      doc="area-specific resistance of electrolyte, contacts and SEI, applied as V_cell = V + "
          "j R in galvanostatic steps (name it calibrated in a case that fits it)"),
    K("initial.voltage", Q, 3.0, "V", -5.0, 10.0, doc="the state starts in equilibrium at V"),
    K("ensemble.n_particles", schema.INTEGER, 1, None, 1, 4096,
      doc="particles sharing one voltage (sphere and core-shell geometries)"),
    K("ensemble.radius_min", Q, None, "m", 1e-10, 1e-3,
      doc="smallest particle radius (sphere) or shell outer radius (core-shell)"),
    K("ensemble.radius_max", Q, None, "m", 1e-10, 1e-3, doc="largest particle radius"),
    K("structure.kind", schema.CHOICE, "uniform", choices=("uniform", "periodic"),
      doc="periodic: interface layers (heterophase interfaces, superlattice) every period"),
    K("structure.period", Q, 5e-9, "m", 1e-10, 1e-3, doc="distance between interface layers"),
    K("structure.layer_thickness", Q, 0.5e-9, "m", 1e-11, 1e-3, doc="interface-layer thickness"),
    K("structure.layer_site_energy", Q, 0.0, "eV", -5.0, 5.0,
      doc="Na site energy in the layers relative to the bulk (negative: sodiophilic)"),
    K("structure.layer_activation_energy", Q, None, "eV", 0.0, 5.0,
      doc="hopping barrier inside the layers (default: the bulk's)"),
    K("structure.layer_donor_density", Q, None, "m^-3", 0.0, 1e29,
      doc="donor density inside the layers (default: the bulk's)"),
    K("mesh.n_nodes", schema.INTEGER, None, None, 5, 2_000_000,
      doc="nodes per particle or slab, at most one per mesh.min_spacing (default: 300, or the "
          "most that fit when the domain is shorter; asking for more than fit is an error)"),
    K("mesh.min_spacing", Q, None, "m", 1e-14, 1e-2,
      doc="first cell at the contact; default the hop distance, where the Na+ flux is exact "
          "lattice hopping (finer cells resolve electrons but the continuum ion flux is not valid "
          "below one hop, and the sub-hop Na+ layer at the contact makes the problem stiff)"),
    K("mesh.refinement", schema.INTEGER, 1, None, 1, 1024, doc="split each base cell"),
    K("solver.rtol", schema.NUMBER, 1e-4, None, 1e-12, 0.1, doc="local-error tolerance of BDF2"),
    K("solver.newton_tolerance", schema.NUMBER, 1e-9, None, 1e-15, 1e-2,
      doc="Newton convergence: largest update in V_t (potentials) or logit units"),
    K("solver.max_iterations", schema.INTEGER, 40, None, 2, 10_000, doc="Newton iterations"),
    K("solver.max_voltage_step", Q, 2e-3, "V", 1e-6, 1.0,
      doc="largest voltage change per step in a sweep (CV resolution)"),
    K("output.max_profiles", schema.INTEGER, 60, None, 2, 100_000,
      doc="profiles kept (evenly thinned over the accepted steps)"),
]}

STEP_KEYS: dict[str, dict[str, schema.Key]] = {
    "equilibrate": {"voltage": K("voltage", Q, None, "V", -5.0, 10.0, required=True,
                                 doc="equilibrium voltage")},
    "rest": steps.REST,
    "constant_current": steps.CONSTANT_CURRENT,
    "constant_voltage": steps.CONSTANT_VOLTAGE,
    "cv": {
        "scan_rates": K("scan_rates", schema.QUANTITY_LIST, None, "V/s", 0.0, 1e3,
                        exclusive_minimum=True, required=True, doc="scan rates"),
        "lower_voltage": K("lower_voltage", Q, 0.01, "V", -5.0, 10.0, doc="lower vertex"),
        "upper_voltage": K("upper_voltage", Q, 3.0, "V", -5.0, 10.0, doc="upper vertex"),
        "cycles": steps.CV_CYCLES, "first": steps.CV_FIRST},
    "gitt": steps.GITT,
}
STEP_KEYS["potential_step"] = STEP_KEYS["constant_voltage"]
TABLE_ARRAYS = {"protocol": STEP_KEYS}


def time_dependent(case) -> bool:
    """Every case of this model runs a protocol in time."""
    return True


def validate(case) -> None:
    """Cross-key checks (raise CaseError before any work)."""
    geometry = case["model.geometry"]
    vt = constants.k * case["model.temperature"] / constants.e
    if case["sodium.ocv_interaction"] >= 2.0 * vt:
        raise CaseError(f"sodium.ocv_interaction = {case['sodium.ocv_interaction']:g} eV: U(theta) "
                        f"is monotone only for Omega < 2 kT = {2 * vt:.4g} eV (phase separation "
                        "is not modelled)")
    if case["semiconductor.trap_level"] > case["semiconductor.band_gap"]:
        raise CaseError("semiconductor.trap_level must lie inside the band gap")
    n_p = case["ensemble.n_particles"]
    if n_p > 1:
        if geometry not in ("sphere", "core-shell"):
            raise CaseError(f"ensemble.n_particles = {n_p} needs model.geometry = 'sphere' or "
                            f"'core-shell', not {geometry!r}")
        lo, hi = case["ensemble.radius_min"], case["ensemble.radius_max"]
        if lo is None or hi is None or hi < lo:
            raise CaseError("an ensemble needs ensemble.radius_min <= ensemble.radius_max")
        if geometry == "core-shell" and lo <= case["contact.radius"]:
            raise CaseError("ensemble.radius_min must exceed contact.radius (the metal core)")
    requested, allowed = case["mesh.n_nodes"], max_nodes(case)
    if requested is not None and requested > allowed:
        h0 = case["mesh.min_spacing"] or case["semiconductor.hop_distance"]
        raise CaseError(f"mesh.n_nodes = {requested}: at most {allowed} nodes fit, one per "
                        f"mesh.min_spacing = {h0:.4g} m (default: the hop distance) over the "
                        f"shortest domain; ask for <= {allowed} nodes, a smaller min_spacing, or "
                        "mesh.refinement to split cells")
    n_total = base_nodes(case) * case["mesh.refinement"] * case["ensemble.n_particles"]
    if n_total > 20_000_000:
        raise CaseError(f"nodes * mesh.refinement * ensemble.n_particles = {n_total}: "
                        "expected at most 2e7 nodes")
    steps = case["protocol"]
    if not steps:
        raise CaseError("a drift_diffusion case needs at least one [[protocol]] step (equilibrate, "
                        "rest, constant_current, constant_voltage, potential_step, cv or gitt); "
                        "the run starts in equilibrium at initial.voltage")
    kinds = [s["step"] for s in steps]
    if "cv" in kinds and any(k not in ("cv", "equilibrate", "rest") for k in kinds):
        raise CaseError("a cv step can be combined only with equilibrate and rest steps "
                        "(its result has a scan_rate dimension)")
    if kinds.count("cv") > 1:
        raise CaseError("at most one cv step per case (give several scan_rates instead)")
    for i, s in enumerate(steps):
        if s["step"] == "cv" and not s["lower_voltage"] < s["upper_voltage"]:
            raise CaseError(f"protocol[{i}]: lower_voltage must be below upper_voltage")
        if s["step"] in ("constant_current", "gitt") and s["cutoff_voltage"] is None:
            raise CaseError(f"protocol[{i}]: a {s['step']} step needs cutoff_voltage")


# ---------------------------------------------------------------------------------------------
# setup: mesh, regions and kernel parameters


@dataclass
class Setup:
    """Arrays of the kernel for P particles (leading axis) of n nodes each."""

    case: object
    depth: np.ndarray  # (P, n) distance from the contact [m]
    coordinate: np.ndarray  # (P, n) x or r [m]
    coordinate_name: str
    vol: np.ndarray
    area: np.ndarray
    h: np.ndarray
    g_face: np.ndarray
    d0_face: np.ndarray
    site_energy: np.ndarray
    region: np.ndarray
    params: np.ndarray  # (R, N_PARAMS)
    tables: np.ndarray  # (R, m, 2)
    sc: np.ndarray  # (P, N_SCALARS)
    c_max: float
    vt: float
    mass: np.ndarray  # (P,) host mass per contact area (slab) or per steradian [kg]
    one_c_current: float  # total 1C current in the units of A_s j summed over particles [A]
    radii: np.ndarray  # (P,) outer radius or slab thickness [m]
    electrolyte_area: np.ndarray  # (P,) [m2 or m2 per steradian]
    permittivity: float

    @property
    def n_particles(self) -> int:
        return self.vol.shape[0]

    @property
    def n_nodes(self) -> int:
        return self.vol.shape[1]


TABLE_L0 = -160.0
TABLE_DL = 0.02
TABLE_SIZE = 10_001  # ell from -160 to +40


def _region_params(case, donor_density: float) -> np.ndarray:
    """Space-charge parameters of a region: the case's charges at ``donor_density``, donors
    fully ionised (this model has no donor level)."""
    return bb.charge_parameters(case, donor_density=donor_density, complete_ionisation=True)


def min_spacing(case, length: float) -> float:
    """First cell at the contact: mesh.min_spacing (default the hop distance)."""
    h0 = case["mesh.min_spacing"] or case["semiconductor.hop_distance"]
    return min(h0, length / (base_nodes(case) - 1))


DEFAULT_NODES = 300


def max_nodes(case) -> int:
    """Most base nodes per particle: one cell per mesh.min_spacing (default one hop) over the
    shortest domain (of an ensemble: the smallest particle)."""
    h0 = case["mesh.min_spacing"] or case["semiconductor.hop_distance"]
    core = case["contact.radius"] if case["model.geometry"] == "core-shell" else 0.0
    if case["ensemble.n_particles"] > 1:
        shortest = case["ensemble.radius_min"] - core
    else:
        shortest = case["semiconductor.thickness"]
    return max(3, int(shortest / h0 * (1 + 1e-9)) + 1)


def base_nodes(case) -> int:
    """Base nodes per particle: mesh.n_nodes (validated <= :func:`max_nodes`), or by default
    DEFAULT_NODES capped at :func:`max_nodes`."""
    requested = case["mesh.n_nodes"]
    return min(DEFAULT_NODES if requested is None else requested, max_nodes(case))


def build(case) -> Setup:
    """Mesh, regions and kernel parameters of a validated case."""
    temperature = case["model.temperature"]
    vt = constants.k * temperature / constants.e
    c_max = case["sodium.site_density"] * constants.N_A
    geometry = case["model.geometry"]
    n_p = case["ensemble.n_particles"]
    if n_p > 1:
        radii = np.linspace(case["ensemble.radius_min"], case["ensemble.radius_max"], n_p)
    else:
        radii = np.array([case["semiconductor.thickness"]
                          + (case["contact.radius"] if geometry == "core-shell" else 0.0)])
    eps = case["semiconductor.relative_permittivity"] * constants.epsilon_0
    e_a = case["semiconductor.hop_barrier"]
    d0 = case["sodium.jump_diffusivity"]
    if e_a is not None:
        d0 *= math.exp(-e_a / (constants.k / constants.e)
                       * (1.0 / temperature - 1.0 / case["sodium.reference_temperature"]))
    periodic = case["structure.kind"] == "periodic"
    e_layer = case["structure.layer_activation_energy"]
    d0_layer = d0
    if periodic and e_layer is not None:
        d0_layer = d0 * math.exp(-(e_layer - (e_a if e_a is not None else 0.56)) / vt)
    nd_layer = case["structure.layer_donor_density"]
    params = np.stack([_region_params(case, case["semiconductor.donor_density"]),
                       _region_params(case, case["semiconductor.donor_density"]
                                      if nd_layer is None else nd_layer)])
    tables = np.empty((2, TABLE_SIZE, 2))
    for r in range(2):
        kdd.build_level_table(params[r], c_max, TABLE_L0, TABLE_DL, tables[r])

    n = (base_nodes(case) - 1) * case["mesh.refinement"] + 1
    arrays = {k: np.empty((n_p, n)) for k in ("depth", "coord", "vol", "site")}
    faces = {k: np.empty((n_p, n - 1)) for k in ("area", "h", "g", "d0")}
    region = np.zeros((n_p, n), dtype=np.int64)
    sc = np.zeros((n_p, kdd.N_SCALARS))
    mass = np.empty(n_p)
    area_s = np.empty(n_p)
    rho_mass = case["semiconductor.density"]
    kind = {"separated": "planar", "co-located": "planar", "sphere": "sphere",
            "core-shell": "dot"}[geometry]
    name = "x"
    for p in range(n_p):
        length = radii[p] - (case["contact.radius"] if geometry == "core-shell" else 0.0)
        depth = graded_mesh(length, base_nodes(case), min_spacing(case, length),
                            case["mesh.refinement"])
        geom = bb.make_geometry(kind, depth, contact_radius=case["contact.radius"])
        name = geom.name
        arrays["depth"][p] = depth
        arrays["coord"][p] = geom.coordinate
        arrays["vol"][p] = geom.volume
        faces["area"][p] = geom.face_area
        faces["h"][p] = np.diff(depth)
        faces["g"][p] = eps * geom.face_area / np.diff(depth)
        in_layer = np.zeros(n, dtype=bool)
        if periodic:
            period = case["structure.period"]
            half = 0.5 * case["structure.layer_thickness"]
            # layers centred at depth = period, 2 period, ... (the contact itself excluded)
            phase = np.mod(depth + 0.5 * period, period) - 0.5 * period
            in_layer = (np.abs(phase) <= half) & (depth > half)
        region[p] = in_layer.astype(np.int64)
        arrays["site"][p] = np.where(in_layer, case["structure.layer_site_energy"], 0.0)
        face_layer = in_layer[:-1] & in_layer[1:]
        faces["d0"][p] = np.where(face_layer, d0_layer, d0)
        surface = 0 if geometry in ("co-located", "sphere") else n - 1
        if kind == "planar":
            a_s = 1.0
        elif kind == "sphere":
            a_s = radii[p] ** 2
        else:
            a_s = radii[p] ** 2
        area_s[p] = a_s
        mass[p] = rho_mass * float(np.sum(geom.volume))
        s = sc[p]
        s[kdd.S_VT] = vt
        s[kdd.S_CMAX] = c_max
        s[kdd.S_U0] = case["sodium.ocv_u0"]
        s[kdd.S_OMEGA] = case["sodium.ocv_interaction"]
        s[kdd.S_HOP] = case["semiconductor.hop_distance"]
        s[kdd.S_I0] = case["interface.exchange_current"]
        s[kdd.S_ALPHA] = case["interface.transfer_coefficient"]
        s[kdd.S_PHIB] = case["contact.work_function"] - case["semiconductor.electron_affinity"]
        s[kdd.S_DN] = case["semiconductor.electron_mobility"] * vt
        s[kdd.S_ELECTRONS] = (kdd.ELECTRONS_DRIFT_DIFFUSION
                              if case["model.electrons"] == "drift-diffusion"
                              else kdd.ELECTRONS_QUASI_EQUILIBRIUM)
        s[kdd.S_SURFACE] = surface
        s[kdd.S_AREA_S] = a_s
        s[kdd.S_ELECTROSTATICS] = 1.0 if case["model.electrostatics"] else 0.0
        s[kdd.S_TABLE_L0] = TABLE_L0
        s[kdd.S_TABLE_DL] = TABLE_DL
        s[kdd.S_CONTACT] = 1.0
    capacity = case["electrode.theoretical_capacity"] * 3.6  # mA h g-1 -> C g-1 -> A s / g
    one_c = capacity * 1e3 * float(np.sum(mass)) / 3600.0  # A (per m2 or per steradian)
    return Setup(case, arrays["depth"], arrays["coord"], name, arrays["vol"], faces["area"],
                 faces["h"], faces["g"], faces["d0"], arrays["site"], region, params, tables, sc,
                 c_max, vt, mass, one_c, radii, area_s, eps)


# ---------------------------------------------------------------------------------------------
# the implicit problem handed to the integrator


class Workspace:
    """Preallocated Newton arrays for P particles of n nodes."""

    def __init__(self, n_p: int, n: int):
        self.z = np.zeros((n_p, n, 3))
        self.y = np.zeros((n_p, n, 3))
        self.lower = np.zeros((n_p, n, 3, 3))
        self.diag = np.zeros((n_p, n, 3, 3))
        self.upper = np.zeros((n_p, n, 3, 3))
        self.res = np.zeros((n_p, n, 3))
        self.bcol = np.zeros((n_p, n, 3))
        self.brow = np.zeros((n_p, n, 3))
        self.work_blocks = np.zeros((n_p, n, 3, 3))
        self.work_rhs = np.zeros((n_p, 3, 5))
        self.work_two = np.zeros((n_p, n, 3, 2))
        self.dz = np.zeros((n_p, n, 3))
        self.flows = np.zeros(n_p)
        self.dots = np.zeros((n_p, 2))
        self.voltage = np.zeros(1)
        self.out = np.zeros(1)


def newton_solve(setup: Setup, ws: Workspace, z: np.ndarray, voltage: float, galvanostatic: bool,
                 current: float, alpha0: float, hist: np.ndarray, dt: float, tol: float,
                 max_iter: int) -> tuple[int, float]:
    """Newton on all particles in place on ``z`` (P, n, 3); returns (iterations, voltage).

    Negative iterations: not converged.
    """
    ws.voltage[0] = voltage
    s = setup
    if s.n_particles == 1:
        its = kdd.newton(z[0], ws.voltage, galvanostatic, current, alpha0, hist[0], dt, s.vol[0],
                         s.area[0], s.h[0], s.g_face[0], s.d0_face[0], s.site_energy[0],
                         s.region[0], s.params, s.tables, s.sc[0], tol, max_iter, ws.lower[0],
                         ws.diag[0], ws.upper[0], ws.res[0], ws.bcol[0], ws.brow[0],
                         ws.work_blocks[0], ws.work_rhs[0], ws.work_two[0], ws.dz[0], ws.out)
        ws.flows[0] = ws.out[0]
    else:
        its = kdd.newton_ensemble(z, ws.voltage, galvanostatic, current, alpha0, hist, dt, s.vol,
                                  s.area, s.h, s.g_face, s.d0_face, s.site_energy, s.region,
                                  s.params, s.tables, s.sc, tol, max_iter, ws.lower, ws.diag,
                                  ws.upper, ws.res, ws.bcol, ws.brow, ws.work_blocks, ws.work_rhs,
                                  ws.work_two, ws.dz, ws.flows, ws.dots)
    return int(its), float(ws.voltage[0])


def unknowns(setup: Setup, y: np.ndarray, voltage: float, z: np.ndarray) -> None:
    """Newton unknowns of the state array ``y`` (P, n, 3) into ``z``."""
    if setup.n_particles > 1:  # one call, parallel over particles
        kdd.unknowns_from_state_ensemble(y, voltage, setup.region, setup.params, setup.sc, z)
    else:
        kdd.unknowns_from_state(y[0], voltage, setup.region[0], setup.params, setup.sc[0], z[0])


def states(setup: Setup, z: np.ndarray, y: np.ndarray) -> None:
    """Conserved state of the unknowns ``z`` into ``y`` (P, n, 3)."""
    if setup.n_particles > 1:
        kdd.state_from_unknowns_ensemble(z, setup.region, setup.params, setup.sc, y)
    else:
        kdd.state_from_unknowns(z[0], setup.region[0], setup.params, setup.sc[0], y[0])


@dataclass
class Control:
    """What one integration segment holds fixed."""

    mode: str  # "potentiostatic" or "galvanostatic"
    v0: float = 0.0  # potentiostatic: V(t) = v0 + rate (t - t0)
    rate: float = 0.0
    t0: float = 0.0
    current: float = 0.0  # galvanostatic: total A_s j (anodic positive) [A per m2 or steradian]
    cutoff: float | None = None  # cell-voltage event (galvanostatic)


class Cell:
    """The electrode: an :class:`~fastnai.transient.ImplicitProblem` for each segment, and a
    :class:`~fastnai.runner.Cell` for the protocol runner.

    State vector: (P, n, 3) conserved fields (psi [V], c [m-3], e = n + n_t [m-3]) flattened,
    then the electrode voltage V [V].
    """

    def __init__(self, setup: Setup, recorder: Recorder):
        self.setup = setup
        self.ws = Workspace(setup.n_particles, setup.n_nodes)
        self.recorder = recorder
        self.control = Control("potentiostatic")
        case = setup.case
        self.tol = case["solver.newton_tolerance"]
        self.max_iter = case["solver.max_iterations"]
        self.series_resistance = case["electrode.series_resistance"]
        self.rtol = case["solver.rtol"]
        self.dv_max = case["solver.max_voltage_step"]
        self.n_unknowns = setup.n_particles * setup.n_nodes * 3 + 1
        self.shape = (setup.n_particles, setup.n_nodes, 3)
        self._hist = np.zeros(self.shape)
        # runner state: the last accepted state and time, the step's start, the first state
        self.t = 0.0
        self.y: np.ndarray | None = None
        self.y_step_start: np.ndarray | None = None
        self.y_initial: np.ndarray | None = None
        self.cv_start: float | None = None
        self.segment_t0 = 0.0
        self.max_step: float | None = None
        self.trajectories: list = []

    # -- fastnai.runner.Cell ------------------------------------------------------------------
    def voltage(self) -> float:
        return self.setup.case["initial.voltage"] if self.y is None else float(self.y[-1])

    def current(self) -> float:
        """Current density now (anodic positive) [A m-2 of electrolyte interface]."""
        rec = self.recorder
        return rec.current[-1] / float(np.sum(self.setup.electrolyte_area)) if rec.current else 0.0

    def cell_voltage(self, current: float) -> float:
        return self.cell_voltage_of(self.y, current)

    def equilibrate(self, segment) -> int:
        self._enter(segment)
        guess = None if self.y is None else self.y[:-1].reshape(self.shape)
        state, its = equilibrium(self.setup, segment.value, guess,
                                 guess_voltage=None if self.y is None else float(self.y[-1]))
        self.y = np.concatenate((state.ravel(), [segment.value]))
        if self.y_initial is None:
            self.y_initial = state.copy()
        self.recorder.record(self, self.t, self.y)
        return its

    def mark_step_start(self) -> None:
        if self.y is not None:
            self.y_step_start = self.y.copy()

    def restart_from_step_start(self) -> None:
        if self.y_step_start is not None:
            if self.cv_start is None:
                self.cv_start = float(self.y_step_start[-1])
            self.y = self.y_step_start.copy()

    def _enter(self, segment) -> None:
        self.recorder.segment_index = segment.index
        self.recorder.step_index = segment.step

    def begin(self, segment, *, t0: float, v_start: float, target: float, resuming: bool) -> None:
        self._enter(segment)
        self.segment_t0 = t0
        self.max_step = None
        if segment.control == "sweep":
            rate = math.copysign(segment.rate, target - v_start)
            self.control = Control("potentiostatic", v0=v_start, rate=rate, t0=t0)
            self.max_step = self.dv_max / segment.rate
        elif segment.control == "voltage":
            self.control = Control("potentiostatic", v0=segment.value, t0=t0)
        else:
            self.control = Control("galvanostatic", current=segment.value, cutoff=segment.cutoff)
        if not resuming:
            self.y = self.y.copy()
            if self.control.mode == "potentiostatic":
                self.y[-1] = self.voltage_at(t0)
            self.recorder.record(self, t0, self.y)  # the segment's first state (a jump for a step)

    def advance(self, segment, t_end, after_step, engine, stats) -> bool:
        duration = t_end - self.segment_t0
        traj = tr.integrate(self, self.y, self.segment_t0, t_end, rtol=self.rtol,
                            dt_initial=duration * 1e-6, max_step=self.max_step,
                            store_states=False, resume_from=engine, progress=False,
                            step_hook=after_step)
        self.trajectories.append((segment.index, traj))
        stats.add(traj.stats)
        self.y, self.t = traj.y_final, traj.t_final
        return traj.status == "event"

    def state(self) -> dict:
        def arr(a):
            return np.zeros(0) if a is None else np.asarray(a)

        return {"recorder": self.recorder.checkpoint_state(), "t": self.t, "y": arr(self.y),
                "y_step_start": arr(self.y_step_start),
                "y_initial": arr(None if self.y_initial is None else self.y_initial.ravel()),
                "cv_start": math.nan if self.cv_start is None else self.cv_start}

    def restore(self, state) -> None:
        def opt(a):
            return np.array(a) if np.size(a) else None

        self.recorder.restore_state(state["recorder"])
        self.t = float(state["t"])
        self.y, self.y_step_start = opt(state["y"]), opt(state["y_step_start"])
        y0 = opt(state["y_initial"])
        self.y_initial = None if y0 is None else y0.reshape(self.shape)
        self.cv_start = float(state["cv_start"]) if np.isfinite(state["cv_start"]) else None

    # -- ImplicitProblem ---------------------------------------------------------------------
    def voltage_at(self, t: float) -> float:
        c = self.control
        return c.v0 + c.rate * (t - c.t0)

    def solve_step(self, y_guess, alpha0, history, t_new, dt):
        galv = self.control.mode == "galvanostatic"
        v_pred = float(y_guess[-1])
        y = y_guess[:-1].reshape(self.shape)
        z = self.ws.z
        if galv:
            unknowns(self.setup, y, v_pred, z)
            shift = self._rigid_shift(z, self.control.current)
        else:
            shift = self.voltage_at(t_new) - v_pred
        y[..., 0] += shift  # y_guess is the engine's copy: ours to change
        v = v_pred + shift
        unknowns(self.setup, y, v, z)
        self._hist[:] = history[:-1].reshape(self.shape)
        its, v = newton_solve(self.setup, self.ws, z, v, galv, self.control.current, alpha0,
                              self._hist, dt, self.tol, self.max_iter)
        out = np.empty(self.n_unknowns)
        if its < 0:
            out[:] = np.nan
            return out, False, -its
        states(self.setup, z, out[:-1].reshape(self.shape))
        out[-1] = v
        return out, True, its

    def _rigid_shift(self, z: np.ndarray, current: float) -> float:
        s = self.setup
        etas = np.empty(s.n_particles)
        u_locs = np.empty(s.n_particles)
        kdd.surface_overpotential_ensemble(z, s.region, s.sc, s.tables, s.site_energy, etas, u_locs)
        return float(kdd.rigid_shift(etas, u_locs, s.sc, current))

    def error_weights(self, y, rtol):
        w = np.empty_like(y)
        body = w[:-1].reshape(self.shape)
        yy = y[:-1].reshape(self.shape)
        c_max = self.setup.c_max
        body[..., 0] = rtol * (np.abs(yy[..., 0]) + 1.0)
        body[..., 1] = rtol * (np.abs(yy[..., 1]) + 1e-3 * c_max)
        body[..., 2] = rtol * (np.abs(yy[..., 2]) + 1e-3 * c_max)
        w[-1] = rtol * (abs(y[-1]) + 1.0)
        return w

    def cell_voltage_of(self, y, current: float) -> float:
        """V_cell = V + j R_s (j per electrolyte area, anodic positive)."""
        return float(y[-1]) + self.series_resistance * current / float(np.sum(
            self.setup.electrolyte_area))

    def event_functions(self, t, y):
        c = self.control
        if c.mode != "galvanostatic" or c.cutoff is None:
            return np.zeros(0)
        return np.array([self.cell_voltage_of(y, c.current) - c.cutoff])

    def on_accept(self, t, y):
        self.t = t
        self.recorder.record(self, t, y)

    # -- diagnostics --------------------------------------------------------------------------
    def flows(self, y: np.ndarray) -> np.ndarray:
        """A_s j per particle at the state ``y`` (anodic positive) [A per m2 or steradian]."""
        s = self.setup
        out = np.empty(s.n_particles)
        # the electrolyte node's unknowns and Butler-Volmer current only (what assemble returns)
        kdd.flow_from_state_ensemble(y[:-1].reshape(self.shape), float(y[-1]), s.region, s.params,
                                     s.sc, s.tables, s.site_energy, np.empty(self.shape), out)
        return out

    def inventory(self, y: np.ndarray) -> float:
        """Na in the electrode [mol per m2 of slab, or per particle summed over particles]."""
        c = y[:-1].reshape(self.shape)[..., 1]
        per = np.sum(c * self.setup.vol, axis=1)
        factor = 1.0 if self.setup.coordinate_name == "x" else 4.0 * math.pi
        return float(np.sum(per)) * factor / constants.N_A


# ---------------------------------------------------------------------------------------------
# recording


@dataclass
class Recorder:
    """Series at every accepted step and thinned profiles; saved in checkpoints."""

    max_profiles: int
    t: list = field(default_factory=list)
    voltage: list = field(default_factory=list)
    cell_voltage: list = field(default_factory=list)
    current: list = field(default_factory=list)  # total A_s j (anodic positive)
    inventory: list = field(default_factory=list)
    step: list = field(default_factory=list)
    segment: list = field(default_factory=list)
    particle_current: list = field(default_factory=list)
    profile_t: list = field(default_factory=list)
    profiles: list = field(default_factory=list)
    profile_stride: int = 1
    profile_count: int = 0
    step_index: int = 0
    segment_index: int = 0

    def record(self, cell: Cell, t: float, y: np.ndarray) -> None:
        flows = cell.flows(y)
        total = float(np.sum(flows))
        self.t.append(float(t))
        self.voltage.append(float(y[-1]))
        self.cell_voltage.append(cell.cell_voltage_of(y, total))
        self.current.append(total)
        self.inventory.append(cell.inventory(y))
        self.step.append(self.step_index)
        self.segment.append(self.segment_index)
        self.particle_current.append(flows.copy())
        if self.profile_count % self.profile_stride == 0:
            self.profile_t.append(float(t))
            self.profiles.append(y.copy())
            if len(self.profiles) > self.max_profiles:
                # keep every other one, and record half as often from now on
                self.profile_t = self.profile_t[::2]
                self.profiles = self.profiles[::2]
                self.profile_stride *= 2
                self.profile_count = 0
        self.profile_count += 1

    def checkpoint_state(self) -> dict:
        out = {
            "t": np.array(self.t), "voltage": np.array(self.voltage),
            "cell_voltage": np.array(self.cell_voltage), "current": np.array(self.current),
            "inventory": np.array(self.inventory), "step": np.array(self.step, dtype=np.int64),
            "segment": np.array(self.segment, dtype=np.int64),
            "profile_t": np.array(self.profile_t),
            "profile_stride": self.profile_stride, "profile_count": self.profile_count,
            "step_index": self.step_index, "segment_index": self.segment_index,
        }
        out["particle_current"] = (np.array(self.particle_current) if self.particle_current
                                   else np.zeros((0, 0)))
        out["profiles"] = np.array(self.profiles) if self.profiles else np.zeros((0, 0))
        return out

    def restore_state(self, state: dict) -> None:
        for name in ("t", "voltage", "cell_voltage", "current", "inventory", "profile_t"):
            setattr(self, name, [float(v) for v in state[name]])
        self.step = [int(v) for v in state["step"]]
        self.segment = [int(v) for v in state["segment"]]
        self.particle_current = [np.array(v) for v in state["particle_current"]]
        self.profiles = [np.array(v) for v in state["profiles"]]
        self.profile_stride = int(state["profile_stride"])
        self.profile_count = int(state["profile_count"])
        self.step_index = int(state["step_index"])
        self.segment_index = int(state["segment_index"])


# ---------------------------------------------------------------------------------------------
# equilibrium


def equilibrium(setup: Setup, voltage: float, guess: np.ndarray | None = None,
                tol: float = 1e-10, max_iter: int = 200,
                guess_voltage: float | None = None) -> tuple[np.ndarray, int]:
    """Equilibrium state (P, n, 3) at electrode voltage V, with continuation in V.

    Newton from ``guess`` (the state at ``guess_voltage``) or from the cold start (valid where
    Na+ is dilute, V >= COLD_START_VOLTAGE); when a direct solve fails, the voltage is walked
    from the last converged state to the target in adaptive steps.
    """
    if guess is not None:
        try:
            return _equilibrium_at(setup, voltage, guess, tol, max_iter, cold=False)
        except ConvergenceError:
            pass
    if guess is not None and guess_voltage is not None:
        start_v = guess_voltage
        y, its = _equilibrium_at(setup, start_v, guess, tol, max_iter)
    else:
        start_v = max(voltage, COLD_START_VOLTAGE)
        y, its = _cold_equilibrium(setup, start_v, tol, max_iter)
    total = its
    v_now, step = start_v, 0.1
    while v_now != voltage:
        v_next = voltage if abs(voltage - v_now) <= step else v_now + math.copysign(step,
                                                                                  voltage - v_now)
        try:
            y_next, its = _equilibrium_at(setup, v_next, y, tol, max_iter, cold=False)
        except ConvergenceError:
            step *= 0.5
            if step < 1e-4:
                raise
            continue
        total += its
        y, v_now = y_next, v_next
        step = min(2.0 * step, 0.25)
    return y, total


#: Below this voltage the theta -> 0 band-bending guess is poor (Na+ screens the contact).
COLD_START_VOLTAGE = 1.5


def _cold_equilibrium(setup: Setup, voltage: float, tol: float,
                      max_iter: int) -> tuple[np.ndarray, int]:
    """Cold-start equilibrium; doped interface layers are reached by continuation in their
    donor density (the cold start guesses the bands of a uniformly doped host, a poor guess
    for delta-doped layers a hundred times more doped)."""
    try:
        return _equilibrium_at(setup, voltage, None, tol, max_iter)
    except ConvergenceError:
        case = setup.case
        nd_layer = case["structure.layer_donor_density"]
        nd = case["semiconductor.donor_density"]
        if case["structure.kind"] != "periodic" or nd_layer is None or nd_layer == nd or nd <= 0:
            raise
    key = "structure.layer_donor_density"
    m = max(2, math.ceil(abs(math.log(nd_layer / nd)) / math.log(3.0)))
    y, total = _equilibrium_at(build(case.with_overrides({key: nd})), voltage, None, tol, max_iter)
    for k in range(1, m + 1):
        step_setup = setup if k == m else build(case.with_overrides(
            {key: nd * (nd_layer / nd) ** (k / m)}))
        y, its = _equilibrium_at(step_setup, voltage, y, tol, max_iter, cold=False)
        total += its
    return y, total


def _equilibrium_at(setup: Setup, voltage: float, guess: np.ndarray | None = None,
                    tol: float = 1e-10, max_iter: int = 200,
                    cold: bool = True) -> tuple[np.ndarray, int]:
    """Equilibrium state (P, n, 3) at electrode voltage V: Na+ in equilibrium with the
    electrolyte (Butler-Volmer current zero), electrons with the contact, Poisson satisfied.

    Cold start: local neutrality with the contact's band bending decaying over the screening
    length, then Newton; if that fails, continuation in the contact barrier from flat band.
    """
    s = setup
    n_p, n = s.n_particles, s.n_nodes
    ws = Workspace(n_p, n)
    hist = np.zeros((n_p, n, 3))
    z = np.empty((n_p, n, 3))
    if guess is not None:
        unknowns(s, guess, voltage, z)
        its, _ = newton_solve(s, ws, z, voltage, False, 0.0, 0.0, hist, 1.0, tol, max_iter)
        if its > 0:
            y = np.empty((n_p, n, 3))
            states(s, z, y)
            return y, its
        if not cold:
            raise ConvergenceError(f"drift_diffusion: equilibrium at V = {voltage:g} V did not "
                                   "converge from the neighbouring state", [])
    total = 0
    for p in range(n_p):
        z[p, :, 2] = voltage
        if s.sc[p, kdd.S_ELECTROSTATICS] == 0.0:
            z[p, :, 0] = voltage
        else:
            # the theta -> 0 limit is the band-bending problem (E_F = -qV): its solution, with
            # barrier continuation when needed, starts Newton
            sol = bb.solve_problem(_band_bending_problem(s, p))
            total += sol.newton_iterations
            z[p, :, 0] = sol.psi + voltage
        z[p, :, 1] = _local_ell(s, p, z[p, :, 0], voltage)
    its, _ = newton_solve(s, ws, z, voltage, False, 0.0, 0.0, hist, 1.0, tol, max_iter)
    total += abs(its)
    if its < 0:
        raise ConvergenceError(f"drift_diffusion: Newton did not converge to the equilibrium at "
                               f"V = {voltage:g} V in {max_iter} iterations", [])
    y = np.empty((n_p, n, 3))
    states(s, z, y)
    return y, total


def _band_bending_problem(s: Setup, p: int) -> bb.Problem:
    """The theta -> 0 limit of particle p: the band-bending problem on the same mesh,
    charges and contact, intimate (Dirichlet) contact, no Na."""
    case = s.case
    kind = {"separated": "planar", "co-located": "planar", "sphere": "sphere",
            "core-shell": "dot"}[case["model.geometry"]]
    length = float(s.depth[p, -1])
    depth = graded_mesh(length, base_nodes(case), min_spacing(case, length),
                        case["mesh.refinement"])
    return bb.Problem(bb.make_geometry(kind, depth, contact_radius=case["contact.radius"]),
                      _region_params(case, case["semiconductor.donor_density"]),
                      case["semiconductor.relative_permittivity"] * constants.epsilon_0,
                      case["contact.work_function"] - case["semiconductor.electron_affinity"],
                      tol=1e-10, max_iter=200, continuation=True)


def _local_ell(s: Setup, p: int, psi: np.ndarray, voltage: float) -> np.ndarray:
    """ell with Na+ in local equilibrium with the electrolyte at potential psi."""
    out = np.empty(psi.shape)
    kdd.local_equilibrium_ell(np.ascontiguousarray(psi), s.region[p], s.sc[p], s.tables,
                              s.site_energy[p], out)
    return out


# ---------------------------------------------------------------------------------------------
# protocols


@dataclass
class Result:
    """Everything :func:`simulate` produced (arrays; :func:`to_dataset` wraps them)."""

    setup: Setup
    recorder: Recorder
    y_initial: np.ndarray
    y_final: np.ndarray
    segments: list  # the compiled protocol (fastnai.protocol.Segment)
    trajectories: list  # (segment index, Trajectory) of the segments integrated by this call
    stats: SolverStats
    cv_start_voltage: float | None
    wall_time_s: float


def simulate(case, *, lifecycle: Lifecycle | None = None, progress=None) -> Result:
    """Run the case's protocol through :func:`fastnai.runner.run_protocol`.

    Parameters
    ----------
    case
        A validated drift_diffusion case.
    lifecycle
        Signals, checkpoints and resume of the run (:class:`~fastnai.lifecycle.Lifecycle`);
        default: none of them, progress as ``progress`` says.
    progress
        Without ``lifecycle``: None a bar on a terminal / log lines in batch, False silent.
    """
    start = time.perf_counter()
    life = Lifecycle(case, progress=progress) if lifecycle is None else lifecycle
    setup = build(case)
    cell = Cell(setup, Recorder(case["output.max_profiles"]))
    segments = compile_protocol(case["protocol"], one_c=setup.one_c_current,
                                initial_voltage=case["initial.voltage"])
    stats = run_protocol(cell, segments, life)
    return Result(setup, cell.recorder, cell.y_initial, cell.y, segments, cell.trajectories,
                  stats, cell.cv_start, time.perf_counter() - start)


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
    cv = cv_curves(result)
    if cv is not None:
        coords["scan_rate"] = cv.pop("scan_rate")
        coords["sample"] = np.arange(cv["cv_voltage"].shape[1], dtype=float)
        data.update(cv)
    stats = {**result.stats.as_attrs(), "n_nodes": s.n_nodes, "n_particles": s.n_particles,
             "geometry": case["model.geometry"], "electrons": case["model.electrons"],
             "current_convention": "anodic (Na extraction) positive"}
    ds = make_dataset("drift_diffusion", data, coords,
                      provenance("drift_diffusion", case.to_toml(), case.references(),
                                 result.wall_time_s, stats))
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
