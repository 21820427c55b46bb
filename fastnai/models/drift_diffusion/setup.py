"""Set-up of drift_diffusion: a validated case turned into arrays and constants."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import constants

from ..._kernels import drift_diffusion as kdd
from ...mesh import graded_mesh
from .. import band_bending as bb
from .keys import base_nodes, min_spacing

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


def _jump_diffusivities(case, vt: float) -> tuple[float, float]:
    """D0 in the bulk and in the interface layers at the case's temperature [m2 s-1]."""
    temperature = case["model.temperature"]
    e_a = case["semiconductor.hop_barrier"]
    d0 = case["sodium.jump_diffusivity"]
    if e_a is not None:
        d0 *= math.exp(-e_a / (constants.k / constants.e)
                       * (1.0 / temperature - 1.0 / case["sodium.reference_temperature"]))
    e_layer = case["structure.layer_activation_energy"]
    d0_layer = d0
    if case["structure.kind"] == "periodic" and e_layer is not None:
        d0_layer = d0 * math.exp(-(e_layer - (e_a if e_a is not None else 0.56)) / vt)
    return d0, d0_layer


def _particle_scalars(case, vt: float, c_max: float, surface: int, a_s: float,
                      s: np.ndarray) -> None:
    """Fill the kernel's scalar vector ``s`` (``kdd.S_*``) of one particle."""
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


#: Relative tolerance of "at least one hop from the contact" (the graded mesh's first cell is
#: the hop distance up to the rounding of its rescaling).
HOP_TOLERANCE = 1e-9


def electrolyte_node(geometry: str, electrostatics: bool, depth: np.ndarray, hop: float) -> int:
    """Index of the electrolyte (reaction-plane) node of a domain with node ``depth`` [m].

    ``separated`` and ``core-shell``: the far node n - 1. ``co-located`` and ``sphere``, where
    the electrolyte meets the electrode at the metal contact: with the electrostatics on, the
    first node at least one hop ``hop`` [m] from the contact (node 1 on the default mesh, whose
    first cell is one hop; the same plane under mesh.refinement), the last node if none is.
    The contact node 0 pins psi and the electron level; its Na+ sits in the accumulation
    layer (theta ~ 5e-55 at 3 V) and trades with the particle only by hops to node 1, 5e22
    times slower than a Butler-Volmer exchange there would be, so a reaction on node 0 leaves
    the open-circuit voltage undetermined (:mod:`fastnai._kernels.drift_diffusion`). With the
    electrostatics off no contact field exists: node 0 is an ordinary site and the closed
    forms' surface at x = 0.

    Examples
    --------
    >>> depth = np.array([0.0, 0.5e-9, 1.0e-9, 2.0e-9])
    >>> electrolyte_node("sphere", True, depth, 0.5e-9), electrolyte_node("sphere", False, depth, 0.5e-9)
    (1, 0)
    >>> electrolyte_node("separated", True, depth, 0.5e-9)
    3
    """
    n = depth.shape[0]
    if geometry in ("separated", "core-shell"):
        return n - 1
    if not electrostatics:
        return 0
    first = int(np.searchsorted(depth, hop * (1.0 - HOP_TOLERANCE)))
    return min(max(first, 1), n - 1)


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
    d0, d0_layer = _jump_diffusivities(case, vt)
    periodic = case["structure.kind"] == "periodic"
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
        surface = electrolyte_node(geometry, case["model.electrostatics"], depth,
                                   case["semiconductor.hop_distance"])
        if kind == "planar":
            a_s = 1.0
        elif kind == "sphere":
            a_s = radii[p] ** 2
        else:
            a_s = radii[p] ** 2
        area_s[p] = a_s
        mass[p] = rho_mass * float(np.sum(geom.volume))
        _particle_scalars(case, vt, c_max, surface, a_s, sc[p])
    capacity = case["electrode.theoretical_capacity"] * 3.6  # mA h g-1 -> C g-1 -> A s / g
    one_c = capacity * 1e3 * float(np.sum(mass)) / 3600.0  # A (per m2 or per steradian)
    return Setup(case, arrays["depth"], arrays["coord"], name, arrays["vol"], faces["area"],
                 faces["h"], faces["g"], faces["d0"], arrays["site"], region, params, tables, sc,
                 c_max, vt, mass, one_c, radii, area_s, eps)
