"""Case-key declarations: type, unit, default, allowed range and source of every key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

QUANTITY = "quantity"  # a number in `unit`, or a string with units of the same dimension
NUMBER = "number"  # a dimensionless real number
INTEGER = "integer"
CHOICE = "choice"  # one of `choices`
STRING = "string"
BOOLEAN = "boolean"
QUANTITY_LIST = "quantity list"  # a non-empty list of quantities in `unit`


@dataclass(frozen=True)
class Key:
    """One case key.

    Parameters
    ----------
    name
        Dotted name, ``section.key``.
    kind
        One of QUANTITY, NUMBER, INTEGER, CHOICE, STRING, BOOLEAN.
    default
        Default value in SI (in ``unit``); ``None`` means "not set" (see ``required``).
    unit
        The unit bare numbers are read in and the resolved value is stored in (SI, energies in
        eV), as a pint-parsable string; ``None`` for dimensionless kinds.
    minimum, maximum
        Allowed range (in ``unit``); ``exclusive_minimum`` makes the lower bound strict.
    choices
        Allowed values of a CHOICE key.
    required
        A value must be present after defaults, material and case are layered.
    material_property
        Name of the material-database property that supplies the value when the section names
        a material.
    doc
        One line: what the key means.
    source
        Where the default comes from (DOI, or "assumed", or "numerical").
    """

    name: str
    kind: str
    default: Any = None
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()
    required: bool = False
    material_property: str | None = None
    doc: str = ""
    source: str = ""

    @property
    def section(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def leaf(self) -> str:
        return self.name.split(".", 1)[1]

    def describe_range(self) -> str:
        """Human-readable allowed range, for messages and ``fastnai schema``."""
        if self.kind == CHOICE:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == BOOLEAN:
            return "true or false"
        if self.kind == STRING:
            return "a string"
        if self.kind == QUANTITY_LIST:
            inner = Key(self.name, QUANTITY, unit=self.unit, minimum=self.minimum,
                        maximum=self.maximum, exclusive_minimum=self.exclusive_minimum)
            return "a list of 1 to 1000 values, each " + inner.describe_range()
        lo = self.minimum
        hi = self.maximum
        unit = f" {self.unit}" if self.unit else ""
        if lo is not None and hi is not None:
            op = "<" if self.exclusive_minimum else "<="
            return f"{_fmt(lo)} {op} value <= {_fmt(hi)}{unit}"
        if lo is not None:
            op = ">" if self.exclusive_minimum else ">="
            return f"value {op} {_fmt(lo)}{unit}"
        if hi is not None:
            return f"value <= {_fmt(hi)}{unit}"
        return "any finite value"

    def in_range(self, value: float) -> bool:
        """Whether ``value`` (in ``unit``) is allowed; NaN and +-inf never are (SPEC 6: nothing
        non-finite is accepted, whatever the range)."""
        if not is_finite_number(value):
            return False
        if self.minimum is not None:
            if value < self.minimum or (self.exclusive_minimum and value == self.minimum):
                return False
        return self.maximum is None or value <= self.maximum


def is_finite_number(value: Any) -> bool:
    """A real number that is neither NaN nor +-inf (booleans are not numbers here).

    >>> is_finite_number(1e300), is_finite_number(float("nan")), is_finite_number(10**400)
    (True, False, False)
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond the float range
        return False


def first_non_finite(value: Any, name: str = "") -> str | None:
    """The dotted path of the first NaN or +-inf float in a resolved value, or None.

    Walks tuples, lists and mappings (the resolved values and ``[[protocol]]`` entries of a
    case) without recursion.

    >>> first_non_finite({"a": (1.0, 2.0), "b": {"c": float("inf")}}, "x")
    'x.b.c'
    >>> first_non_finite((1.0, "nan", 3)) is None
    True
    """
    stack: list[tuple[str, Any]] = [(name, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return where
        if isinstance(item, (list, tuple)):
            stack.extend((f"{where}[{k}]", v) for k, v in reversed(list(enumerate(item))))
        elif isinstance(item, Mapping):
            stack.extend((f"{where}.{k}" if where else str(k), v)
                         for k, v in reversed(list(item.items())))
    return None


def _fmt(x: float) -> str:
    return f"{x:g}"


def _default_text(key: Key) -> str:
    if key.default is None:
        text = "required" if key.required else "(not set)"
        return text + (" / from material" if key.material_property else "")
    if isinstance(key.default, float):
        return _fmt(key.default)
    if isinstance(key.default, tuple):
        return "[" + ", ".join(_fmt(v) for v in key.default) + "]"
    return str(key.default)


def _row(name: str, key: Key) -> tuple[str, str, str, str, str]:
    kind = key.kind + (f" [{key.unit}]" if key.unit else "")
    meaning = key.doc + (f" ({key.source})" if key.source else "")
    return (name, kind, _default_text(key), key.describe_range(), meaning)


def _table(rows: list[tuple[str, ...]]) -> str:
    """Rows of five columns, the first four padded; a rule under the header row."""
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
    lines.insert(1, "-" * (sum(widths) + 8 + 20))
    return "\n".join(line.rstrip() for line in lines)


def schema_table(keys: dict[str, Key]) -> str:
    """Plain-text table of a model's keys: name, type and unit, default, range, source."""
    rows = [("key", "type [unit]", "default", "allowed", "source / meaning")]
    rows.extend(_row(key.name, key) for key in keys.values())
    return _table(rows)


def table_array_table(name: str, kinds: Mapping[str, Mapping[str, Key]]) -> str:
    """Plain-text table of the entries of an array of tables (``[[protocol]]``): every ``step``
    type with its keys (type and unit, default, range, meaning), from the model's declarations.

    >>> print(table_array_table("protocol", {"rest": {"duration": Key(
    ...     "duration", QUANTITY, None, "s", 0.0, exclusive_minimum=True, required=True,
    ...     doc="open-circuit time")}}))
    [[protocol]] steps: each entry sets step = "rest" and that step's keys (--set protocol.N.KEY=VALUE)
    step / key  type [unit]   default   allowed      source / meaning
    ---------------------------------------------------------------------
    rest
      duration  quantity [s]  required  value > 0 s  open-circuit time
    """
    rows = [("step / key", "type [unit]", "default", "allowed", "source / meaning")]
    for step, keys in kinds.items():
        rows.append((step, "", "", "", "" if keys else "(no keys)"))
        rows.extend(_row(f"  {leaf}", key) for leaf, key in keys.items())
    steps = " | ".join(f'"{step}"' for step in kinds)
    head = (f"[[{name}]] steps: each entry sets step = {steps} and that step's keys "
            f"(--set {name}.N.KEY=VALUE)")
    return head + "\n" + _table(rows)
