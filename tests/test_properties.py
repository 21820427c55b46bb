"""Property-based tests (SPEC section 6): malformed cases fail cleanly, valid ones give finite results.

Hypothesis mutates 1-3 entries of a valid minimal band_bending case (schema keys and garbage key
names; values of every type, non-finite, huge, and unit strings of right and wrong dimension).
Every outcome must be a Dataset with finite data, a CaseError or a ConvergenceError: never another
exception (a traceback from deep inside numpy, pint or numba) and never a NaN.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import fastnai
from fastnai import schema
from fastnai.models.band_bending import KEYS

MINIMAL = {
    "model": {"kind": "band_bending"},
    "semiconductor": {"material": "anatase-TiO2", "thickness": "30 nm"},
    "contact": {"material": "TiC"},
    "mesh": {"n_nodes": 200, "min_spacing": "0.05 nm"},
}

SECTIONS = sorted({k.split(".", 1)[0] for k in KEYS})
DELETE = object()  # mutation that removes the entry

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

garbage_keys = st.one_of(
    st.sampled_from(["semiconductor.thicknes", "semiconductr.thickness", "mesh.nodes", "model",
                     "solver.tolerance.extra", "contact.", ".thickness", "", "kind",
                     "semiconductor.material.name"]),
    st.text(max_size=12),
    st.builds(lambda s, leaf: f"{s}.{leaf}", st.sampled_from(SECTIONS), st.text(max_size=10)),
)
keys = st.one_of(st.sampled_from(sorted(KEYS)), garbage_keys)

UNITS = ["nm", "m", "um", "mm", "cm^-3", "m^-3", "cm^-2 eV^-1", "eV", "meV", "K", "degC", "V",
         "s", "kg", "J", "%", "1", "mA/cm^2", "mV/s", "", "furlong", "m^-2"]
numbers_for_units = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -1.0, 1.0, 0.5, 3.2, 30.0, 300.0, 1e18, 1e-300, 1e300]),
    st.integers(-10**6, 10**6),
)
unit_strings = st.builds(lambda x, u: f"{x} {u}".strip(), numbers_for_units, st.sampled_from(UNITS))
valid_words = st.sampled_from(
    ["planar", "sphere", "dot", "fermi-dirac", "boltzmann", "band_bending", "drift_diffusion",
     "anatase-TiO2", "TiC", "TiN", "Cu", "Na", "VN", "TiC0.3N0.7", "TiC0.5N0.6", "true"])
scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.integers(min_value=10**300, max_value=10**400),  # beyond float range
    st.booleans(),
    st.none(),
    st.text(max_size=20),
    unit_strings,
    valid_words,
)
garbage_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=6), scalars, max_size=2),
    st.just(DELETE),
)


def plausible_values(name: str) -> st.SearchStrategy:
    """Values of the right type for a schema key, anywhere in its allowed range (often extreme),
    so that a good share of the mutated cases gets past validation and reaches the solver."""
    key = KEYS[name]
    if key.kind in (schema.QUANTITY, schema.NUMBER):
        hi = key.maximum if key.maximum is not None else 1e30
        lo = key.minimum if key.minimum is not None else -hi
        numbers = st.floats(min_value=lo, max_value=hi, exclude_min=key.exclusive_minimum)
        if key.kind == schema.NUMBER:
            return numbers
        return st.one_of(numbers, st.builds(lambda x: f"{x!r} {key.unit}", numbers))
    if key.kind == schema.INTEGER:
        return st.integers(min_value=int(key.minimum), max_value=min(int(key.maximum), 5000))
    if key.kind == schema.CHOICE:
        return st.sampled_from(key.choices)
    if key.kind == schema.BOOLEAN:
        return st.booleans()
    return st.sampled_from(["anatase-TiO2", "TiC", "TiN", "Cu", "Na", "TiC0.7N0.3"])


schema_keys = st.sampled_from(sorted(KEYS))
plausible_mutations = schema_keys.flatmap(lambda name: st.tuples(st.just(name), plausible_values(name)))
garbage_mutations = st.tuples(keys, garbage_values)
# half of the mutations are well-typed and in range (so that many cases reach the solver),
# half are garbage keys and/or garbage values
mutations = st.lists(st.one_of(plausible_mutations, plausible_mutations, garbage_mutations,
                               st.tuples(schema_keys, garbage_values)), min_size=1, max_size=3)


def mutate(raw: dict, key: str, value) -> None:
    """Set (or delete) ``section.leaf`` in a nested case dict; keys without a dot are top level."""
    if "." not in key:
        if value is DELETE:
            raw.pop(key, None)
        else:
            raw[key] = value
        return
    section, leaf = key.split(".", 1)
    table = raw.get(section)
    if not isinstance(table, dict):
        table = raw[section] = {}
    if value is DELETE:
        table.pop(leaf, None)
    else:
        table[leaf] = value


def expensive(case) -> bool:
    """Valid but slow cases (huge meshes, very many Newton iterations): validated, not solved."""
    return (case["mesh.n_nodes"] * case["mesh.refinement"] > 100_000
            or case["solver.max_iterations"] > 1000)


def solve_or_clean_error(case) -> None:
    """Run a validated case: a finite Dataset or a ConvergenceError, nothing else."""
    if expensive(case):
        event("valid, not solved (expensive)")
        return
    try:
        ds = fastnai.run(case)
    except fastnai.ConvergenceError as exc:
        assert str(exc), "a ConvergenceError must say what failed"
        event("ConvergenceError")
        return
    event("solved")
    assert_finite(ds)


def assert_finite(ds) -> None:
    for name, var in ds.data_vars.items():
        if "nan_means" in var.attrs:
            continue
        assert np.all(np.isfinite(var.values)), f"{name} is not finite"
    for name, coord in ds.coords.items():
        assert np.all(np.isfinite(coord.values)), f"coordinate {name} is not finite"


def test_minimal_case_runs_and_is_finite():
    ds = fastnai.run(MINIMAL)
    assert ds.sizes["x"] == 200
    assert_finite(ds)


@SETTINGS
@given(mutations)
def test_mutated_case_gives_finite_result_or_clean_fastnai_error(changes):
    raw = copy.deepcopy(MINIMAL)
    for key, value in changes:
        mutate(raw, key, value)
    try:
        case = fastnai.load_case(raw)
    except fastnai.CaseError as exc:
        assert str(exc), "a CaseError must say what is wrong"
        event("CaseError")
        return
    solve_or_clean_error(case)


@SETTINGS
@given(mutations)
def test_mutated_overrides_give_finite_result_or_clean_fastnai_error(changes):
    overrides = {key: value for key, value in changes if value is not DELETE}
    try:
        case = fastnai.load_case(MINIMAL, overrides)
    except fastnai.CaseError as exc:
        assert str(exc)
        event("CaseError")
        return
    solve_or_clean_error(case)


@SETTINGS
@given(st.lists(st.text(max_size=40), max_size=4))
def test_random_set_strings_parse_or_raise_case_error(items):
    try:
        case = fastnai.load_case(MINIMAL, items)
    except fastnai.CaseError as exc:
        assert str(exc)
        return
    assert case.kind == "band_bending"


@SETTINGS
@given(st.text(max_size=200))
def test_random_text_file_is_a_case_error(tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / "garbage.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(fastnai.CaseError):
        fastnai.load_case(path)


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_file_is_a_case_error(tmp_path_factory, data):
    path = tmp_path_factory.getbasetemp() / "garbage.bin"
    path.write_bytes(data)
    with pytest.raises(fastnai.CaseError):
        fastnai.load_case(path)


TOML_FRAGMENTS = [
    "[model]", 'kind = "band_bending"', 'kind = "nope"', "[semiconductor]", "[contact]", "[mesh]",
    "[solver]", "[[model]]", 'material = "anatase-TiO2"', 'material = "TiC"', 'thickness = "30 nm"',
    'thickness = "5 eV"', "thickness = -1", "n_nodes = 200", "n_nodes = 1e400", "n_nodes = nan",
    'min_spacing = "0.05 nm"', "temperature = inf", "holes = 1", "x = [1, 2]", "y = {a = 1}",
    "geometry = 'dot'", "radius = 1979-05-27", "donor_level = 3.9", "z = \"\"\"", "= 3", "[model.sub]",
]


@SETTINGS
@given(st.lists(st.one_of(st.sampled_from(TOML_FRAGMENTS), st.text(max_size=15)), max_size=12))
def test_toml_like_garbage_file_loads_or_is_a_case_error(tmp_path_factory, lines):
    path = tmp_path_factory.getbasetemp() / "fragments.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    try:
        case = fastnai.load_case(path)
    except fastnai.CaseError as exc:
        assert str(exc)
        return
    assert case.kind == "band_bending"


def test_dot_with_vanishing_radius_is_rejected_or_finite():
    try:
        ds = fastnai.run(MINIMAL, {"model.geometry": "dot", "contact.radius": 1e-300})
    except (fastnai.CaseError, fastnai.ConvergenceError):
        return
    assert_finite(ds)


def test_subnormal_min_spacing_is_rejected_or_runs():
    try:
        ds = fastnai.run(MINIMAL, {"mesh.min_spacing": 5e-324})
    except (fastnai.CaseError, fastnai.ConvergenceError):
        return
    assert_finite(ds)
