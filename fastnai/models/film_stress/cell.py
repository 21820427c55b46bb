"""The film_stress cell: state, time step and records, driven by fastnai.runner."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ... import transient as tr
from ..._kernels import film_diffusion as kfd
from ..._kernels import laminate as klam
from ...errors import ConvergenceError
from ...lifecycle import Lifecycle
from ...protocol import compile_protocol
from ...runner import run_protocol
from ...spectrum_log import SpectrumLog
from .setup import _FORMS, _MODES, Stack, Transport, _Control, build, build_transport, coupled, soc_path

#: The DC state each impedance spectrum records besides its time and step.
SPECTRUM_SCALARS = ("voltage", "theta", "current_density", "drift_ratio")

# ---------------------------------------------------------------------------------------------
# the solve


@dataclass
class Result:
    """States of a run: quasi-static (one per state of charge) or transient (one per step)."""

    stack: Stack
    soc: np.ndarray  # film-mean theta per state
    step: np.ndarray  # protocol step per state
    theta: np.ndarray  # (n_states, n_film_layers)
    stress: np.ndarray  # (n_states, 2 n_layers) [Pa]
    plastic: np.ndarray
    results: np.ndarray  # (n_states, N_RESULT)
    z_points: np.ndarray  # reference heights of the points [m]
    wall_time_s: float
    series: dict | None = None  # transient: t, voltage, current, inventory
    stats: dict | None = None
    spectra: dict | None = None  # eis steps: SpectrumLog.arrays()


def simulate(case) -> Result:
    """Sweep the protocol's uniform states of charge through the laminate."""
    start = time.perf_counter()
    stack = build(case)
    soc, step = soc_path(case)
    n_layers = stack.z_faces.size - 1
    theta = np.zeros((soc.size, n_layers))
    theta[:, stack.film] = soc[:, None]
    history = np.zeros((klam.N_HISTORY_ROWS, 2 * n_layers))
    stress = np.empty((soc.size, 2 * n_layers))
    plastic = np.empty_like(stress)
    results = np.zeros((soc.size, klam.N_RESULT))
    kinematics = case["model.kinematics"]
    done = klam.laminate_sweep(stack.z_faces, theta, stack.beta, stack.modulus0, stack.modulus1,
                               stack.yield0, stack.yield1, stack.hardening, _FORMS[kinematics],
                               kinematics != "linear", _MODES[case["substrate.constraint"]],
                               case["solver.substeps"], case["solver.tolerance"],
                               case["solver.max_iterations"], history, stress, plastic, results)
    if done < soc.size:
        raise ConvergenceError(
            f"film_stress: the laminate did not balance at soc = {soc[done]:.4g} (scaled residual "
            f"{results[done, klam.R_RESIDUAL]:.2e} after {case['solver.max_iterations']} "
            "iterations); more solver.substeps may help", [])
    z_points = np.empty(2 * n_layers)
    klam.reference_points(stack.z_faces, z_points)
    return Result(stack, soc, step, theta[:, stack.film], stress, plastic, results, z_points,
                  time.perf_counter() - start)


