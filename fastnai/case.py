"""Cases: TOML file or dict -> validated, immutable case with every value in SI units.

Values are layered in this order: the model's defaults, the properties of a named material, the
case file, then ``--set key=value`` overrides. Quantities are bare numbers in the unit that
``fastnai schema KIND`` lists for the key, or strings with units (``"1e18 cm^-3"``, ``"4.1 eV"``),
parsed and dimension-checked with pint. Every problem raises :class:`~fastnai.errors.CaseError`
naming the key, the value and what was expected, before any work starts.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import math
import numbers
import re
import reprlib
import stat
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
        except ValueError:  # an integer of more than 4300 digits (Python's int-to-str limit)
            raise CaseError(f"--set {_show(item)}: the number has too many digits") from None
        except RecursionError:
            raise CaseError(f"--set {_show(item)}: the value is nested far more than {MAX_DEPTH} "
                            "levels deep") from None
        _check_structure(value, f"--set {key}")
        out[key] = value
    return out


#: A case file larger than this is refused unread (the largest example case is a few kB).
MAX_CASE_BYTES = 16 * 2**20
#: Tables and arrays nest at most this deep (a case needs 3: [[protocol]] -> entry -> list).
MAX_DEPTH = 32

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 3, 6, 6, 4


def _show(value: Any) -> str:
    """``repr(value)`` for a message: short, bounded in depth, never raising (an int of 5000
    digits, a deeply nested list or an object with a broken ``__repr__`` are all shown)."""
    try:
        text = _REPR.repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:40] + "..."


_SCALARS = (str, int, float, datetime.date, datetime.time, numbers.Real)


def _check_structure(data: Any, what: str) -> None:
    """Refuse what no case contains, before anything walks it recursively: nesting deeper than
    :data:`MAX_DEPTH` (a self-containing dict included), keys that are not strings, values that
    TOML cannot hold (objects, bytes, sets). Iterative, so any depth is safe. ``None`` passes
    (it reads as a missing value and is refused, naming the key, where a value is needed)."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        item, where, depth = stack.pop()
        at = f" at {where[:80] + '...' if len(where) > 80 else where}" if where else ""
        if isinstance(item, (Mapping, list, tuple)):
            if depth >= MAX_DEPTH:
                raise CaseError(f"{what}: tables and arrays nested more than {MAX_DEPTH} levels "
                                f"deep{at}; no case needs that")
            if isinstance(item, Mapping):
                for key, value in item.items():
                    if not isinstance(key, str):
                        raise CaseError(f"{what}: key {_show(key)}{at} is not a string "
                                        f"({type(key).__name__}); keys are names such as "
                                        "'thickness'")
                    stack.append((value, f"{where}.{key}" if where else key, depth + 1))
            else:
                stack.extend((value, f"{where}[{k}]", depth + 1) for k, value in enumerate(item))
        elif item is not None and not isinstance(item, _SCALARS):
            raise CaseError(f"{what}: {where or 'the case'} = {_show(item)} is a "
                            f"{type(item).__name__}; expected a number, string, boolean, "
                            "list or table")


