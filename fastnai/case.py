"""Cases: TOML file or dict -> validated, immutable case with every value in SI units.

Values are layered in this order: the model's defaults, the properties of a named material, the
case file, then ``--set key=value`` overrides. Quantities are bare numbers in the unit that
``fastnai schema KIND`` lists for the key, or strings with units (``"1e18 cm^-3"``, ``"4.1 eV"``),
parsed and dimension-checked with pint. Every problem raises :class:`~fastnai.errors.CaseError`
naming the key, the value and what was expected, before any work starts.
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from . import schema
from ._version import version as _version
from .errors import CaseError
from .materials import get_material
from .models import MODEL_KINDS, PLANNED_KINDS, model_module

__all__ = ["Case", "load_case", "parse_overrides"]


@functools.lru_cache(maxsize=1)
def unit_registry():
    """The pint registry used to parse case quantities (created on first use)."""
    import pint

    ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    ureg.define("fraction = [] = frac")
    return ureg


@dataclass(frozen=True)
class Case:
    """A validated case: model kind and every key's value in SI units (energies in eV).

    Parameters
    ----------
    kind
        The model kind, ``[model].kind``.
    values
        Dotted key -> value, every key of the model's schema (``None`` where unset).
    origin
        Dotted key -> where the value came from: "default", "material NAME", "case", "override".
    tables
        Arrays of tables (``[[protocol]]``): name -> tuple of read-only dicts, every entry's keys
        resolved to SI with the defaults of its ``step`` kind.
    """

    kind: str
    values: Mapping[str, Any]
    origin: Mapping[str, str]
    tables: Mapping[str, tuple] = field(default_factory=lambda: MappingProxyType({}))

    def __getitem__(self, key: str) -> Any:
        try:
            if key in self.tables:
                return self.tables[key]
            return self.values[key]
        except KeyError:
            raise KeyError(f"{key!r} is not a key of a {self.kind} case") from None

    @property
    def keys(self) -> dict[str, schema.Key]:
        return model_module(self.kind).KEYS

    def references(self) -> list[str]:
        """DOIs of every source a value of this case came from."""
        dois: set[str] = set()
        for name, value in self.values.items():
            key = self.keys[name]
            origin = self.origin[name]
            if origin.startswith("material "):
                material = get_material(origin.split(" ", 1)[1])
                src = material[key.material_property].source
            elif origin == "default" and value is not None:
                src = key.source
            else:
                continue
            for part in src.replace(";", ",").split(","):
                part = part.strip()
                if part.startswith("10."):
                    dois.add(part)
        return sorted(dois)

    def with_overrides(self, overrides: Mapping[str, Any] | Iterable[str]) -> Case:
        """A new validated case: this one's resolved values with ``overrides`` applied.

        >>> case = load_case({"model": {"kind": "band_bending"},
        ...                   "semiconductor": {"material": "anatase-TiO2"},
        ...                   "contact": {"material": "TiC"}})
        >>> case.with_overrides({"contact.work_function": "4.3 eV"})["contact.work_function"]
        4.3
        """
        return load_case(tomllib.loads(self.to_toml()), overrides)

    def to_toml(self) -> str:
        """The resolved case as TOML, bare numbers in the schema units; reads back unchanged.

        Values a named material supplies appear as comments (the material name is kept, so a
        reload takes them, and their sources, from the database again).
        """
        sections: dict[str, list[str]] = {}
        for name, value in self.values.items():
            if value is None:
                continue
            key = self.keys[name]
            unit = f"  # [{key.unit}]" if key.unit else ""
            line = f"{key.leaf} = {_toml_value(value)}{unit}"
            origin = self.origin[name]
            if origin.startswith("material "):
                # the section's material supplies it again on reload, keeping its source DOI
                line = f"# {line} (from {origin})"
            sections.setdefault(key.section, []).append(line)
        blocks = []
        for section, lines in sections.items():
            blocks.append(f"[{section}]\n" + "\n".join(lines))
        arrays = getattr(model_module(self.kind), "TABLE_ARRAYS", {})
        for name, entries in self.tables.items():
            for entry in entries:
                schema_keys = arrays[name][entry["step"]]
                lines = [f'step = {_toml_value(entry["step"])}']
                for leaf, value in entry.items():
                    if leaf == "step" or value is None:
                        continue
                    unit = schema_keys[leaf].unit
                    lines.append(f"{leaf} = {_toml_value(value)}" + (f"  # [{unit}]" if unit else ""))
                blocks.append(f"[[{name}]]\n" + "\n".join(lines))
        return "\n\n".join(blocks) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings (``--set``); values are TOML literals or plain strings.

    >>> parse_overrides(["semiconductor.donor_density=1e19 cm^-3", "mesh.n_nodes=400"])
    {'semiconductor.donor_density': '1e19 cm^-3', 'mesh.n_nodes': 400}
    """
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise CaseError(f"--set {item!r}: expected key=value, e.g. mesh.n_nodes=400")
        key, text = (s.strip() for s in item.split("=", 1))
        if not key:
            raise CaseError(f"--set {item!r}: the key is empty")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        out[key] = value
    return out


