"""Case keys, protocol steps and cross-key checks of film_stress; imports no Numba."""

from __future__ import annotations

from ... import protocol_steps as steps
from ... import schema
from ...errors import CaseError
from . import composition as comp

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
          "laminate in each implicit step; eis spectra linearise it with the plastic strain "
          "frozen (the elastic tangent)"),
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
    K("interface.double_layer_capacitance", Q, 0.0, "F m^-2", 0.0, 1e3,
      doc="double layer across the film surface, in parallel with the reaction (typical "
          "0.1-0.4 F m-2); enters eis spectra only, not the transient. The spectra linearise "
          "the diffusion, the Butler-Volmer surface and (with the stress coupling) the laminate "
          "with the plastic strain frozen: the elastic tangent"),
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
    "eis": steps.EIS,
}
QUASI_STATIC_STEPS = ("sodiate", "desodiate")
TABLE_ARRAYS = {"protocol": STEP_KEYS}


def validate(case) -> None:
    """Case errors that need more than one key."""
    comp.check_composition(case)
    protocol = case["protocol"]
    if not protocol:
        raise CaseError("a film_stress case needs at least one [[protocol]] step "
                        "(sodiate / desodiate, or constant_current / rest / gitt / "
                        "constant_voltage / cv / eis with model.sodiation = 'diffusion')")
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
    for k, st in enumerate(protocol):
        if st["step"] == "eis" and uniform:
            raise CaseError(f"protocol.{k}: an eis step (small-signal impedance about a state in "
                            "time) needs model.sodiation = 'diffusion'; the quasi-static sweep "
                            "(model.sodiation = 'uniform') has no time and no kinetics")
        if (st["step"] in QUASI_STATIC_STEPS) != uniform:
            raise CaseError(f"protocol.{k}: step {st['step']!r} needs model.sodiation = "
                            f"{'uniform' if st['step'] in QUASI_STATIC_STEPS else 'diffusion'!r}")
        if st["step"] in ("constant_current", "gitt") and st["cutoff_voltage"] is None:
            raise CaseError(f"protocol.{k}: {st['step']} needs cutoff_voltage")
    if not uniform:
        steps.check_eis_and_sine(protocol, CaseError)
        return
    soc = 0.0
    for k, st in enumerate(protocol):
        target = st["soc"]
        if st["step"] == "sodiate" and target < soc:
            raise CaseError(f"protocol.{k}: sodiate to soc = {target:g} from {soc:g} goes down")
        if st["step"] == "desodiate" and target > soc:
            raise CaseError(f"protocol.{k}: desodiate to soc = {target:g} from {soc:g} goes up")
        soc = target


def time_dependent(case) -> bool:
    """Whether the case runs a protocol in time (diffusion mode), with checkpoints."""
    return case["model.sodiation"] == "diffusion" and case["model.mechanics"] != "plane_strain"
