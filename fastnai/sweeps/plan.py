"""The plan of a sweep: the values of the swept keys, the points, and sweep files.

See :mod:`fastnai.sweeps` for the specs and the sweep-file format.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import schema
from ..case import Case, _read, coerce, load_case, parse_overrides
from ..errors import CaseError
from ..models import model_module

#: Format tag of ``sweep.json``.
FORMAT = "fastnai.sweep/1"
#: The dimension of a zipped sweep.
POINT_DIM = "sweep_point"
#: Ways to merge a dimension whose coordinate differs between points.
JOINS = ("pad", "outer", "exact")
#: Most points one sweep may have (each is validated before any runs).
MAX_POINTS = 10_000_000
_SPACINGS = {"lin": "lin", "linear": "lin", "log": "log"}
_TABLE_KEY = re.compile(r"^(\w+)\.(\d+)\.(\w+)$")  # protocol.0.current_density
_SWEEP_FILE_KEYS = ("case", "vary", "set", "zip", "seeds", "ensemble", "weights", "join",
                    "variables", "output_dir", "plot")


def _literal(text: str) -> Any:
    """A TOML literal ('1e17', '400', 'true', '[1, 2]'), or the text itself ('4.1 eV')."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _plain(value: Any) -> Any:
    """NumPy scalars as Python numbers (the case loader checks Python types)."""
    return value.item() if isinstance(value, np.generic) else value


def _round15(value: float) -> float:
    """15 significant digits: the digits a decimal input carries (as the case loader does)."""
    return float(f"{value:.15g}")


def _count(text: str, where: str) -> int:
    num = _literal(text)
    if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= 1_000_000:
        raise CaseError(f"{where}: NUM = {text!r}: expected a whole number of values, 1 to 1e6")
    return num


def _range_end(key: schema.Key, text: str, where: str, label: str) -> float:
    if not text:
        raise CaseError(f"{where}: {label} is empty")
    try:
        return float(coerce(key, _literal(text)))
    except CaseError as exc:
        raise CaseError(f"{where}: {label}: {exc}") from None


def _range(key: schema.Key, name: str, text: str, where: str) -> list:
    """SI values of 'START:STOP:NUM[:lin|log]' or 'lognormal:MEDIAN:SIGMA:NUM'."""
    if key.kind not in (schema.QUANTITY, schema.NUMBER, schema.INTEGER):
        raise CaseError(f"{where}: a range needs a numeric key, and {name} takes "
                        f"{key.describe_range()}: give a list instead, e.g. 'a,b'")
    parts = [p.strip() for p in text.split(":")]
    if parts[0].lower() == "lognormal":
        if len(parts) != 4:
            median = f"20 {key.unit}" if key.unit else "20"
            raise CaseError(f"{where}: expected lognormal:MEDIAN:SIGMA:NUM, "
                            f"e.g. 'lognormal:{median}:0.3:8'")
        if key.kind == schema.INTEGER:
            raise CaseError(f"{where}: a lognormal distribution needs a real-valued key")
        from scipy.special import ndtri

        median = _range_end(key, parts[1], where, "MEDIAN")
        sigma = _literal(parts[2])
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not (
                math.isfinite(sigma) and sigma > 0):
            raise CaseError(f"{where}: SIGMA = {parts[2]!r}: expected a number > 0 (the "
                            "standard deviation of the natural logarithm)")
        if median <= 0:
            raise CaseError(f"{where}: MEDIAN must be > 0 for a lognormal distribution")
        num = _count(parts[3], where)
        values = median * np.exp(sigma * ndtri((np.arange(num) + 0.5) / num))
    else:
        if len(parts) not in (3, 4):
            if key.unit:  # the key's own unit, never another key's (a dimensionless key has none)
                example = f"'1 {key.unit}:2 {key.unit}:5' or '1:2:5' (bare numbers in {key.unit})"
            else:
                example = "'1:9:5'" if key.kind == schema.INTEGER else "'0.1:0.9:5' (no unit)"
            raise CaseError(f"{where}: expected START:STOP:NUM or START:STOP:NUM:log, e.g. {example}")
        start = _range_end(key, parts[0], where, "START")
        stop = _range_end(key, parts[1], where, "STOP")
        num = _count(parts[2], where)
        spacing = _SPACINGS.get(parts[3].lower()) if len(parts) == 4 else "lin"
        if spacing is None:
            raise CaseError(f"{where}: spacing {parts[3]!r}: expected 'lin' or 'log'")
        if spacing == "log":
            if start <= 0 or stop <= 0:
                raise CaseError(f"{where}: log spacing needs START and STOP > 0")
            values = np.geomspace(start, stop, num)
        else:
            values = np.linspace(start, stop, num)
    values = [_round15(v) for v in values]
    if key.kind == schema.INTEGER:
        ints = [round(v) for v in values]
        if any(abs(i - v) > 1e-9 * max(1.0, abs(v)) for i, v in zip(ints, values, strict=True)):
            raise CaseError(f"{where}: {name} takes integers, and this range gives "
                            f"{', '.join(f'{v:g}' for v in values)}: choose START, STOP and NUM "
                            "so that the steps are whole numbers, or give a list")
        return ints
    return values


