"""Property-based tests (SPEC section 6): malformed cases fail cleanly, valid ones give finite results.

Band bending (runs the solver): hypothesis mutates 1-3 entries of a valid minimal band_bending case
(schema keys and garbage key names; values of every type, non-finite, huge, and unit strings of
right and wrong dimension). Every outcome must be a Dataset with finite data, a CaseError or a
ConvergenceError: never another exception (a traceback from deep inside numpy, pint or numba) and
never a NaN.

Every model (validation only, ``load_case``, never ``run``): hypothesis starts from the example
cases in ``cases/`` and mutates them (keys dropped and inserted, wrong types, unit strings of the
right and wrong dimension, negative / zero / huge / non-finite numbers, ``[[protocol]]`` steps of
the wrong kind or with missing or extra keys, random nesting), as dicts, overrides, ``--set``
strings and edited TOML files. Loading must give a Case or a CaseError, and an accepted case holds
no NaN or infinity anywhere.
"""

from __future__ import annotations

import copy
import math
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import fastnai
from fastnai import schema
from fastnai.case import Case, load_case
from fastnai.models import MODEL_KINDS, model_module
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



# ---------------------------------------------------------------------------------------------
# every model: mutated example cases are a Case or a CaseError (validation only, never run)

ROOT = Path(__file__).resolve().parents[1]
CASE_FILES = sorted((ROOT / "cases").glob("*.toml"))
EXAMPLES: dict[str, list[dict]] = {kind: [] for kind in MODEL_KINDS}
for _path in CASE_FILES:
    with _path.open("rb") as _fh:
        _raw = tomllib.load(_fh)
    EXAMPLES[_raw["model"]["kind"]].append(_raw)

# a few examples per property: each load validates with pint and the model (milliseconds)
LOAD_SETTINGS = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                         suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.filter_too_much])

ALL_STEP_KINDS = sorted({step for kind in MODEL_KINDS
                         for step in getattr(model_module(kind), "STEP_KEYS", {})})
ALL_STEP_LEAVES = sorted({leaf for kind in MODEL_KINDS
                          for keys in getattr(model_module(kind), "STEP_KEYS", {}).values()
                          for leaf in keys})
NON_FINITE = [math.nan, math.inf, -math.inf]
NON_FINITE_TEXT = ["nan", "inf", "-inf", "+inf", "NaN", "Infinity", "1e999", "-1e999", "1e400"]
ALL_UNITS = UNITS + ["V/s", "A m^-2", "A s m^-2", "mA h cm^-2", "Pa", "GPa", "J m^-2", "m^2/s",
                     "m^3/mol", "degree", "rad", "F m^-2", "S/m", "ohm m^2", "h", "min", "mV",
                     "K^-1", "mol m^-3", "1/s", "m/s"]


def _number_strategy(key: schema.Key) -> st.SearchStrategy:
    """In range (often at a bound), just outside it, negative, zero, huge, tiny, non-finite."""
    lo = key.minimum if key.minimum is not None else -1e30
    hi = key.maximum if key.maximum is not None else 1e30
    specials = [lo, hi, 0.0, -1.0, 1.0, 1e300, -1e300, 5e-324, 1e-300, *NON_FINITE]
    if key.kind == schema.INTEGER:
        return st.one_of(st.integers(int(lo), min(int(hi), 10_000)), st.sampled_from(specials),
                         st.integers(-(2**70), 2**70), st.just(10**400), st.just(3.5))
    return st.one_of(st.floats(min_value=lo, max_value=hi, exclude_min=key.exclusive_minimum),
                     st.sampled_from(specials), st.floats(), st.integers(-(10**20), 10**20),
                     st.just(10**400))


def _text_number(x) -> str:
    return repr(x) if isinstance(x, float) else str(x)


