"""The drift_diffusion cell: state, time step and records, driven by fastnai.runner."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import constants

from ... import transient as tr
from ..._kernels import drift_diffusion as kdd
from ...errors import ConvergenceError
from ...lifecycle import Lifecycle
from ...mesh import graded_mesh
from ...protocol import compile_protocol
from ...runner import SolverStats, run_protocol
from ...spectrum_log import SpectrumLog
from .. import band_bending as bb
from .keys import base_nodes, min_spacing
from .setup import Setup, _region_params, build

# ---------------------------------------------------------------------------------------------
# the implicit problem handed to the integrator


class Workspace:
    """Preallocated Newton arrays for P particles of n nodes."""

    def __init__(self, n_p: int, n: int):
        self.z = np.zeros((n_p, n, 3))
        self.y = np.zeros((n_p, n, 3))
        self.lower = np.zeros((n_p, n, 3, 3))
        self.diag = np.zeros((n_p, n, 3, 3))
        self.upper = np.zeros((n_p, n, 3, 3))
        self.res = np.zeros((n_p, n, 3))
        self.bcol = np.zeros((n_p, n, 3))
        self.brow = np.zeros((n_p, n, 3))
        self.work_blocks = np.zeros((n_p, n, 3, 3))
        self.work_rhs = np.zeros((n_p, 3, 5))
        self.work_two = np.zeros((n_p, n, 3, 2))
        self.dz = np.zeros((n_p, n, 3))
        self.flows = np.zeros(n_p)
        self.dots = np.zeros((n_p, 2))
        self.voltage = np.zeros(1)
        self.out = np.zeros(1)


def newton_solve(setup: Setup, ws: Workspace, z: np.ndarray, voltage: float, galvanostatic: bool,
                 current: float, alpha0: float, hist: np.ndarray, dt: float, tol: float,
                 max_iter: int) -> tuple[int, float]:
    """Newton on all particles in place on ``z`` (P, n, 3); returns (iterations, voltage).

    Negative iterations: not converged.
    """
    ws.voltage[0] = voltage
    s = setup
    if s.n_particles == 1:
        its = kdd.newton(z[0], ws.voltage, galvanostatic, current, alpha0, hist[0], dt, s.vol[0],
                         s.area[0], s.h[0], s.g_face[0], s.d0_face[0], s.site_energy[0],
                         s.region[0], s.params, s.tables, s.sc[0], tol, max_iter, ws.lower[0],
                         ws.diag[0], ws.upper[0], ws.res[0], ws.bcol[0], ws.brow[0],
                         ws.work_blocks[0], ws.work_rhs[0], ws.work_two[0], ws.dz[0], ws.out)
        ws.flows[0] = ws.out[0]
    else:
        its = kdd.newton_ensemble(z, ws.voltage, galvanostatic, current, alpha0, hist, dt, s.vol,
                                  s.area, s.h, s.g_face, s.d0_face, s.site_energy, s.region,
                                  s.params, s.tables, s.sc, tol, max_iter, ws.lower, ws.diag,
                                  ws.upper, ws.res, ws.bcol, ws.brow, ws.work_blocks, ws.work_rhs,
                                  ws.work_two, ws.dz, ws.flows, ws.dots)
    return int(its), float(ws.voltage[0])


def unknowns(setup: Setup, y: np.ndarray, voltage: float, z: np.ndarray) -> None:
    """Newton unknowns of the state array ``y`` (P, n, 3) into ``z``."""
    if setup.n_particles > 1:  # one call, parallel over particles
        kdd.unknowns_from_state_ensemble(y, voltage, setup.region, setup.params, setup.sc, z)
    else:
        kdd.unknowns_from_state(y[0], voltage, setup.region[0], setup.params, setup.sc[0], z[0])


def states(setup: Setup, z: np.ndarray, y: np.ndarray) -> None:
    """Conserved state of the unknowns ``z`` into ``y`` (P, n, 3)."""
    if setup.n_particles > 1:
        kdd.state_from_unknowns_ensemble(z, setup.region, setup.params, setup.sc, y)
    else:
        kdd.state_from_unknowns(z[0], setup.region[0], setup.params, setup.sc[0], y[0])


@dataclass
class Control:
    """What one integration segment holds fixed."""

    mode: str  # "potentiostatic" or "galvanostatic"
    v0: float = 0.0  # potentiostatic: V(t) = v0 + rate (t - t0)
    rate: float = 0.0
    t0: float = 0.0
    current: float = 0.0  # galvanostatic: total A_s j (anodic positive) [A per m2 or steradian]
    cutoff: float | None = None  # cell-voltage event (galvanostatic)
    amplitude: float = 0.0  # sine: + amplitude sin(omega (t - t0)) on V or on the current
    omega: float = 0.0  # sine angular frequency [rad s-1]

    def sine(self, t: float) -> float:
        return self.amplitude * math.sin(self.omega * (t - self.t0)) if self.omega else 0.0


class Cell:
    """The electrode: an :class:`~fastnai.transient.ImplicitProblem` for each segment, and a
    :class:`~fastnai.runner.Cell` for the protocol runner.

    State vector: (P, n, 3) conserved fields (psi [V], c [m-3], e = n + n_t [m-3]) flattened,
    then the electrode voltage V [V].
    """

    def __init__(self, setup: Setup, recorder: Recorder):
        self.setup = setup
        self.ws = Workspace(setup.n_particles, setup.n_nodes)
        self.recorder = recorder
        self.control = Control("potentiostatic")
        case = setup.case
        self.tol = case["solver.newton_tolerance"]
        self.max_iter = case["solver.max_iterations"]
        self.series_resistance = case["electrode.series_resistance"]
        self.rtol = case["solver.rtol"]
        self.dv_max = case["solver.max_voltage_step"]
        self.n_unknowns = setup.n_particles * setup.n_nodes * 3 + 1
        self.shape = (setup.n_particles, setup.n_nodes, 3)
        self._hist = np.zeros(self.shape)
        # runner state: the last accepted state and time, the step's start, the first state
        self.t = 0.0
        self.y: np.ndarray | None = None
        self.y_step_start: np.ndarray | None = None
        self.y_initial: np.ndarray | None = None
        self.cv_start: float | None = None
        self.segment_t0 = 0.0
        self.max_step: float | None = None
        self.trajectories: list = []

    # -- fastnai.runner.Cell ------------------------------------------------------------------
    def voltage(self) -> float:
        return self.setup.case["initial.voltage"] if self.y is None else float(self.y[-1])

    def current(self) -> float:
        """Current density now (anodic positive) [A m-2 of electrolyte interface]."""
        rec = self.recorder
        return rec.current[-1] / float(np.sum(self.setup.electrolyte_area)) if rec.current else 0.0

    def cell_voltage(self, current: float) -> float:
        return self.cell_voltage_of(self.y, current)

    def equilibrate(self, segment) -> int:
        self._enter(segment)
        guess = None if self.y is None else self.y[:-1].reshape(self.shape)
        state, its = equilibrium(self.setup, segment.value, guess,
                                 guess_voltage=None if self.y is None else float(self.y[-1]))
        self.y = np.concatenate((state.ravel(), [segment.value]))
        if self.y_initial is None:
            self.y_initial = state.copy()
        self.recorder.record(self, self.t, self.y)
        return its

    def mark_step_start(self) -> None:
        if self.y is not None:
            self.y_step_start = self.y.copy()

    def restart_from_step_start(self) -> None:
        if self.y_step_start is not None:
            if self.cv_start is None:
                self.cv_start = float(self.y_step_start[-1])
            self.y = self.y_step_start.copy()

    def _enter(self, segment) -> None:
        self.recorder.segment_index = segment.index
        self.recorder.step_index = segment.step

    def begin(self, segment, *, t0: float, v_start: float, target: float, resuming: bool) -> None:
        self._enter(segment)
        self.segment_t0 = t0
        self.max_step = None
        if segment.control == "sweep":
            rate = math.copysign(segment.rate, target - v_start)
            self.control = Control("potentiostatic", v0=v_start, rate=rate, t0=t0)
            self.max_step = self.dv_max / segment.rate
        elif segment.control == "voltage":
            self.control = Control("potentiostatic", v0=segment.value, t0=t0)
        elif segment.control in ("sine_voltage", "sine_current"):
            self.control = self._sine_control(segment, t0, v_start)
            self.max_step = 1.0 / (segment.frequency * segment.points_per_period)
        else:
            self.control = Control("galvanostatic", current=segment.value, cutoff=segment.cutoff)
        if not resuming:
            self.y = self.y.copy()
            if self.control.mode == "potentiostatic":
                # A voltage jump moves the electrode's Fermi level at once: shift psi with it
                # (the rigid shift solve_step applies to every guess), so that n, set by
                # psi - V, is unchanged and only the Na+ reaction feels the step. Leaving psi
                # at the old equilibrium made the first guess 60 mV off and Newton failed for
                # potential steps of 60 mV and more.
                jump = self.voltage_at(t0) - float(self.y[-1])
                self.y[:-1].reshape(self.shape)[..., 0] += jump
                self.y[-1] += jump
            self.recorder.record(self, t0, self.y)  # the segment's first state (a jump for a step)

    def _sine_control(self, segment, t0: float, v_start: float) -> Control:
        """V = v_start + a sin(w (t - t0)), or I = A (j0 + a sin(w (t - t0))), A the
        electrolyte area (the case gives current densities)."""
        omega = 2.0 * math.pi * segment.frequency
        if segment.control == "sine_voltage":
            return Control("potentiostatic", v0=v_start, t0=t0, amplitude=segment.amplitude,
                           omega=omega)
        area = float(np.sum(self.setup.electrolyte_area))
        return Control("galvanostatic", t0=t0, current=segment.value * area,
                       amplitude=segment.amplitude * area, omega=omega)

    def impedance(self, segment) -> None:
        """The spectrum about the present state (unchanged), recorded with its DC state."""
        from . import impedance

        self._enter(segment)
        freqs = np.asarray(segment.frequencies)
        case = self.setup.case
        sp = impedance.spectrum(self.setup, self.y, freqs,
                                double_layer_capacitance=case["interface.double_layer_capacitance"],
                                series_resistance=self.series_resistance)
        impedance.warn_if_drifting(sp["drift_ratio"], self.t, "the Na+ state")
        self.recorder.spectra.record(self.t, segment.step, freqs, sp, {"": sp["impedance"]})

    def advance(self, segment, t_end, after_step, engine, stats) -> bool:
        duration = t_end - self.segment_t0
        traj = tr.integrate(self, self.y, self.segment_t0, t_end, rtol=self.rtol,
                            dt_initial=duration * 1e-6, max_step=self.max_step,
                            store_states=False, resume_from=engine, progress=False,
                            step_hook=after_step)
        self.trajectories.append((segment.index, traj))
        stats.add(traj.stats)
        self.y, self.t = traj.y_final, traj.t_final
        return traj.status == "event"

    def state(self) -> dict:
        def arr(a):
            return np.zeros(0) if a is None else np.asarray(a)

        return {"recorder": self.recorder.checkpoint_state(), "t": self.t, "y": arr(self.y),
                "y_step_start": arr(self.y_step_start),
                "y_initial": arr(None if self.y_initial is None else self.y_initial.ravel()),
                "cv_start": math.nan if self.cv_start is None else self.cv_start}

    def restore(self, state) -> None:
        def opt(a):
            return np.array(a) if np.size(a) else None

        self.recorder.restore_state(state["recorder"])
        self.t = float(state["t"])
        self.y, self.y_step_start = opt(state["y"]), opt(state["y_step_start"])
        y0 = opt(state["y_initial"])
        self.y_initial = None if y0 is None else y0.reshape(self.shape)
        self.cv_start = float(state["cv_start"]) if np.isfinite(state["cv_start"]) else None

    # -- ImplicitProblem ---------------------------------------------------------------------
    def voltage_at(self, t: float) -> float:
        c = self.control
        return c.v0 + c.rate * (t - c.t0) + (c.sine(t) if c.mode == "potentiostatic" else 0.0)

    def current_at(self, t: float) -> float:
        """Galvanostatic: the total A_s j held at time t (a sine segment's varies)."""
        c = self.control
        return c.current + c.sine(t)

    def solve_step(self, y_guess, alpha0, history, t_new, dt):
        galv = self.control.mode == "galvanostatic"
        v_pred = float(y_guess[-1])
        y = y_guess[:-1].reshape(self.shape)
        z = self.ws.z
        current = self.current_at(t_new) if galv else 0.0
        if galv:
            unknowns(self.setup, y, v_pred, z)
            shift = self._rigid_shift(z, current)
        else:
            shift = self.voltage_at(t_new) - v_pred
        y[..., 0] += shift  # y_guess is the engine's copy: ours to change
        v = v_pred + shift
        unknowns(self.setup, y, v, z)
        self._hist[:] = history[:-1].reshape(self.shape)
        its, v = newton_solve(self.setup, self.ws, z, v, galv, current, alpha0, self._hist, dt,
                              self.tol, self.max_iter)
        out = np.empty(self.n_unknowns)
        if its < 0:
            out[:] = np.nan
            return out, False, -its
        states(self.setup, z, out[:-1].reshape(self.shape))
        out[-1] = v
        return out, True, its

    def _rigid_shift(self, z: np.ndarray, current: float) -> float:
        s = self.setup
        etas = np.empty(s.n_particles)
        u_locs = np.empty(s.n_particles)
        kdd.surface_overpotential_ensemble(z, s.region, s.sc, s.tables, s.site_energy, etas, u_locs)
        return float(kdd.rigid_shift(etas, u_locs, s.sc, current))

    def error_weights(self, y, rtol):
        w = np.empty_like(y)
        body = w[:-1].reshape(self.shape)
        yy = y[:-1].reshape(self.shape)
        c_max = self.setup.c_max
        body[..., 0] = rtol * (np.abs(yy[..., 0]) + 1.0)
        body[..., 1] = rtol * (np.abs(yy[..., 1]) + 1e-3 * c_max)
        body[..., 2] = rtol * (np.abs(yy[..., 2]) + 1e-3 * c_max)
        w[-1] = rtol * (abs(y[-1]) + 1.0)
        return w

    def cell_voltage_of(self, y, current: float) -> float:
        """V_cell = V + j R_s (j per electrolyte area, anodic positive)."""
        return float(y[-1]) + self.series_resistance * current / float(np.sum(
            self.setup.electrolyte_area))

    def event_functions(self, t, y):
        c = self.control
        if c.mode != "galvanostatic" or c.cutoff is None:
            return np.zeros(0)
        return np.array([self.cell_voltage_of(y, c.current) - c.cutoff])

    def on_accept(self, t, y):
        self.t = t
        self.recorder.record(self, t, y)

    # -- diagnostics --------------------------------------------------------------------------
    def flows(self, y: np.ndarray) -> np.ndarray:
        """A_s j per particle at the state ``y`` (anodic positive) [A per m2 or steradian]."""
        s = self.setup
        out = np.empty(s.n_particles)
        # the electrolyte node's unknowns and Butler-Volmer current only (what assemble returns)
        kdd.flow_from_state_ensemble(y[:-1].reshape(self.shape), float(y[-1]), s.region, s.params,
                                     s.sc, s.tables, s.site_energy, np.empty(self.shape), out)
        return out

    def inventory(self, y: np.ndarray) -> float:
        """Na in the electrode [mol per m2 of slab, or per particle summed over particles]."""
        c = y[:-1].reshape(self.shape)[..., 1]
        per = np.sum(c * self.setup.vol, axis=1)
        factor = 1.0 if self.setup.coordinate_name == "x" else 4.0 * math.pi
        return float(np.sum(per)) * factor / constants.N_A


# ---------------------------------------------------------------------------------------------
# recording

#: The DC state each impedance spectrum records besides its time and step.
SPECTRUM_SCALARS = ("voltage", "theta", "current_density", "drift_ratio")


@dataclass
class Recorder:
    """Series at every accepted step and thinned profiles; saved in checkpoints."""

    max_profiles: int
    t: list = field(default_factory=list)
    voltage: list = field(default_factory=list)
    cell_voltage: list = field(default_factory=list)
    current: list = field(default_factory=list)  # total A_s j (anodic positive)
    inventory: list = field(default_factory=list)
    step: list = field(default_factory=list)
    segment: list = field(default_factory=list)
    particle_current: list = field(default_factory=list)
    profile_t: list = field(default_factory=list)
    profiles: list = field(default_factory=list)
    profile_stride: int = 1
    profile_count: int = 0
    step_index: int = 0
    segment_index: int = 0
    # impedance spectra: one row per eis step (frequencies shared, checked by the case)
    spectra: SpectrumLog = field(default_factory=lambda: SpectrumLog(SPECTRUM_SCALARS))

    def record(self, cell: Cell, t: float, y: np.ndarray) -> None:
        flows = cell.flows(y)
        total = float(np.sum(flows))
        self.t.append(float(t))
        self.voltage.append(float(y[-1]))
        self.cell_voltage.append(cell.cell_voltage_of(y, total))
        self.current.append(total)
        self.inventory.append(cell.inventory(y))
        self.step.append(self.step_index)
        self.segment.append(self.segment_index)
        self.particle_current.append(flows.copy())
        if self.profile_count % self.profile_stride == 0:
            self.profile_t.append(float(t))
            self.profiles.append(y.copy())
            if len(self.profiles) > self.max_profiles:
                # keep every other one, and record half as often from now on
                self.profile_t = self.profile_t[::2]
                self.profiles = self.profiles[::2]
                self.profile_stride *= 2
                self.profile_count = 0
        self.profile_count += 1

    def checkpoint_state(self) -> dict:
        out = {
            "t": np.array(self.t), "voltage": np.array(self.voltage),
            "cell_voltage": np.array(self.cell_voltage), "current": np.array(self.current),
            "inventory": np.array(self.inventory), "step": np.array(self.step, dtype=np.int64),
            "segment": np.array(self.segment, dtype=np.int64),
            "profile_t": np.array(self.profile_t),
            "profile_stride": self.profile_stride, "profile_count": self.profile_count,
            "step_index": self.step_index, "segment_index": self.segment_index,
        }
        out["particle_current"] = (np.array(self.particle_current) if self.particle_current
                                   else np.zeros((0, 0)))
        out["profiles"] = np.array(self.profiles) if self.profiles else np.zeros((0, 0))
        out["spectra"] = self.spectra.state()
        return out

    def restore_state(self, state: dict) -> None:
        for name in ("t", "voltage", "cell_voltage", "current", "inventory", "profile_t"):
            setattr(self, name, [float(v) for v in state[name]])
        self.step = [int(v) for v in state["step"]]
        self.segment = [int(v) for v in state["segment"]]
        self.particle_current = [np.array(v) for v in state["particle_current"]]
        self.profiles = [np.array(v) for v in state["profiles"]]
        self.profile_stride = int(state["profile_stride"])
        self.profile_count = int(state["profile_count"])
        self.step_index = int(state["step_index"])
        self.segment_index = int(state["segment_index"])
        self.spectra.restore(state.get("spectra"))


# ---------------------------------------------------------------------------------------------
# equilibrium


def equilibrium(setup: Setup, voltage: float, guess: np.ndarray | None = None,
                tol: float = 1e-10, max_iter: int = 200,
                guess_voltage: float | None = None) -> tuple[np.ndarray, int]:
    """Equilibrium state (P, n, 3) at electrode voltage V, with continuation in V.

    Newton from ``guess`` (the state at ``guess_voltage``) or from the cold start (valid where
    Na+ is dilute, V >= COLD_START_VOLTAGE); when a direct solve fails, the voltage is walked
    from the last converged state to the target in adaptive steps.
    """
    if guess is not None:
        try:
            return _equilibrium_at(setup, voltage, guess, tol, max_iter, cold=False)
        except ConvergenceError:
            pass
    if guess is not None and guess_voltage is not None:
        start_v = guess_voltage
        y, its = _equilibrium_at(setup, start_v, guess, tol, max_iter)
    else:
        start_v = max(voltage, COLD_START_VOLTAGE)
        y, its = _cold_equilibrium(setup, start_v, tol, max_iter)
    total = its
    v_now, step = start_v, 0.1
    while v_now != voltage:
        v_next = voltage if abs(voltage - v_now) <= step else v_now + math.copysign(step,
                                                                                  voltage - v_now)
        try:
            y_next, its = _equilibrium_at(setup, v_next, y, tol, max_iter, cold=False)
        except ConvergenceError:
            step *= 0.5
            if step < 1e-4:
                raise
            continue
        total += its
        y, v_now = y_next, v_next
        step = min(2.0 * step, 0.25)
    return y, total


#: Below this voltage the theta -> 0 band-bending guess is poor (Na+ screens the contact).
COLD_START_VOLTAGE = 1.5


def _cold_equilibrium(setup: Setup, voltage: float, tol: float,
                      max_iter: int) -> tuple[np.ndarray, int]:
    """Cold-start equilibrium; doped interface layers are reached by continuation in their
    donor density (the cold start guesses the bands of a uniformly doped host, a poor guess
    for delta-doped layers a hundred times more doped)."""
    try:
        return _equilibrium_at(setup, voltage, None, tol, max_iter)
    except ConvergenceError:
        case = setup.case
        nd_layer = case["structure.layer_donor_density"]
        nd = case["semiconductor.donor_density"]
        if case["structure.kind"] != "periodic" or nd_layer is None or nd_layer == nd or nd <= 0:
            raise
    key = "structure.layer_donor_density"
    m = max(2, math.ceil(abs(math.log(nd_layer / nd)) / math.log(3.0)))
    y, total = _equilibrium_at(build(case.with_overrides({key: nd})), voltage, None, tol, max_iter)
    for k in range(1, m + 1):
        step_setup = setup if k == m else build(case.with_overrides(
            {key: nd * (nd_layer / nd) ** (k / m)}))
        y, its = _equilibrium_at(step_setup, voltage, y, tol, max_iter, cold=False)
        total += its
    return y, total


def _equilibrium_at(setup: Setup, voltage: float, guess: np.ndarray | None = None,
                    tol: float = 1e-10, max_iter: int = 200,
                    cold: bool = True) -> tuple[np.ndarray, int]:
    """Equilibrium state (P, n, 3) at electrode voltage V: Na+ in equilibrium with the
    electrolyte (Butler-Volmer current zero), electrons with the contact, Poisson satisfied.

    Cold start: local neutrality with the contact's band bending decaying over the screening
    length, then Newton; if that fails, continuation in the contact barrier from flat band.
    """
    s = setup
    n_p, n = s.n_particles, s.n_nodes
    ws = Workspace(n_p, n)
    hist = np.zeros((n_p, n, 3))
    z = np.empty((n_p, n, 3))
    if guess is not None:
        unknowns(s, guess, voltage, z)
        its, _ = newton_solve(s, ws, z, voltage, False, 0.0, 0.0, hist, 1.0, tol, max_iter)
        if its > 0:
            y = np.empty((n_p, n, 3))
            states(s, z, y)
            return y, its
        if not cold:
            raise ConvergenceError(f"drift_diffusion: equilibrium at V = {voltage:g} V did not "
                                   "converge from the neighbouring state", [])
    total = 0
    for p in range(n_p):
        z[p, :, 2] = voltage
        if s.sc[p, kdd.S_ELECTROSTATICS] == 0.0:
            z[p, :, 0] = voltage
        else:
            # the theta -> 0 limit is the band-bending problem (E_F = -qV): its solution, with
            # barrier continuation when needed, starts Newton
            sol = bb.solve_problem(_band_bending_problem(s, p))
            total += sol.newton_iterations
            z[p, :, 0] = sol.psi + voltage
        z[p, :, 1] = _local_ell(s, p, z[p, :, 0], voltage)
    its, _ = newton_solve(s, ws, z, voltage, False, 0.0, 0.0, hist, 1.0, tol, max_iter)
    total += abs(its)
    if its < 0:
        raise ConvergenceError(f"drift_diffusion: Newton did not converge to the equilibrium at "
                               f"V = {voltage:g} V in {max_iter} iterations", [])
    y = np.empty((n_p, n, 3))
    states(s, z, y)
    return y, total


def _band_bending_problem(s: Setup, p: int) -> bb.Problem:
    """The theta -> 0 limit of particle p: the band-bending problem on the same mesh,
    charges and contact, intimate (Dirichlet) contact, no Na."""
    case = s.case
    kind = {"separated": "planar", "co-located": "planar", "sphere": "sphere",
            "core-shell": "dot"}[case["model.geometry"]]
    length = float(s.depth[p, -1])
    depth = graded_mesh(length, base_nodes(case), min_spacing(case, length),
                        case["mesh.refinement"])
    return bb.Problem(bb.make_geometry(kind, depth, contact_radius=case["contact.radius"]),
                      _region_params(case, case["semiconductor.donor_density"]),
                      case["semiconductor.relative_permittivity"] * constants.epsilon_0,
                      case["contact.work_function"] - case["semiconductor.electron_affinity"],
                      tol=1e-10, max_iter=200, continuation=True)


def _local_ell(s: Setup, p: int, psi: np.ndarray, voltage: float) -> np.ndarray:
    """ell with Na+ in local equilibrium with the electrolyte at potential psi."""
    out = np.empty(psi.shape)
    kdd.local_equilibrium_ell(np.ascontiguousarray(psi), s.region[p], s.sc[p], s.tables,
                              s.site_energy[p], out)
    return out


# ---------------------------------------------------------------------------------------------
# protocols


@dataclass
class Result:
    """Everything :func:`simulate` produced (arrays; :func:`to_dataset` wraps them)."""

    setup: Setup
    recorder: Recorder
    y_initial: np.ndarray
    y_final: np.ndarray
    segments: list  # the compiled protocol (fastnai.protocol.Segment)
    trajectories: list  # (segment index, Trajectory) of the segments integrated by this call
    stats: SolverStats
    cv_start_voltage: float | None
    wall_time_s: float


def simulate(case, *, lifecycle: Lifecycle | None = None, progress=None) -> Result:
    """Run the case's protocol through :func:`fastnai.runner.run_protocol`.

    Parameters
    ----------
    case
        A validated drift_diffusion case.
    lifecycle
        Signals, checkpoints and resume of the run (:class:`~fastnai.lifecycle.Lifecycle`);
        default: none of them, progress as ``progress`` says.
    progress
        Without ``lifecycle``: None a bar on a terminal / log lines in batch, False silent.
    """
    start = time.perf_counter()
    life = Lifecycle(case, progress=progress) if lifecycle is None else lifecycle
    setup = build(case)
    cell = Cell(setup, Recorder(case["output.max_profiles"]))
    segments = compile_protocol(case["protocol"], one_c=setup.one_c_current,
                                initial_voltage=case["initial.voltage"])
    stats = run_protocol(cell, segments, life)
    return Result(setup, cell.recorder, cell.y_initial, cell.y, segments, cell.trajectories,
                  stats, cell.cv_start, time.perf_counter() - start)