def values_for(key: schema.Key, spec: Any, *, name: str | None = None) -> list:
    """The SI values a ``vary`` spec gives for one case key (converted and range-checked).

    Parameters
    ----------
    key
        The key's schema entry (``fastnai.models.<kind>.KEYS[name]``).
    spec
        A range ``"START:STOP:NUM[:lin|log]"``, ``"lognormal:MEDIAN:SIGMA:NUM"``, a
        comma-separated list or TOML array as text, a sequence of values, or one value (see the
        module docstring).
    name
        The key's full name for messages (``protocol.0.current_density``); default ``key.name``.

    Returns
    -------
    list
        Values in the key's schema unit (SI, energies in eV): float, int, str or bool.

    Raises
    ------
    CaseError
        For a malformed spec, a value of the wrong type or unit dimension, or out of range.

    Examples
    --------
    >>> from fastnai.models.band_bending import KEYS
    >>> values_for(KEYS["semiconductor.donor_density"], "1e17 cm^-3:1e19 cm^-3:3:log")
    [1e+23, 1e+24, 1e+25]
    >>> values_for(KEYS["contact.work_function"], "4.2 eV:4.8 eV:4")
    [4.2, 4.4, 4.6, 4.8]
    >>> values_for(KEYS["model.geometry"], "planar,sphere")
    ['planar', 'sphere']
    >>> values_for(KEYS["mesh.n_nodes"], [400, "800"])
    Traceback (most recent call last):
    ...
    fastnai.errors.CaseError: vary mesh.n_nodes = [400, '800']: mesh.n_nodes = '800': expected an integer
    """
    name = name or key.name
    shown = repr(spec) if len(repr(spec)) <= 80 else repr(spec)[:60] + "..."
    where = f"vary {name} = {shown}"
    if key.kind == schema.QUANTITY_LIST:
        raise CaseError(f"{where}: {name} holds a list of values and cannot be swept")
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise CaseError(f"{where}: no values")
        if ":" in text:
            items = _range(key, name, text, where)
        elif text.startswith("["):
            items = _literal(text)
            if not isinstance(items, list):
                raise CaseError(f"{where}: cannot read the list (expected a TOML array such as "
                                "'[400, 800]')")
        else:
            items = [_literal(t.strip()) for t in text.split(",")]
            if any(t == "" for t in items):
                raise CaseError(f"{where}: an empty item in the comma-separated list")
    elif isinstance(spec, (list, tuple, np.ndarray)):
        items = [_plain(v) for v in (np.ravel(spec) if isinstance(spec, np.ndarray) else spec)]
    else:
        items = [_plain(spec)]
    if not items:
        raise CaseError(f"{where}: no values")
    values = []
    for item in items:
        try:
            values.append(coerce(key, item))
        except CaseError as exc:
            raise CaseError(f"{where}: {exc}") from None
    return values


def _udunits(unit: str) -> str:
    """A schema unit (pint syntax: 'm^-2 eV^-1', 'mA h / g') as a UDUNITS string ('m-2 eV-1').

    >>> _udunits("m^-3"), _udunits("mA h / g"), _udunits("V/s"), _udunits("m^2 V^-1 s^-1")
    ('m-3', 'mA h g-1', 'V s-1', 'm2 V-1 s-1')
    """
    out = []
    invert = False
    for token in unit.replace("/", " / ").replace("*", " ").split():
        if token == "/":
            invert = True  # pint: '/' divides by the next factor only
            continue
        base, _, power = token.partition("^")
        p = float(power) if power else 1.0
        p = -p if invert else p
        invert = False
        text = str(int(p)) if p.is_integer() else repr(p)
        out.append(base if p == 1 else base + text)
    return " ".join(out)


