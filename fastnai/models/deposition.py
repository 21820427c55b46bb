"""Na deposition and nucleation on a VN interlayer vs bare Na: Faradaic phase field (SPEC 3.4).

Seed: Y. Xia et al., Nanoscale Horiz. 7, 899 (2022), doi:10.1039/d2nh00152g (VN interlayer
rolled onto Na; nucleation overpotential 68 mV bare vs 36 mV on VN in symmetric cells at
0.5 mA cm-2; exchange currents 0.068 / 0.215 mA cm-2; activation energies 72.96 / 61.42 kJ
mol-1).

Domain and fields
-----------------
A 2D box of ``nx x ny`` square cells of side ``dx`` above the substrate (y = 0), periodic in x,
or (``mesh.nz > 1``) a 3D box of ``nx x nz x ny`` cubes, periodic in x and z: the same model,
with the 3D twin of the profile kernel (:mod:`fastnai._kernels.phase_field_3d`). Internally
every field is ``(ny, nl)``, ``nl = nz nx`` lateral cells per layer; the pointwise kernels, the
electrolyte operators (a lateral neighbour table) and the column-wise morphology are the same
code in 2D and 3D. Balances are per ``dx^(d-2)``: ``width = nl dx`` is the top measure (``Lx``
in 2D, ``Lx Lz / dx`` in 3D), so ``sum(xi) dx^2 c_s / width`` is the Na per substrate area in both.
``xi`` is the phase field (1 Na metal, 0 electrolyte), ``c`` the salt concentration (the Na+
concentration of the binary salt), ``Phi`` the electrolyte potential measured by a Na
reference electrode (``Phi = phi_l + (RT/F) ln(c / c_ref)``; ``potential`` in the result is
Phi, and the Butler-Volmer overpotential is ``eta = V - Phi``). The metal connected to the
electrode is equipotential at ``V``, reported as ``overpotential``: the plating electrode
against a Na reference at the top of the box.

Phase field and growth: :mod:`fastnai._kernels.phase_field` (profile-preserving by default,
Chen 2015 as an option; point-implicit profile terms, explicit Faradaic growth at the
Butler-Volmer normal velocity). Electrolyte: the binary-salt equations of SPEC 3.4 in the
electrolyte fraction ``psi = 1 - xi`` (:mod:`fastnai._kernels.electrolyte`), the salt implicit
in time, the potential quasi-static, both solved by AMG-preconditioned CG
(:mod:`fastnai.electrolyte`), with the single Faradaic source ``s = c_s d xi/dt``; the top is
coupled to a 1D column through the rest of the separator, whose far end is the counter
electrode (a flat electrode of the same kind, stripping what the plating electrode takes).

Control: galvanostatic steps find ``V`` each step by a safeguarded scalar Newton on the charge
balance

    j_app = -F c_s sum(dxi) dA / (dt Lx) + C_dl (V - V_n) / dt + j_substrate(V)

(anodic positive, so plating is ``j_app < 0``), so the Na in the phase field follows the
current exactly; ``C_dl`` is the double layer, which carries the current before any site is
active; ``j_substrate`` is anodic dissolution of the substrate's Na at active sites whose
deposit is gone (stripping past the deposit). Potentiostatic steps hold ``V``.

Nucleation by site activation (critical nuclei, 1.5-2.7 nm, are far below a cell): the
substrate is passivated except at discrete sites (SEI defects on bare Na, VN particles),
patches of at least two cells, that activate as a Poisson process with the classical rate
``A exp(-f(theta_c) dG*_hom(eta)/kT)``, ``dG*_hom = 16 pi gamma^3 Omega^2 / (3 e^2 eta^2)``,
``f = (2 + cos theta)(1 - cos theta)^2 / 4``, ``A = N_site nu0`` (atoms of the site area times
``kT/h``), sampled with the counter-based generator keyed on (seed, step, site). An active site
exposes metal (the wall ghost becomes 1) and so lets the deposit grow from it; nothing is
inserted. The contact angle theta_c is *calibrated*: the angle at which the first site is
expected to activate when the plating electrode reaches the paper's nucleation overpotential
while the double layer charges at 0.5 mA cm-2 (see :func:`calibrated_contact_angle`). The
alternative ``adsorption`` estimate (Young-Dupre with the DFT adsorption energy spread over an
atom's area) gives complete wetting on both substrates and so no barrier at all: every site
activates at once.

Dead Na: components of ``xi > 0.5`` (4-connected, periodic in x), relabelled every step, that do
not touch an active site are cut off from the electrode and stop reacting. The reacting cells
are those within 11.5 interface widths of live metal (where the profile's tail has fallen to
1e-5), less those within two widths of dead metal; the dead Na is reported as
``dead_na_fraction``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import constants, ndimage

from .. import schema
from .._kernels import counter_rng
from .._kernels import electrolyte as kel
from .._kernels import phase_field as kpf
from ..electrolyte import SpdSolver
from ..errors import CaseError, ConvergenceError
from ..lifecycle import Lifecycle
from ..protocol import compile_protocol
from ..runner import run_protocol
from ..variables import make_dataset, provenance

K = schema.Key
Q = schema.QUANTITY
F = constants.physical_constants["Faraday constant"][0]
R = constants.R
KB = constants.k
E = constants.e
H = constants.h
N_A = constants.N_A
_XIA = "10.1039/d2nh00152g"
_CHEN = "10.1016/j.jpowsour.2015.09.055"
_SUN = "10.1016/j.jcp.2006.05.025"
_REF_CURRENT = 5.0  # A m-2: 0.5 mA cm-2, the current of the paper's nucleation overpotentials
PSI_MIN = 1e-4  # electrolyte fraction floor inside the metal (diffuse-domain regularisation)
C_FLOOR = 1e-9  # concentration floor (relative to c_ref) in logarithms and the BV factor
# reacting cells reach _TAIL interface widths beyond live metal, where the profile's tail has
# fallen to exp(-_TAIL) ~ 1e-5 (the growth it leaves out)
_TAIL = 11.5

KEYS: dict[str, schema.Key] = {k.name: k for k in [
    K("model.kind", schema.CHOICE, "deposition", choices=("deposition",), doc="model kind"),
    K("substrate.material", schema.STRING, None, required=True,
      doc="material database entry: Na (bare, SEI-covered) or VN (interlayer)"),
    K("substrate.exchange_current_density", Q, None, "A m^-2", 0.0, 1e6, exclusive_minimum=True,
      required=True, material_property="exchange_current_density",
      doc="exchange current density j0 at the reference temperature and concentration"),
    K("substrate.activation_energy", Q, None, "J mol^-1", 0.0, 1e6, required=True,
      material_property="activation_energy", doc="Arrhenius activation energy of j0"),
    K("substrate.reference_temperature", Q, 298.15, "K", 1.0, 1000.0,
      doc="temperature at which j0 is given"),
    K("substrate.transfer_coefficient", schema.NUMBER, 0.5, None, 0.0, 1.0, exclusive_minimum=True,
      doc="anodic transfer coefficient alpha_a (alpha_c = 1 - alpha_a)", source="assumed"),
    K("substrate.nucleation_overpotential", Q, None, "V", 0.0, 2.0, exclusive_minimum=True,
      material_property="nucleation_overpotential",
      doc="measured nucleation overpotential (the contact-angle calibration target)"),
    K("substrate.contact_angle_model", schema.CHOICE, "calibrated",
      choices=("calibrated", "adsorption", "given"),
      doc="calibrated: onset at the measured nucleation overpotential; adsorption: Young-Dupre "
          "from the DFT adsorption energy (complete wetting, no barrier); given: "
          "substrate.contact_angle"),
    K("substrate.contact_angle", Q, None, "degree", 0.0, 180.0,
      doc="contact angle of Na on the substrate (contact_angle_model = 'given')"),
    K("substrate.adsorption_energy", Q, None, "eV", -20.0, 0.0, material_property="adsorption_energy",
      doc="DFT adsorption energy of a Na atom (contact_angle_model = 'adsorption')"),
    K("substrate.site_spacing", Q, 2e-6, "m", 1e-9, 1.0, exclusive_minimum=True,
      doc="mean spacing of nucleation sites along the substrate",
      source="assumed (SEI defects / VN particle spacing, order of the SEM particle size)"),
    K("substrate.site_width", Q, 0.4e-6, "m", 1e-9, 1.0, exclusive_minimum=True,
      doc="width of a site patch (at least 2 cells)", source="assumed"),
    K("substrate.site_layout", schema.CHOICE, "random", choices=("random", "regular"),
      doc="random: uniform random positions (SEI defects); regular: evenly spaced with a "
          "quarter-spacing jitter (a particle layer)"),
    K("electrode.temperature", Q, 298.15, "K", 1.0, 1000.0, doc="temperature"),
    K("electrode.double_layer_capacitance", Q, 0.1, "F m^-2", 0.0, 100.0,
      doc="double-layer capacitance (carries the current before nucleation)",
      source="assumed (10 uF cm-2)"),
    K("electrolyte.concentration", Q, 1000.0, "mol m^-3", 1e-6, 1e5, exclusive_minimum=True,
      doc="initial (and reference) salt concentration c_ref", source="assumed (1 M)"),
    K("electrolyte.diffusivity", Q, 2.5e-10, "m^2 s^-1", 0.0, 1e-3, exclusive_minimum=True,
      doc="ambipolar salt diffusivity", source="assumed (SPEC 3.4: 2-3e-10)"),
    K("electrolyte.conductivity", Q, 0.6, "S m^-1", 0.0, 1e4, exclusive_minimum=True,
      doc="ionic conductivity", source="assumed (SPEC 3.4)"),
    K("electrolyte.transference_number", schema.NUMBER, 0.4, None, 0.0, 1.0,
      doc="Na+ transference number t+", source="assumed (SPEC 3.4: 0.3-0.45)"),
    K("separator.thickness", Q, 260e-6, "m", 0.0, 1e-1,
      doc="separator length beyond the box (the 1D column; 0: none)",
      source="assumed (glass-fibre separator)"),
    K("separator.porosity", schema.NUMBER, 0.9, None, 0.0, 1.0, exclusive_minimum=True,
      doc="separator porosity eps (effective D and conductivity eps^1.5)", source="assumed"),
    K("separator.n_nodes", schema.INTEGER, 40, None, 1, 100000, doc="nodes of the 1D column"),
    K("phase_field.formulation", schema.CHOICE, "profile-preserving",
      choices=("profile-preserving", "chen2015"),
      doc="profile-preserving (Sun & Beckermann 2007) or the nonlinear Chen 2015 / Hong 2018 "
          "model (Allen-Cahn profile terms, kinetic constant tied to j0)"),
    K("phase_field.interface_cells", schema.NUMBER, 2.0, None, 1.5, 20.0,
      doc="interface width lambda in cells (profile [1 - tanh(n/2 lambda)]/2)"),
    K("phase_field.surface_energy", Q, 0.2, "J m^-2", 0.0, 10.0, exclusive_minimum=True,
      doc="Na surface energy gamma", source="assumed (SPEC 3.4)"),
    K("phase_field.molar_volume", Q, 23.78e-6, "m^3 mol^-1", 0.0, 1e-3, exclusive_minimum=True,
      doc="molar volume of Na metal", source="22.990 g mol-1 / 0.968 g cm-3"),
    K("phase_field.gibbs_thomson", schema.BOOLEAN, False,
      doc="curvature shift of the equilibrium potential, -gamma V_m kappa / F"),
    K("phase_field.anisotropy", schema.NUMBER, 0.0, None, 0.0, 1.0 / 15.0,
      doc="4-fold anisotropy eps4 of gamma (surface stiffness in the Gibbs-Thomson term)"),
    K("phase_field.noise", Q, 0.0, "s^-0.5", 0.0, 1e6,
      doc="interface noise amplitude (a numerical perturbation, scaled with sqrt(dt); its Na "
          "is charged against the current, so an amplitude whose sqrt(dt) term rivals the "
          "Faradaic growth forces small steps)"),
    K("phase_field.profile_peclet", schema.NUMBER, 2.0, None, 1e-3, 100.0,
      doc="profile-preserving: D_xi = lambda v_ref / Pe, v_ref the flat-front speed of the "
          "largest protocol current (numerical: the second-order growth step keeps the "
          "profile, relaxation only mends it; smaller Pe relaxes harder and makes unresolved "
          "nuclei swell, see profile_na)", source="numerical"),
    K("phase_field.chen_interface_mobility", Q, 2.5e-6, "m^3 J^-1 s^-1", 0.0, 1e3,
      exclusive_minimum=True, doc="chen2015: L_sigma (D_xi = L_sigma kappa)",
      source=f"{_CHEN} (Li-tuned)"),
    K("mesh.nx", schema.INTEGER, 256, None, 1, 1_000_000, doc="cells across (periodic x)"),
    K("mesh.nz", schema.INTEGER, 1, None, 1, 1_000_000,
      doc="cells along the second lateral direction (periodic z); 1 is a 2D box"),
    K("mesh.ny", schema.INTEGER, 128, None, 4, 1_000_000, doc="cells up from the substrate"),
    K("mesh.dx", Q, 0.2e-6, "m", 1e-10, 1e-2, exclusive_minimum=True, doc="cell size"),
    K("initial.deposit_thickness", Q, 0.0, "m", 0.0, 1.0,
      doc="a flat deposit already on the substrate (connected where the substrate is active)"),
    K("nucleation.mode", schema.CHOICE, "sites", choices=("sites", "none"),
      doc="sites: passivated substrate with activating sites; none: the whole substrate reacts"),
    K("nucleation.seed", schema.INTEGER, 0, None, 0, 2**62, doc="seed of the counter-based RNG"),
    K("nucleation.attempt_frequency", Q, None, "s^-1", 0.0, 1e20, exclusive_minimum=True,
      doc="attempt frequency nu0 (default kT/h)"),
    K("solver.max_time_step", Q, 20.0, "s", 0.0, 1e6, exclusive_minimum=True,
      doc="step cap (the front-motion limit usually binds first)"),
    K("solver.initial_time_step", Q, 1e-6, "s", 0.0, 1e6, exclusive_minimum=True,
      doc="first step of every protocol step"),
    K("solver.front_courant", schema.NUMBER, 0.2, None, 0.0, 1.0, exclusive_minimum=True,
      doc="dt <= front_courant dx / v_max (front motion)"),
    K("solver.max_voltage_step", Q, 2e-3, "V", 0.0, 1.0, exclusive_minimum=True,
      doc="largest change of V per step"),
    K("solver.max_growth", schema.NUMBER, 1.5, None, 1.0, 10.0, exclusive_minimum=True,
      doc="largest step-size ratio"),
    K("solver.max_steps", schema.INTEGER, 1_000_000, None, 1, 10**9, doc="steps at most"),
    K("output.n_snapshots", schema.INTEGER, 6, None, 1, 10000,
      doc="field snapshots over the run (evenly in time, plus the initial state)"),
]}

_CURRENT = K("current_density", Q, None, "A m^-2", 0.0, 1e6, exclusive_minimum=True,
             required=True, doc="current density (magnitude)")
_CAPACITY = K("capacity", Q, None, "A s m^-2", 0.0, 1e9, exclusive_minimum=True,
              doc="areal capacity (e.g. '1 mA h cm^-2'); or give duration")
_DURATION = K("duration", Q, None, "s", 0.0, 1e9, exclusive_minimum=True,
              doc="step duration (or give capacity)")
STEP_KEYS: dict[str, dict[str, schema.Key]] = {
    "plate": {"current_density": _CURRENT, "capacity": _CAPACITY, "duration": _DURATION},
    "strip": {"current_density": _CURRENT, "capacity": _CAPACITY, "duration": _DURATION},
    "rest": {"duration": K("duration", Q, None, "s", 0.0, 1e9, exclusive_minimum=True,
                           required=True, doc="open-circuit time")},
    "constant_voltage": {
        "voltage": K("voltage", Q, None, "V", -5.0, 5.0, required=True,
                     doc="metal potential vs the Na reference at the top of the box"),
        "duration": K("duration", Q, None, "s", 0.0, 1e9, exclusive_minimum=True, required=True,
                      doc="hold time")},
    "cycle": {"current_density": _CURRENT,
              "capacity": K("capacity", Q, None, "A s m^-2", 0.0, 1e9, exclusive_minimum=True,
                            required=True, doc="areal capacity plated, then stripped, per cycle"),
              "cycles": K("cycles", schema.INTEGER, 1, None, 1, 10000, doc="plate/strip cycles"),
              "rest_duration": K("rest_duration", Q, 0.0, "s", 0.0, 1e9,
                                 doc="rest after each half cycle")},
}
TABLE_ARRAYS = {"protocol": STEP_KEYS}


def time_dependent(case) -> bool:
    """Every case of this model runs a protocol in time."""
    return True


def validate(case) -> None:
    """Case errors that need more than one key."""
    steps = case["protocol"]
    if not steps:
        raise CaseError("a deposition case needs at least one [[protocol]] step (plate, strip, "
                        "rest, constant_voltage or cycle)")
    for k, st in enumerate(steps):
        if st["step"] in ("plate", "strip") and (st["capacity"] is None) == (st["duration"] is None):
            raise CaseError(f"protocol.{k}: {st['step']} needs exactly one of capacity and duration")
    dx = case["mesh.dx"]
    if case["nucleation.mode"] == "sites":
        width = case["substrate.site_width"]
        if width < 2.0 * dx * (1.0 - 1e-9):
            raise CaseError(f"substrate.site_width = {width:g} m is below two cells (mesh.dx = "
                            f"{dx:g} m): a site patch needs at least 2 cells")
        if case["substrate.site_spacing"] < width:
            raise CaseError("substrate.site_spacing must be at least substrate.site_width")
        if case["substrate.site_spacing"] > case["mesh.nx"] * dx:
            raise CaseError("substrate.site_spacing is wider than the box: no site would fit")
        if case["mesh.nz"] > 1 and case["substrate.site_spacing"] > case["mesh.nz"] * dx:
            raise CaseError("substrate.site_spacing is deeper than the box (mesh.nz * mesh.dx): "
                            "no site would fit")
        model = case["substrate.contact_angle_model"]
        if model == "given" and case["substrate.contact_angle"] is None:
            raise CaseError("substrate.contact_angle_model = 'given' needs substrate.contact_angle")
        if model == "calibrated" and case["substrate.nucleation_overpotential"] is None:
            raise CaseError("substrate.contact_angle_model = 'calibrated' needs "
                            "substrate.nucleation_overpotential (the calibration target)")
        if model == "adsorption" and case["substrate.adsorption_energy"] is None:
            raise CaseError("substrate.contact_angle_model = 'adsorption' needs "
                            "substrate.adsorption_energy")
    lam = case["phase_field.interface_cells"] * dx
    if case["initial.deposit_thickness"] > 0.0 and (
            case["initial.deposit_thickness"] + 8 * lam > case["mesh.ny"] * dx):
        raise CaseError("initial.deposit_thickness leaves no room for the interface in the box")


# ---------------------------------------------------------------------------------------------
# nucleation physics


def wetting_factor(theta: float) -> float:
    """Heterogeneous-nucleation factor f(theta) = (2 + cos)(1 - cos)^2 / 4 (cap on a plane)."""
    c = math.cos(theta)
    return (2.0 + c) * (1.0 - c) ** 2 / 4.0


def homogeneous_barrier_coefficient(surface_energy: float, molar_volume: float) -> float:
    """``16 pi gamma^3 Omega^2 / (3 e^2)`` [J V^2]: dG*_hom = this / eta^2 (one e per atom)."""
    omega = molar_volume / N_A
    return 16.0 * math.pi * surface_energy**3 * omega**2 / (3.0 * E**2)


def critical_radius(surface_energy: float, molar_volume: float, eta: float) -> float:
    """Critical nucleus radius ``2 gamma Omega / (e |eta|)`` [m]."""
    return 2.0 * surface_energy * molar_volume / N_A / (E * abs(eta))


def site_prefactor(site_width: float, molar_volume: float, temperature: float,
                   attempt_frequency: float | None = None) -> float:
    """``A = N_site nu0``: Na surface atoms of a ``site_width^2`` patch times ``kT/h`` [s-1]."""
    atom_area = (molar_volume / N_A) ** (2.0 / 3.0)
    nu0 = attempt_frequency if attempt_frequency is not None else KB * temperature / H
    return site_width**2 / atom_area * nu0


def calibrated_contact_angle(*, eta_onset: float, surface_energy: float, molar_volume: float,
                             temperature: float, prefactor: float, capacitance: float,
                             current: float = _REF_CURRENT) -> float:
    """Contact angle [rad] at which the first site activates at ``eta_onset`` (calibration).

    The double layer charges at ``current`` [A m-2], so the electrode reaches ``eta_onset`` after
    ``t = C_dl eta_onset / current``; one expected activation by then needs the barrier
    ``f(theta) dG*_hom(eta_onset) = kT ln(A t)``. Solved for theta by bisection (f rises
    monotonically from 0 at theta = 0 to 1 at 180 degrees).

    Examples
    --------
    >>> a = site_prefactor(0.4e-6, 23.78e-6, 298.15)
    >>> th = calibrated_contact_angle(eta_onset=0.068, surface_energy=0.2, molar_volume=23.78e-6,
    ...                               temperature=298.15, prefactor=a, capacitance=0.1)
    >>> round(math.degrees(th), 1)
    50.4
    """
    t_onset = capacitance * eta_onset / current if capacitance > 0.0 else 1.0
    barrier_kt = math.log(max(prefactor * t_onset, 1.0))
    ghom = homogeneous_barrier_coefficient(surface_energy, molar_volume) / eta_onset**2
    target = barrier_kt * KB * temperature / ghom
    if target >= 1.0:
        return math.pi
    lo, hi = 0.0, math.pi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if wetting_factor(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def adsorption_contact_angle(adsorption_energy_ev: float, surface_energy: float,
                             molar_volume: float) -> float:
    """Young-Dupre contact angle [rad] from a bond-counting adhesion estimate.

    The work of adhesion is the adsorption energy per atom area, ``W = |E_ads| / Omega^(2/3)``,
    and ``cos theta = W / gamma - 1``. With the DFT energies of the VN paper (-1.83 eV on VN,
    -0.86 eV on Na) W is 1.2-2.5 J m-2, far above ``2 gamma``: complete wetting (theta = 0), so
    this estimate predicts no nucleation barrier on either substrate.
    """
    w = abs(adsorption_energy_ev) * E / (molar_volume / N_A) ** (2.0 / 3.0)
    return math.acos(max(-1.0, min(1.0, w / surface_energy - 1.0)))


def exchange_current(case, temperature: float | None = None) -> float:
    """j0 at ``temperature`` (default the case's), Arrhenius from the reference temperature."""
    t = case["electrode.temperature"] if temperature is None else temperature
    return case["substrate.exchange_current_density"] * math.exp(
        -case["substrate.activation_energy"] / R * (1.0 / t - 1.0 / case["substrate.reference_temperature"]))


def bv_current(eta, j0: float, alpha_a: float, temperature: float, conc_ratio=1.0):
    """Anodic-positive Butler-Volmer current [A m-2] (concentration-dependent, Newman 8.8)."""
    f = F / (R * temperature)
    return j0 * np.power(conc_ratio, alpha_a) * (np.exp(alpha_a * f * np.asarray(eta))
                                                 - np.exp(-(1.0 - alpha_a) * f * np.asarray(eta)))


def bv_overpotential(j: float, j0: float, alpha_a: float, temperature: float,
                     conc_ratio: float = 1.0) -> float:
    """eta [V] at which :func:`bv_current` equals ``j`` (Newton on a monotone function)."""
    f = F / (R * temperature)
    k = j0 * conc_ratio**alpha_a
    eta = math.asinh(j / (2.0 * k)) * 2.0 / f  # exact for alpha_a = 1/2
    for _ in range(100):
        ea, ec = math.exp(alpha_a * f * eta), math.exp(-(1.0 - alpha_a) * f * eta)
        g = k * (ea - ec) - j
        dg = k * f * (alpha_a * ea + (1.0 - alpha_a) * ec)
        step = g / dg
        eta -= step
        if abs(step) < 1e-15:
            break
    return eta


# ---------------------------------------------------------------------------------------------
# set-up


@dataclass
class Setup:
    """Derived constants of a case (SI)."""

    nx: int
    ny: int
    nz: int
    dx: float
    lam: float
    width: float
    area: float
    lat: np.ndarray
    temperature: float
    f_rt: float
    j0: float
    alpha_a: float
    c_ref: float
    c_s: float
    speed: float
    mobility: float
    formulation: int
    gt_coeff: float
    anisotropy: float
    noise: float
    seed: int
    cos_theta: float
    contact_angle: float
    f_theta: float
    barrier_coeff: float
    prefactor: float
    site_ptr: np.ndarray
    site_cells: np.ndarray
    site_position: np.ndarray
    site_position_depth: np.ndarray
    capacitance: float
    diffusivity: float
    conductivity: float
    t_plus: float
    beta: float
    sep_length: float
    sep_nodes: int
    sep_porosity: float
    dilation: int
    dead_reach: int


def _sites(case, nx: int, nz: int, dx: float):
    """Site patches on the substrate layer, periodic: ``(site_ptr, site_cells, x, z)``.

    2D: ``round(Lx / spacing)`` patches of ``w`` cells along x. 3D: ``w x w`` patches,
    ``round(Lx / spacing) x round(Lz / spacing)`` of them on a jittered grid (``regular``) or
    as many placed uniformly (``random``). ``site_cells`` are layer indices ``k nx + i``;
    positions are keyed on (seed, step 0 for x, step 1 for z, site).
    """
    spacing = case["substrate.site_spacing"]
    w_cells = max(2, int(round(case["substrate.site_width"] / dx)))
    lx, lz = nx * dx, nz * dx
    mx = max(1, int(round(lx / spacing)))
    mz = max(1, int(round(lz / spacing))) if nz > 1 else 1
    m = mx * mz
    seed = case["nucleation.seed"]
    ux = counter_rng.uniform_array(seed, counter_rng.STREAM_SITE_POSITIONS, 0, m)
    uz = counter_rng.uniform_array(seed, counter_rng.STREAM_SITE_POSITIONS, 1, m)
    grid = np.arange(m)
    if case["substrate.site_layout"] == "random":
        cx, cz = ux * lx, uz * lz
        if nz == 1:
            cx = np.sort(cx)
    else:
        cx = (grid % mx + 0.5) * (lx / mx) + 0.25 * spacing * (2.0 * ux - 1.0)
        cz = (grid // mx + 0.5) * (lz / mz) + 0.25 * spacing * (2.0 * uz - 1.0)
    offsets = np.arange(w_cells)
    sx = np.floor(cx / dx - 0.5 * w_cells).astype(np.int64)
    if nz == 1:
        cells = (sx[:, None] + offsets[None, :]) % nx
        cz = np.zeros(0)
    else:
        sz = np.floor(cz / dx - 0.5 * w_cells).astype(np.int64)
        ix = (sx[:, None, None] + offsets[None, None, :]) % nx
        iz = (sz[:, None, None] + offsets[None, :, None]) % nz
        cells = (iz * nx + ix).reshape(m, -1)
        cz = np.mod(cz, lz)
    ptr = np.arange(m + 1, dtype=np.int64) * cells.shape[1]
    return ptr, cells.ravel().astype(np.int64), np.mod(cx, lx), cz


def build(case) -> Setup:
    """Derived constants, sites and numerical parameters of a case."""
    nx, ny, nz, dx = case["mesh.nx"], case["mesh.ny"], case["mesh.nz"], case["mesh.dx"]
    lam = case["phase_field.interface_cells"] * dx
    temp = case["electrode.temperature"]
    vm = case["phase_field.molar_volume"]
    gamma = case["phase_field.surface_energy"]
    j0 = exchange_current(case)
    alpha = case["substrate.transfer_coefficient"]
    segs = compile_protocol(case["protocol"])
    j_ref = max([abs(sg.value) for sg in segs if sg.control == "current"] + [j0])
    for sg in segs:
        if sg.control == "voltage":
            j_ref = max(j_ref, abs(float(bv_current(sg.value, j0, alpha, temp))))
    if case["phase_field.formulation"] == "profile-preserving":
        mobility = lam * (vm / F) * j_ref / case["phase_field.profile_peclet"]
        formulation = kpf.PROFILE_PRESERVING
    else:
        mobility = case["phase_field.chen_interface_mobility"] * 6.0 * gamma * lam
        formulation = kpf.CHEN2015
    cap = case["electrode.double_layer_capacitance"]
    if case["nucleation.mode"] == "sites":
        width_cells = max(2, int(round(case["substrate.site_width"] / dx)))
        prefactor = site_prefactor(width_cells * dx, vm, temp, case["nucleation.attempt_frequency"])
        model = case["substrate.contact_angle_model"]
        if model == "given":
            theta = math.radians(case["substrate.contact_angle"])
        elif model == "adsorption":
            theta = adsorption_contact_angle(case["substrate.adsorption_energy"], gamma, vm)
        else:
            theta = calibrated_contact_angle(
                eta_onset=case["substrate.nucleation_overpotential"], surface_energy=gamma,
                molar_volume=vm, temperature=case["substrate.reference_temperature"],
                prefactor=prefactor, capacitance=cap if cap > 0.0 else 0.1)
        ptr, cells, pos, pos_z = _sites(case, nx, nz, dx)
    else:
        theta = math.pi / 2.0
        prefactor = 0.0
        ptr, cells, pos, pos_z = np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0), \
            np.zeros(0)
    t_plus = case["electrolyte.transference_number"]
    return Setup(
        nx=nx, ny=ny, nz=nz, dx=dx, lam=lam, width=nz * nx * dx,
        area=nx * dx * (nz * dx if nz > 1 else 1.0), lat=kel.lateral_neighbours(nx, nz),
        temperature=temp, f_rt=F / (R * temp),
        j0=j0, alpha_a=alpha, c_ref=case["electrolyte.concentration"], c_s=1.0 / vm,
        speed=vm / F, mobility=mobility, formulation=formulation,
        gt_coeff=gamma * vm / F if case["phase_field.gibbs_thomson"] else 0.0,
        anisotropy=case["phase_field.anisotropy"], noise=case["phase_field.noise"],
        seed=case["nucleation.seed"], cos_theta=math.cos(theta), contact_angle=theta,
        f_theta=wetting_factor(theta), barrier_coeff=homogeneous_barrier_coefficient(gamma, vm),
        prefactor=prefactor, site_ptr=ptr, site_cells=cells, site_position=pos,
        site_position_depth=pos_z,
        capacitance=cap, diffusivity=case["electrolyte.diffusivity"],
        conductivity=case["electrolyte.conductivity"], t_plus=t_plus,
        beta=2.0 * (1.0 - t_plus) / (F / (R * temp)),
        sep_length=case["separator.thickness"], sep_nodes=case["separator.n_nodes"],
        sep_porosity=case["separator.porosity"],
        dilation=int(math.ceil(_TAIL * lam / dx)), dead_reach=int(math.ceil(2.0 * lam / dx)))


# ---------------------------------------------------------------------------------------------
# state and one time step


_SERIES = ("t", "current_density", "overpotential", "voltage", "counter_overpotential",
           "separator_drop", "na_inventory", "deposited_charge", "nuclei_count",
           "active_site_density", "front_height_max", "front_height_mean", "roughness",
           "dead_na_fraction", "substrate_stripped", "profile_na", "front_concentration",
           "time_step", "newton_iterations", "protocol_step")


def _periodic_labels(metal: np.ndarray) -> np.ndarray:
    """Face-connected components of ``metal``, merged across the periodic lateral seams
    (every axis but the first, the height)."""
    labels, n = ndimage.label(metal)
    if not n:
        return labels
    parent = np.arange(n + 1)

    def root(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for axis in range(1, metal.ndim):
        if metal.shape[axis] < 2:
            continue
        first = np.take(labels, 0, axis=axis).ravel()
        last = np.take(labels, -1, axis=axis).ravel()
        both = (first > 0) & (last > 0)
        for a, b in zip(first[both], last[both], strict=True):
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([root(a) for a in range(n + 1)])
    return roots[labels]


class Cell:
    """The state of a deposition run and its time step (2D)."""

    def __init__(self, case, setup: Setup):
        self.case = case
        self.s = s = setup
        ny, nl = s.ny, s.nz * s.nx
        self.xi = np.zeros((ny, nl))
        h0 = case["initial.deposit_thickness"]
        if h0 > 0.0:
            y = (np.arange(ny) + 0.5) * s.dx
            self.xi[:] = (0.5 * (1.0 - np.tanh((y - h0) / (2.0 * s.lam))))[:, None]
        self.conc = np.full((ny, nl), s.c_ref)
        self.ncol = s.sep_nodes if s.sep_length > 0.0 else 0
        self.col = np.full(self.ncol, s.c_ref)
        self.phi = np.zeros((ny, nl))
        self.voltage = 0.0
        self.t = 0.0
        self.step_index = 0
        n_sites = s.site_ptr.size - 1
        self.site_active = np.zeros(n_sites, dtype=np.uint8)
        self.site_step = np.full(n_sites, -1, dtype=np.int64)
        self.site_time = np.full(n_sites, math.nan)
        self.wall_active = np.zeros(nl, dtype=np.uint8)
        if case["nucleation.mode"] == "none":
            self.wall_active[:] = 1
        self.substrate_stripped = 0.0  # mol m-2 taken from the substrate's own Na
        self.deposited_charge = 0.0  # C m-2 passed in the plating direction
        self.v_max = 0.0
        self.dead_fraction = 0.0
        self.profile_change = 0.0
        self.profile_na = 0.0  # mol m-2 the profile terms added (charged against the current)
        # work arrays (allocated once)
        self.xi_star = np.empty_like(self.xi)
        self.geom = np.zeros_like(self.xi)
        self.geom2 = np.zeros_like(self.xi)
        self.eta_shift = np.zeros_like(self.xi)
        self.xi_new = np.empty_like(self.xi)
        self.source = np.zeros_like(self.xi)
        self.mask = np.zeros((ny, nl), dtype=np.uint8)
        self.partial = np.zeros((kpf.N_CHUNKS, 2))
        self.lnc = np.empty_like(self.xi)
        self.div = np.empty_like(self.xi)
        if h0 > 0.0:
            self.settle_profile()
        self.xi0_inventory = self.inventory()
        ip, ix = kel.csr_pattern(ny, s.lat, self.ncol)
        self.salt = SpdSolver(ip, ix, rtol=1e-8, name="salt")
        ip, ix = kel.csr_pattern(ny, s.lat, 0)
        self.potential = SpdSolver(ip, ix, rtol=1e-8, name="potential")
        self.update_mask()

    def settle_profile(self, n_steps: int = 400) -> None:
        """Relax a given initial deposit to the discrete equilibrium profile (no current).

        The sampled tanh is not an exact steady state of the discrete profile terms; left as
        it is, its first steps would change the phase field by far more than a small current
        does, and under current control that change is charged against the current.
        """
        s = self.s
        dt = 0.5 * s.dx * s.dx / s.mobility  # r = 1/2
        self.mask[:] = 0
        for _ in range(n_steps):
            self._profile_kernel(dt, 0.0, 0.0, 0.0, 0)
            self.xi, self.xi_star = self.xi_star, self.xi

    def _profile_kernel(self, dt: float, gt_coeff: float, anisotropy: float, noise: float,
                        step: int) -> None:
        """``profile_step`` of :mod:`~fastnai._kernels.phase_field` (2D) or its 3D twin on
        ``(ny, nz, nx)`` views of the fields."""
        s = self.s
        if s.nz == 1:
            kpf.profile_step(self.xi, self.wall_active, s.cos_theta, s.dx, s.lam, s.mobility, dt,
                             s.formulation, self.mask, gt_coeff, anisotropy, noise, s.seed, step,
                             self.xi_star, self.geom, self.geom2, self.eta_shift)
            return
        from .._kernels import phase_field_3d as kpf3  # compiled only when a 3D case runs

        shape = (s.ny, s.nz, s.nx)
        kpf3.profile_step_3d(self.xi.reshape(shape), self.wall_active.reshape(shape[1:]),
                             s.cos_theta, s.dx, s.lam, s.mobility, dt, s.formulation,
                             self.mask.reshape(shape), gt_coeff, anisotropy, noise, s.seed, step,
                             self.xi_star.reshape(shape), self.geom.reshape(shape),
                             self.geom2.reshape(shape), self.eta_shift.reshape(shape))

    # -- bookkeeping --------------------------------------------------------------------------
    def inventory(self) -> float:
        """Na in the phase field per substrate area [mol m-2]."""
        return kpf.field_sum(self.xi, np.zeros((kpf.N_CHUNKS, 2))) * self.s.dx**2 * self.s.c_s / self.s.width

    def refresh_wall(self) -> None:
        s = self.s
        if self.case["nucleation.mode"] == "none":
            return
        self.wall_active[:] = 0
        for k in np.flatnonzero(self.site_active):
            self.wall_active[s.site_cells[s.site_ptr[k]:s.site_ptr[k + 1]]] = 1

    def update_mask(self) -> None:
        """Relabel the metal: live (connected to an active site) vs dead; the reacting cells."""
        s = self.s
        shape = (s.ny, s.nz, s.nx) if s.nz > 1 else (s.ny, s.nx)
        metal = (self.xi > 0.5).reshape(shape)
        labels = _periodic_labels(metal)  # face connectivity: 4 in 2D, 6 in 3D
        active_cols = self.wall_active.astype(bool)
        flat = labels.reshape(s.ny, -1)
        live_labels = np.unique(flat[0, active_cols])
        live_labels = live_labels[live_labels > 0]
        live = np.isin(labels, live_labels)
        live.reshape(s.ny, -1)[0, active_cols] = True
        dead = metal & ~live
        total = self.inventory() - self.xi0_inventory
        dead_na = float(self.xi.reshape(shape)[dead].sum()) * s.dx**2 * s.c_s / s.width
        self.dead_fraction = dead_na / total if total > 0.0 else 0.0
        modes = ("constant",) + ("wrap",) * (len(shape) - 1)
        grown = ndimage.maximum_filter(live.view(np.uint8), size=2 * s.dilation + 1,
                                       mode=modes, cval=0).view(bool)
        if dead.any():  # the interface of a dead island does not react, even near live metal
            near_dead = ndimage.maximum_filter(dead.view(np.uint8), size=2 * s.dead_reach + 1,
                                               mode=modes, cval=0).view(bool)
            grown &= ~near_dead
            grown |= live
        self.mask[:] = grown.reshape(s.ny, -1)

    def front_concentration(self) -> float:
        """Lowest salt concentration in the first electrolyte cell (xi < 0.5) above the metal
        top of each column [mol m-3] (Sand's time: where it reaches zero)."""
        above = self.xi > 0.5
        any_metal = above.any(axis=0)
        top = np.where(any_metal, self.s.ny - 1 - np.argmax(above[::-1], axis=0), -1) + 1
        top = np.minimum(top, self.s.ny - 1)
        return float(np.min(self.conc[top, np.arange(self.conc.shape[1])]))

    def morphology(self) -> tuple[float, float, float]:
        """Front height per column (top of xi > 0.5, interpolated): max, mean, std [m]."""
        s = self.s
        xi = self.xi
        above = xi > 0.5
        any_metal = above.any(axis=0)
        top = np.where(any_metal, s.ny - 1 - np.argmax(above[::-1], axis=0), -1)
        h = np.zeros(xi.shape[1])
        cols = np.flatnonzero(any_metal)
        j = top[cols]
        x0 = xi[j, cols]
        x1 = np.where(j + 1 < s.ny, xi[np.minimum(j + 1, s.ny - 1), cols], 0.0)
        frac = np.where(x0 > x1, (x0 - 0.5) / np.maximum(x0 - x1, 1e-300), 0.0)
        h[cols] = (j + 0.5 + np.clip(frac, 0.0, 1.0)) * s.dx
        return float(h.max()), float(h.mean()), float(h.std())

    # -- the step -----------------------------------------------------------------------------
    def _wall_columns(self, voltage: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Anodic dissolution of the substrate at active, uncovered columns: the columns, and
        per column the current density times the uncovered fraction [A m-2] and its d/dV."""
        s = self.s
        cols = self.wall_active.astype(bool)
        eta = voltage - self.phi[0, cols]
        cr = np.maximum(self.conc[0, cols] / s.c_ref, C_FLOOR)
        k = s.j0 * cr**s.alpha_a
        ea = np.exp(s.alpha_a * s.f_rt * eta)
        ec = np.exp(-(1.0 - s.alpha_a) * s.f_rt * eta)
        j = k * (ea - ec)
        dj = k * s.f_rt * (s.alpha_a * ea + (1.0 - s.alpha_a) * ec)
        bare = 1.0 - np.clip(self.xi[0, cols], 0.0, 1.0)
        pos = j > 0.0
        return cols, np.where(pos, j, 0.0) * bare, np.where(pos, dj, 0.0) * bare

    def _wall_current(self, voltage: float) -> tuple[float, float]:
        """The substrate's dissolution per substrate area: (j, dj/dV)."""
        _, j, dj = self._wall_columns(voltage)
        scale = self.s.dx / self.s.width
        return float(np.sum(j)) * scale, float(np.sum(dj)) * scale

    def _growth(self, voltage: float, dt: float):
        s = self.s
        return kpf.growth_sum(voltage, self.xi_star, self.geom, self.geom2, self.phi, self.conc,
                              self.eta_shift, s.gt_coeff != 0.0, s.j0, 1.0 / s.c_ref, s.alpha_a,
                              1.0 - s.alpha_a, s.f_rt, s.speed, dt, C_FLOOR, self.partial)

    def _balance(self, voltage: float, dt: float, j_app: float) -> tuple[float, float]:
        """Charge balance residual [A m-2] and its derivative in V (the whole change of the
        phase field counts: growth and profile terms)."""
        s = self.s
        total, dtotal = self._growth(voltage, dt)
        total += self.profile_change
        scale = F * s.c_s * s.dx**2 / (dt * s.width)
        jw, djw = self._wall_current(voltage)
        res = -scale * total + s.capacitance * (voltage - self.voltage) / dt + jw - j_app
        return res, -scale * dtotal + s.capacitance / dt + djw

    def solve_voltage(self, dt: float, j_app: float) -> tuple[float, int]:
        """Safeguarded Newton for V on the charge balance (monotone increasing in V)."""
        v = self.voltage
        lo, hi = -math.inf, math.inf
        tol = 1e-12 * max(abs(j_app), self.s.j0, 1e-3)
        for it in range(1, 101):
            res, dres = self._balance(v, dt, j_app)
            if abs(res) <= tol:
                return v, it
            if res > 0.0:
                hi = min(hi, v)
            else:
                lo = max(lo, v)
            if hi - lo <= 1e-13 * max(1.0, abs(v)):  # bracketed to round-off: V is found
                return v, it
            v_new = v - res / dres if dres > 0.0 else math.nan
            if not math.isfinite(v_new) or not lo < v_new < hi:
                if math.isfinite(lo) and math.isfinite(hi):
                    v_new = 0.5 * (lo + hi)
                else:
                    v_new = v + (-0.05 if res > 0.0 else 0.05)
            v_new = min(max(v_new, v - 0.1), v + 0.1)
            if abs(v_new - v) <= 1e-14 * max(1.0, abs(v)):
                return v_new, it
            v = v_new
        raise ConvergenceError(f"deposition: the galvanostatic voltage did not converge at "
                               f"t = {self.t:.6g} s (j = {j_app:g} A m-2, dt = {dt:g} s; is any "
                               "interface reacting?)", [])

    def profile(self, dt: float) -> None:
        """Profile terms of the step: ``xi_star``, the growth geometry and ``profile_change``
        (``sum(xi_star - xi)``, the phase field the profile terms alone add)."""
        s = self.s
        self._profile_kernel(dt, s.gt_coeff, s.anisotropy, s.noise, self.step_index)
        self.profile_change = kpf.difference_sum(self.xi_star, self.xi, self.partial)

    def speed_at(self, voltage: float) -> float:
        s = self.s
        return kpf.max_speed(voltage, self.geom, self.phi, self.conc, self.eta_shift,
                             s.gt_coeff != 0.0, s.j0, 1.0 / s.c_ref, s.alpha_a, 1.0 - s.alpha_a,
                             s.f_rt, s.speed, C_FLOOR)

    def advance(self, dt: float, mode: str, value: float) -> tuple[float, int, float]:
        """Phase field over one step: returns (V, Newton iterations, largest front speed)."""
        self.profile(dt)
        if mode == "voltage":
            return value, 0, self.speed_at(value)
        v, its = self.solve_voltage(dt, value)
        return v, its, self.speed_at(v)

    def commit(self, dt: float, voltage: float) -> float:
        """Apply the growth at ``voltage``, solve the electrolyte; returns the current [A m-2]."""
        s = self.s
        kpf.apply_growth(voltage, self.xi, self.xi_star, self.geom, self.geom2, self.phi, self.conc,
                         self.eta_shift, s.gt_coeff != 0.0, s.j0, 1.0 / s.c_ref, s.alpha_a,
                         1.0 - s.alpha_a, s.f_rt, s.speed, dt, C_FLOOR, s.c_s, self.xi_new,
                         self.source)
        self.profile_na += self.profile_change * s.dx**2 * s.c_s / s.width
        cols, j_cols, _ = self._wall_columns(voltage)
        jw = float(np.sum(j_cols)) * s.dx / s.width
        if jw != 0.0:  # substrate dissolution: a negative source in the first row
            self.source[0, cols] -= j_cols / (F * s.dx)
            self.substrate_stripped += jw * dt / F
        d_inv = kpf.difference_sum(self.xi_new, self.xi, self.partial)
        j_far = -F * s.c_s * s.dx**2 * d_inv / (dt * s.width) + jw
        current = j_far + s.capacitance * (voltage - self.voltage) / dt
        self.xi, self.xi_new = self.xi_new, self.xi
        self.voltage = voltage
        self.deposited_charge -= current * dt
        self._electrolyte(dt)
        return current

    def _electrolyte(self, dt: float) -> None:
        s = self.s
        ny, nx = self.xi.shape  # nx: the lateral cells of a layer (nz nx in 3D)
        psi = 1.0 - self.xi
        dx2 = s.dx * s.dx
        d_sep = s.diffusivity * s.sep_porosity**1.5
        h_col = s.sep_length / max(self.ncol, 1)
        kel.fill(self.salt.data, self.salt.indptr, self.salt.indices, psi, s.lat, PSI_MIN,
                 s.diffusivity, 1.0 / dt, s.dx, self.ncol, d_sep, h_col, s.sep_porosity / dt, self.ncol == 0)
        rate = self.source.ravel()
        b = np.empty(ny * nx + self.ncol)
        b[:ny * nx] = np.maximum(psi, PSI_MIN).ravel() * dx2 / dt * self.conc.ravel() \
            - (1.0 - s.t_plus) * rate * dx2
        if self.ncol:
            b[ny * nx:] = s.sep_porosity * h_col * s.width / dt * self.col
            b[-1] += (1.0 - s.t_plus) * float(kpf.field_sum(self.source, self.partial)) * dx2
        else:  # no separator: the top face is held at c_ref
            b[(ny - 1) * nx:] += 2.0 * s.diffusivity * np.maximum(psi[-1], PSI_MIN) * s.c_ref
        x0 = np.concatenate((self.conc.ravel(), self.col))
        x, _ = self.salt.solve(b, x0)
        self.conc[:] = x[:ny * nx].reshape(ny, nx)
        self.col[:] = x[ny * nx:]
        kel.fill(self.potential.data, self.potential.indptr, self.potential.indices, psi, s.lat,
                 PSI_MIN, s.conductivity, 0.0, s.dx, 0, 1.0, 1.0, 0.0, True)
        np.log(np.maximum(self.conc / s.c_ref, C_FLOOR), out=self.lnc)
        kel.face_divergence(psi, s.lat, PSI_MIN, s.conductivity, self.lnc, self.div)
        b = (-F * self.source * dx2 - s.beta * self.div).ravel()
        x, _ = self.potential.solve(b, self.phi.ravel().copy())
        self.phi[:] = x.reshape(ny, nx)

    def activate(self, dt: float) -> int:
        """Draw site activations over the step just taken (η at its end)."""
        s = self.s
        if s.site_cells.size == 0:
            return 0
        before = self.site_active.copy()
        n = kpf.activate_sites(self.voltage, self.phi[0], s.site_ptr, s.site_cells,
                               self.site_active, s.prefactor, s.barrier_coeff, s.f_theta,
                               KB * s.temperature, dt, s.seed, self.step_index, self.site_step)
        if n:
            self.site_time[(self.site_active == 1) & (before == 0)] = self.t
            self.refresh_wall()
        return n

    def cell_voltage(self, current: float) -> tuple[float, float, float]:
        """Symmetric-cell voltage, counter-electrode overpotential and separator drop [V]."""
        s = self.s
        c_top = float(self.conc[-1].mean())
        c_ce = float(self.col[-1]) if self.ncol else c_top
        sigma_sep = s.conductivity * s.sep_porosity**1.5
        drop = -current * s.sep_length / sigma_sep + s.beta * math.log(
            max(c_ce, C_FLOOR * s.c_ref) / max(c_top, C_FLOOR * s.c_ref))
        eta_ce = bv_overpotential(-current, s.j0, s.alpha_a, s.temperature,
                                  max(c_ce / s.c_ref, C_FLOOR))
        return self.voltage - drop - eta_ce, eta_ce, drop

    # -- checkpoints --------------------------------------------------------------------------
    _STATE = ("xi", "conc", "col", "phi", "site_active", "site_step", "site_time", "wall_active")
    _SCALARS = ("voltage", "t", "step_index", "substrate_stripped", "deposited_charge", "v_max",
                "dead_fraction", "xi0_inventory", "profile_na")

    def checkpoint_state(self) -> dict[str, np.ndarray]:
        out = {name: getattr(self, name) for name in self._STATE}
        out.update({name: np.asarray(getattr(self, name)) for name in self._SCALARS})
        for name, solver in (("salt", self.salt), ("potential", self.potential)):
            for key, value in solver.state().items():
                out[f"{name}_{key}"] = value
        return out

    def restore_state(self, state: dict) -> None:
        for name in self._STATE:
            getattr(self, name)[...] = state[name]
        for name in self._SCALARS:
            value = state[name]
            setattr(self, name, int(value) if name == "step_index" else float(value))
        for name, solver in (("salt", self.salt), ("potential", self.potential)):
            solver.restore({"built_from": state[f"{name}_built_from"],
                            "base_iterations": state[f"{name}_base_iterations"]})
        self.update_mask()


# ---------------------------------------------------------------------------------------------
# the run


@dataclass
class Result:
    """Raw output of :func:`simulate`."""

    setup: Setup
    series: dict[str, np.ndarray]
    snapshot_t: np.ndarray
    snapshots: dict[str, np.ndarray]
    site_time: np.ndarray
    stats: dict[str, int]
    wall_time_s: float


class _Recorder:
    def __init__(self, cell: Cell, snapshot_times: np.ndarray):
        self.cell = cell
        self.series: dict[str, list] = {name: [] for name in _SERIES}
        self.snap_t: list[float] = []
        self.snaps: dict[str, list] = {"phase": [], "c_Na": [], "potential": [], "active_sites": []}
        self.snapshot_times = snapshot_times
        self.next_snapshot = 0

    def record(self, current: float, dt: float, its: int, step: int) -> None:
        c = self.cell
        u, eta_ce, drop = c.cell_voltage(current)
        hmax, hmean, rough = c.morphology()
        n_active = int(c.site_active.sum())
        values = (c.t, current, c.voltage, u, eta_ce, drop, c.inventory(), c.deposited_charge,
                  n_active, n_active / c.s.area, hmax, hmean, rough, c.dead_fraction,
                  c.substrate_stripped, c.profile_na, c.front_concentration(), dt, its, step)
        for name, v in zip(_SERIES, values, strict=True):
            self.series[name].append(float(v))
        while (self.next_snapshot < self.snapshot_times.size
               and c.t >= self.snapshot_times[self.next_snapshot] * (1.0 - 1e-12)):
            self.snapshot()
            self.next_snapshot += 1

    def snapshot(self) -> None:
        c = self.cell
        self.snap_t.append(c.t)
        self.snaps["phase"].append(c.xi.copy())
        self.snaps["c_Na"].append(c.conc.copy())
        self.snaps["potential"].append(c.phi.copy())
        self.snaps["active_sites"].append(c.wall_active.astype(float))

    def state(self) -> dict[str, np.ndarray]:
        out = {f"series_{k}": np.asarray(v) for k, v in self.series.items()}
        out["snap_t"] = np.asarray(self.snap_t)
        for k, v in self.snaps.items():
            out[f"snap_{k}"] = np.asarray(v) if v else np.zeros((0,))
        out["next_snapshot"] = np.int64(self.next_snapshot)
        return out

    def restore(self, state: dict) -> None:
        self.series = {k: list(np.atleast_1d(state[f"series_{k}"])) for k in _SERIES}
        self.snap_t = list(np.atleast_1d(state["snap_t"]))
        for k in self.snaps:
            arr = state[f"snap_{k}"]
            self.snaps[k] = [a for a in arr] if arr.ndim > 1 else []
        self.next_snapshot = int(state["next_snapshot"])


class Stepper:
    """The explicit time stepper as a :class:`~fastnai.runner.Cell` of the protocol runner.

    Each step: the profile terms, the voltage that carries the applied current (Newton on
    the balance; a held voltage as it is), the growth and the electrolyte; the step is cut
    when the front would move more than ``solver.front_courant`` cells or the voltage more
    than ``2 solver.max_voltage_step``; the next step grows at most ``solver.max_growth``.
    """

    def __init__(self, case, setup: Setup):
        self.s = setup
        self.cell = Cell(case, setup)
        t_total = sum(seg.duration for seg in compile_protocol(case["protocol"]))
        snap_times = np.linspace(0.0, t_total, case["output.n_snapshots"] + 1)[1:]
        self.rec = _Recorder(self.cell, snap_times)
        self.rec.snapshot()
        self.rec.record(0.0, 0.0, 0, 0)
        self.dt_max = case["solver.max_time_step"]
        self.dt0 = self.dt = case["solver.initial_time_step"]
        self.courant = case["solver.front_courant"]
        self.dv_max = case["solver.max_voltage_step"]
        self.growth = case["solver.max_growth"]
        self.max_steps = case["solver.max_steps"]
        self.mode, self.value = "current", 0.0

    @property
    def t(self) -> float:
        return self.cell.t

    def voltage(self) -> float:
        return self.cell.voltage

    def current(self) -> float:
        return self.rec.series["current_density"][-1]

    def cell_voltage(self, current: float) -> float:
        return self.cell.cell_voltage(current)[0]

    def equilibrate(self, segment) -> int:
        raise ValueError("deposition has no equilibrate step")

    def mark_step_start(self) -> None:
        """Nothing to save: deposition protocols have no CV restarts."""

    def restart_from_step_start(self) -> None:
        raise ValueError("deposition has no CV step")

    def begin(self, segment, *, t0: float, v_start: float, target: float, resuming: bool) -> None:
        self.mode = "current" if segment.control == "current" else "voltage"
        self.value = segment.value
        self.step = segment.step
        if not resuming:
            self.dt = self.dt0

    def advance(self, segment, t_end, after_step, engine, stats) -> bool:
        cell = self.cell
        while cell.t < t_end * (1.0 - 1e-13):
            if stats.n_steps >= self.max_steps:
                raise ConvergenceError(f"deposition: solver.max_steps = {self.max_steps} reached "
                                       f"at t = {cell.t:.6g} s", [])
            self._step(min(self.dt, t_end - cell.t), stats)
            if cell.t < t_end * (1.0 - 1e-13):
                after_step(None)
        return False

    def _step(self, h: float, stats) -> None:
        cell, s = self.cell, self.s
        limit_v = self.mode == "current" and s.capacitance > 0.0  # V is a state only with C_dl
        for _attempt in range(60):
            v, its, vmax = cell.advance(h, self.mode, self.value)
            stats.n_newton_iterations += its
            too_fast = vmax * h > 2.0 * self.courant * s.dx
            too_big = limit_v and abs(v - cell.voltage) > 2.0 * self.dv_max
            if not (too_fast or too_big) or h <= 1e-12:
                break
            stats.n_rejected_error += 1
            shrink = 0.5
            if too_fast:
                shrink = min(shrink, self.courant * s.dx / (vmax * h))
            if too_big:
                shrink = min(shrink, self.dv_max / abs(v - cell.voltage))
            h *= max(shrink, 0.05)
        dv = abs(v - cell.voltage)
        current = cell.commit(h, v)
        cell.t += h
        cell.step_index += 1
        stats.n_steps += 1
        cell.activate(h)
        cell.update_mask()
        cell.v_max = vmax
        self.rec.record(current, h, its, self.step)
        nxt = min(self.dt_max, self.growth * h)  # next step: front motion, voltage change, growth
        if vmax > 0.0:
            nxt = min(nxt, self.courant * s.dx / vmax)
        if dv > 0.0 and limit_v:
            nxt = min(nxt, h * self.dv_max / dv)
        self.dt = max(nxt, 1e-12)

    def state(self) -> dict:
        return {"fields": self.cell.checkpoint_state(), "recorder": self.rec.state(),
                "dt": self.dt}

    def restore(self, state) -> None:
        self.cell.restore_state(state["fields"])
        self.rec.restore(state["recorder"])
        self.dt = float(state["dt"])


def simulate(case, *, lifecycle: Lifecycle | None = None, progress=None) -> Result:
    """Run the protocol through :func:`fastnai.runner.run_protocol`; the raw :class:`Result`.

    Parameters
    ----------
    lifecycle
        Signals, checkpoints and resume (:class:`~fastnai.lifecycle.Lifecycle`); default none.
    progress
        Without ``lifecycle``: None a bar on a terminal / log lines in batch, False silent.
    """
    start = time.perf_counter()
    life = Lifecycle(case, progress=progress) if lifecycle is None else lifecycle
    setup = build(case)
    stepper = Stepper(case, setup)
    stats = run_protocol(stepper, compile_protocol(case["protocol"]), life)
    cell, rec = stepper.cell, stepper.rec
    if not rec.snap_t or rec.snap_t[-1] < cell.t:
        rec.snapshot()
    extra = {"n_salt_iterations": cell.salt.n_iterations,
             "n_potential_iterations": cell.potential.n_iterations,
             "n_amg_builds": cell.salt.n_builds + cell.potential.n_builds}
    series = {k: np.asarray(v) for k, v in rec.series.items()}
    snaps = {k: np.asarray(v) for k, v in rec.snaps.items()}
    return Result(setup, series, np.asarray(rec.snap_t), snaps, cell.site_time.copy(),
                  {**stats.as_attrs(), **{f"solver_{k}": v for k, v in extra.items()}},
                  time.perf_counter() - start)


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
    if s.nz > 1:
        coords["depth"] = (np.arange(s.nz) + 0.5) * s.dx
        data["site_position_depth"] = s.site_position_depth
        data["active_site_areal_density"] = data.pop("active_site_density")
    stats = result.stats
    attrs = provenance("deposition", case.to_toml(), case.references(), result.wall_time_s, stats)
    attrs["contact_angle_basis"] = case["substrate.contact_angle_model"]
    attrs["potential_convention"] = (
        "potential = Phi, the electrolyte potential measured by a Na reference electrode "
        "(phi_l + RT/F ln(c/c_ref)); eta = V - Phi; V (overpotential) is the plating electrode "
        "against a Na reference at the top of the box")
    ds = make_dataset("deposition", data, coords, attrs)
    ds["x"].attrs["long_name"] = "position along the substrate (periodic)"
    ds["site_activation_time"].attrs["nan_means"] = "the site never activated"
    return ds


def run(case, *, lifecycle: Lifecycle | None = None, progress=None) -> xr.Dataset:
    """Run the case and return its Dataset."""
    return to_dataset(case, simulate(case, lifecycle=lifecycle, progress=progress))
