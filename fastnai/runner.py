"""The protocol runner: one loop over compiled segments for every time-dependent model.

:func:`run_protocol` owns what every protocol run shares: skipping the rest of a step at a
cut-off, CV restarts from the state at the start of the step, sweep durations, progress,
solver statistics under one set of names, checkpoints and resume (through
:class:`~fastnai.lifecycle.Lifecycle`). A model supplies a *cell*: an object with the
interface of :class:`Cell`. Implicit models (drift-diffusion, film stress) advance a segment
with :func:`fastnai.transient.integrate` inside :meth:`Cell.advance`; deposition's explicit
stepper takes its own steps there. Either way the cell calls ``after_step(engine_state)``
after every accepted step, which is where checkpoints and signals are handled.

A checkpoint holds three parts: ``runner`` (segment position, the step being skipped, the
segment's start time, duration and start voltage, the statistics), ``cell`` (the model's
state and records) and ``engine`` (the integrator state inside a segment; empty between
segments and for explicit steppers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from .protocol import Segment, planned_duration

__all__ = ["Cell", "Position", "SolverStats", "run_protocol"]


@dataclass
class SolverStats:
    """Solver statistics of a run, under the names every model's Dataset uses."""

    n_steps: int = 0
    n_rejected_error: int = 0  # steps rejected by error (or front/voltage-change) control
    n_rejected_newton: int = 0  # steps rejected because a nonlinear solve failed
    n_solves: int = 0
    n_newton_iterations: int = 0
    n_event_solves: int = 0
    n_equilibrium_iterations: int = 0

    def add(self, other) -> None:
        """Add the counters of ``other`` (a SolverStats, a StepStats or a mapping)."""
        values = other if isinstance(other, Mapping) else asdict(other)
        for name, value in values.items():
            if hasattr(self, name):
                setattr(self, name, getattr(self, name) + int(value))

    def as_attrs(self) -> dict[str, int]:
        """``{"solver_n_steps": ..., ...}`` for the Dataset's attributes."""
        return {f"solver_{k}": int(v) for k, v in asdict(self).items()}


class Cell(Protocol):
    """What a model implements to be driven by :func:`run_protocol`.

    ``t`` is the model time [s]. ``voltage()`` and ``current()`` give the present electrode
    voltage [V] and current (anodic positive); ``cell_voltage(current)`` the voltage a cut-off
    is compared with at that current (with any series resistance).
    """

    t: float

    def voltage(self) -> float: ...

    def current(self) -> float: ...

    def cell_voltage(self, current: float) -> float: ...

    def equilibrate(self, segment: Segment) -> int:
        """Jump to equilibrium at ``segment.value`` [V], record it; return the Newton
        iterations."""
        ...

    def mark_step_start(self) -> None:
        """Save the present state as the start of a protocol step (for CV restarts)."""
        ...

    def restart_from_step_start(self) -> None:
        """Return to the state saved by :meth:`mark_step_start` (time goes on)."""
        ...

    def begin(self, segment: Segment, *, t0: float, v_start: float, target: float,
              resuming: bool) -> None:
        """Set the segment's control: current ``segment.value``, or a voltage ramp from
        ``v_start`` at ``t0`` towards ``target``; unless ``resuming``, record the first state
        (a voltage step jumps)."""
        ...

    def advance(self, segment: Segment, t_end: float, after_step: Callable[[Mapping], None],
                engine: Mapping | None, stats: SolverStats) -> bool:
        """Step to ``t_end`` or to the cut-off event; True when the cut-off fired.

        Call ``after_step(engine_state)`` after every accepted step but the segment's last
        (``engine_state``: a function returning the integrator's checkpoint part, or None for
        an explicit stepper whose state is all in :meth:`state`); add the segment's
        counters to ``stats`` when it ends. ``engine``: resume inside the segment from it.
        """
        ...

    def impedance(self, segment: Segment) -> None:
        """Record the impedance spectrum at ``segment.frequencies`` about the present state,
        which it leaves unchanged (models whose cases accept ``eis`` steps)."""
        ...

    def state(self) -> dict:
        """Everything the continuation depends on (arrays, numbers, strings; nested dicts)."""
        ...

    def restore(self, state: Mapping) -> None: ...


@dataclass
class Position:
    """Where the runner is; saved in checkpoints."""

    segment: int = 0
    skip_step: int = -2  # the protocol step whose remaining segments are skipped (a cut-off)
    step: int = -2  # the protocol step under way (its start state is the cell's)
    step_start_voltage: float = math.nan
    segment_t0: float = 0.0
    segment_duration: float = 0.0
    segment_v_start: float = math.nan
    in_segment: bool = False
    stats: SolverStats = field(default_factory=SolverStats)

    def state(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "stats"}
        out["stats"] = asdict(self.stats)
        return out

    @classmethod
    def from_state(cls, state: Mapping) -> Position:
        kw = {k: type(getattr(cls(), k))(state[k]) for k in state if k != "stats"}
        return cls(**kw, stats=SolverStats(**{k: int(v) for k, v in state["stats"].items()}))


