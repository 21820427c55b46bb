"""Stress in a compositionally graded Bi(x)Sb(1-x) film on Cu while it takes up sodium (SPEC 3.3).

Seed: Z. Wang et al., Adv. Sci. 9, 2201209 (2022), doi:10.1002/advs.202201209, whose FEA finds the
peak stress of a Bi-rich-bottom graded film 35 % below that of the solid solution of the same
mean composition (Bi0.33Sb0.67).

The film (600 nm) is bonded to a Cu foil (100 um) and swells by ~300 % on sodiation; bonded
in-plane, it thickens by lambda_z = 1 + beta(x_Bi) theta. The in-plane eigenstrain is the Hencky
form (1/3) ln(1 + beta theta) by default (engineering and linear forms as options: ``linear``
is the small-strain model, integrated over the reference thickness). Each film point carries
sigma = M(theta, x) (eps - eps* - eps_p) with the biaxial modulus M = E/(1 - nu) interpolated
linearly in composition (Bi/Sb end members) and in theta (host/sodiated phase), and J2
plasticity with a yield stress falling linearly from the host's to the sodiated phase's. At
these swellings elastic stresses would reach tens of GPa and yield starts at ~1 % state of
charge, so plasticity and large-swelling kinematics are on by default.

Mechanics: the 1D laminate of :mod:`fastnai._kernels.laminate` (force and moment balance over
the current thickness, one curvature; the film-substrate stack is a free plate by default). The
state of charge follows the ``[[protocol]]``: ``sodiate`` / ``desodiate`` sweep a uniform theta
quasi-statically (as the paper's FEA did), committing plastic history, so a cycle shows tension
on desodiation.

With ``model.sodiation = "diffusion"`` Na enters at the surface instead: theta(z, t) follows
the film-diffusion kernel (:mod:`fastnai._kernels.film_diffusion`, reference frame,
D / lambda_z^2, log-mixed in composition) under the shared BDF2 engine, with an open-circuit
curve U(theta, x_Bi) and Butler-Volmer kinetics at the surface, so constant-current, rest,
constant-voltage and GITT steps run on the film; the laminate is balanced (and its plastic state
committed) at every accepted step. With plasticity on the flux carries the stress-coupled term
D c (1 - theta) Omega / RT d sigma_h / dz (SPEC 3.3), solved together with the laminate.

Failure measures per state (SPEC 3.3): channel cracking G = Z sigma^2 h / E' (tension only,
Z = 1.976), delamination G = int (1 - nu^2) sigma^2 / (2E) dz (the uniform-film formula
(1 - nu^2) sigma^2 h / (2E) pointwise, the laminate energy released by a graded film), and
buckle-driven delamination of a straight-sided blister of half-width b (Hutchinson and Suo 1992,
doi:10.1016/S0065-2156(08)70164-9): sigma_c = pi^2 E' h^2 / (12 b^2) and
G = (1 - nu^2) h (sigma - sigma_c)(sigma + 3 sigma_c) / (2E) for compression above sigma_c.
Each is compared with ``failure.toughness``; the state of charge where each first trips is
reported.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import constants

from .. import fem, schema
from .. import protocol_steps as steps
from .. import transient as tr
from .._kernels import film_diffusion as kfd
from .._kernels import laminate as klam
from ..errors import CaseError, ConvergenceError
from ..lifecycle import Lifecycle
from ..mesh import graded_mesh
from ..protocol import compile_protocol
from ..runner import run_protocol
from ..variables import make_dataset, provenance
from . import film_composition as comp

K = schema.Key
Q = schema.QUANTITY
_WANG = "doi:10.1002/advs.202201209"
_HS = "doi:10.1016/S0065-2156(08)70164-9"  # Hutchinson & Suo, Adv. Appl. Mech. 29, 63 (1992)
_BEUTH = "doi:10.1016/0020-7683(92)90004-D"  # Beuth, Int. J. Solids Struct. 29, 1657 (1992)
_SODIATED = ("assumed (order of DFT Voigt-Reuss-Hill moduli of the sodiated phases; the Materials "
             "Project elastic data SPEC 3.3 names were not reachable here: replace when checked)")


KEYS: dict[str, schema.Key] = {k.name: k for k in [
    K("model.kind", schema.CHOICE, "film_stress", choices=("film_stress",), doc="model kind"),
    K("model.mechanics", schema.CHOICE, "laminate", choices=("laminate", "plane_strain"),
      doc="laminate: 1D through-thickness plate (force and moment balance, curvature); "
          "plane_strain: 2D cross-section of a strip or island with free edges (B-bar Q1)"),
    K("model.plasticity", schema.BOOLEAN, True,
      doc="J2 plasticity with radial return (false: elastic, for checks)"),
    K("model.sodiation", schema.CHOICE, "uniform", choices=("uniform", "diffusion"),
      doc="uniform: quasi-static sweep of a uniform theta (the paper's FEA; protocol sodiate / "
          "desodiate); diffusion: Na enters at the surface (protocol constant_current, rest, "
          "gitt, constant_voltage, cv)"),
    K("model.stress_coupling", schema.BOOLEAN, True,
      doc="stress-coupled Na flux in diffusion runs, with plasticity on only (elastic stress "
          "gradients give absurd Omega d sigma_h ~ 80 RT, SPEC 3.3); solved together with the "
          "laminate in each implicit step"),
    K("model.kinematics", schema.CHOICE, "log", choices=("log", "engineering", "linear"),
      doc="eigenstrain (1/3) ln(1 + beta theta) (Hencky), (1 + beta theta)^(1/3) - 1, or the "
          "small-strain beta theta / 3 integrated over the reference thickness"),
    K("model.temperature", Q, 298.15, "K", 0.0, 5000.0, exclusive_minimum=True,
      doc="temperature (process profile with Butler-Volmer partial currents)"),
    K("film.thickness", Q, 600e-9, "m", 1e-10, 1e-2, doc="reference film thickness",
      source=f"{_WANG} (FEA; 630 nm measured)"),
    K("film.width", Q, None, "m", 1e-10, 1.0,
      doc="strip or island width w (plane_strain; the half model spans w/2)"),
    K("plane.out_of_plane", schema.CHOICE, "generalised", choices=("generalised", "plane_strain"),
      doc="generalised plane strain (eps_yy = e0 + kappa_y z, free plate) or eps_yy = 0"),
    K("plane.support", schema.CHOICE, "free", choices=("free", "roller", "clamped"),
      doc="bottom of the substrate: free plate (rigid-body modes pinned), roller or clamped"),
    K("substrate.extension", Q, None, "m", 0.0, 1.0,
      doc="bare substrate beyond the film edge (default 10 film thicknesses; SPEC: >= 10 h_f)"),
    K("mesh.element_size", Q, None, "m", 1e-12, 1.0,
      doc="smallest element at the interface and the film edge (default h_f / 16)"),
    K("mesh.max_element_size", Q, None, "m", 1e-12, 1.0,
      doc="largest element (default: a quarter of min(h_f + h_s, w/2), at least 2 h_f); keep "
          "elements far from the interface short enough to bend (Q1 locks in shear when long)"),
    K("mesh.growth", schema.NUMBER, 1.25, None, 1.0, 3.0,
      doc="growth ratio of neighbouring elements away from the interface and the edge"),
    K("composition.profile", schema.CHOICE, "uniform", choices=comp.PROFILES,
      doc="x_Bi(z): uniform (solid solution), linear, tabulated, process (the paper's recipe)"),
    K("composition.mean", schema.NUMBER, None, None, 0.0, 1.0,
      doc="film-averaged x_Bi of the uniform and process profiles (default 0.33, the paper's "
          "Bi0.33Sb0.67); for a linear profile, if given, it must equal (bottom + top) / 2"),
    K("composition.bottom", schema.NUMBER, None, None, 0.0, 1.0, doc="x_Bi at the substrate (linear)"),
    K("composition.top", schema.NUMBER, None, None, 0.0, 1.0, doc="x_Bi at the surface (linear)"),
    K("composition.fractions", schema.QUANTITY_LIST, None, "1", 0.0, 1.0,
      doc="thickness fractions of the tabulated profile, 0 ... 1"),
    K("composition.x_bi", schema.QUANTITY_LIST, None, "1", 0.0, 1.0,
      doc="x_Bi at composition.fractions (tabulated)"),
    K("composition.bath_model", schema.CHOICE, "concentration",
      choices=("concentration", "butler_volmer"),
      doc="process profile: partial rates in the ratio of bath concentrations (calibrated by the "
          "paper's 25:50 mM -> 33 % Bi film) or Butler-Volmer partial currents"),
    K("composition.exchange_ratio", schema.NUMBER, 1.0, None, 0.0, 1e6, exclusive_minimum=True,
      doc="Butler-Volmer option: i0_Bi / i0_Sb per unit concentration", source="assumed"),
    K("composition.potential_gap", Q, 0.0, "V", -2.0, 2.0,
      doc="Butler-Volmer option: E0_Bi - E0_Sb", source="assumed"),
    K("bismuth.youngs_modulus", Q, 32e9, "Pa", 0.0, 1e13, exclusive_minimum=True,
      doc="Young's modulus of Bi", source="SPEC 3.3 (polycrystalline Bi, handbook)"),
    K("bismuth.poisson_ratio", schema.NUMBER, 0.33, None, -1.0, 0.5, doc="Poisson ratio of Bi",
      source="assumed (handbook)"),
    K("bismuth.swelling", schema.NUMBER, 2.51, None, 0.0, 20.0,
      doc="volume expansion Bi -> Na3Bi, V/V0 - 1",
      source=f"lattice parameters (SPEC 3.3; the paper quotes 2.23, {_WANG})"),
    K("bismuth.sodiated_youngs_modulus", Q, 20e9, "Pa", 0.0, 1e13, exclusive_minimum=True,
      doc="Young's modulus of Na3Bi", source=_SODIATED),
    K("bismuth.sodiated_poisson_ratio", schema.NUMBER, 0.3, None, -1.0, 0.5,
      doc="Poisson ratio of Na3Bi", source="assumed"),
    K("antimony.youngs_modulus", Q, 55e9, "Pa", 0.0, 1e13, exclusive_minimum=True,
      doc="Young's modulus of Sb", source="SPEC 3.3 (polycrystalline Sb, handbook)"),
    K("antimony.poisson_ratio", schema.NUMBER, 0.25, None, -1.0, 0.5, doc="Poisson ratio of Sb",
      source="assumed (handbook)"),
    K("antimony.swelling", schema.NUMBER, 2.93, None, 0.0, 20.0,
      doc="volume expansion Sb -> Na3Sb, V/V0 - 1",
      source=f"lattice parameters (SPEC 3.3; the paper quotes 2.96, {_WANG})"),
    K("antimony.sodiated_youngs_modulus", Q, 27e9, "Pa", 0.0, 1e13, exclusive_minimum=True,
      doc="Young's modulus of Na3Sb", source=_SODIATED),
    K("antimony.sodiated_poisson_ratio", schema.NUMBER, 0.3, None, -1.0, 0.5,
      doc="Poisson ratio of Na3Sb", source="assumed"),
    K("bismuth.diffusivity", Q, 1e-15, "m^2 s^-1", 0.0, 1.0, exclusive_minimum=True,
      doc="Na diffusivity in the Bi end member (current frame)",
      source="assumed (SPEC 3.3: 1e-12 ... 1e-10 cm2 s-1)"),
    K("antimony.diffusivity", Q, 1e-16, "m^2 s^-1", 0.0, 1.0, exclusive_minimum=True,
      doc="Na diffusivity in the Sb end member (log-mixed in composition)",
      source="assumed (SPEC 3.3: 1e-12 ... 1e-10 cm2 s-1)"),
    K("bismuth.ocv_u0", Q, 0.55, "V", -5.0, 10.0, doc="U0 of the Bi end member (vs Na+/Na)",
      source="assumed (single-phase slope for the solver tests; real Bi sodiates in plateaus)"),
    K("antimony.ocv_u0", Q, 0.65, "V", -5.0, 10.0, doc="U0 of the Sb end member (vs Na+/Na)",
      source="assumed (single-phase slope)"),
    K("film.ocv_interaction", Q, 0.0, "V", -10.0, 10.0,
      doc="Omega of U = U0(x) - (RT/F) ln(theta/(1-theta)) - Omega (1 - 2 theta); above 2RT/F "
          "the curve folds into two phases, where the GITT formula fails"),
    K("interface.exchange_current", Q, 1.0, "A m^-2", 0.0, 1e6, exclusive_minimum=True,
      doc="i0_ref of i0 = i0_ref 2 sqrt(theta (1 - theta))", source="assumed"),
    K("interface.transfer_coefficient", schema.NUMBER, 0.5, None, 0.0, 1.0, exclusive_minimum=True,
      doc="Butler-Volmer alpha"),
    K("initial.soc", schema.NUMBER, 0.001, None, 1e-9, 0.999999, doc="uniform theta at t = 0 "
      "(diffusion)"),
    K("plasticity.yield_stress", Q, 0.5e9, "Pa", 0.0, 1e12, exclusive_minimum=True,
      doc="von Mises yield stress of the unsodiated film", source="assumed (SPEC 3.3)"),
    K("plasticity.sodiated_yield_stress", Q, 0.2e9, "Pa", 0.0, 1e12, exclusive_minimum=True,
      doc="yield stress at theta = 1 (linear in theta in between)", source="assumed (SPEC 3.3)"),
    K("plasticity.hardening", Q, 0.0, "Pa", 0.0, 1e13,
      doc="linear isotropic hardening modulus (0: perfectly plastic)", source="assumed"),
    K("substrate.material", schema.STRING, None, doc="material database entry (Cu by default)"),
    K("substrate.thickness", Q, 100e-6, "m", 1e-9, 1.0, doc="substrate (current collector) thickness",
      source=f"{_WANG} (0.1 mm Cu in the FEA)"),
    K("substrate.youngs_modulus", Q, 120e9, "Pa", 0.0, 1e13, exclusive_minimum=True,
      material_property="youngs_modulus", doc="Young's modulus of the substrate",
      source="SPEC 3.3 (Cu foil, handbook)"),
    K("substrate.poisson_ratio", schema.NUMBER, 0.34, None, -1.0, 0.5,
      material_property="poisson_ratio", doc="Poisson ratio of the substrate",
      source="assumed (Cu, handbook)"),
    K("substrate.constraint", schema.CHOICE, "free", choices=("free", "no_bending", "rigid"),
      doc="free plate (bends); no_bending (curvature held at 0); rigid (no in-plane strain)"),
    K("failure.toughness", Q, 1.0, "J m^-2", 0.0, 1e6, exclusive_minimum=True,
      doc="interface / film toughness compared with the energy release rates",
      source="assumed (SPEC 3.3: 1-10 J m-2)"),
    K("failure.channel_z", schema.NUMBER, 1.976, None, 0.0, 100.0, exclusive_minimum=True,
      doc="channel-crack factor Z (1.976: elastically matched film; Beuth 1992 for mismatch)",
      source=_BEUTH),
    K("failure.blister_half_width", Q, None, "m", 1e-12, 1.0,
      doc="half-width b of the straight-sided buckle (default 10 film thicknesses)"),
    K("mesh.film_layers", schema.INTEGER, 60, None, 1, 1_000_000, doc="layers through the film"),
    K("mesh.substrate_layers", schema.INTEGER, 8, None, 1, 1_000_000,
      doc="layers through the substrate (graded toward the interface)"),
    K("solver.substeps", schema.INTEGER, 4, None, 1, 100_000,
      doc="load increments between output states (plastic history is committed at each)"),
    K("solver.tolerance", schema.NUMBER, 1e-12, None, 1e-16, 1e-3,
      doc="Newton tolerance on the scaled force/moment residual"),
    K("solver.max_iterations", schema.INTEGER, 50, None, 2, 10_000, doc="Newton iterations per increment"),
    K("solver.rtol", schema.NUMBER, 1e-4, None, 1e-12, 0.1, doc="local-error tolerance of BDF2 "
      "(diffusion)"),
    K("solver.max_voltage_step", Q, 2e-3, "V", 1e-6, 1.0,
      doc="largest voltage change per step of a CV sweep (diffusion)"),
]}

_SOC = K("soc", schema.NUMBER, None, None, 0.0, 1.0, required=True,
         doc="film state of charge theta at the end of the step")
_STATES = K("n_states", schema.INTEGER, 20, None, 1, 1_000_000, doc="output states in the step")
STEP_KEYS: dict[str, dict[str, schema.Key]] = {
    "sodiate": {"soc": _SOC, "n_states": _STATES},
    "desodiate": {"soc": _SOC, "n_states": _STATES},
    "constant_current": steps.CONSTANT_CURRENT,
    "rest": steps.REST,
    "constant_voltage": steps.CONSTANT_VOLTAGE,
    "cv": {
        "scan_rate": K("scan_rate", Q, None, "V/s", 0.0, 1e3, exclusive_minimum=True,
                       required=True, doc="scan rate"),
        "lower_voltage": K("lower_voltage", Q, None, "V", -5.0, 10.0, required=True,
                           doc="lower vertex"),
        "upper_voltage": K("upper_voltage", Q, None, "V", -5.0, 10.0, required=True,
                           doc="upper vertex"),
        "cycles": steps.CV_CYCLES, "first": steps.CV_FIRST},
    "gitt": steps.GITT,
}
QUASI_STATIC_STEPS = ("sodiate", "desodiate")
TABLE_ARRAYS = {"protocol": STEP_KEYS}

_FORMS = {"log": klam.EIGEN_LOG, "engineering": klam.EIGEN_ENGINEERING, "linear": klam.EIGEN_LINEAR}
_MODES = {"free": klam.MODE_FREE, "no_bending": klam.MODE_FIXED_CURVATURE, "rigid": klam.MODE_FIXED}


def validate(case) -> None:
    """Case errors that need more than one key."""
    comp.check_composition(case)
    steps = case["protocol"]
    if not steps:
        raise CaseError("a film_stress case needs at least one [[protocol]] step "
                        "(sodiate / desodiate, or constant_current / rest / gitt / "
                        "constant_voltage with model.sodiation = 'diffusion')")
    uniform = case["model.sodiation"] == "uniform"
    if case["model.mechanics"] == "plane_strain":
        if case["film.width"] is None:
            raise CaseError("model.mechanics = 'plane_strain' needs film.width")
        if not uniform:
            raise CaseError("model.mechanics = 'plane_strain' runs the quasi-static sweep only "
                            "(model.sodiation = 'uniform')")
        if case["plane.out_of_plane"] == "generalised" and case["plane.support"] != "free":
            raise CaseError("generalised plane strain is the free plate: plane.support = 'free' "
                            "(or plane.out_of_plane = 'plane_strain' with a roller or clamped "
                            "bottom)")
    for k, st in enumerate(steps):
        if (st["step"] in QUASI_STATIC_STEPS) != uniform:
            raise CaseError(f"protocol.{k}: step {st['step']!r} needs model.sodiation = "
                            f"{'uniform' if st['step'] in QUASI_STATIC_STEPS else 'diffusion'!r}")
        if st["step"] in ("constant_current", "gitt") and st["cutoff_voltage"] is None:
            raise CaseError(f"protocol.{k}: {st['step']} needs cutoff_voltage")
    if not uniform:
        return
    soc = 0.0
    for k, st in enumerate(steps):
        target = st["soc"]
        if st["step"] == "sodiate" and target < soc:
            raise CaseError(f"protocol.{k}: sodiate to soc = {target:g} from {soc:g} goes down")
        if st["step"] == "desodiate" and target > soc:
            raise CaseError(f"protocol.{k}: desodiate to soc = {target:g} from {soc:g} goes up")
        soc = target


# ---------------------------------------------------------------------------------------------
# the stack


@dataclass
class Stack:
    """Layers of the substrate (below z = 0) and the film, with their end-member properties."""

    z_faces: np.ndarray  # reference faces [m], substrate from -h_s to 0, film 0 to h_f
    n_substrate: int
    x_bi: np.ndarray  # per film layer (midpoint)
    beta: np.ndarray  # per layer (0 in the substrate)
    modulus0: np.ndarray  # biaxial modulus at theta = 0 [Pa]
    modulus1: np.ndarray  # at theta = 1
    young0: np.ndarray
    young1: np.ndarray
    poisson0: np.ndarray
    poisson1: np.ndarray
    yield0: np.ndarray
    yield1: np.ndarray
    hardening: np.ndarray

    @property
    def film(self) -> slice:
        return slice(self.n_substrate, self.z_faces.size - 1)

    @property
    def film_points(self) -> slice:
        return slice(2 * self.n_substrate, 2 * (self.z_faces.size - 1))


def build(case) -> Stack:
    """Layers and per-layer properties of a validated case."""
    h_f, h_s = case["film.thickness"], case["substrate.thickness"]
    n_f, n_s = case["mesh.film_layers"], case["mesh.substrate_layers"]
    film_faces = np.linspace(0.0, h_f, n_f + 1)
    # substrate graded toward the interface (its stress is linear in z, exact on any layers;
    # grading only matters for a yielding substrate)
    depth = graded_mesh(h_s, n_s + 1, min(h_f / n_f, h_s / n_s), 1)
    sub_faces = -depth[::-1]
    z_faces = np.concatenate((sub_faces[:-1], film_faces))
    s_mid = 0.5 * (film_faces[:-1] + film_faces[1:]) / h_f
    x = comp.composition_profile(case, s_mid)
    n = n_s + n_f

    def per_layer(film_values, substrate_value):
        out = np.empty(n)
        out[:n_s] = substrate_value
        out[n_s:] = film_values
        return out

    e_sub, nu_sub = case["substrate.youngs_modulus"], case["substrate.poisson_ratio"]
    e0 = comp.mix(x, case["bismuth.youngs_modulus"], case["antimony.youngs_modulus"])
    nu0 = comp.mix(x, case["bismuth.poisson_ratio"], case["antimony.poisson_ratio"])
    e1 = comp.mix(x, case["bismuth.sodiated_youngs_modulus"],
                  case["antimony.sodiated_youngs_modulus"])
    nu1 = comp.mix(x, case["bismuth.sodiated_poisson_ratio"],
                   case["antimony.sodiated_poisson_ratio"])
    beta = comp.mix(x, case["bismuth.swelling"], case["antimony.swelling"])
    plastic = case["model.plasticity"]
    y0 = case["plasticity.yield_stress"] if plastic else math.inf
    y1 = case["plasticity.sodiated_yield_stress"] if plastic else math.inf
    young0, young1 = per_layer(e0, e_sub), per_layer(e1, e_sub)
    poisson0, poisson1 = per_layer(nu0, nu_sub), per_layer(nu1, nu_sub)
    return Stack(z_faces, n_s, x, per_layer(beta, 0.0), young0 / (1.0 - poisson0),
                 young1 / (1.0 - poisson1), young0, young1, poisson0, poisson1,
                 per_layer(np.full(n_f, y0), math.inf), per_layer(np.full(n_f, y1), math.inf),
                 per_layer(np.full(n_f, case["plasticity.hardening"]), 0.0))


def soc_path(case) -> tuple[np.ndarray, np.ndarray]:
    """Film states of charge of the output states and the protocol step of each."""
    soc, steps, now = [0.0], [-1], 0.0
    for k, st in enumerate(case["protocol"]):
        values = np.linspace(now, st["soc"], st["n_states"] + 1)[1:]
        soc.extend(values.tolist())
        steps.extend([k] * values.size)
        now = st["soc"]
    return np.array(soc), np.array(steps)


# ---------------------------------------------------------------------------------------------
# the solve


@dataclass
class Result:
    """States of a run: quasi-static (one per state of charge) or transient (one per step)."""

    stack: Stack
    soc: np.ndarray  # film-mean theta per state
    step: np.ndarray  # protocol step per state
    theta: np.ndarray  # (n_states, n_film_layers)
    stress: np.ndarray  # (n_states, 2 n_layers) [Pa]
    plastic: np.ndarray
    results: np.ndarray  # (n_states, N_RESULT)
    z_points: np.ndarray  # reference heights of the points [m]
    wall_time_s: float
    series: dict | None = None  # transient: t, voltage, current, inventory
    stats: dict | None = None


def simulate(case) -> Result:
    """Sweep the protocol's uniform states of charge through the laminate."""
    start = time.perf_counter()
    stack = build(case)
    soc, step = soc_path(case)
    n_layers = stack.z_faces.size - 1
    theta = np.zeros((soc.size, n_layers))
    theta[:, stack.film] = soc[:, None]
    history = np.zeros((klam.N_HISTORY_ROWS, 2 * n_layers))
    stress = np.empty((soc.size, 2 * n_layers))
    plastic = np.empty_like(stress)
    results = np.zeros((soc.size, klam.N_RESULT))
    kinematics = case["model.kinematics"]
    done = klam.laminate_sweep(stack.z_faces, theta, stack.beta, stack.modulus0, stack.modulus1,
                               stack.yield0, stack.yield1, stack.hardening, _FORMS[kinematics],
                               kinematics != "linear", _MODES[case["substrate.constraint"]],
                               case["solver.substeps"], case["solver.tolerance"],
                               case["solver.max_iterations"], history, stress, plastic, results)
    if done < soc.size:
        raise ConvergenceError(
            f"film_stress: the laminate did not balance at soc = {soc[done]:.4g} (scaled residual "
            f"{results[done, klam.R_RESIDUAL]:.2e} after {case['solver.max_iterations']} "
            "iterations); more solver.substeps may help", [])
    z_points = np.empty(2 * n_layers)
    klam.reference_points(stack.z_faces, z_points)
    return Result(stack, soc, step, theta[:, stack.film], stress, plastic, results, z_points,
                  time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# sodiation by diffusion through the thickness


def coupled(case) -> bool:
    """Whether a diffusion run uses the stress-coupled flux."""
    return (case["model.sodiation"] == "diffusion" and case["model.stress_coupling"]
            and case["model.plasticity"] and case["substrate.constraint"] == "free")


@dataclass
class Transport:
    """Film cells (= the laminate's film layers) and their transport properties."""

    h: np.ndarray  # reference cell thickness [m]
    c_max: np.ndarray  # Na sites per reference volume [mol m-3]
    d_cell: np.ndarray  # current-frame diffusivity [m2 s-1]
    beta: np.ndarray
    sc: np.ndarray  # kernel scalars (film_diffusion.S_*)
    one_c: float  # 1C current density [A m-2]


def build_transport(case, stack: Stack) -> Transport:
    f = stack.film
    h = np.diff(stack.z_faces)[f]
    x = stack.x_bi
    c_max = _site_density(case, x)
    d = np.exp(comp.mix(x, math.log(case["bismuth.diffusivity"]),
                        math.log(case["antimony.diffusivity"])))
    vt = constants.R * case["model.temperature"] / kfd.FARADAY
    sc = np.zeros(kfd.N_SCALARS)
    sc[kfd.S_VT] = vt
    if coupled(case):
        # Omega = beta V_host / 3 per mole of Na (SPEC 3.3; V_host = 3 / c_max), at the film-mean
        # composition. Lagged one step behind the mechanics this coupling was unstable (2.6e5
        # steps, GITT D 100x off), so it is solved with the laminate (film_diffusion.coupled_newton).
        omega = float(np.mean(stack.beta[f] / c_max))
        sc[kfd.S_OMEGA_MECH] = omega / (constants.R * case["model.temperature"])
    sc[kfd.S_I0] = case["interface.exchange_current"]
    sc[kfd.S_ALPHA] = case["interface.transfer_coefficient"]
    sc[kfd.S_U0] = float(comp.mix(x[-1], case["bismuth.ocv_u0"], case["antimony.ocv_u0"]))
    sc[kfd.S_OMEGA_U] = case["film.ocv_interaction"]
    one_c = kfd.FARADAY * float(np.sum(h * c_max)) / 3600.0
    return Transport(h, c_max, d, stack.beta[f].copy(), sc, one_c)


@dataclass
class _Control:
    mode: str  # "current", "voltage" or "sweep" (compiled: the start voltage comes from the state)
    value: float  # current density [A m-2], voltage at t0 [V], or the sweep's end voltage
    cutoff: float | None = None
    rate: float = 0.0  # voltage sweep rate [V s-1]
    t0: float = 0.0

    def value_at(self, t: float) -> float:
        return self.value + self.rate * (t - self.t0)


class FilmCell:
    """The film's Na transport as an :class:`~fastnai.transient.ImplicitProblem`; every accepted
    step also balances the laminate with the new theta profile and commits its plastic state."""

    def __init__(self, case, stack: Stack, tr_: Transport):
        self.case = case
        self.stack = stack
        self.tr = tr_
        self.n_unknowns = tr_.h.size
        self.ws = kfd.workspace(self.n_unknowns)
        self.sigma_h = np.zeros(self.n_unknowns)
        self.coupled = coupled(case)
        self.strain_state = np.zeros(2)  # (eps0, kappa) of the last accepted state
        if self.coupled:
            self.cws = kfd.coupled_workspace(self.n_unknowns, stack.z_faces.size - 1)
        self.control = _Control("current", 0.0)
        self.tol = 1e-10
        self.max_iter = case["solver.max_iterations"]
        n_layers = stack.z_faces.size - 1
        self.history = np.zeros((klam.N_HISTORY_ROWS, 2 * n_layers))
        self.theta_layers = np.zeros((1, n_layers))
        self.records: dict[str, list] = {k: [] for k in (
            "t", "voltage", "current", "inventory", "step", "theta", "stress", "plastic", "result")}
        self.step_index = -1
        kin = case["model.kinematics"]
        self._mech = (_FORMS[kin], kin != "linear", _MODES[case["substrate.constraint"]])

    def _scalars(self, control: _Control, t: float | None = None) -> np.ndarray:
        sc = self.tr.sc.copy()
        sc[kfd.S_CONTROL] = 0.0 if control.mode == "current" else 1.0
        sc[kfd.S_VALUE] = control.value if t is None else control.value_at(t)
        return sc

    def solve_step(self, y_guess, alpha0, history, t_new, dt):
        theta = np.clip(y_guess, 1e-9, 1.0 - 1e-9)
        t = self.tr
        if self.coupled:
            s = self.stack
            form, frame, _ = self._mech
            strain = self.strain_state.copy()
            its = kfd.coupled_newton(theta, history, alpha0, dt, t.h, t.c_max, t.d_cell, t.beta,
                                     self._scalars(self.control, t_new), s.z_faces, s.n_substrate,
                                     s.beta,
                                     s.modulus0, s.modulus1, s.yield0, s.yield1, s.hardening, form,
                                     frame, self.history, strain, self.tol, self.max_iter,
                                     self.sigma_h, *self.cws)
        else:
            lower, diag, upper, res, delta, work = self.ws
            its = kfd.newton(theta, history, alpha0, dt, t.h, t.c_max, t.d_cell, t.beta,
                             self.sigma_h, self._scalars(self.control, t_new), self.tol,
                             self.max_iter, lower, diag, upper, res, delta, work)
        if its < 0:
            return np.full_like(theta, np.nan), False, -its
        return theta, True, its

    def error_weights(self, y, rtol):
        return rtol * (np.abs(y) + 1e-3)

    def current(self, y, t: float) -> float:
        return float(kfd.surface_current(y, float(self.sigma_h[-1]),
                                         self._scalars(self.control, t)))

    def voltage(self, y, t: float) -> float:
        c = self.control
        if c.mode == "voltage":
            return c.value_at(t)
        return float(kfd.cell_voltage_galvanostatic(float(y[-1]), float(self.sigma_h[-1]),
                                                    c.value, self._scalars(self.control)))

    def event_functions(self, t, y):
        c = self.control
        if c.mode != "current" or c.cutoff is None or c.value == 0.0:
            return np.zeros(0)
        return np.array([self.voltage(y, t) - c.cutoff])

    def on_accept(self, t, y):
        self.record(t, y)

    def record(self, t, y):
        stack = self.stack
        self.theta_layers[0, stack.film] = y
        stress = np.empty((1, self.history.shape[1]))
        plastic = np.empty_like(stress)
        result = np.zeros((1, klam.N_RESULT))
        form, frame, mode = self._mech
        done = klam.laminate_sweep(stack.z_faces, self.theta_layers, stack.beta, stack.modulus0,
                                   stack.modulus1, stack.yield0, stack.yield1, stack.hardening,
                                   form, frame, mode, 1, self.case["solver.tolerance"],
                                   self.case["solver.max_iterations"], self.history, stress,
                                   plastic, result)
        if done < 1:
            raise ConvergenceError(f"film_stress: the laminate did not balance at t = {t:.6g} s", [])
        self.strain_state[:] = result[0, klam.R_EPS0], result[0, klam.R_KAPPA]
        if self.coupled:
            film_pts = stress[0, stack.film_points]
            self.sigma_h[:] = (film_pts[0::2] + film_pts[1::2]) / 3.0  # 2/3 of the cell mean
        r = self.records
        r["t"].append(t)
        r["voltage"].append(self.voltage(y, t))
        r["current"].append(self.current(y, t))
        r["inventory"].append(float(kfd.inventory(y, self.tr.h, self.tr.c_max)))
        r["step"].append(self.step_index)
        r["theta"].append(y.copy())
        r["stress"].append(stress[0].copy())
        r["plastic"].append(plastic[0].copy())
        r["result"].append(result[0].copy())


class TransportRun:
    """A :class:`FilmCell` with its state vector and time, as the protocol runner's cell
    (:class:`fastnai.runner.Cell`)."""

    _RECORDS = ("t", "voltage", "current", "inventory", "step", "theta", "stress", "plastic",
                "result")

    def __init__(self, case, cell: FilmCell):
        self.fc = cell
        self.rtol = case["solver.rtol"]
        self.dv_max = case["solver.max_voltage_step"]
        self.y = np.full(cell.n_unknowns, case["initial.soc"])
        self.t = 0.0
        self.y_step_start = self.y.copy()
        self.max_step: float | None = None
        cell.record(self.t, self.y)

    def voltage(self) -> float:
        return self.fc.voltage(self.y, self.t)

    def current(self) -> float:
        return self.fc.current(self.y, self.t)

    def cell_voltage(self, current: float) -> float:
        return self.fc.voltage(self.y, self.t)  # the control in force carries ``current``

    def equilibrate(self, segment) -> int:
        raise ValueError("film_stress has no equilibrate step")

    def mark_step_start(self) -> None:
        self.y_step_start = self.y.copy()

    def restart_from_step_start(self) -> None:
        self.y = self.y_step_start.copy()

    def begin(self, segment, *, t0: float, v_start: float, target: float, resuming: bool) -> None:
        self.max_step = None
        if segment.control == "sweep":
            rate = math.copysign(segment.rate, target - v_start)
            self.fc.control = _Control("voltage", v_start, rate=rate, t0=t0)
            self.max_step = self.dv_max / segment.rate
        elif segment.control == "voltage":
            self.fc.control = _Control("voltage", segment.value)
        else:
            self.fc.control = _Control("current", segment.value, segment.cutoff)
        self.fc.step_index = segment.step
        self.segment_t0 = t0

    def advance(self, segment, t_end, after_step, engine, stats) -> bool:
        duration = t_end - self.segment_t0
        traj = tr.integrate(self.fc, self.y, self.segment_t0, t_end, rtol=self.rtol,
                            dt_initial=duration * 1e-6, max_step=self.max_step,
                            store_states=False, resume_from=engine, progress=False,
                            step_hook=after_step)
        stats.add(traj.stats)
        self.y, self.t = traj.y_final, traj.t_final
        return traj.status == "event"

    def state(self) -> dict:
        fc = self.fc
        rec = {k: np.array(v) for k, v in fc.records.items()}
        return {"y": self.y, "t": self.t, "y_step_start": self.y_step_start,
                "sigma_h": fc.sigma_h, "strain_state": fc.strain_state, "history": fc.history,
                "theta_layers": fc.theta_layers, "records": rec}

    def restore(self, state) -> None:
        fc = self.fc
        self.y, self.y_step_start = np.array(state["y"]), np.array(state["y_step_start"])
        self.t = float(state["t"])
        for name in ("sigma_h", "strain_state", "history", "theta_layers"):
            getattr(fc, name)[...] = state[name]
        for k in self._RECORDS:
            values = np.asarray(state["records"][k])
            scalar = values.ndim == 1
            fc.records[k] = [(v.item() if scalar else np.array(v)) for v in values]
        fc.records["step"] = [int(v) for v in fc.records["step"]]


def time_dependent(case) -> bool:
    """Whether the case runs a protocol in time (diffusion mode), with checkpoints."""
    return case["model.sodiation"] == "diffusion" and case["model.mechanics"] != "plane_strain"


def simulate_transport(case, *, lifecycle: Lifecycle | None = None, progress=None) -> Result:
    """Run the protocol with Na entering at the surface (``model.sodiation = "diffusion"``)."""
    start = time.perf_counter()
    life = Lifecycle(case, progress=progress) if lifecycle is None else lifecycle
    stack = build(case)
    transport = build_transport(case, stack)
    run = TransportRun(case, FilmCell(case, stack, transport))
    stats = run_protocol(run, compile_protocol(case["protocol"], one_c=transport.one_c), life)
    z_points = np.empty(stack.z_faces.size * 2 - 2)
    klam.reference_points(stack.z_faces, z_points)
    r = run.fc.records
    theta = np.array(r["theta"])
    series = {"t": np.array(r["t"]), "voltage": np.array(r["voltage"]),
              "current": np.array(r["current"]), "inventory": np.array(r["inventory"]),
              "one_c": transport.one_c, "mean_diffusivity": float(np.mean(transport.d_cell))}
    return Result(stack, np.mean(theta, axis=1), np.array(r["step"]), theta, np.array(r["stress"]),
                  np.array(r["plastic"]), np.array(r["result"]), z_points,
                  time.perf_counter() - start, series, stats.as_attrs())


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
    stats = {**extra, "newton_iterations": int(res[:, klam.R_ITERATIONS].sum()),
             "max_scaled_residual": float(res[:, klam.R_RESIDUAL].max()),
             "film_layers": case["mesh.film_layers"], "mechanics": case["model.mechanics"],
             "kinematics": case["model.kinematics"], "plasticity": bool(case["model.plasticity"]),
             "film_mean_x_Bi": float(np.mean(stack.x_bi))}  # equal layers: midpoint rule
    ds = make_dataset("film_stress", data, coords,
                      provenance("film_stress", case.to_toml(), case.references(),
                                 result.wall_time_s, stats))
    for name in ("channel_crack_soc", "delamination_soc", "buckling_soc"):
        ds[name].attrs["nan_means"] = "never reached failure.toughness in this protocol"
    return ds


def _site_density(case, x_bi: np.ndarray) -> np.ndarray:
    """Na sites per reference volume at full sodiation (three Na per Bi or Sb atom) [mol m-3]."""
    # molar volumes of the host elements (density / molar mass, handbook): Bi 21.3, Sb 18.2 cm3/mol
    v_bi, v_sb = 21.31e-6, 18.19e-6
    return 3.0 / comp.mix(x_bi, v_bi, v_sb)


def cross_section_dataset(case, xs, res, wall_time_s: float) -> xr.Dataset:
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
                        provenance("film_stress", case.to_toml(), case.references(), wall_time_s,
                                   stats))


def run(case, *, lifecycle: Lifecycle | None = None, progress=None) -> xr.Dataset:
    """Run the case's protocol and return the result Dataset."""
    if case["model.mechanics"] == "plane_strain":
        from . import film_cross_section as fcs

        start = time.perf_counter()
        xs = fcs.build(case)
        soc, step = soc_path(case)
        res = fcs.sweep(case, xs, soc, step)
        ds = cross_section_dataset(case, xs, res, time.perf_counter() - start)
    elif case["model.sodiation"] == "diffusion":
        ds = to_dataset(case, simulate_transport(case, lifecycle=lifecycle, progress=progress))
    else:
        ds = to_dataset(case, simulate(case))
    return ds
