"""``[[protocol]]`` compiled into typed segments: the one place the step types are expanded.

Every time-dependent model (drift_diffusion, film_stress in diffusion mode, deposition) runs
the same list of :class:`Segment` through :func:`fastnai.runner.run_protocol`. A segment holds
one control (equilibrate, current, voltage, linear sweep, a sine of voltage or current) for a
duration or until a cut-off, or measures an impedance spectrum about the state (no time passes);
a GITT step expands into pulse/rest pairs, a CV step into vertex-to-vertex sweeps per scan
rate (each scan rate starting again from the state at the start of the step), a deposition
``cycle`` into plate/strip (and rest) halves.

Sign convention: currents are anodic positive (Na extraction from the electrode: charge,
strip); discharge and plating are negative.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

__all__ = ["CONTROLS", "Segment", "compile_protocol", "planned_duration"]

#: What a segment holds fixed.
CONTROLS = ("equilibrate", "current", "voltage", "sweep", "sine_voltage", "sine_current",
            "impedance")

_SIGN = {"discharge": -1.0, "charge": 1.0}


@dataclass(frozen=True)
class Segment:
    """One control held for a time (an integration) or an instantaneous equilibrium.

    Attributes
    ----------
    step
        Index of the ``[[protocol]]`` step it came from; -1 for the initial state.
    name
        The step type as written in the case (``"gitt"``, ``"plate"``, ...).
    control
        ``"equilibrate"`` (the state jumps to equilibrium at ``value``), ``"current"``
        (``value`` held), ``"voltage"`` (``value`` held), ``"sweep"`` (linear in time at
        ``rate`` towards ``value``; NaN: back to the voltage at the start of the step),
        ``"sine_voltage"`` (the voltage at the segment's start plus ``amplitude``
        sin(2 pi ``frequency`` t)), ``"sine_current"`` (``value`` plus ``amplitude``
        sin(2 pi ``frequency`` t), the amplitude per electrolyte area [A m-2]) or
        ``"impedance"`` (a spectrum at ``frequencies`` about the state, which it leaves
        unchanged; no time passes).
    value
        Current (anodic positive; A m-2 or the model's per-particle unit, see the model),
        voltage or sweep target [V].
    duration
        Time the control is held [s]; sweeps take theirs from the distance and ``rate``.
    rate
        Sweep rate (magnitude) [V s-1].
    cutoff
        Cell voltage that ends a current segment (an event), or None [V].
    ends_step
        Reaching ``cutoff`` ends the whole protocol step (the rest of a GITT, say).
    restart
        The segment starts from the state saved at the start of its step (each CV scan rate).
    scan_index
        CV scan-rate index, -1 outside CV.
    index
        Position in the compiled list (records and checkpoints refer to it).
    amplitude, frequency
        Sine segments: amplitude [V, or A m-2] and frequency [Hz].
    points_per_period
        Sine segments: the longest time step is 1 / (frequency points_per_period).
    frequencies
        Impedance segments: the frequencies [Hz], ascending.
    """

    step: int
    name: str
    control: str
    value: float = 0.0
    duration: float = 0.0
    rate: float = 0.0
    cutoff: float | None = None
    ends_step: bool = False
    restart: bool = False
    scan_index: int = -1
    index: int = -1
    amplitude: float = 0.0
    frequency: float = 0.0
    points_per_period: int = 0
    frequencies: tuple[float, ...] = ()

    def __post_init__(self):
        if self.control not in CONTROLS:
            raise ValueError(f"control {self.control!r} is not one of {CONTROLS}")


def compile_protocol(steps: Iterable[Mapping], *, one_c: float = math.nan,
                     initial_voltage: float | None = None) -> list[Segment]:
    """Expand validated ``[[protocol]]`` steps into segments (deterministic: checkpoints index it).

    Parameters
    ----------
    steps
        The case's ``protocol`` list (SI values, as ``case["protocol"]`` resolves them).
    one_c
        The current of 1C (magnitude), for steps given as a C-rate [model's current unit].
    initial_voltage
        If given, a first ``equilibrate`` segment (step -1) at this voltage [V].

    Returns
    -------
    list of Segment

    Examples
    --------
    >>> segs = compile_protocol([{"step": "gitt", "c_rate": 1.0, "direction": "discharge",
    ...                           "cutoff_voltage": 0.1, "pulse_duration": 60.0,
    ...                           "rest_duration": 600.0, "n_pulses": 2}], one_c=2.0)
    >>> [(s.control, s.value, s.duration, s.ends_step) for s in segs[:2]], len(segs)
    ([('current', -2.0, 60.0, True), ('current', 0.0, 600.0, False)], 4)
    >>> segs = compile_protocol([{"step": "cv", "scan_rates": [0.1, 0.2], "lower_voltage": 0.5,
    ...                           "upper_voltage": 3.0, "cycles": 1, "first": "cathodic"}])
    >>> [(s.value, s.rate, s.restart) for s in segs[:3]]
    [(0.5, 0.1, True), (3.0, 0.1, False), (nan, 0.1, False)]
    """
    out: list[Segment] = []
    if initial_voltage is not None:
        out.append(Segment(-1, "initial", "equilibrate", value=float(initial_voltage)))
    for k, st in enumerate(steps):
        out.extend(_expand(k, st, one_c))
    return [replace(seg, index=i) for i, seg in enumerate(out)]


def _expand(k: int, st: Mapping, one_c: float) -> list[Segment]:
    name = st["step"]
    if name == "equilibrate":
        return [Segment(k, name, "equilibrate", value=st["voltage"])]
    if name == "rest":
        return [Segment(k, name, "current", duration=st["duration"])]
    if name in ("constant_voltage", "potential_step"):
        return [Segment(k, name, "voltage", value=st["voltage"], duration=st["duration"])]
    if name == "constant_current":
        duration = st.get("max_duration") or 1.5 * 3600.0 / st["c_rate"]
        return [Segment(k, name, "current", value=_SIGN[st["direction"]] * st["c_rate"] * one_c,
                        duration=duration, cutoff=st.get("cutoff_voltage"), ends_step=True)]
    if name == "gitt":
        pulse = Segment(k, name, "current", value=_SIGN[st["direction"]] * st["c_rate"] * one_c,
                        duration=st["pulse_duration"], cutoff=st.get("cutoff_voltage"),
                        ends_step=True)
        rest = Segment(k, name, "current", duration=st["rest_duration"])
        return [pulse, rest] * st["n_pulses"]
    if name == "cv":
        return _cv(k, st)
    if name == "eis":
        from .protocol_steps import eis_frequencies

        return [Segment(k, name, "impedance",
                        frequencies=tuple(float(f) for f in eis_frequencies(st)))]
    if name == "sine":
        control = "sine_voltage" if st.get("voltage_amplitude") is not None else "sine_current"
        amplitude = st["voltage_amplitude"] if control == "sine_voltage" else st["current_amplitude"]
        return [Segment(k, name, control, value=st.get("current_offset") or 0.0,
                        duration=st["periods"] / st["frequency"], amplitude=amplitude,
                        frequency=st["frequency"], points_per_period=st["points_per_period"])]
    if name in ("plate", "strip"):
        j = st["current_density"]
        duration = st["duration"] if st.get("duration") is not None else st["capacity"] / j
        return [Segment(k, name, "current", value=(-j if name == "plate" else j),
                        duration=duration)]
    if name == "cycle":
        j = st["current_density"]
        half = st["capacity"] / j
        out = []
        for _ in range(st["cycles"]):
            for sign, half_name in ((-1.0, "plate"), (1.0, "strip")):
                out.append(Segment(k, half_name, "current", value=sign * j, duration=half))
                if st.get("rest_duration", 0.0) > 0.0:
                    out.append(Segment(k, "rest", "current", duration=st["rest_duration"]))
        return out
    raise ValueError(f"protocol step {k}: unknown step type {name!r}")


def _cv(k: int, st: Mapping) -> list[Segment]:
    lo, hi = st["lower_voltage"], st["upper_voltage"]
    vertices = [lo, hi] if st.get("first", "cathodic") == "cathodic" else [hi, lo]
    rates = st["scan_rates"] if "scan_rates" in st else [st["scan_rate"]]
    out = []
    for j, rate in enumerate(rates):
        path = vertices * st.get("cycles", 1)
        for m, target in enumerate(path):
            out.append(Segment(k, "cv", "sweep", value=target, rate=rate, restart=(m == 0),
                               scan_index=j))
        # a full cycle ends at the second vertex; a last sweep returns to the start voltage
        out.append(Segment(k, "cv", "sweep", value=math.nan, rate=rate, scan_index=j))
    return out


def planned_duration(segments: Iterable[Segment], start_voltage: float) -> float:
    """Protocol time if no cut-off fires (sweeps from their vertices) [s]; for progress.

    >>> planned_duration(compile_protocol([{"step": "rest", "duration": 10.0},
    ...     {"step": "cv", "scan_rates": [0.5], "lower_voltage": 1.0, "upper_voltage": 3.0}]), 3.0)
    18.0
    """
    total = 0.0
    voltage = start_voltage
    step_start: dict[int, float] = {}
    for seg in segments:
        step_start.setdefault(seg.step, voltage)
        if seg.control == "sweep":
            target = step_start[seg.step] if math.isnan(seg.value) else seg.value
            if seg.restart:
                voltage = step_start[seg.step]
            total += abs(target - voltage) / seg.rate
            voltage = target
        else:
            total += seg.duration
            if seg.control in ("voltage", "equilibrate"):
                voltage = seg.value
    return total
