"""Case keys, protocol steps and cross-key checks of band_bending; imports no Numba."""

from __future__ import annotations

from ... import schema
from ...errors import CaseError

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