def value_for(key: schema.Key | None) -> st.SearchStrategy:
    """Values for one key: well-typed (often at the limits), unit strings with the key's unit and
    with units of other dimensions, non-finite numbers and strings, and garbage of any type."""
    garbage = st.one_of(scalars, st.lists(scalars, max_size=3),
                        st.dictionaries(st.text(max_size=6), scalars, max_size=2),
                        st.sampled_from([math.nan, math.inf, -math.inf, 10**400, -(10**5000)]),
                        st.builds(lambda t, u: f"{t} {u}".strip(), st.sampled_from(NON_FINITE_TEXT),
                                  st.sampled_from(ALL_UNITS)),
                        st.integers(1, 60).map(nested))
    if key is None:
        return garbage
    if key.kind in (schema.QUANTITY, schema.NUMBER, schema.INTEGER):
        numbers = _number_strategy(key)
        typed = [numbers, numbers]
        if key.kind == schema.QUANTITY:
            typed.append(st.builds(lambda x: f"{_text_number(x)} {key.unit}", numbers))
            typed.append(st.builds(lambda t: f"{t} {key.unit}", st.sampled_from(NON_FINITE_TEXT)))
            typed.append(st.builds(lambda x, u: f"{_text_number(x)} {u}", numbers,
                                   st.sampled_from(ALL_UNITS)))
        elif key.kind == schema.NUMBER:
            typed.append(st.builds(_text_number, numbers))
            typed.append(st.sampled_from(NON_FINITE_TEXT))
        return st.one_of(*typed, garbage)
    if key.kind == schema.QUANTITY_LIST:
        item = value_for(schema.Key(key.name, schema.QUANTITY, unit=key.unit, minimum=key.minimum,
                                    maximum=key.maximum, exclusive_minimum=key.exclusive_minimum))
        return st.one_of(st.lists(item, min_size=0, max_size=4), st.lists(item, min_size=1, max_size=4),
                         garbage)
    if key.kind == schema.CHOICE:
        return st.one_of(st.sampled_from(key.choices), st.sampled_from(key.choices), garbage)
    if key.kind == schema.BOOLEAN:
        return st.one_of(st.booleans(), garbage)
    # STRING: mostly material names
    return st.one_of(valid_words, st.sampled_from(["Bi", "Sb", "BiSb", "Cu", "Na", "Al", "Sn",
                                                   "anatase-TiO2", "V2O3", "VN"]), garbage)


def plausible_for(key: schema.Key | None) -> st.SearchStrategy:
    """Well-typed values inside the key's range (often at a bound), so that the mutated case gets
    past the per-key checks and reaches the model's cross-key ``validate``."""
    if key is None:
        return value_for(None)
    lo = key.minimum if key.minimum is not None else -1e6
    hi = key.maximum if key.maximum is not None else 1e6
    if key.kind == schema.INTEGER:
        return st.integers(int(math.ceil(lo)), min(int(hi), 10_000))
    if key.kind in (schema.QUANTITY, schema.NUMBER, schema.QUANTITY_LIST):
        floats = st.one_of(st.floats(min_value=lo, max_value=hi, exclude_min=key.exclusive_minimum,
                                     allow_subnormal=False),
                           st.sampled_from([hi] if key.exclusive_minimum else [lo, hi]))
        if key.kind == schema.QUANTITY_LIST:
            return st.lists(floats, min_size=1, max_size=3)
        return floats
    if key.kind == schema.CHOICE:
        return st.sampled_from(key.choices)
    if key.kind == schema.BOOLEAN:
        return st.booleans()
    return value_for(key)


def nested(depth: int):
    """A list or table nested ``depth`` levels (alternating), 1.0 at the bottom."""
    value: object = 1.0
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


def step_keys(kind: str) -> dict[str, dict[str, schema.Key]]:
    return getattr(model_module(kind), "STEP_KEYS", {})