class FilmCell:
    """The film's Na transport as an :class:`~fastnai.transient.ImplicitProblem`; every accepted
    step also balances the laminate with the new theta profile and commits its plastic state."""

    def __init__(self, case, stack: Stack, tr_: Transport):
        self.case = case
        self.stack = stack
        self.tr = tr_
        self.n_unknowns = tr_.h.size
        self.ws = kfd.workspace(self.n_unknowns)
        self.sigma_h = np.zeros(self.n_unknowns)
        self.coupled = coupled(case)
        self.strain_state = np.zeros(2)  # (eps0, kappa) of the last accepted state
        if self.coupled:
            self.cws = kfd.coupled_workspace(self.n_unknowns, stack.z_faces.size - 1)
        self.control = _Control("current", 0.0)
        self.tol = 1e-10
        self.max_iter = case["solver.max_iterations"]
        n_layers = stack.z_faces.size - 1
        self.history = np.zeros((klam.N_HISTORY_ROWS, 2 * n_layers))
        self.theta_layers = np.zeros((1, n_layers))
        self.records: dict[str, list] = {k: [] for k in (
            "t", "voltage", "current", "inventory", "step", "theta", "stress", "plastic", "result")}
        self.step_index = -1
        # impedance spectra: one row per eis step (one frequency grid, checked by the case)
        self.spectra = SpectrumLog(SPECTRUM_SCALARS)
        kin = case["model.kinematics"]
        self._mech = (_FORMS[kin], kin != "linear", _MODES[case["substrate.constraint"]])

    def _scalars(self, control: _Control, t: float | None = None) -> np.ndarray:
        sc = self.tr.sc.copy()
        sc[kfd.S_CONTROL] = 0.0 if control.mode == "current" else 1.0
        sc[kfd.S_VALUE] = control.value if t is None else control.value_at(t)
        return sc

    def solve_step(self, y_guess, alpha0, history, t_new, dt):
        theta = np.clip(y_guess, 1e-9, 1.0 - 1e-9)
        t = self.tr
        if self.coupled:
            s = self.stack
            form, frame, _ = self._mech
            strain = self.strain_state.copy()
            its = kfd.coupled_newton(theta, history, alpha0, dt, t.h, t.c_max, t.d_cell, t.beta,
                                     self._scalars(self.control, t_new), s.z_faces, s.n_substrate,
                                     s.beta,
                                     s.modulus0, s.modulus1, s.yield0, s.yield1, s.hardening, form,
                                     frame, self.history, strain, self.tol, self.max_iter,
                                     self.sigma_h, *self.cws)
        else:
            lower, diag, upper, res, delta, work = self.ws
            its = kfd.newton(theta, history, alpha0, dt, t.h, t.c_max, t.d_cell, t.beta,
                             self.sigma_h, self._scalars(self.control, t_new), self.tol,
                             self.max_iter, lower, diag, upper, res, delta, work)
        if its < 0:
            return np.full_like(theta, np.nan), False, -its
        return theta, True, its

    def error_weights(self, y, rtol):
        return rtol * (np.abs(y) + 1e-3)

    def current(self, y, t: float) -> float:
        return float(kfd.surface_current(y, float(self.sigma_h[-1]),
                                         self._scalars(self.control, t)))

    def voltage(self, y, t: float) -> float:
        c = self.control
        if c.mode == "voltage":
            return c.value_at(t)
        return float(kfd.cell_voltage_galvanostatic(float(y[-1]), float(self.sigma_h[-1]),
                                                    c.value, self._scalars(self.control)))

    def event_functions(self, t, y):
        c = self.control
        if c.mode != "current" or c.cutoff is None or c.value == 0.0:
            return np.zeros(0)
        return np.array([self.voltage(y, t) - c.cutoff])

    def on_accept(self, t, y):
        self.record(t, y)

    def record(self, t, y):
        stack = self.stack
        self.theta_layers[0, stack.film] = y
        stress = np.empty((1, self.history.shape[1]))
        plastic = np.empty_like(stress)
        result = np.zeros((1, klam.N_RESULT))
        form, frame, mode = self._mech
        done = klam.laminate_sweep(stack.z_faces, self.theta_layers, stack.beta, stack.modulus0,
                                   stack.modulus1, stack.yield0, stack.yield1, stack.hardening,
                                   form, frame, mode, 1, self.case["solver.tolerance"],
                                   self.case["solver.max_iterations"], self.history, stress,
                                   plastic, result)
        if done < 1:
            raise ConvergenceError(f"film_stress: the laminate did not balance at t = {t:.6g} s", [])
        self.strain_state[:] = result[0, klam.R_EPS0], result[0, klam.R_KAPPA]
        if self.coupled:
            film_pts = stress[0, stack.film_points]
            self.sigma_h[:] = (film_pts[0::2] + film_pts[1::2]) / 3.0  # 2/3 of the cell mean
        r = self.records
        r["t"].append(t)
        r["voltage"].append(self.voltage(y, t))
        r["current"].append(self.current(y, t))
        r["inventory"].append(float(kfd.inventory(y, self.tr.h, self.tr.c_max)))
        r["step"].append(self.step_index)
        r["theta"].append(y.copy())
        r["stress"].append(stress[0].copy())
        r["plastic"].append(plastic[0].copy())
        r["result"].append(result[0].copy())


