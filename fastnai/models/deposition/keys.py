"""Case keys, protocol steps and cross-key checks of deposition; imports no Numba."""

from __future__ import annotations

from scipy import constants

from ... import protocol_steps, schema
from ...errors import CaseError

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
      doc="double-layer capacitance: lumped on the projected area in the transient (carries the "
          "current before nucleation); per m2 of true interface (metal and uncovered substrate) "
          "in eis spectra",
      source="assumed (10 uF cm-2)"),
    K("electrolyte.concentration", Q, 1000.0, "mol m^-3", 1e-6, 1e5, exclusive_minimum=True,
      doc="initial (and reference) salt concentration c_ref", source="assumed (1 M)"),
    K("electrolyte.diffusivity", Q, 2.5e-10, "m^2 s^-1", 0.0, 1e-3, exclusive_minimum=True,
      doc="ambipolar salt diffusivity", source="assumed (SPEC 3.4: 2-3e-10)"),
    K("electrolyte.conductivity", Q, 0.6, "S m^-1", 0.0, 1e4, exclusive_minimum=True,
      doc="ionic conductivity", source="assumed (SPEC 3.4)"),
    K("electrolyte.transference_number", schema.NUMBER, 0.4, None, 0.0, 1.0,
      doc="Na+ transference number t+", source="assumed (SPEC 3.4: 0.3-0.45)"),
    K("electrolyte.solver", schema.CHOICE, "multigrid", choices=("multigrid", "amg"),
      doc="linear solver of the salt and potential equations: CG with the compiled geometric "
          "multigrid (faster) or with pyamg's classical AMG (the earlier path, for comparison)"),
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
    K("phase_field.conservation", schema.CHOICE, "deposit", choices=("deposit", "none"),
      doc="profile-preserving: give each connected deposit back the Na its profile terms "
          "removed (spread along its interface), so growth is Faradaic alone ('none': the "
          "change is charged against the current, as before)"),
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
    "eis": protocol_steps.EIS,
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
                        "rest, constant_voltage, cycle or eis)")
    protocol_steps.check_eis_and_sine(steps, CaseError)
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
