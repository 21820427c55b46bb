"""Output contract (SPEC section 2.2) on the result of every band_bending case file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import cf_xarray.units
import pytest
import xarray as xr

import fastnai
from fastnai.variables import COORDINATES, VARIABLES

CASES = Path(__file__).resolve().parents[1] / "cases"
CASE_FILES = sorted(CASES.glob("band_bending*.toml"))
SEED_DOI = "doi:10.1002/smll.202200694"


@pytest.fixture(scope="module", params=CASE_FILES, ids=[p.stem for p in CASE_FILES])
def case_result(request) -> tuple[Path, xr.Dataset]:
    return request.param, fastnai.run(request.param)


def test_there_are_band_bending_cases():
    assert len(CASE_FILES) >= 5


def test_every_variable_and_coordinate_has_units_and_long_name(case_result):
    _, ds = case_result
    for name, var in ds.variables.items():
        assert isinstance(var.attrs.get("units"), str) and var.attrs["units"], name
        assert isinstance(var.attrs.get("long_name"), str) and var.attrs["long_name"], name


def test_every_declared_variable_appears_in_the_result(case_result):
    _, ds = case_result
    missing = set(VARIABLES["band_bending"]) - set(ds.data_vars)
    assert not missing
    assert set(ds.data_vars) <= set(VARIABLES["band_bending"])


def test_units_and_dims_match_the_variable_table(case_result):
    _, ds = case_result
    (space,) = ds.sizes
    assert space in ("x", "r")
    assert ds[space].attrs["units"] == COORDINATES[space][0]
    for name, (dims, units, long_name) in VARIABLES["band_bending"].items():
        assert ds[name].attrs["units"] == units, name
        assert ds[name].attrs["long_name"] == long_name, name
        assert ds[name].dims == tuple(space if d == "space" else d for d in dims), name


def test_spec_minimum_variables_have_spec_units(case_result):
    _, ds = case_result
    spec = {"potential": "V", "Ec": "eV", "Ev": "eV", "Ef": "eV", "n": "m-3", "p": "m-3",
            # SPEC writes "C m-3"; cf_xarray reads a bare "C" as degree Celsius, so fastnai writes
            # the same unit as "A s m-3" (see test_units_have_the_intended_dimension_...)
            "charge_density": "A s m-3", "electric_field": "V m-1",
            "interface_electron_density": "m-3", "interface_field": "V m-1",
            "sheet_electron_density": "m-2", "band_bending": "eV", "accumulation_width": "m"}
    for name, units in spec.items():
        assert ds[name].attrs["units"] == units, name
    for name in ("interface_electron_density", "interface_field", "sheet_electron_density",
                 "band_bending", "accumulation_width"):
        assert ds[name].ndim == 0, name


def test_required_global_attrs_are_present(case_result):
    _, ds = case_result
    attrs = ds.attrs
    assert attrs["fastnai_version"] == fastnai.__version__
    assert attrs["model"] == "band_bending"
    assert attrs["case"].startswith("[model]")
    created = dt.datetime.fromisoformat(attrs["created"])
    assert created.tzinfo is not None
    assert int(attrs["numba_threads"]) >= 1
    assert float(attrs["wall_time_s"]) >= 0.0
    assert SEED_DOI in attrs["references"]
    assert all(ref.strip().startswith("doi:10.") for ref in attrs["references"].split(","))
    assert int(attrs["newton_iterations"]) >= 1
    assert int(attrs["continuation_steps"]) >= 0


def test_case_attr_loads_back_and_reruns_to_an_identical_result(case_result, tmp_path):
    path, ds = case_result
    resolved = tmp_path / "resolved.toml"
    resolved.write_text(ds.attrs["case"])
    case = fastnai.load_case(resolved)
    assert dict(case.values) == dict(fastnai.load_case(path).values)
    rerun = fastnai.run(case)
    xr.testing.assert_identical(rerun.drop_attrs(deep=False), ds.drop_attrs(deep=False))
    assert rerun.attrs["case"] == ds.attrs["case"]


def test_rerun_from_case_attr_keeps_the_references(tmp_path):
    ds = fastnai.run(CASES / "band_bending_ticn_tio2.toml", {"mesh.n_nodes": 300})
    resolved = tmp_path / "resolved.toml"
    resolved.write_text(ds.attrs["case"])
    rerun = fastnai.run(resolved)
    assert rerun.attrs["references"] == ds.attrs["references"]


def test_unit_strings_parse_with_the_cf_xarray_registry(case_result):
    _, ds = case_result
    ureg = cf_xarray.units.units
    for name, var in ds.variables.items():
        ureg.parse_units(var.attrs["units"])  # raises on an unknown unit
        assert ureg.Unit(var.attrs["units"]) is not None, name


# each unit string used -> an unambiguous reference unit of the intended dimension
EXPECTED_DIMENSION = {
    "m": "meter",
    "V": "volt",
    "eV": "joule",
    "m-3": "meter ** -3",
    "m-2": "meter ** -2",
    "V m-1": "volt / meter",
    "A s m-3": "coulomb / meter ** 3",
    "A s m-2": "coulomb / meter ** 2",
    "1": "dimensionless",
    "s": "second",
    "V s-1": "volt / second",
    "A m-2": "ampere / meter ** 2",
    "A": "ampere",
    "mA h g-1": "coulomb / kilogram",
    "mol m-2": "mole / meter ** 2",
    "m2 s-1": "meter ** 2 / second",
    "Pa": "pascal",
    "m-1": "meter ** -1",
    "mol m-3": "mole / meter ** 3",
    "J m-2": "joule / meter ** 2",
    "degree": "radian",
    "Hz": "1 / second",
    "ohm m2": "ohm * meter ** 2",
    "ohm g": "ohm * gram",
}


@pytest.mark.parametrize("units", list(EXPECTED_DIMENSION))
def test_units_have_the_intended_dimension_in_the_cf_xarray_registry(units):
    ureg = cf_xarray.units.units
    assert ureg.Unit(units).dimensionality == ureg.Unit(EXPECTED_DIMENSION[units]).dimensionality


def test_dimension_table_covers_every_unit_used():
    used = {u for table in VARIABLES.values() for _, u, _ in table.values()}
    used |= {u for u, _ in COORDINATES.values()}
    assert used <= set(EXPECTED_DIMENSION)


def test_results_are_deterministic_for_the_same_case():
    case = fastnai.load_case(CASES / "band_bending_ticn_tio2.toml", {"mesh.n_nodes": 300})
    first, second = fastnai.run(case), fastnai.run(case)
    xr.testing.assert_identical(first.drop_attrs(deep=False), second.drop_attrs(deep=False))