def _plain(data: Any) -> Any:
    """A copy with plain dicts and lists (the input is never modified); depth already checked."""
    if isinstance(data, Mapping):
        return {key: _plain(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_plain(value) for value in data]
    return data


def _read_file(path: Path) -> dict:
    """Read and parse a case file; every failure is a CaseError naming the file and why."""
    name = repr(str(path))

    def refused(reason: str) -> CaseError:
        return CaseError(f"case file {name} {reason}")

    try:
        info = path.stat()
    except FileNotFoundError:
        raise refused("does not exist") from None
    except NotADirectoryError:
        raise refused("does not exist (a folder in its path is a file)") from None
    except PermissionError:
        raise refused("cannot be read: permission denied (on the file or a folder above it)") \
            from None
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte, a loop of links
        raise refused(f"cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise refused("is a directory, not a case file")
    if not stat.S_ISREG(info.st_mode):
        raise refused("is not a regular file (a device, pipe or socket is not a case)")
    if info.st_size > MAX_CASE_BYTES:
        raise refused(f"is too large to be a case ({info.st_size} bytes; at most "
                      f"{MAX_CASE_BYTES // 2**20} MiB)")
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_CASE_BYTES + 1)
    except IsADirectoryError:
        raise refused("is a directory, not a case file") from None
    except PermissionError:
        raise refused("cannot be read: permission denied") from None
    except FileNotFoundError:
        raise refused("does not exist") from None
    except OSError as exc:
        raise refused(f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_CASE_BYTES:
        raise refused(f"is too large to be a case (at most {MAX_CASE_BYTES // 2**20} MiB)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refused(f"is not UTF-8 text (invalid byte at offset {exc.start})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise refused(f"is not valid TOML: {exc}") from None
    except ValueError as exc:  # an integer of more than 4300 digits (Python's int-to-str limit)
        raise refused(f"is not a case: {exc}") from None
    except RecursionError:  # very deep inline arrays or tables exhaust the parser's stack
        raise refused(f"is not a case: arrays or tables nested far more than {MAX_DEPTH} "
                      "levels deep") from None
    _check_structure(raw, f"case file {name}")
    return raw


def _read(source: str | Path | Mapping) -> dict:
    if isinstance(source, Mapping):
        _check_structure(source, "case")
        return _plain(source)
    if isinstance(source, (str, Path)):
        return _read_file(Path(source))
    raise CaseError(f"a case is a TOML file path or a dict, got {type(source).__name__}")


def _flatten(raw: Mapping) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section, table in raw.items():
        if not isinstance(section, str):
            raise CaseError(f"section names are strings, got {_show(section)}")
        if not isinstance(table, Mapping):
            raise CaseError(
                f"top-level entry {section!r} = {_show(table)}: expected a table such as "
                f"[{section}]")
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
    where = f"{key.name} = {_show(value)}"
    if key.kind == schema.QUANTITY_LIST:
        if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= 1000:
            raise CaseError(f"{where}: expected {key.describe_range()}")
        out = []
        for k, item in enumerate(value):
            item_where = f"{key.name}[{k}] = {_show(item)}"
            number = _quantity(key, item, item_where)
            _require_finite(number, item_where)
            if not key.in_range(number):
                raise CaseError(f"{item_where}: out of range, expected "
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
    _require_finite(number, where)
    if not key.in_range(number):
        raise CaseError(f"{where}: out of range, expected {key.describe_range()}")
    return number


_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf))\s*(.*?)\s*$",
                     re.IGNORECASE)
_UNIT_CHARS = re.compile(r"^[A-Za-z_µμΩ°% ^*/()\-.0-9]*$")
_CHAINED_POWER = re.compile(r"\^[\s()+\-.0-9]*\^")  # 'm^9^9': pint would evaluate a tower


def _require_finite(number: float, where: str) -> None:
    if not math.isfinite(number):
        raise CaseError(f"{where}: not a finite number ({number!r} in the key's unit); NaN and "
                        "infinity are never accepted")


def _as_float(value: int | float, where: str) -> float:
    try:
        return float(value)
    except OverflowError:
        raise CaseError(f"{where}: the number is too large for a float64") from None


#: What a dimensionless key (NUMBER) takes, for messages: never a unit hint.
_PLAIN = "a plain number without a unit (the key is dimensionless)"


def _split_quantity(text: str, where: str, unit: str | None) -> tuple[float, str]:
    """'1e18 cm^-3' -> (1e18, 'cm^-3'); the number is read by float(), never by pint.

    ``unit`` is the key's unit, for the example a message gives (``None``: a dimensionless
    key, whose messages ask for a plain number). pint would evaluate arbitrary arithmetic
    ('9**9**9 nm' runs for minutes) and drops ',' as a thousands separator ('2,5 nm' would be
    25 nm), so both are refused here.
    """
    match = _NUMBER.match(text)
    if match is None:
        raise CaseError(f"{where}: expected a bare number in {unit} or a number followed by a "
                        f"unit, e.g. '1 {unit}'" if unit else f"{where}: expected {_PLAIN}, e.g. 0.5")
    number, found = match.group(1), match.group(2)
    if "," in text:
        raise CaseError(f"{where}: ',' is not allowed (use '.' as the decimal point)")
    found = found.replace("**", "^")
    if found and (not _UNIT_CHARS.match(found) or _CHAINED_POWER.search(found)
                  or any(len(d) > 3 for d in re.findall(r"\d+", found))):
        raise CaseError(f"{where}: cannot read the unit {found!r} (the key's unit is {unit}: "
                        f"e.g. '1 {unit}')" if unit else f"{where}: expected {_PLAIN}, e.g. 0.5")
    return float(number), found


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise CaseError(f"{where}: expected {_PLAIN}, not a boolean")
    if isinstance(value, (int, float)):
        return _as_float(value, where)
    if isinstance(value, str):
        number, unit = _split_quantity(value, where, None)
        if unit:
            raise CaseError(f"{where}: expected {_PLAIN}, got the unit {unit!r}; write "
                            f"{number:g}")
        return number
    raise CaseError(f"{where}: expected {_PLAIN}")


def _quantity(key: schema.Key, value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise CaseError(f"{where}: expected a quantity in {key.unit} (number or string with units)")
    if isinstance(value, (int, float)):
        return _as_float(value, where)
    if not isinstance(value, str):
        raise CaseError(f"{where}: expected a number in {key.unit} or a string with units")
    number, unit = _split_quantity(value, where, key.unit)
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


_TABLE_KEY = re.compile(r"^(\w+)\.([0-9]{1,9})\.(\w+)$")  # protocol.1.c_rate: entry 1 of [[protocol]]


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
            raise CaseError(f"{where}.step = {_show(step)}: expected one of "
                            + ", ".join(repr(k) for k in kinds)
                            + (_suggest(step, kinds) if isinstance(step, str) else ""))
        keys = kinds[step]
        resolved: dict[str, Any] = {"step": step}
        for leaf, key in keys.items():
            resolved[leaf] = key.default
        for leaf, value in entry.items():
            if leaf == "step":
                continue
            if not isinstance(leaf, str):
                raise CaseError(f"{where}: key {_show(leaf)} is not a string")
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


def _model_of(raw: dict):
    """``(kind, model module)`` of a raw case, or the CaseError that says what is wrong."""
    model = raw.get("model")
    if not isinstance(model, Mapping) or "kind" not in model:
        raise CaseError("model.kind is required: a [model] table with kind = one of "
                        + ", ".join(repr(k) for k in MODEL_KINDS))
    kind = model["kind"]
    if kind in PLANNED_KINDS:
        raise CaseError(f"model.kind = {_show(kind)}: this model is planned but not part of fastnai "
                        f"{_version}; available: " + ", ".join(repr(k) for k in MODEL_KINDS))
    if kind not in MODEL_KINDS:
        hint = _suggest(kind, MODEL_KINDS) if isinstance(kind, str) else ""
        raise CaseError(f"model.kind = {_show(kind)}: expected one of "
                        + ", ".join(repr(k) for k in MODEL_KINDS) + hint)
    return kind, model_module(kind)


def _normalise_overrides(overrides) -> dict:
    """Overrides as ``{"section.key": value}`` from a dict, a list of ``key=value`` or None."""
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        _check_structure(overrides, "overrides")
        return _plain(overrides)
    if isinstance(overrides, (str, bytes)) or not isinstance(overrides, Iterable):
        raise CaseError("overrides are a dict {'section.key': value} or a list of "
                        f"'section.key=value' strings, got {type(overrides).__name__}")
    items = list(overrides)
    if not all(isinstance(item, str) for item in items):
        raise CaseError("overrides given as a list are 'section.key=value' strings")
    return parse_overrides(items)


def _split_overrides(overrides: dict, arrays) -> tuple[dict, dict]:
    """Section-key overrides, and those of array-of-tables entries keyed
    ``(array, index, leaf)`` (``protocol.N.leaf``)."""
    plain, tables = {}, {}
    for name, value in overrides.items():
        match = _TABLE_KEY.match(name) if isinstance(name, str) else None
        if match and match.group(1) in arrays:
            tables[(match.group(1), int(match.group(2)), match.group(3))] = value
        else:
            plain[name] = value
    return plain, tables


def _check_names(names, keys: dict, kind: str) -> None:
    """Every given or overridden name is a key of the model (else: the section or key error)."""
    for name in names:
        if not isinstance(name, str) or name not in keys:
            sections = {k.section for k in keys.values()}
            section = str(name).split(".", 1)[0]
            if section not in sections:
                raise CaseError(f"unknown section {_show(section)} (in {_show(name)}) for a {kind} "
                                "case; "
                                f"sections are {', '.join(sorted(sections))}"
                                + _suggest(section, sections))
            raise CaseError(f"unknown key {_show(name)} for a {kind} case" + _suggest(str(name), keys)
                            + f" (see `fastnai schema {kind}`)")


def _apply_materials(layered: dict, keys: dict, values: dict, origin: dict) -> None:
    """The material layer: properties of the named materials fill the keys that declare them."""
    for section in {k.section for k in keys.values()}:
        mname = layered.get(f"{section}.material")
        if mname is None:
            continue
        if not isinstance(mname, str):
            raise CaseError(f"{section}.material = {_show(mname)}: expected a material name "
                            "(see `fastnai materials`)")
        try:
            material = get_material(mname)
        except CaseError as exc:
            raise CaseError(f"{section}.material = {_show(mname)}: {exc}") from None
        for name, key in keys.items():
            if key.section == section and key.material_property in material.properties:
                values[name] = _material_value(material[key.material_property], key)
                origin[name] = f"material {mname}"


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
    kind, module = _model_of(raw)
    keys: dict[str, schema.Key] = module.KEYS
    arrays = getattr(module, "TABLE_ARRAYS", {})
    raw_tables = {name: raw.pop(name) for name in arrays if name in raw}
    given = _flatten(raw)
    overrides, table_overrides = _split_overrides(_normalise_overrides(overrides), arrays)
    _check_names([*given, *overrides], keys, kind)

    values: dict[str, Any] = {name: key.default for name, key in keys.items()}
    origin = dict.fromkeys(keys, "default")
    _apply_materials({**given, **overrides}, keys, values, origin)
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
    for name, value in [*values.items(), *tables.items()]:
        bad = schema.first_non_finite(value, name)
        if bad is not None:  # a default or a material value: coerce() refuses non-finite input
            raise CaseError(f"{bad}: the resolved value is not finite ({origin.get(name, 'case')});"
                            " NaN and infinity are never accepted")
    case = Case(kind, MappingProxyType(values), MappingProxyType(origin), MappingProxyType(tables))
    module.validate(case)
    return case
