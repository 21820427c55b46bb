"""Case keys, protocol steps and cross-key checks of drift_diffusion; imports no Numba."""

from __future__ import annotations

from scipy import constants

from ... import protocol_steps as steps
from ... import schema
from ...errors import CaseError
from ...materials import MATERIALS
from .. import band_bending as bb

K = schema.Key
Q = schema.QUANTITY
_CAI = "doi:10.1002/smll.202200694"
_BAZANT = "10.1021/ar300145c"
#: One Na per TiO2, F / (3.6 M_TiO2) [mA h g-1]: the materials database computes it (335.585).
_TIO2_CAPACITY = MATERIALS["anatase-TiO2"]["theoretical_capacity"]


GEOMETRIES = ("separated", "co-located", "sphere", "core-shell")

KEYS: dict[str, schema.Key] = {k.name: k for k in [
    K("model.kind", schema.CHOICE, "drift_diffusion", choices=("drift_diffusion",),
      doc="model kind"),
    K("model.geometry", schema.CHOICE, "separated", choices=GEOMETRIES,
      doc="separated: slab, metal contact at x = 0, electrolyte at x = L; co-located: slab with "
          "contact and electrolyte at x = 0, blocking wall at L; sphere: particle of radius "
          "semiconductor.thickness, contact and electrolyte over its surface; core-shell: metal "
          "core of radius contact.radius, TiO2 shell of semiconductor.thickness, electrolyte "
          "outside. co-located and sphere with model.electrostatics: Na+ reacts at the first node "
          "one hop (semiconductor.hop_distance) inside the surface, the oxide's first site below "
          "the metal/oxide junction plane, where the contact pins the potential and its "
          "accumulation layer repels Na+ (theta ~ 1e-55 at 3 V; a reaction there leaves the "
          "open-circuit voltage undetermined); without electrostatics at the surface node"),
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
    K("interface.double_layer_capacitance", Q, 0.0, "F m^-2", 0.0, 1e3,
      doc="double layer across the electrolyte interface, in parallel with the reaction "
          "(typical 0.1-0.4 F m-2); enters eis spectra only, not the transient"),
    K("electrode.theoretical_capacity", Q, _TIO2_CAPACITY.value, _TIO2_CAPACITY.unit, 0.0, 1e5,
      exclusive_minimum=True, doc="capacity that defines 1C (default: one Na per TiO2, as the "
      "material anatase-TiO2 computes it)", source=f"computed; {_TIO2_CAPACITY.source}"),
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
    "eis": steps.EIS,
    "sine": steps.SINE,
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
    protocol = case["protocol"]
    if not protocol:
        raise CaseError("a drift_diffusion case needs at least one [[protocol]] step (equilibrate, "
                        "rest, constant_current, constant_voltage, potential_step, cv, gitt, eis "
                        "or sine); "
                        "the run starts in equilibrium at initial.voltage")
    kinds = [s["step"] for s in protocol]
    if "cv" in kinds and any(k not in ("cv", "equilibrate", "rest", "eis") for k in kinds):
        raise CaseError("a cv step can be combined only with equilibrate, rest and eis steps "
                        "(its result has a scan_rate dimension)")
    if kinds.count("cv") > 1:
        raise CaseError("at most one cv step per case (give several scan_rates instead)")
    for i, s in enumerate(protocol):
        if s["step"] == "cv" and not s["lower_voltage"] < s["upper_voltage"]:
            raise CaseError(f"protocol[{i}]: lower_voltage must be below upper_voltage")
        if s["step"] in ("constant_current", "gitt") and s["cutoff_voltage"] is None:
            raise CaseError(f"protocol[{i}]: a {s['step']} step needs cutoff_voltage")
    steps.check_eis_and_sine(protocol, CaseError)


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