def _read(source: str | Path | Mapping) -> dict:
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source))
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise CaseError(f"case file {str(path)!r} does not exist")
        try:
            with path.open("rb") as fh:
                return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise CaseError(f"case file {str(path)!r} is not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise CaseError(f"case file {str(path)!r} is not UTF-8 text") from None
    raise CaseError(f"a case is a TOML file path or a dict, got {type(source).__name__}")


def _flatten(raw: Mapping) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section, table in raw.items():
        if not isinstance(section, str):
            raise CaseError(f"section names are strings, got {section!r}")
        if not isinstance(table, Mapping):
            raise CaseError(
                f"top-level entry {section!r} = {table!r}: expected a table such as [{section}]")
        for leaf, value in table.items():
            name = f"{section}.{leaf}"
            if isinstance(value, Mapping):
                raise CaseError(f"{name}: nested tables are not keys of any model")
            flat[name] = value
    return flat


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def coerce(key: schema.Key, value: Any) -> Any:
    """Convert one raw value to the key's SI value, or raise CaseError."""
    text = repr(value)
    where = f"{key.name} = {text if len(text) <= 60 else text[:40] + '...'}"
    if key.kind == schema.QUANTITY_LIST:
        if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= 1000:
            raise CaseError(f"{where}: expected {key.describe_range()}")
        out = []
        for k, item in enumerate(value):
            number = _quantity(key, item, f"{key.name}[{k}] = {item!r}")
            if not key.in_range(number):
                raise CaseError(f"{key.name}[{k}] = {item!r}: out of range, expected "
                                + key.describe_range().split("each ", 1)[1])
            out.append(number)
        return tuple(out)
    if key.kind == schema.QUANTITY:
        number = _quantity(key, value, where)
    elif key.kind == schema.NUMBER:
        number = _number(value, where)
    elif key.kind == schema.INTEGER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CaseError(f"{where}: expected an integer")
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            raise CaseError(f"{where}: expected an integer")
        if abs(value) > 2**53:
            raise CaseError(f"{where}: out of range, expected {key.describe_range()}")
        number = int(value)
    elif key.kind == schema.CHOICE:
        if not isinstance(value, str) or value not in key.choices:
            raise CaseError(f"{where}: expected {key.describe_range()}"
                            + (_suggest(value, key.choices) if isinstance(value, str) else ""))
        return value
    elif key.kind == schema.STRING:
        if not isinstance(value, str):
            raise CaseError(f"{where}: expected a string")
        return value
    elif key.kind == schema.BOOLEAN:
        if not isinstance(value, bool):
            raise CaseError(f"{where}: expected true or false")
        return value
    else:  # pragma: no cover - schema author error
        raise AssertionError(key.kind)
    if not key.in_range(number):
        raise CaseError(f"{where}: out of range, expected {key.describe_range()}")
    return number


_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf))\s*(.*?)\s*$",
                     re.IGNORECASE)
_UNIT_CHARS = re.compile(r"^[A-Za-z_µμΩ°% ^*/()\-.0-9]*$")
_CHAINED_POWER = re.compile(r"\^[\s()+\-.0-9]*\^")  # 'm^9^9': pint would evaluate a tower


def _as_float(value: int | float, where: str) -> float:
    try:
        return float(value)
    except OverflowError:
        raise CaseError(f"{where}: the number is too large for a float64") from None


def _split_quantity(text: str, where: str) -> tuple[float, str]:
    """'1e18 cm^-3' -> (1e18, 'cm^-3'); the number is read by float(), never by pint.

    pint would evaluate arbitrary arithmetic ('9**9**9 nm' runs for minutes) and drops ',' as a
    thousands separator ('2,5 nm' would be 25 nm), so both are refused here.
    """
    match = _NUMBER.match(text)
    if match is None:
        raise CaseError(f"{where}: expected a number followed by a unit, e.g. '1e18 cm^-3'")
    number, unit = match.group(1), match.group(2)
    if "," in text:
        raise CaseError(f"{where}: ',' is not allowed (use '.' as the decimal point)")
    unit = unit.replace("**", "^")
    if unit and (not _UNIT_CHARS.match(unit) or _CHAINED_POWER.search(unit)
                 or any(len(d) > 3 for d in re.findall(r"\d+", unit))):
        raise CaseError(f"{where}: cannot read the unit {unit!r} (write units like 'cm^-3', "
                        "'mA/cm^2', 'eV')")
    return float(number), unit


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise CaseError(f"{where}: expected a number, not a boolean")
    if isinstance(value, (int, float)):
        return _as_float(value, where)
    if isinstance(value, str):
        number, unit = _split_quantity(value, where)
        if unit:
            raise CaseError(f"{where}: expected a dimensionless number, got the unit {unit!r}")
        return number
    raise CaseError(f"{where}: expected a number")


