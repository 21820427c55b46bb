"""Material database: every number has a source and a basis; lookups and capacities."""

from __future__ import annotations

import math

import pytest
from scipy import constants

import fastnai
from fastnai.case import load_case, unit_registry
from fastnai.materials import MATERIALS, get_material, materials_table
from fastnai.models.band_bending import KEYS

BASES = {"measured", "computed", "paper", "assumed"}
PROPERTIES = [(m.name, key, prop) for m in MATERIALS.values() for key, prop in m.properties.items()]
IDS = [f"{name}.{key}" for name, key, _ in PROPERTIES]
INTERPOLATED = [get_material(n) for n in ("TiC0.5N0.5", "TiC0.2N0.8", "TiC1N0")]


def source_parts(source: str) -> list[str]:
    return [part.strip() for part in source.replace(";", ",").split(",")]


@pytest.mark.parametrize(("name", "key", "prop"), PROPERTIES, ids=IDS)
def test_every_property_has_a_doi_or_assumed_source_and_a_known_basis(name, key, prop):
    assert prop.source.strip(), f"{name}.{key} has no source"
    for part in source_parts(prop.source):
        assert part.startswith("10.") or part == "assumed", f"{name}.{key}: {part!r}"
    assert prop.basis in BASES
    if prop.basis == "assumed":
        assert "assumed" in prop.source or prop.note


@pytest.mark.parametrize(("name", "key", "prop"), PROPERTIES, ids=IDS)
def test_every_property_value_is_finite_and_inside_its_literature_span(name, key, prop):
    assert math.isfinite(prop.value)
    if prop.span is not None:
        low, high = prop.span
        assert low <= prop.value <= high, f"{name}.{key}"


def test_interpolated_carbonitrides_carry_sources_and_a_basis():
    for material in INTERPOLATED:
        for key, prop in material.properties.items():
            assert prop.basis in BASES
            for part in source_parts(prop.source):
                assert part.startswith("10.") or part == "assumed", f"{material.name}.{key}"


@pytest.mark.parametrize(("name", "key", "prop"),
                         PROPERTIES, ids=IDS)
def test_property_units_parse_with_the_case_unit_registry(name, key, prop):
    quantity = unit_registry().Quantity(prop.value, prop.unit)
    assert math.isfinite(quantity.to_base_units().magnitude)


def test_capacity_unit_parses_with_the_case_unit_registry():
    prop = MATERIALS["anatase-TiO2"]["theoretical_capacity"]
    quantity = unit_registry().Quantity(prop.value, prop.unit)
    assert quantity.to("A s / kg").magnitude == pytest.approx(prop.value * 3.6e3, rel=1e-12)


def test_material_supplied_keys_use_the_same_unit_as_the_property():
    # the material layer copies values without conversion, so the units must agree exactly
    ureg = unit_registry()
    for key in KEYS.values():
        if key.material_property is None:
            continue
        for material in [*MATERIALS.values(), *INTERPOLATED]:
            if key.material_property in material.properties:
                prop = material[key.material_property]
                factor = ureg.Quantity(1.0, prop.unit).to(key.unit or "dimensionless").magnitude
                assert factor == pytest.approx(1.0, rel=1e-15), (key.name, material.name)


def test_drift_diffusion_1c_capacity_is_the_database_tio2_capacity():
    from fastnai.models.drift_diffusion import KEYS as DD_KEYS

    key = DD_KEYS["electrode.theoretical_capacity"]
    prop = MATERIALS["anatase-TiO2"]["theoretical_capacity"]
    assert (key.default, key.unit) == (prop.value, prop.unit)  # one number, not a copy of it
    assert f"{key.default:.1f}" == "335.6"  # one Na per TiO2 rounds to 335.6, not 335.5


def test_tio2_theoretical_capacity_is_335_6_mah_per_g():
    prop = MATERIALS["anatase-TiO2"]["theoretical_capacity"]
    assert prop.unit == "mA h / g"
    assert prop.value == pytest.approx(335.6, abs=0.05)
    # one Na per TiO2: F / (3.6 M) with M in g/mol
    molar_mass = MATERIALS["anatase-TiO2"]["molar_mass"].value * 1e3
    assert prop.value == pytest.approx(constants.physical_constants["Faraday constant"][0]
                                       / 3.6 / molar_mass, rel=1e-12)


def test_alloy_capacities_match_three_sodium_per_atom():
    faraday = constants.physical_constants["Faraday constant"][0]
    for name in ("Bi", "Sb"):
        m = MATERIALS[name]
        expected = 3 * faraday / 3.6 / (m["molar_mass"].value * 1e3)
        assert m["theoretical_capacity"].value == pytest.approx(expected, rel=1e-12)
    assert MATERIALS["Sb"]["theoretical_capacity"].value == pytest.approx(660, rel=0.01)


@pytest.mark.parametrize(("name", "suggestion"), [
    ("anatase-TiO", "anatase-TiO2"),
    ("anatase-tio2", "anatase-TiO2"),
    ("TiC0.5N0.6", "TiC0.5N0.5"),
    ("Cuu", "Cu"),
])
def test_unknown_name_raises_case_error_with_a_suggestion(name, suggestion):
    with pytest.raises(fastnai.CaseError) as info:
        get_material(name)
    message = str(info.value)
    assert repr(name) in message
    assert "did you mean" in message and repr(suggestion) in message


def test_unknown_name_lists_the_known_materials():
    with pytest.raises(fastnai.CaseError) as info:
        get_material("Unobtainium")
    for name in MATERIALS:
        assert name in str(info.value)


def test_unknown_material_in_a_case_is_a_case_error():
    with pytest.raises(fastnai.CaseError, match="'anatase-TiO'"):
        load_case({"model": {"kind": "band_bending"},
                   "semiconductor": {"material": "anatase-TiO"}, "contact": {"material": "TiC"}})


def test_materials_table_lists_every_material_and_property_with_its_source():
    table = materials_table()
    for name, material in MATERIALS.items():
        assert f"{name}: {material.description}" in table
        for key in material.properties:
            assert key in table
    assert "doi:10.1002/smll.202200694" in table
    assert "(assumed)" in table


def test_database_is_read_only():
    with pytest.raises(TypeError):
        MATERIALS["X"] = MATERIALS["TiC"]  # type: ignore[index]
    with pytest.raises(TypeError):
        MATERIALS["TiC"].properties["work_function"] = None  # type: ignore[index]


def test_readme_quotes_the_database_tio2_capacity():
    """The README's 1C and capacity statements use the database's TiO2 capacity."""
    from pathlib import Path

    from fastnai.materials import MATERIALS

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    value = MATERIALS["anatase-TiO2"]["theoretical_capacity"].value
    assert f"{value:.1f} mA h g-1" in text
    assert "335.5" not in text