class TransportRun:
    """A :class:`FilmCell` with its state vector and time, as the protocol runner's cell
    (:class:`fastnai.runner.Cell`)."""

    _RECORDS = ("t", "voltage", "current", "inventory", "step", "theta", "stress", "plastic",
                "result")

    def __init__(self, case, cell: FilmCell):
        self.fc = cell
        self.rtol = case["solver.rtol"]
        self.dv_max = case["solver.max_voltage_step"]
        self.y = np.full(cell.n_unknowns, case["initial.soc"])
        self.t = 0.0
        self.y_step_start = self.y.copy()
        self.max_step: float | None = None
        cell.record(self.t, self.y)

    def voltage(self) -> float:
        return self.fc.voltage(self.y, self.t)

    def current(self) -> float:
        return self.fc.current(self.y, self.t)

    def cell_voltage(self, current: float) -> float:
        return self.fc.voltage(self.y, self.t)  # the control in force carries ``current``

    def equilibrate(self, segment) -> int:
        raise ValueError("film_stress has no equilibrate step")

    def mark_step_start(self) -> None:
        self.y_step_start = self.y.copy()

    def restart_from_step_start(self) -> None:
        self.y = self.y_step_start.copy()

    def begin(self, segment, *, t0: float, v_start: float, target: float, resuming: bool) -> None:
        self.max_step = None
        if segment.control == "sweep":
            rate = math.copysign(segment.rate, target - v_start)
            self.fc.control = _Control("voltage", v_start, rate=rate, t0=t0)
            self.max_step = self.dv_max / segment.rate
        elif segment.control == "voltage":
            self.fc.control = _Control("voltage", segment.value)
        else:
            self.fc.control = _Control("current", segment.value, segment.cutoff)
        self.fc.step_index = segment.step
        self.segment_t0 = t0

    def impedance(self, segment) -> None:
        """The spectrum about the present state (left unchanged), recorded with its DC state."""
        from . import impedance

        fc = self.fc
        freqs = np.asarray(segment.frequencies, dtype=float)
        sp = impedance.spectrum(fc, self.y, self.voltage(), freqs,
                                double_layer_capacitance=fc.case["interface.double_layer_capacitance"])
        impedance.warn_if_drifting(sp["drift_ratio"], self.t, "the film's Na")
        fc.spectra.record(self.t, segment.step, freqs, sp, {"": sp["impedance"]})

    def advance(self, segment, t_end, after_step, engine, stats) -> bool:
        duration = t_end - self.segment_t0
        traj = tr.integrate(self.fc, self.y, self.segment_t0, t_end, rtol=self.rtol,
                            dt_initial=duration * 1e-6, max_step=self.max_step,
                            store_states=False, resume_from=engine, progress=False,
                            step_hook=after_step)
        stats.add(traj.stats)
        self.y, self.t = traj.y_final, traj.t_final
        return traj.status == "event"

    def state(self) -> dict:
        fc = self.fc
        rec = {k: np.array(v) for k, v in fc.records.items()}
        return {"y": self.y, "t": self.t, "y_step_start": self.y_step_start,
                "sigma_h": fc.sigma_h, "strain_state": fc.strain_state, "history": fc.history,
                "theta_layers": fc.theta_layers, "records": rec, "spectra": fc.spectra.state()}

    def restore(self, state) -> None:
        fc = self.fc
        self.y, self.y_step_start = np.array(state["y"]), np.array(state["y_step_start"])
        self.t = float(state["t"])
        for name in ("sigma_h", "strain_state", "history", "theta_layers"):
            getattr(fc, name)[...] = state[name]
        for k in self._RECORDS:
            values = np.asarray(state["records"][k])
            scalar = values.ndim == 1
            fc.records[k] = [(v.item() if scalar else np.array(v)) for v in values]
        fc.records["step"] = [int(v) for v in fc.records["step"]]
        fc.spectra.restore(state.get("spectra"))


def simulate_transport(case, *, lifecycle: Lifecycle | None = None, progress=None) -> Result:
    """Run the protocol with Na entering at the surface (``model.sodiation = "diffusion"``)."""
    start = time.perf_counter()
    life = Lifecycle(case, progress=progress) if lifecycle is None else lifecycle
    stack = build(case)
    transport = build_transport(case, stack)
    transport_run = TransportRun(case, FilmCell(case, stack, transport))
    stats = run_protocol(transport_run, compile_protocol(case["protocol"], one_c=transport.one_c),
                         life)
    z_points = np.empty(stack.z_faces.size * 2 - 2)
    klam.reference_points(stack.z_faces, z_points)
    r = transport_run.fc.records
    theta = np.array(r["theta"])
    series = {"t": np.array(r["t"]), "voltage": np.array(r["voltage"]),
              "current": np.array(r["current"]), "inventory": np.array(r["inventory"]),
              "one_c": transport.one_c, "mean_diffusivity": float(np.mean(transport.d_cell))}
    spectra = transport_run.fc.spectra.arrays()
    return Result(stack, np.mean(theta, axis=1), np.array(r["step"]), theta, np.array(r["stress"]),
                  np.array(r["plastic"]), np.array(r["result"]), z_points,
                  time.perf_counter() - start, series, stats.as_attrs(), spectra)