def random_step(data, kind: str, value_for=value_for) -> dict:
    """A [[protocol]] entry: a step kind of this model (or another's, or garbage), a random subset
    of its keys, sometimes extra keys."""
    steps = step_keys(kind)
    name = data.draw(st.one_of(st.sampled_from(sorted(steps) or ["rest"]),
                               st.sampled_from(ALL_STEP_KINDS), st.text(max_size=8), scalars))
    entry: dict = {} if data.draw(st.integers(0, 9)) == 0 else {"step": name}
    keys = steps.get(name, {}) if isinstance(name, str) else {}
    for leaf, key in keys.items():
        if data.draw(st.integers(0, 3)):  # most keys present
            entry[leaf] = data.draw(value_for(key))
    for _ in range(data.draw(st.integers(0, 1))):
        entry[data.draw(st.one_of(st.sampled_from(ALL_STEP_LEAVES), st.text(max_size=6)))] = \
            data.draw(value_for(None))
    return entry


def mutate_case(data, kind: str, value_for=value_for) -> dict:
    """One example case of ``kind`` with 1-4 random mutations (values from ``value_for``)."""
    raw = copy.deepcopy(data.draw(st.sampled_from(EXAMPLES[kind])))
    module = model_module(kind)
    keys = module.KEYS
    sections = sorted({k.section for k in keys.values()})
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["set", "set", "set", "garbage_key", "drop", "drop_section",
                                        "step_set", "step_drop", "step_insert", "step_remove",
                                        "protocol", "top"]))
        protocol = raw.get("protocol")
        if op == "set":
            name = data.draw(st.sampled_from(sorted(keys)))
            section, leaf = name.split(".", 1)
            table = raw.get(section) if isinstance(raw.get(section), dict) else {}
            raw[section] = table
            table[leaf] = data.draw(value_for(keys[name]))
        elif op == "garbage_key":
            section = data.draw(st.one_of(st.sampled_from(sections), st.text(max_size=6)))
            table = raw.get(section) if isinstance(raw.get(section), dict) else {}
            raw[section] = table
            table[data.draw(st.text(max_size=8))] = data.draw(value_for(None))
        elif op == "drop":
            existing = [(s, leaf) for s, t in raw.items() if isinstance(t, dict) for leaf in t]
            if existing:
                section, leaf = data.draw(st.sampled_from(existing))
                del raw[section][leaf]
        elif op == "drop_section":
            raw.pop(data.draw(st.sampled_from(sorted(raw))), None)
        elif op == "top":
            raw[data.draw(st.one_of(st.sampled_from(sections), st.text(max_size=6)))] = \
                data.draw(value_for(None))
        elif op == "protocol":
            raw["protocol"] = data.draw(st.one_of(
                st.just([]), value_for(None), st.lists(value_for(None), max_size=2)))
        elif not isinstance(protocol, list) or not all(isinstance(e, dict) for e in protocol):
            raw["protocol"] = [random_step(data, kind, value_for)]
        elif op == "step_insert" or not protocol:
            protocol.insert(data.draw(st.integers(0, len(protocol))), random_step(data, kind, value_for))
        elif op == "step_remove":
            protocol.pop(data.draw(st.integers(0, len(protocol) - 1)))
        else:
            entry = protocol[data.draw(st.integers(0, len(protocol) - 1))]
            step = entry.get("step")
            keys_of_step = step_keys(kind).get(step, {}) if isinstance(step, str) else {}
            if op == "step_drop" and entry:
                del entry[data.draw(st.sampled_from(sorted(entry, key=str)))]
            else:
                leaf = data.draw(st.one_of(st.sampled_from(sorted(keys_of_step) or ["step"]),
                                           st.sampled_from(["step", *ALL_STEP_LEAVES]),
                                           st.text(max_size=6)))
                entry[leaf] = data.draw(st.one_of(value_for(keys_of_step.get(leaf)),
                                                  st.sampled_from(ALL_STEP_KINDS)))
    return raw


def non_finite_paths(case: Case) -> list[str]:
    """Every resolved value (tables included) that is a NaN or infinite float, or holds one."""
    bad = []
    stack: list[tuple[str, object]] = [*case.values.items(), *case.tables.items()]
    while stack:
        where, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            bad.append(where)
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{where}[{k}]", v) for k, v in enumerate(value))
        elif isinstance(value, Mapping):
            stack.extend((f"{where}.{k}", v) for k, v in value.items())
    return bad