def _quantity(key: schema.Key, value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise CaseError(f"{where}: expected a quantity in {key.unit} (number or string with units)")
    if isinstance(value, (int, float)):
        return _as_float(value, where)
    if not isinstance(value, str):
        raise CaseError(f"{where}: expected a number in {key.unit} or a string with units")
    number, unit = _split_quantity(value, where)
    if not unit:
        raise CaseError(f"{where}: a string needs a unit (e.g. '{number:g} {key.unit}'), or give "
                        f"a bare number in {key.unit}")
    ureg = unit_registry()
    try:
        quantity = ureg.Quantity(number, unit)
    except Exception:
        raise CaseError(f"{where}: cannot read {value!r} as a quantity with units "
                        f"(expected e.g. '1 {key.unit}')") from None
    try:
        target = ureg.Quantity(1.0, key.unit)
    except Exception:  # pragma: no cover - schema author error
        raise AssertionError(key.unit) from None
    try:
        converted = quantity.to(target.units)
    except Exception:
        dims = getattr(quantity, "dimensionality", "?")
        raise CaseError(f"{where}: has dimension {dims}, expected the dimension of "
                        f"{key.unit} ({target.dimensionality})") from None
    try:
        magnitude = float(converted.magnitude)
    except (TypeError, ValueError):
        raise CaseError(f"{where}: expected a single number with units") from None
    # Unit factors are exact decimals, but applying them in binary leaves round-off in the last
    # digit ("1e18 cm^-3" -> 9.999999999999998e+23); 15 significant digits hold every digit a
    # decimal input carries, so rounding there gives the value the user wrote.
    return float(f"{magnitude:.15g}") if math.isfinite(magnitude) else magnitude


_TABLE_KEY = re.compile(r"^(\w+)\.(\d+)\.(\w+)$")  # protocol.1.c_rate: entry 1 of [[protocol]]


def _load_table_array(name: str, raw: Any, kinds: Mapping[str, Mapping[str, schema.Key]],
                      overrides: Mapping[tuple[str, int, str], Any]) -> tuple:
    """Validate an array of tables (``[[protocol]]``): each entry names its ``step`` kind, whose
    keys give types, units, defaults and ranges. ``overrides`` maps (name, index, leaf) -> value."""
    if raw is None:
        raw = []
    if not isinstance(raw, list) or not all(isinstance(e, Mapping) for e in raw):
        raise CaseError(f"{name}: expected an array of tables, [[{name}]] blocks")
    entries = [dict(e) for e in raw]
    for (table, index, leaf), value in overrides.items():
        if table != name:
            continue
        if not 0 <= index < len(entries):
            raise CaseError(f"override {name}.{index}.{leaf}: the case has {len(entries)} "
                            f"[[{name}]] entries (numbered from 0)")
        entries[index][leaf] = value
    out = []
    for index, entry in enumerate(entries):
        where = f"{name}[{index}]"
        step = entry.get("step")
        if not isinstance(step, str) or step not in kinds:
            raise CaseError(f"{where}.step = {step!r}: expected one of "
                            + ", ".join(repr(k) for k in kinds)
                            + (_suggest(step, kinds) if isinstance(step, str) else ""))
        keys = kinds[step]
        resolved: dict[str, Any] = {"step": step}
        for leaf, key in keys.items():
            resolved[leaf] = key.default
        for leaf, value in entry.items():
            if leaf == "step":
                continue
            if leaf not in keys:
                raise CaseError(f"{where}: unknown key {leaf!r} for a {step!r} step"
                                + _suggest(leaf, keys) + "; keys are " + ", ".join(keys))
            key = keys[leaf]
            try:
                resolved[leaf] = coerce(key, value)
            except CaseError as exc:
                raise CaseError(f"{where}: {exc}") from None
        for leaf, key in keys.items():
            if key.required and resolved[leaf] is None:
                raise CaseError(f"{where}: {leaf} is required for a {step!r} step "
                                f"({key.doc}; expected {key.describe_range()})")
        out.append(MappingProxyType(resolved))
    return tuple(out)


def _material_value(prop, key: schema.Key) -> float:
    """A material property in the key's unit (the database keeps the unit it was sourced in)."""
    value = float(prop.value)
    if key.unit is None or prop.unit in ("1", key.unit):
        return value
    ureg = unit_registry()
    converted = ureg.Quantity(value, prop.unit).to(key.unit).magnitude
    return float(f"{converted:.15g}")


def load_case(source: str | Path | Mapping,
              overrides: Mapping[str, Any] | Iterable[str] | None = None) -> Case:
    """Read, layer and validate a case.

    Parameters
    ----------
    source
        Path of a TOML case file, or the same structure as a dict.
    overrides
        ``{"section.key": value}`` or ``["section.key=value", ...]``, applied last.

    Returns
    -------
    Case
        Immutable; every value in SI (energies in eV).

    Raises
    ------
    CaseError
        For any malformed input: unknown model or key, wrong type, wrong unit dimension,
        out-of-range value, unknown material, missing required value, inconsistent keys.

    Examples
    --------
    >>> case = load_case({"model": {"kind": "band_bending"},
    ...                   "semiconductor": {"material": "anatase-TiO2",
    ...                                     "donor_density": "1e18 cm^-3"},
    ...                   "contact": {"material": "TiC"}})
    >>> case["semiconductor.donor_density"]
    1e+24
    """
    raw = _read(source)
    model = raw.get("model")
    if not isinstance(model, Mapping) or "kind" not in model:
        raise CaseError("model.kind is required: a [model] table with kind = one of "
                        + ", ".join(repr(k) for k in MODEL_KINDS))
    kind = model["kind"]
    if kind in PLANNED_KINDS:
        raise CaseError(f"model.kind = {kind!r}: this model is planned but not part of fastnai "
                        f"{_version}; available: " + ", ".join(repr(k) for k in MODEL_KINDS))
    if kind not in MODEL_KINDS:
        hint = _suggest(kind, MODEL_KINDS) if isinstance(kind, str) else ""
        raise CaseError(f"model.kind = {kind!r}: expected one of "
                        + ", ".join(repr(k) for k in MODEL_KINDS) + hint)
    module = model_module(kind)
    keys: dict[str, schema.Key] = module.KEYS
    arrays = getattr(module, "TABLE_ARRAYS", {})
    raw_tables = {name: raw.pop(name) for name in arrays if name in raw}
    given = _flatten(raw)
    if overrides is not None:
        if not isinstance(overrides, Mapping):
            overrides = parse_overrides(overrides)
    else:
        overrides = {}
    table_overrides = {}
    for name in list(overrides):
        match = _TABLE_KEY.match(name) if isinstance(name, str) else None
        if match and match.group(1) in arrays:
            table_overrides[(match.group(1), int(match.group(2)), match.group(3))] = overrides[name]
    overrides = {k: v for k, v in overrides.items() if not (isinstance(k, str) and _TABLE_KEY.match(k)
                                                            and _TABLE_KEY.match(k).group(1) in arrays)}
    for name in list(given) + list(overrides):
        if not isinstance(name, str) or name not in keys:
            sections = {k.section for k in keys.values()}
            section = str(name).split(".", 1)[0]
            if section not in sections:
                raise CaseError(f"unknown section {section!r} (in {name!r}) for a {kind} case; "
                                f"sections are {', '.join(sorted(sections))}"
                                + _suggest(section, sections))
            raise CaseError(f"unknown key {name!r} for a {kind} case" + _suggest(str(name), keys)
                            + f" (see `fastnai schema {kind}`)")

    values: dict[str, Any] = {name: key.default for name, key in keys.items()}
    origin = dict.fromkeys(keys, "default")
    layered = {**given, **overrides}
    # material layer: properties of the named materials fill keys that declare them
    for section in {k.section for k in keys.values()}:
        mname = layered.get(f"{section}.material")
        if mname is None:
            continue
        if not isinstance(mname, str):
            raise CaseError(f"{section}.material = {mname!r}: expected a material name "
                            "(see `fastnai materials`)")
        try:
            material = get_material(mname)
        except CaseError as exc:
            raise CaseError(f"{section}.material = {mname!r}: {exc}") from None
        for name, key in keys.items():
            if key.section == section and key.material_property in material.properties:
                values[name] = _material_value(material[key.material_property], key)
                origin[name] = f"material {mname}"
    for name, value in given.items():
        values[name] = coerce(keys[name], value)
        origin[name] = "case"
    for name, value in overrides.items():
        values[name] = coerce(keys[name], value)
        origin[name] = "override"
    for name, key in keys.items():
        if key.required and values[name] is None:
            via = (f" (or name a material in {key.section}.material that supplies it)"
                   if key.material_property else "")
            raise CaseError(f"{name} is required: expected {key.describe_range()}{via}")
    tables = {name: _load_table_array(name, raw_tables.get(name), arrays[name], table_overrides)
              for name in arrays}
    case = Case(kind, MappingProxyType(values), MappingProxyType(origin), MappingProxyType(tables))
    module.validate(case)
    return case
