"""Material property database: every number carries its source (DOI) and how it was obtained."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from types import MappingProxyType

from scipy.constants import physical_constants

from .errors import CaseError

FARADAY = physical_constants["Faraday constant"][0]

# Sources, by short name. DOIs of the seed papers are in ../shared/seeds/README.md.
DOI = {
    "cai2022": "10.1002/smll.202200694",  # TiCxN1-x / N-TiO2 heterojunction (seed)
    "wang2022": "10.1002/advs.202201209",  # graded Bi(x)Sb(1-x) film (seed)
    "xia2022vn": "10.1039/d2nh00152g",  # VN interlayer on Na (seed)
    "osman2022": "10.1002/advs.202205575",  # amorphous/crystalline V2O3 (seed)
    "xia2022review": "10.1039/d1ta09567f",  # surface-engineering review (seed)
    "michaelson1977": "10.1063/1.323539",  # work functions of the elements
    "scanlon2013": "10.1038/nmat3697",  # band alignment of rutile and anatase TiO2
    "iupac2021": "10.1515/pac-2019-0603",  # standard atomic weights 2021 (Prohaska et al. 2022)
}

# Standard atomic weights [g mol-1] (IUPAC, doi:10.1515/pac-2019-0603).
_ATOMIC_WEIGHT = {"Ti": 47.867, "O": 15.999, "C": 12.011, "N": 14.007, "V": 50.942,
                  "Na": 22.990, "Bi": 208.98, "Sb": 121.76, "Cu": 63.546}


@dataclass(frozen=True)
class Property:
    """A material property in SI (energies in eV).

    Parameters
    ----------
    value
        The value, in ``unit``.
    unit
        Unit of ``value`` (pint-parsable); ``"1"`` for dimensionless.
    source
        DOI (or DOIs, comma-separated) the value comes from.
    basis
        "measured", "computed" (first principles or arithmetic on other entries), "paper" (a
        number the seed paper uses) or "assumed" (a documented choice).
    span
        The literature range (low, high), where it is wide enough to matter.
    note
        What the value is and any caveat.
    """

    value: float
    unit: str
    source: str
    basis: str
    span: tuple[float, float] | None = None
    note: str = ""


@dataclass(frozen=True)
class Material:
    """A named material and its properties."""

    name: str
    description: str
    properties: MappingProxyType

    def __getitem__(self, key: str) -> Property:
        return self.properties[key]


def _material(name: str, description: str, **props: Property) -> Material:
    return Material(name, description, MappingProxyType(dict(props)))


def _capacity(molar_mass: float, n_na: float) -> float:
    """Theoretical specific capacity [mA h g-1] of a host storing n_na Na per formula unit."""
    return n_na * FARADAY / 3.6 / molar_mass


_M_TIO2 = _ATOMIC_WEIGHT["Ti"] + 2 * _ATOMIC_WEIGHT["O"]
_C = DOI["cai2022"]

_TABLE = [
    _material(
        "anatase-TiO2", "anatase TiO2, the Na-ion host of the heterojunction seed paper",
        relative_permittivity=Property(
            40.0, "1", _C, "paper", (22.0, 45.0),
            "static permittivity 'about 40' as the seed paper uses it; anisotropic (lower along c)"),
        electron_affinity=Property(
            5.1, "eV", f"{_C}, {DOI['scanlon2013']}", "paper", (4.0, 5.1),
            "upper end of the literature span; Scanlon 2013 puts anatase's affinity above rutile's"),
        band_gap=Property(3.2, "eV", _C, "measured", note="optical gap of anatase"),
        electron_effective_mass=Property(
            0.094, "1", _C, "paper", (0.094, 1.0),
            "the seed paper's value (its ref. 16); the literature spans 0.4-1 m0: report sensitivity"),
        hole_effective_mass=Property(
            1.0, "1", "assumed", "assumed", note="holes are irrelevant at the n-type contact"),
        density=Property(3890.0, "kg m^-3", _C, "measured", note="3.89 g cm-3"),
        molar_mass=Property(_M_TIO2 * 1e-3, "kg mol^-1", DOI["iupac2021"], "computed"),
        theoretical_capacity=Property(
            _capacity(_M_TIO2, 1.0), "mA h / g", f"{_C}, {DOI['iupac2021']}", "computed",
            note="one Na per TiO2 (the paper quotes 335 mAh g-1)"),
        hop_distance=Property(0.48, "nm", _C, "paper", note="c/2 along the c axis"),
        hop_barrier=Property(0.56, "eV", _C, "paper", note="bulk Na+ hopping barrier"),
    ),
    _material(
        "V2O3", "crystalline V2O3 shell of the amorphous/crystalline heterophase cathode (Osman 2022)",
        relative_permittivity=Property(
            10.0, "1", "assumed", "assumed", (5.0, 30.0),
            "irrelevant in the electroneutral (model.electrostatics = false) cases: a 0.06-0.5 eV "
            "gap conductor screens within a lattice spacing"),
        electron_affinity=Property(4.5, "eV", "assumed", "assumed", note="not used when neutral"),
        band_gap=Property(0.49, "eV", DOI["osman2022"], "paper", (0.06, 0.49),
                          "DFT: crystalline 0.49, amorphous 0.16, dense heterophase 0.06 eV"),
        electron_effective_mass=Property(1.0, "1", "assumed", "assumed"),
        hole_effective_mass=Property(1.0, "1", "assumed", "assumed"),
        density=Property(4870.0, "kg m^-3", "assumed", "assumed", note="corundum V2O3, handbook"),
        molar_mass=Property((2 * _ATOMIC_WEIGHT["V"] + 3 * _ATOMIC_WEIGHT["O"]) * 1e-3, "kg mol^-1",
                            DOI["iupac2021"], "computed"),
        theoretical_capacity=Property(
            _capacity(2 * _ATOMIC_WEIGHT["V"] + 3 * _ATOMIC_WEIGHT["O"], 2.0), "mA h / g",
            f"{DOI['osman2022']}, {DOI['iupac2021']}", "computed",
            note="two Na per V2O3, V3+ -> V2+ (the paper quotes 356 mAh g-1 for two Li)"),
        hop_distance=Property(0.3, "nm", "assumed", "assumed", (0.25, 0.4),
                              "octahedral-site spacing of corundum (a/sqrt(3) ~ 0.29 nm)"),
        hop_barrier=Property(0.5, "eV", "assumed", "assumed", (0.3, 0.8),
                             "the paper's DFT barrier profiles (Fig. 4g) give no number in the text"),
    ),
    _material(
        "TiC", "titanium carbide, metallic contact (x = 1 of TiCxN1-x)",
        work_function=Property(4.1, "eV", _C, "paper", (3.8, 4.1),
                               "the seed paper's value (its ref. 13), the low end of the span"),
        lattice_parameter=Property(0.432, "nm", _C, "measured"),
    ),
    _material(
        "TiN", "titanium nitride, metallic contact (x = 0 of TiCxN1-x)",
        work_function=Property(4.5, "eV", "assumed", "assumed", (4.2, 4.7),
                               "middle of the 4.2-4.7 eV literature span"),
        lattice_parameter=Property(0.424, "nm", _C, "measured"),
    ),
    _material(
        "VN", "vanadium nitride, sodiophilic interlayer on Na metal",
        exchange_current_density=Property(
            2.15, "A m^-2", DOI["xia2022vn"], "measured", note="0.215 mA cm-2, Na/VN symmetric cell"),
        activation_energy=Property(61.42, "kJ mol^-1", DOI["xia2022vn"], "measured",
                                   note="from T/R_ct Arrhenius fit"),
        nucleation_overpotential=Property(0.036, "V", DOI["xia2022vn"], "measured",
                                          note="symmetric cell, 0.5 mA cm-2"),
        adsorption_energy=Property(-1.830, "eV", DOI["xia2022vn"], "computed",
                                   note="DFT, Na atom on the top-of-V site (the strongest of four)"),
    ),
    _material(
        "Na", "sodium metal",
        work_function=Property(2.75, "eV", DOI["michaelson1977"], "measured"),
        molar_volume=Property(23.78e-6, "m^3 mol^-1", DOI["iupac2021"], "computed",
                              note="22.990 g mol-1 / 0.968 g cm-3"),
        density=Property(968.0, "kg m^-3", "assumed", "assumed", note="bcc Na at 298 K, handbook value"),
        surface_energy=Property(0.2, "J m^-2", "assumed", "assumed", (0.1, 0.25)),
        exchange_current_density=Property(
            0.68, "A m^-2", DOI["xia2022vn"], "measured", note="0.068 mA cm-2, bare Na"),
        activation_energy=Property(72.96, "kJ mol^-1", DOI["xia2022vn"], "measured"),
        nucleation_overpotential=Property(0.068, "V", DOI["xia2022vn"], "measured",
                                          note="symmetric cell, 0.5 mA cm-2"),
        adsorption_energy=Property(-0.860, "eV", DOI["xia2022vn"], "computed",
                                   note="DFT, Na atom on Na (the paper's ref. 45)"),
    ),
    _material(
        "Bi", "bismuth (alloy anode end member)",
        work_function=Property(4.22, "eV", DOI["michaelson1977"], "measured"),
        youngs_modulus=Property(32e9, "Pa", "assumed", "assumed", note="polycrystalline, handbook value"),
        molar_mass=Property(_ATOMIC_WEIGHT["Bi"] * 1e-3, "kg mol^-1", DOI["iupac2021"], "computed"),
        theoretical_capacity=Property(_capacity(_ATOMIC_WEIGHT["Bi"], 3.0), "mA h / g",
                                      DOI["iupac2021"], "computed", note="Bi -> Na3Bi"),
        volume_expansion=Property(2.23, "1", DOI["wang2022"], "paper",
                                  note="Bi -> Na3Bi; 2.51 from lattice parameters (SPEC 3.3)"),
    ),
    _material(
        "Sb", "antimony (alloy anode end member)",
        work_function=Property(4.55, "eV", DOI["michaelson1977"], "measured"),
        youngs_modulus=Property(55e9, "Pa", "assumed", "assumed", note="polycrystalline, handbook value"),
        molar_mass=Property(_ATOMIC_WEIGHT["Sb"] * 1e-3, "kg mol^-1", DOI["iupac2021"], "computed"),
        theoretical_capacity=Property(_capacity(_ATOMIC_WEIGHT["Sb"], 3.0), "mA h / g",
                                      f"{DOI['wang2022']}, {DOI['iupac2021']}", "computed",
                                      note="Sb -> Na3Sb (the paper quotes 660 mAh g-1)"),
        volume_expansion=Property(2.96, "1", DOI["wang2022"], "paper",
                                  note="Sb -> Na3Sb; 2.93 from lattice parameters (SPEC 3.3)"),
    ),
    _material(
        "Na3Bi", "fully sodiated bismuth",
        molar_mass=Property((3 * _ATOMIC_WEIGHT["Na"] + _ATOMIC_WEIGHT["Bi"]) * 1e-3, "kg mol^-1",
                            DOI["iupac2021"], "computed"),
        volume_expansion=Property(2.23, "1", DOI["wang2022"], "paper",
                                  note="relative to Bi: V(Na3Bi)/V(Bi) - 1"),
    ),
    _material(
        "Na3Sb", "fully sodiated antimony",
        molar_mass=Property((3 * _ATOMIC_WEIGHT["Na"] + _ATOMIC_WEIGHT["Sb"]) * 1e-3, "kg mol^-1",
                            DOI["iupac2021"], "computed"),
        volume_expansion=Property(2.96, "1", DOI["wang2022"], "paper",
                                  note="relative to Sb: V(Na3Sb)/V(Sb) - 1"),
    ),
    _material(
        "Cu", "copper current collector",
        work_function=Property(4.65, "eV", DOI["michaelson1977"], "measured"),
        youngs_modulus=Property(120e9, "Pa", "assumed", "assumed", note="polycrystalline foil, handbook value"),
        poisson_ratio=Property(0.34, "1", "assumed", "assumed", note="handbook value"),
    ),
]

MATERIALS: MappingProxyType = MappingProxyType({m.name: m for m in _TABLE})

_TICN = re.compile(r"^TiC(?P<x>0?\.\d+|[01](?:\.0*)?)N(?P<y>0?\.\d+|[01](?:\.0*)?)$")


def _titanium_carbonitride(name: str, x: float) -> Material:
    """TiC(x)N(1-x): properties interpolated linearly in x between TiN and TiC (Vegard-like)."""
    tic, tin = MATERIALS["TiC"], MATERIALS["TiN"]
    props = {}
    for key in ("work_function", "lattice_parameter"):
        a, b = tic[key], tin[key]
        props[key] = Property(
            x * a.value + (1 - x) * b.value, a.unit, f"{a.source}; {b.source}", "computed",
            note=f"linear interpolation in x = {x:g} between TiN and TiC (assumed)")
    return _material(name, f"titanium carbonitride, x = {x:g}", **props)


def get_material(name: str) -> Material:
    """Look a material up by name; ``TiC0.5N0.5``-style names interpolate TiC and TiN.

    Raises
    ------
    CaseError
        For an unknown name, with the closest known names.

    Examples
    --------
    >>> get_material("TiC")["work_function"].value
    4.1
    >>> round(get_material("TiC0.5N0.5")["work_function"].value, 3)
    4.3
    """
    if name in MATERIALS:
        return MATERIALS[name]
    match = _TICN.match(name)
    if match:
        x, y = float(match["x"]), float(match["y"])
        if abs(x + y - 1.0) < 1e-9:
            return _titanium_carbonitride(name, x)
    close = difflib.get_close_matches(name, list(MATERIALS) + ["TiC0.5N0.5"], n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise CaseError(
        f"unknown material {name!r}: known are {', '.join(MATERIALS)} and TiC(x)N(1-x) such as "
        f"'TiC0.5N0.5'{hint}")


def materials_table() -> str:
    """Plain-text listing of the database with sources (``fastnai materials``)."""
    lines = []
    for mat in MATERIALS.values():
        lines.append(f"{mat.name}: {mat.description}")
        for key, p in mat.properties.items():
            span = f"  [literature {p.span[0]:g}-{p.span[1]:g}]" if p.span else ""
            note = f"  {p.note}" if p.note else ""
            lines.append(f"    {key:26s} {p.value:<12.6g} {p.unit:12s} {p.basis:9s} "
                         f"doi:{p.source}{span}{note}" if p.source != "assumed" else
                         f"    {key:26s} {p.value:<12.6g} {p.unit:12s} {p.basis:9s} "
                         f"(assumed){span}{note}")
        lines.append("")
    lines.append("TiC(x)N(1-x), e.g. 'TiC0.5N0.5': work function and lattice parameter interpolated "
                 "linearly between TiN and TiC.")
    return "\n".join(lines)