def load_or_case_error(source, overrides=None) -> Case | None:
    """``load_case``: a Case without non-finite values, or a CaseError that says something."""
    try:
        case = load_case(source, overrides)
    except fastnai.CaseError as exc:
        assert str(exc), "a CaseError must say what is wrong"
        event("CaseError")
        return None
    assert isinstance(case, Case)
    event("accepted")
    return case


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_example_cases_load_without_non_finite_values(kind):
    """The starting points of the mutations (test_case.py checks that every example loads)."""
    assert EXAMPLES[kind], f"no example case of {kind} in cases/"
    loaded = []
    for raw in EXAMPLES[kind]:
        try:
            loaded.append(load_case(raw))
        except fastnai.CaseError:
            continue
    assert loaded, f"no example case of {kind} loads"
    for case in loaded:
        assert not non_finite_paths(case)


def set_literal(value) -> str:
    """The text of a ``--set key=value`` item for a value (strings as they are)."""
    if isinstance(value, str):
        return value
    try:
        return repr(value)
    except ValueError:  # an int of more than 4300 digits
        return "9" * 5000


@pytest.mark.parametrize("kind", MODEL_KINDS)
@LOAD_SETTINGS
@given(data=st.data())
def test_mutated_example_case_is_a_case_or_a_case_error(kind, data):
    case = load_or_case_error(mutate_case(data, kind))
    assert case is None or not non_finite_paths(case)  # refused, or accepted without nan/inf


@pytest.mark.parametrize("kind", MODEL_KINDS)
@LOAD_SETTINGS
@given(data=st.data())
def test_well_typed_mutations_reach_validate_and_give_a_case_or_a_case_error(kind, data):
    """In-range values of the right type (steps included): the model's cross-key checks run."""
    case = load_or_case_error(mutate_case(data, kind, plausible_for))
    assert case is None or not non_finite_paths(case)


@pytest.mark.parametrize("kind", MODEL_KINDS)
@LOAD_SETTINGS
@given(data=st.data())
def test_random_overrides_of_every_model_give_a_case_or_a_case_error(kind, data):
    """Overrides of section keys and of ``protocol.N.leaf`` entries, as a dict and as --set."""
    raw = data.draw(st.sampled_from(EXAMPLES[kind]))
    keys = model_module(kind).KEYS
    n_steps = len(raw.get("protocol", []))
    names = st.one_of(st.sampled_from(sorted(keys)), garbage_keys,
                      st.builds(lambda i, leaf: f"protocol.{i}.{leaf}", st.integers(0, n_steps + 1),
                                st.one_of(st.sampled_from(["step", *ALL_STEP_LEAVES]),
                                          st.text(max_size=5))))
    overrides = {}
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(names)
        key = keys.get(name)
        if key is None and name.startswith("protocol.") and name.count(".") == 2:
            _, index, leaf = name.split(".")
            steps = raw.get("protocol", [])
            step = steps[int(index)]["step"] if int(index) < len(steps) else None
            key = step_keys(kind).get(step, {}).get(leaf)
        overrides[name] = data.draw(value_for(key))
    if data.draw(st.booleans()):
        case = load_or_case_error(raw, overrides)
    else:
        case = load_or_case_error(raw, [f"{k}={set_literal(v)}" for k, v in overrides.items()])
    assert case is None or not non_finite_paths(case)


TOML_VALUES = ["nan", "inf", "-inf", "+inf", '"nan m"', '"inf K"', '"1e999 cm^-3"', "1e999",
               '"-1 nm"', "0", "-1", "1e308", "1e-320", '"1 eV"', '"5 furlong"', "true", '""',
               "[]", "[nan]", '["inf V/s"]', "{}", "{a = 1}", "1979-05-27", "'x'", '"1 mA/cm^2"',
               "[" * 40 + "]" * 40, "[" * 3000 + "]" * 3000, "{a = " * 40 + "1" + "}" * 40,
               "9" * 5000, '"' + "9" * 5000 + ' m"']