def _coord_units(key: schema.Key) -> str | None:
    if key.kind == schema.QUANTITY:
        return _udunits(key.unit)
    if key.kind in (schema.NUMBER, schema.INTEGER):
        return "1"
    return None


def _fmt(value: Any, units: str | None = None) -> str:
    if isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    return f"{text} {units}" if units and units != "1" else text


# --------------------------------------------------------------------------------------------
# the plan of a sweep


@dataclasses.dataclass(frozen=True)
class Axis:
    """One swept key: its values in the key's schema unit and its coordinate metadata."""

    key: str
    values: tuple
    units: str | None
    long_name: str


@dataclasses.dataclass(frozen=True)
class Plan:
    """A validated sweep: the case as read, fixed overrides, swept axes, grid or zip.

    Points are numbered in C order over the grid (the last axis fastest), or along the
    zipped values.
    """

    kind: str
    raw_case: dict
    overrides: dict
    axes: tuple[Axis, ...]
    zipped: bool
    case_toml: str

    @property
    def dims(self) -> tuple[str, ...]:
        return (POINT_DIM,) if self.zipped else tuple(a.key for a in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        if self.zipped:
            return (len(self.axes[0].values),)
        return tuple(len(a.values) for a in self.axes)

    @property
    def n_points(self) -> int:
        return math.prod(self.shape)

    def point(self, index: int) -> dict[str, Any]:
        """Swept key -> value of point ``index``."""
        if self.zipped:
            return {a.key: a.values[index] for a in self.axes}
        where = np.unravel_index(index, self.shape)
        return {a.key: a.values[int(k)] for a, k in zip(self.axes, where, strict=True)}

    def overrides_for(self, index: int) -> dict[str, Any]:
        """The overrides :func:`fastnai.run` gets for point ``index``."""
        return {**self.overrides, **self.point(index)}

    def describe(self, index: int) -> str:
        units = {a.key: a.units for a in self.axes}
        return ", ".join(f"{k}={_fmt(v, units[k])}" for k, v in self.point(index).items())

    @property
    def sweep_id(self) -> str:
        """Fingerprint of what the points depend on: the case, the overrides and the values."""
        payload = json.dumps({"case": self.raw_case, "overrides": self.overrides,
                              "axes": [[a.key, list(a.values)] for a in self.axes],
                              "zip": self.zipped}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def to_json(self) -> dict:
        return {"format": FORMAT, "sweep_id": self.sweep_id, "kind": self.kind,
                "n_points": self.n_points, "zip": self.zipped,
                "axes": [dataclasses.asdict(a) | {"values": list(a.values)} for a in self.axes],
                "overrides": self.overrides, "case": self.raw_case, "case_toml": self.case_toml}

    @classmethod
    def from_json(cls, data: Mapping) -> Plan:
        axes = tuple(Axis(a["key"], tuple(a["values"]), a["units"], a["long_name"])
                     for a in data["axes"])
        return cls(data["kind"], data["case"], data["overrides"], axes, data["zip"],
                   data["case_toml"])


def _as_overrides(overrides: Mapping[str, Any] | Iterable[str] | None) -> dict[str, Any]:
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return {str(k): _plain(v) for k, v in overrides.items()}
    if isinstance(overrides, str):
        overrides = [overrides]
    return parse_overrides(overrides)


def parse_vary(items: Iterable[str]) -> dict[str, str]:
    """``["KEY=SPEC", ...]`` (``--vary``) -> ``{key: spec}``.

    >>> parse_vary(["contact.work_function=4.1 eV,4.5 eV", "mesh.n_nodes=200:400:3"])
    {'contact.work_function': '4.1 eV,4.5 eV', 'mesh.n_nodes': '200:400:3'}
    """
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise CaseError(f"--vary {item!r}: expected KEY=SPEC, e.g. "
                            "semiconductor.donor_density='1e17 cm^-3:1e19 cm^-3:5:log'")
        key, spec = (s.strip() for s in item.split("=", 1))
        if not key:
            raise CaseError(f"--vary {item!r}: the key is empty")
        if not spec:
            raise CaseError(f"--vary {item!r}: no values after '='")
        if key in out:
            raise CaseError(f"--vary {key}: the key is given twice")
        out[key] = spec
    return out


def _as_vary(vary: Mapping[str, Any] | Iterable[str] | str | None) -> dict[str, Any]:
    if vary is None:
        return {}
    if isinstance(vary, Mapping):
        return {str(k): v for k, v in vary.items()}
    if isinstance(vary, str):
        vary = [vary]
    return parse_vary(vary)


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _lookup_key(case: Case, name: str) -> schema.Key:
    """The schema entry of a case key, including entries of arrays of tables."""
    if name == "model.kind":
        raise CaseError("model.kind cannot be swept: a sweep runs one model (run one sweep per "
                        "model)")
    keys = case.keys
    if name in keys:
        return keys[name]
    arrays = getattr(model_module(case.kind), "TABLE_ARRAYS", {})
    match = _TABLE_KEY.match(name)
    if match and match.group(1) in arrays:
        table, index, leaf = match.group(1), int(match.group(2)), match.group(3)
        entries = case.tables[table]
        if index >= len(entries):
            raise CaseError(f"vary {name}: the case has {len(entries)} [[{table}]] entries "
                            "(numbered from 0)")
        step = entries[index]["step"]
        step_keys = arrays[table][step]
        if leaf not in step_keys:
            raise CaseError(f"vary {name}: unknown key {leaf!r} for a {step!r} step"
                            + _suggest(leaf, step_keys) + "; keys are " + ", ".join(step_keys))
        return step_keys[leaf]
    raise CaseError(f"vary {name}: unknown key {name!r} for a {case.kind} case"
                    + _suggest(name, keys) + f" (see `fastnai schema {case.kind}`)")


def _seed_key(case: Case) -> str:
    seeds = [name for name in case.keys if name.endswith(".seed")]
    if not seeds:
        raise CaseError(f"seeds: a {case.kind} case has no random seed (no key named *.seed); "
                        "seed ensembles apply to models with random nucleation (deposition)")
    return seeds[0]


def plan_sweep(case: Case | str | os.PathLike | Mapping,
               vary: Mapping[str, Any] | Iterable[str] | None = None, *,
               zip: bool = False, overrides: Mapping[str, Any] | Iterable[str] | None = None,
               seeds: int | None = None) -> Plan:
    """Validate a sweep without running it: its points and the values of its swept keys.

    Parameters
    ----------
    case
        A case: TOML path, dict or :class:`~fastnai.case.Case` (not a sweep file; see
        :func:`sweep`).
    vary
        ``{key: spec}`` or ``["KEY=SPEC", ...]``; specs as in :func:`values_for`.
    zip
        Pair the keys' values (equal lengths) instead of taking their outer product.
    overrides
        Fixed overrides of every point, ``{key: value}`` or ``["key=value", ...]``.
    seeds
        Add the model's ``*.seed`` key with this many consecutive values, starting at the
        case's seed, as the last (fastest) grid dimension.

    Returns
    -------
    Plan

    Raises
    ------
    CaseError
        For a bad case, key or value, or when any point's case is invalid.

    Examples
    --------
    >>> case = {"model": {"kind": "band_bending"},
    ...         "semiconductor": {"material": "anatase-TiO2"}, "contact": {"material": "TiC"}}
    >>> plan = plan_sweep(case, ["semiconductor.donor_density=1e17 cm^-3:1e19 cm^-3:3:log",
    ...                          "contact.work_function=4.1 eV,4.4 eV"])
    >>> plan.dims, plan.shape, plan.n_points
    (('semiconductor.donor_density', 'contact.work_function'), (3, 2), 6)
    >>> plan.describe(1)
    'semiconductor.donor_density=1e+23 m-3, contact.work_function=4.4 eV'
    """
    if isinstance(case, Case):
        raw = tomllib.loads(case.to_toml())
    else:
        raw = _read(case)
    if "sweep" in raw:
        raise CaseError("this is a sweep file ([sweep] table): pass it to sweep() or "
                        "`fastnai sweep`, or read it with read_sweep_file()")
    fixed = _as_overrides(overrides)
    base = load_case(raw, fixed)
    specs = _as_vary(vary)
    if seeds is not None:
        _add_seeds(specs, base, seeds, zip)
    if not specs:
        raise CaseError("nothing to vary: give at least one --vary KEY=SPEC (or --seeds N)")
    axes = [_axis(base, name, spec, fixed, zip) for name, spec in specs.items()]
    if zip and len({len(a.values) for a in axes}) > 1:
        raise CaseError("zip pairs the values of every key, so they need equal numbers of "
                        "values; got " + ", ".join(f"{a.key}: {len(a.values)}" for a in axes))
    plan = Plan(base.kind, raw, fixed, tuple(axes), bool(zip), base.to_toml())
    if plan.n_points > MAX_POINTS:
        raise CaseError(f"the sweep has {plan.n_points:.3g} points, more than {MAX_POINTS:.0e}: "
                        "split it into several sweeps")
    _check_points(plan)
    return plan


def _add_seeds(specs: dict, base, seeds, zip) -> None:
    """Vary the model's seed key over ``seeds`` consecutive values from the case's own."""
    if zip:
        raise CaseError("seeds make an ensemble dimension of a grid sweep: drop zip, or vary "
                        "the seed key in the zip yourself")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= 1_000_000:
        raise CaseError(f"seeds = {seeds!r}: expected a whole number of ensemble members >= 1")
    seed_key = _seed_key(base)
    if seed_key in specs:
        raise CaseError(f"{seed_key} is varied and set by seeds: give one of them")
    first = base[seed_key]
    specs[seed_key] = list(range(first, first + seeds))


def _axis(base, name: str, spec, fixed, zip) -> Axis:
    """One swept key: its values (distinct in a grid), units and doc."""
    if name in fixed:
        raise CaseError(f"{name} is both set (--set) and varied (--vary): give it once")
    key = _lookup_key(base, name)
    values = values_for(key, spec, name=name)
    if not zip and len(set(values)) != len(values):
        raise CaseError(f"vary {name}: the values repeat ({', '.join(map(str, values))}); "
                        "a grid dimension needs distinct values")
    return Axis(name, tuple(values), _coord_units(key), key.doc or name)


def _check_points(plan) -> None:
    """Every point's case is validated before any runs; the resolved base case holds bare SI
    numbers, so this needs no unit parsing (the same checks as load_case on the raw case)."""
    resolved = tomllib.loads(plan.case_toml)
    for index in range(plan.n_points):
        try:
            load_case(resolved, plan.point(index))
        except CaseError as exc:
            raise CaseError(f"sweep point {index} ({plan.describe(index)}): {exc}") from None


# --------------------------------------------------------------------------------------------
# sweep files


def _flatten_keys(table: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"mesh": {"n_nodes": 4}, "a.b": 1}`` -> ``{"mesh.n_nodes": 4, "a.b": 1}``."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten_keys(v, name + "."))
        else:
            out[name] = v
    return out


def read_sweep_file(path: str | os.PathLike | Mapping) -> dict[str, Any]:
    """Read a sweep file (TOML with a ``[sweep]`` table; see the module docstring).

    Parameters
    ----------
    path
        The file, or its content as a dict (then relative paths are read from the working
        directory).

    Returns
    -------
    dict
        The keyword arguments of :func:`sweep` the file sets: ``case`` (a path or the inline
        case tables), ``vary``, ``overrides``, and those of ``zip``, ``seeds``, ``ensemble``,
        ``weights``, ``join``, ``variables``, ``output_dir`` and ``plot`` it gives.

    Examples
    --------
    >>> spec = read_sweep_file({"sweep": {"case": "cases/band_bending_ticn_tio2.toml",
    ...                                   "vary": {"contact.work_function": "4.1 eV,4.7 eV"},
    ...                                   "set": {"mesh": {"n_nodes": 400}}}})
    >>> spec["vary"], spec["overrides"]
    ({'contact.work_function': '4.1 eV,4.7 eV'}, {'mesh.n_nodes': 400})
    """
    raw = _read(path)
    folder = Path(path).parent if isinstance(path, (str, os.PathLike)) else Path()
    where = f"sweep file {str(path)!r}" if isinstance(path, (str, os.PathLike)) else "sweep"
    table = raw.pop("sweep", None)
    if not isinstance(table, Mapping):
        raise CaseError(f"{where}: expected a [sweep] table")
    for name in table:
        if name not in _SWEEP_FILE_KEYS:
            raise CaseError(f"{where}: unknown key sweep.{name}" + _suggest(name, _SWEEP_FILE_KEYS)
                            + "; keys are " + ", ".join(_SWEEP_FILE_KEYS))
    out: dict[str, Any] = {}
    if "case" in table:
        if raw:
            raise CaseError(f"{where}: give the case either as sweep.case or as tables in the "
                            f"file, not both (found sweep.case and [{', '.join(raw)}])")
        if not isinstance(table["case"], str):
            raise CaseError(f"{where}: sweep.case = {table['case']!r}: expected a path")
        out["case"] = str(folder / table["case"])
    elif raw:
        out["case"] = raw
    else:
        raise CaseError(f"{where}: no case: set sweep.case = 'path/to/case.toml' or add the "
                        "case's tables ([model], ...) to the file")
    for name in ("vary", "set"):
        value = table.get(name, {})
        if not isinstance(value, Mapping):
            raise CaseError(f"{where}: sweep.{name} must be a table of key = value")
        out["vary" if name == "vary" else "overrides"] = _flatten_keys(value)
    for name in ("zip", "seeds", "ensemble", "weights", "join", "variables", "output_dir",
                 "plot"):
        if name in table:
            out[name] = table[name]
    if isinstance(out.get("plot"), str):
        out["plot"] = [out["plot"]]
    return out


@dataclasses.dataclass
class _Spec:
    """A sweep's settings after a sweep file and explicit arguments are layered."""

    case: Any
    vary: dict
    zip: bool = False
    overrides: dict = dataclasses.field(default_factory=dict)
    seeds: int | None = None
    ensemble: str | None = None
    weights: Any = None
    join: str = "pad"
    variables: Any = None
    output_dir: str | None = None
    plot: list = dataclasses.field(default_factory=list)


def _is_sweep_file(case: Any) -> bool:
    if isinstance(case, Mapping):
        return "sweep" in case
    if isinstance(case, (str, os.PathLike)) and Path(case).is_file():
        try:
            with open(case, "rb") as fh:
                return "sweep" in tomllib.load(fh)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            return False  # load_case reports it
    return False


def _layer(case: Any, **given: Any) -> _Spec:
    """Settings from a sweep file (when ``case`` is one), overridden by the given arguments."""
    base = read_sweep_file(case) if _is_sweep_file(case) else {"case": case}
    spec = _Spec(case=base["case"], vary=_as_vary(base.get("vary")))
    spec.overrides = _as_overrides(base.get("overrides"))
    for name in ("zip", "seeds", "ensemble", "weights", "join", "variables", "output_dir",
                 "plot"):
        if name in base:
            setattr(spec, name, base[name])
    spec.vary.update(_as_vary(given.pop("vary", None)))
    spec.overrides.update(_as_overrides(given.pop("overrides", None)))
    for name, value in given.items():
        if value is not None:
            setattr(spec, name, value)
    if spec.join not in JOINS:
        raise CaseError(f"join = {spec.join!r}: expected one of " + ", ".join(map(repr, JOINS)))
    spec.variables = _as_names(spec.variables)
    if not isinstance(spec.zip, bool):
        raise CaseError(f"zip = {spec.zip!r}: expected true or false")
    if spec.seeds is not None and spec.ensemble is None:
        spec.ensemble = "*seed*"  # the seed key, resolved with the plan
    return spec


def _resolve_ensemble(spec: _Spec, plan: Plan) -> str | None:
    if spec.ensemble is None:
        return None
    name = plan.axes[-1].key if spec.ensemble == "*seed*" else spec.ensemble
    if plan.zipped:
        raise CaseError(f"ensemble {name}: statistics over an ensemble need a grid sweep (not "
                        "zip), with the ensemble key as one of its dimensions")
    if name not in plan.dims:
        raise CaseError(f"ensemble {name!r}: expected one of the swept keys "
                        + ", ".join(plan.dims) + _suggest(name, plan.dims))
    return name



def _as_names(variables: Iterable[str] | str | None) -> list[str] | None:
    if variables is None:
        return None
    if isinstance(variables, str):
        variables = [v.strip() for v in variables.split(",")]
    names = [str(v) for v in variables if str(v)]
    if not names:
        raise CaseError("variables: expected at least one variable name")
    return names


def _check_count(value: Any, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise CaseError(f"{name} = {value!r}: expected a whole number >= 1")