def run_protocol(cell: Cell, segments: Sequence[Segment], lifecycle) -> SolverStats:
    """Run ``segments`` on ``cell`` under ``lifecycle``; return the solver statistics.

    Resumes from ``lifecycle``'s checkpoint when it has one. Raises
    :class:`~fastnai.errors.Interrupted` (after writing a checkpoint) on a signal.
    """
    pos = Position()
    engine = None
    # from the initial voltage, before a restore moves it: the same total on a resume
    total = max(planned_duration(segments, cell.voltage()), 1e-300)
    saved = lifecycle.resume_state()
    if saved is not None:
        pos = Position.from_state(saved["runner"])
        cell.restore(saved["cell"])
        engine = saved.get("engine") or None
        lifecycle.started()
    progress = _ProgressInfo(cell, pos, len(segments), total)

    def snapshot(engine_state: Callable[[], Mapping] | None = None) -> dict:
        engine_part = {} if engine_state is None else dict(engine_state())
        return {"runner": pos.state(), "cell": cell.state(), "engine": engine_part}

    def after_step(engine_state: Callable[[], Mapping] | None) -> None:
        lifecycle.started()
        lifecycle.report(progress)  # built only when a report is due
        lifecycle.after_step(lambda: snapshot(engine_state))

    while pos.segment < len(segments):
        seg = segments[pos.segment]
        if seg.step != pos.skip_step:
            if not pos.in_segment:
                _enter(cell, seg, pos)
            else:  # resumed inside this segment: set its control again, record nothing
                cell.begin(seg, t0=pos.segment_t0, v_start=pos.segment_v_start,
                           target=_target(seg, pos), resuming=True)
            if pos.in_segment:
                fired = cell.advance(seg, pos.segment_t0 + pos.segment_duration, after_step,
                                     engine, pos.stats)
                engine = None
                if fired and seg.ends_step:
                    pos.skip_step = seg.step
        pos.segment += 1
        pos.in_segment = False
        # between segments: the state is complete without an engine part
        lifecycle.started()
        lifecycle.report(progress, final=pos.segment == len(segments))
        lifecycle.after_step(snapshot)
    lifecycle.final_state = snapshot
    return pos.stats


def _enter(cell: Cell, seg: Segment, pos: Position) -> None:
    """Start ``seg``: step bookkeeping, the control, the cut-off check; sets ``pos.in_segment``
    when there is anything to integrate."""
    if seg.step != pos.step:
        pos.step = seg.step
        cell.mark_step_start()
        pos.step_start_voltage = cell.voltage()
    if seg.control == "equilibrate":
        pos.stats.n_equilibrium_iterations += cell.equilibrate(seg)
        return
    if seg.control == "impedance":
        cell.impedance(seg)
        return
    if seg.restart:
        cell.restart_from_step_start()
    v_now = cell.voltage()
    target = _target(seg, pos)
    duration = abs(target - v_now) / seg.rate if seg.control == "sweep" else seg.duration
    if duration <= 0.0:
        return
    pos.segment_t0, pos.segment_duration, pos.segment_v_start = cell.t, duration, v_now
    cell.begin(seg, t0=cell.t, v_start=v_now, target=target, resuming=False)
    if seg.cutoff is not None and seg.value != 0.0 and math.copysign(1.0, seg.value) * (
            cell.cell_voltage(seg.value) - seg.cutoff) >= 0.0:
        # the drop j R_s alone passes the cut-off: the segment delivers nothing
        if seg.ends_step:
            pos.skip_step = seg.step
        return
    pos.in_segment = True


def _target(seg: Segment, pos: Position) -> float:
    """A sweep's end voltage (NaN: the voltage at the start of the step), else ``value``."""
    if seg.control == "sweep" and math.isnan(seg.value):
        return pos.step_start_voltage
    return seg.value


class _ProgressInfo:
    """Builds the progress record from the cell and the runner position."""

    def __init__(self, cell: Cell, pos: Position, n_segments: int, total: float):
        self.cell, self.pos, self.n, self.total = cell, pos, n_segments, total

    def __call__(self) -> dict:
        c = self.cell
        return {"t": c.t, "segment": min(self.pos.segment, self.n - 1), "n_segments": self.n,
                "fraction": float(np.clip(c.t / self.total, 0.0, 1.0))
                if self.pos.segment < self.n else 1.0,
                "voltage": c.voltage(), "current": c.current(),
                "n_steps": self.pos.stats.n_steps}