@pytest.mark.parametrize("kind", MODEL_KINDS)
@LOAD_SETTINGS
@given(data=st.data())
def test_edited_example_case_file_is_a_case_or_a_case_error(kind, tmp_path_factory, data):
    """Line edits of a real case file: values replaced by TOML literals of any type (non-finite,
    deeply nested), lines dropped, duplicated or inserted, table headers nested."""
    path = data.draw(st.sampled_from([p for p in CASE_FILES if p.stem.startswith(kind)]))
    lines = path.read_text(encoding="utf-8").splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        k = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["value", "value", "drop", "dup", "insert", "header"]))
        if op == "value" and "=" in lines[k] and not lines[k].lstrip().startswith("#"):
            lines[k] = lines[k].split("=", 1)[0] + "= " + data.draw(
                st.one_of(st.sampled_from(TOML_VALUES), st.text(max_size=10)))
        elif op == "drop":
            del lines[k]
        elif op == "dup":
            lines.insert(k, lines[k])
        elif op == "insert":
            lines.insert(k, data.draw(st.one_of(st.sampled_from(TOML_FRAGMENTS),
                                                st.sampled_from(["[[protocol]]", 'step = "rest"',
                                                                 'step = "cv"', "duration = 0",
                                                                 "duration = nan"]))))
        elif op == "header":
            depth = data.draw(st.integers(2, 80))
            lines.insert(k, "[" + ".".join(["model"] + ["a"] * depth) + "]")
        if not lines:
            lines = [""]
    target = tmp_path_factory.getbasetemp() / f"edited_{kind}.toml"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    case = load_or_case_error(target)
    assert case is None or not non_finite_paths(case)


@pytest.mark.parametrize("kind", MODEL_KINDS)
@LOAD_SETTINGS
@given(depth=st.integers(1, 200), where=st.sampled_from(["value", "section", "protocol", "key"]))
def test_random_nesting_is_a_case_or_a_case_error(kind, depth, where):
    raw = copy.deepcopy(EXAMPLES[kind][0])
    if where == "value":
        section = next(s for s in raw if s != "model" and isinstance(raw[s], dict))
        raw[section]["extra"] = nested(depth)
    elif where == "section":
        raw["model"]["kind"] = nested(depth)
    elif where == "protocol":
        raw["protocol"] = [{"step": "rest", "duration": nested(depth)}]
    else:
        raw["model"][tuple(range(depth))] = 1
    # an unknown key, a non-string kind, a nested duration, a non-string key: never a case
    assert load_or_case_error(raw) is None


def _numba_imported_by_loading(case_files: list[Path]) -> dict[str, bool]:
    """Load each case in a fresh interpreter (all at once): was numba imported?"""
    runs = {}
    for path in case_files:
        code = ("import sys, fastnai.case as c; "
                f"c.load_case({str(path)!r}); print('numba' in sys.modules)")
        runs[path.stem] = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, text=True,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    imported = {}
    for name, proc in runs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        imported[name] = out.strip().splitlines()[-1] == "True"
    return imported


def test_loading_a_case_does_not_import_numba():
    one_per_kind = [next(p for p in CASE_FILES if p.stem.startswith(kind)) for kind in MODEL_KINDS]
    imported = _numba_imported_by_loading(one_per_kind)
    assert not any(imported.values()), f"numba imported while loading: {imported}"


@pytest.mark.parametrize("geometry", ["core-shell", "sphere"])
def test_drift_diffusion_ensemble_without_radii_is_a_case_error(geometry):
    raw = copy.deepcopy(next(r for r in EXAMPLES["drift_diffusion"]
                             if r["model"].get("geometry") == "core-shell"))
    raw["model"]["geometry"] = geometry
    raw["ensemble"] = {"n_particles": 3}
    with pytest.raises(fastnai.CaseError):
        load_case(raw)
