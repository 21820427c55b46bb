"""drift_diffusion model: one implicit step, a CV sweep, a galvanostatic ensemble, and DEVSIM.

Issue targets, each a ratio measured in one run (SPEC 5): one implicit step at 1e4 nodes at
least 20x faster than DEVSIM's on the same equations (:class:`TrackDevsimStepSpeedup`), and the
64-particle galvanostatic ensemble at least 1.7x faster on 2 threads than on 1
(:class:`TimeGalvanostaticEnsemble`, compare its two ``threads`` parameters).

Model benchmarks use an anatase-TiO2 slab behind a TiC contact (``separated`` geometry), 5 um
thick so that 1e3 and 1e4 nodes both keep every cell at least one hop (0.48 nm) wide, the
model's default ``mesh.min_spacing``. Start states:

* potentiostatic: the equilibrium at 3.0 V, then the first step of a 10 mV/s cathodic sweep;
* galvanostatic: the state after 5 s of a 1C discharge from 3.0 V, run by ``simulate``. A 1C
  step of 1 ms straight from the equilibrium at 3.0 V does not converge (Newton goes
  non-finite; the integrator gets through that first step by cutting dt to ~1e-5 s). With
  electrons transported (``dd-boltzmann``) the discharge reaches the cut-off at once (the
  trap-filled bulk barely conducts), so that combination is skipped.

Every setup builds its inputs and takes the timed call once (Numba compiles, or loads its
cache, and the answer is checked); the expensive inputs are memoised per process, because asv
re-runs ``setup`` before every sample.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import time

import numpy as np

from fastnai._kernels import drift_diffusion as kdd
from fastnai._kernels.block_tridiagonal import solve_block_tridiagonal
from fastnai.case import load_case
from fastnai.models import band_bending
from fastnai.models import drift_diffusion as dd

from ._peers_dd import PROBLEM as DD_PROBLEM
from ._peers_dd import devsim_dd_step_solver

SIZES = [1_000, 10_000]
#: physics parameter -> (model.electrons, semiconductor.statistics)
PHYSICS = {
    "dd-boltzmann": ("drift-diffusion", "boltzmann"),  # electrons transported: DEVSIM's kind
    "qe-fermi-dirac": ("quasi-equilibrium", "fermi-dirac"),  # the model's defaults
}
CONTROLS = ["potentiostatic", "galvanostatic"]
THICKNESS = 5e-6  # [m] 1e4 nodes of at least one hop (0.48 nm) each
START_VOLTAGE = 3.0  # [V] initial.voltage (the model default)
SCAN_RATE = 0.01  # [V/s] CV scan rate (cathodic first)
C_RATE = 1.0  # galvanostatic discharge rate
DISCHARGE_TIME = 5.0  # [s] of 1C discharge before the timed galvanostatic step
CUTOFF_VOLTAGE = 0.01  # [V]
DT = 1e-3  # [s] the timed implicit step

# the ensemble: 64 spheres of 7.5-25 nm sharing one voltage
N_PARTICLES = 64
ENSEMBLE_NODES = 16  # one node per hop in the smallest particle (the model's cap)
ENSEMBLE_START_VOLTAGE = 1.6  # [V] see TimeGalvanostaticEnsemble
ENSEMBLE_STEPS = 10

# the DEVSIM comparison: _peers_dd's voltage-step transient
DEVSIM_DT = 20e-9  # [s] as in _peers_dd._main
DEVSIM_STEPS = 10


def require(module: str) -> None:
    """Raise NotImplementedError (asv: skip) when ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise NotImplementedError(f"{module} is not installed")


def slab_case(n_nodes: int, physics: str = "qe-fermi-dirac", protocol: list | None = None):
    """The TiC / anatase-TiO2 slab on ``n_nodes`` nodes (default mesh: one hop at the contact)."""
    electrons, statistics = PHYSICS[physics]
    return load_case({
        "model": {"kind": "drift_diffusion", "geometry": "separated", "electrons": electrons},
        "semiconductor": {"material": "anatase-TiO2", "thickness": THICKNESS,
                          "statistics": statistics},
        "contact": {"material": "TiC"},
        "initial": {"voltage": START_VOLTAGE},
        "mesh": {"n_nodes": int(n_nodes)},
        "protocol": protocol or [{"step": "rest", "duration": 1.0}],
    })


def cv_protocol(lower_voltage: float = 0.01) -> list:
    """One CV cycle START_VOLTAGE -> lower_voltage -> START_VOLTAGE at SCAN_RATE."""
    return [{"step": "cv", "scan_rates": [SCAN_RATE], "lower_voltage": lower_voltage,
             "upper_voltage": START_VOLTAGE}]


def discharge_protocol(duration: float) -> list:
    """A 1C discharge of ``duration`` seconds (cut off at CUTOFF_VOLTAGE)."""
    return [{"step": "constant_current", "c_rate": C_RATE, "direction": "discharge",
             "cutoff_voltage": CUTOFF_VOLTAGE, "max_duration": duration}]


def check_nodes(setup: dd.Setup, n_nodes: int) -> None:
    """The model honoured mesh.n_nodes (it caps nodes at one per mesh.min_spacing)."""
    if setup.n_nodes != n_nodes:
        raise RuntimeError(f"the model built {setup.n_nodes} nodes, not {n_nodes}")


class StepProblem:
    """A Cell with a start state ``y``, ready for one BDF1 step ``alpha0 y_new - y = dt f``."""

    def __init__(self, setup: dd.Setup, y: np.ndarray, t0: float, control: dd.Control,
                 dt: float):
        self.setup = setup
        self.cell = dd.Cell(setup, dd.Recorder(2))
        self.cell.control = control
        self.y = y
        self.history = -y
        self.t_new = t0 + dt
        self.dt = dt

    def step(self) -> tuple[np.ndarray, bool, int]:
        """One implicit Euler step from ``y`` (``solve_step`` may change its guess: a copy)."""
        return self.cell.solve_step(self.y.copy(), 1.0, self.history, self.t_new, self.dt)


@functools.cache
def slab_step_problem(n_nodes: int, physics: str, control: str) -> StepProblem:
    """The start state of :class:`TimeImplicitStep` (memoised: asv re-runs setup per sample)."""
    if control == "potentiostatic":
        case = slab_case(n_nodes, physics)
        setup = dd.build(case)
        check_nodes(setup, n_nodes)
        state, _ = dd.equilibrium(setup, START_VOLTAGE)
        y = np.concatenate((state.ravel(), [START_VOLTAGE]))
        ctl = dd.Control("potentiostatic", v0=START_VOLTAGE, rate=-SCAN_RATE, t0=0.0)
        return StepProblem(setup, y, 0.0, ctl, DT)
    case = slab_case(n_nodes, physics, discharge_protocol(DISCHARGE_TIME))
    result = dd.simulate(case, progress=False)
    check_nodes(result.setup, n_nodes)
    y = result.y_final
    t0 = result.trajectories[-1][1].t_final
    if not t0 >= DISCHARGE_TIME * (1.0 - 1e-9):
        raise NotImplementedError(
            f"{physics}: the 1C discharge reaches the {CUTOFF_VOLTAGE} V cut-off after "
            f"{t0:.3g} s (V = {y[-1]:.3g} V): no galvanostatic state to step from")
    ctl = dd.Control("galvanostatic", current=-C_RATE * result.setup.one_c_current,
                     cutoff=CUTOFF_VOLTAGE)
    return StepProblem(result.setup, y, t0, ctl, DT)


def checked_step(problem: StepProblem, what: str) -> int:
    """Take the step once; raise when Newton fails. Returns the Newton iterations."""
    _, ok, its = problem.step()
    if not ok:
        raise RuntimeError(f"{what}: Newton did not converge ({its} iterations)")
    return its


class TimeImplicitStep:
    """One BDF1 step (``Cell.solve_step``, dt = 1 ms) of the slab at two sizes.

    ``dd-boltzmann`` transports electrons (three unknowns per node, as in DEVSIM);
    ``qe-fermi-dirac`` is the model's default physics. The time includes the conversions
    between the conserved state and the Newton unknowns.
    """

    params = [SIZES, list(PHYSICS), CONTROLS]
    param_names = ["n_nodes", "physics", "control"]
    timeout = 300

    def setup(self, n_nodes, physics, control):
        self.problem = slab_step_problem(n_nodes, physics, control)
        self.iterations = checked_step(self.problem, f"{physics} {control} step")

    def time_step(self, n_nodes, physics, control):
        self.problem.step()

    def track_newton_iterations(self, n_nodes, physics, control):
        return self.iterations

    track_newton_iterations.unit = "iterations"


class TimeStepParts:
    """The parts of the potentiostatic step of :class:`TimeImplicitStep`, one call each.

    A step costs one ``assemble``, one block-tridiagonal solve (``solve_block3``) and one
    update per Newton iteration (the converged state is not assembled again: only its
    Butler-Volmer current is evaluated), one ``unknowns_from_state`` (conserved state -> Newton
    unknowns; with electrons transported it inverts e = n + n_t at every node, a bracketed
    Newton search that lands on the reference bisection's answer) and one
    ``state_from_unknowns``. From ``kdd.PARALLEL_MIN_NODES`` nodes (so at 1e4, not at 1e3) all
    of them but the update run on the Numba threads. ``time_block_solve_general`` is the
    general k x k solver on the same system, for comparison.
    """

    params = [SIZES, list(PHYSICS)]
    param_names = ["n_nodes", "physics"]
    timeout = 300

    def setup(self, n_nodes, physics):
        problem = slab_step_problem(n_nodes, physics, "potentiostatic")
        checked_step(problem, f"{physics} potentiostatic step")
        s = problem.setup
        ws = problem.cell.ws
        n = s.n_nodes
        self.z = ws.z[0].copy()  # the converged unknowns of the step
        self.state = problem.y[:-1].reshape(problem.cell.shape)[0].copy()
        self.voltage = float(problem.y[-1])
        self.hist = -self.state
        self.s, self.ws = s, ws
        self.rhs = ws.res[0].reshape((n, 3, 1))
        self.dz = ws.dz[0].reshape((n, 3, 1))
        self.z_out = np.empty_like(self.z)
        self.zero_update = np.zeros_like(self.z)
        self.y_out = np.empty_like(self.state)
        for name in ("assemble", "block_solve", "block_solve_general", "apply_update",
                     "unknowns_from_state", "state_from_unknowns"):
            getattr(self, f"time_{name}")(n_nodes, physics)

    def time_assemble(self, n_nodes, physics):
        s, ws = self.s, self.ws
        kdd.assemble(self.z, self.voltage, False, 1.0, self.hist, DT, s.vol[0], s.area[0],
                     s.h[0], s.g_face[0], s.d0_face[0], s.site_energy[0], s.region[0], s.params,
                     s.tables, s.sc[0], ws.lower[0], ws.diag[0], ws.upper[0], ws.res[0],
                     ws.bcol[0], ws.brow[0])

    def time_block_solve(self, n_nodes, physics):
        ws = self.ws
        kdd.solve_block3(ws.lower[0], ws.diag[0], ws.upper[0], ws.res[0], ws.res[0], False,
                         ws.dz[0], ws.dz[0], ws.work_blocks[0])

    def time_block_solve_general(self, n_nodes, physics):
        ws = self.ws
        solve_block_tridiagonal(ws.lower[0], ws.diag[0], ws.upper[0], self.rhs, self.dz,
                                ws.work_blocks[0], ws.work_rhs[0])

    def time_apply_update(self, n_nodes, physics):
        # a zero update: the same loop and limiter, and the unknowns stay as they are
        kdd._apply_update(self.z, self.zero_update, self.s.vt)

    def time_unknowns_from_state(self, n_nodes, physics):
        s = self.s
        kdd.unknowns_from_state(self.state, self.voltage, s.region[0], s.params, s.sc[0],
                                self.z_out)

    def time_state_from_unknowns(self, n_nodes, physics):
        s = self.s
        kdd.state_from_unknowns(self.z, s.region[0], s.params, s.sc[0], self.y_out)


class TimeCVSweep:
    """One full cycle 3.0 -> 0.01 -> 3.0 V at 10 mV/s (``simulate``, default physics).

    About 3000 adaptive BDF2 steps (``solver.max_voltage_step`` = 2 mV); each call is one
    sample (a minute at 1e4 nodes). The set-up compiles with a 0.1 V sweep on the same mesh.
    """

    params = SIZES
    param_names = ["n_nodes"]
    timeout = 900
    number = 1
    repeat = (1, 3, 60.0)
    rounds = 1
    warmup_time = 0.0

    def setup(self, n_nodes):
        self.case = slab_case(n_nodes, protocol=cv_protocol())
        warm = dd.simulate(slab_case(n_nodes, protocol=cv_protocol(START_VOLTAGE - 0.1)),
                           progress=False)
        check_nodes(warm.setup, n_nodes)

    def time_sweep(self, n_nodes):
        dd.simulate(self.case, progress=False)


# ---------------------------------------------------------------------------------------------
# galvanostatic ensemble


def ensemble_case(protocol: list | None = None):
    """64 TiO2 spheres of radius 7.5-25 nm, contact and electrolyte at their surfaces."""
    return load_case({
        "model": {"kind": "drift_diffusion", "geometry": "sphere"},
        "semiconductor": {"material": "anatase-TiO2"},
        "contact": {"material": "TiC"},
        "ensemble": {"n_particles": N_PARTICLES, "radius_min": 7.5e-9, "radius_max": 25e-9},
        "initial": {"voltage": ENSEMBLE_START_VOLTAGE},
        "mesh": {"n_nodes": ENSEMBLE_NODES},
        "protocol": protocol or [{"step": "rest", "duration": 1.0}],
    })


@functools.cache
def ensemble_start() -> tuple[np.ndarray, float]:
    """State and time after 5 s of 1C discharge of the ensemble (memoised)."""
    result = dd.simulate(ensemble_case(discharge_protocol(DISCHARGE_TIME)), progress=False)
    t0 = result.trajectories[-1][1].t_final
    if not t0 >= DISCHARGE_TIME * (1.0 - 1e-9):
        raise RuntimeError(f"ensemble: the 1C discharge stopped at t = {t0:.3g} s")
    return result.y_final, t0


class TimeGalvanostaticEnsemble:
    """Ten 1 ms BDF1 steps of 64 particles sharing one voltage at 1C, on 1 and 2 threads.

    Issue target: ``time_steps`` at least 1.7x faster on 2 threads than on 1 (compare the
    parameters of one run). ``time_newton`` is the parallel Newton kernel alone
    (``newton_ensemble``, one step from the same start), so that the rest of a step (the
    predictor's voltage shift, the state conversions, the Python of ``solve_step``) shows
    as the difference. The discharge starts from an equilibrium at 1.6 V: from 3.0 or 2.0 V the
    integrator's first 1C step is rejected 20 times (down to dt ~ 1e-11 s), and at 1.4 V and
    below the equilibrium does not converge (its cold start at 1.5 V fails for these spheres).
    """

    params = [1, 2]
    param_names = ["threads"]
    timeout = 300

    def setup(self, threads):
        import numba

        if threads > numba.config.NUMBA_NUM_THREADS:
            raise NotImplementedError("not enough threads on this machine")
        numba.set_num_threads(threads)
        y0, t0 = ensemble_start()
        self.model = dd.build(ensemble_case())
        self.cell = dd.Cell(self.model, dd.Recorder(2))
        self.cell.control = dd.Control("galvanostatic", current=-C_RATE * self.model.one_c_current)
        self.y0, self.t0 = y0, t0
        shape = self.cell.shape
        self.z0 = np.empty(shape)
        dd.unknowns(self.model, y0[:-1].reshape(shape), float(y0[-1]), self.z0)
        self.hist = -y0[:-1].reshape(shape)
        self.iterations = self.time_steps(threads)
        its, _ = self.newton()
        if its <= 0:
            raise RuntimeError(f"ensemble Newton failed ({its})")

    def teardown(self, threads):
        import numba

        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)

    def newton(self) -> tuple[int, float]:
        cell = self.cell
        return dd.newton_solve(self.model, cell.ws, self.z0.copy(), float(self.y0[-1]), True,
                               cell.control.current, 1.0, self.hist, DT, cell.tol, cell.max_iter)

    def time_steps(self, threads):
        y = self.y0
        t = self.t0
        total = 0
        for _ in range(ENSEMBLE_STEPS):
            t += DT
            y_new, ok, its = self.cell.solve_step(y.copy(), 1.0, -y, t, DT)
            if not ok:
                raise RuntimeError(f"ensemble step at t = {t:.6g} s failed ({its} iterations)")
            total += its
            y = y_new
        return total

    def time_newton(self, threads):
        self.newton()

    def track_newton_iterations(self, threads):
        """Newton iterations of the ten steps together."""
        return self.iterations

    track_newton_iterations.unit = "iterations"


# ---------------------------------------------------------------------------------------------
# the same transient in fastnai and DEVSIM


def devsim_problem_case(n_nodes: int, problem=DD_PROBLEM):
    """fastnai's case closest to ``_peers_dd``'s DEVSIM problem (``DDProblem``).

    Same: 100 nm, ``n_nodes`` uniform nodes (``mesh.min_spacing = L / (n_nodes - 1)``, finer
    than the hop distance the model defaults to), 300 K, eps_r = 40, Boltzmann electrons
    transported by Scharfetter-Gummel with mu_n = 1 cm2/Vs, N_D = 1e18 cm-3, one +1 ion
    species with D = 1e-11 cm2/s (``sodium.reference_temperature`` = T, so no Arrhenius factor)
    and 1e19 cm-3 in the bulk, no holes, no traps, potential and electron density fixed at the
    contact (x = 0), three unknowns per node, implicit Euler.

    The contact's work function puts ``n = N_D`` at x = 0, DEVSIM's ohmic contact condition
    (fastnai's bulk holds N_D + c0 electrons, so a thin depletion layer forms there; a
    flat-band contact for that bulk, 21 meV lower, makes the model's equilibrium solve fail).
    What differs is listed in :class:`TrackDevsimStepSpeedup`.
    """
    p = problem
    m_eff = 1.0
    chi = 5.1  # [eV] any: only work function - affinity enters
    n_c = band_bending.effective_density_of_states(m_eff, p.temperature)
    return load_case({
        "model": {"kind": "drift_diffusion", "geometry": "separated",
                  "electrons": "drift-diffusion", "temperature": p.temperature},
        "semiconductor": {
            "material": "anatase-TiO2", "thickness": p.length, "statistics": "boltzmann",
            "holes": False, "donor_density": p.donor_density, "acceptor_density": 0.0,
            "relative_permittivity": p.eps_r, "electron_mobility": p.electron_mobility,
            "trap_density": 0.0, "electron_effective_mass": m_eff, "electron_affinity": chi},
        "sodium": {"jump_diffusivity": p.ion_diffusivity,
                   "reference_temperature": p.temperature},
        "contact": {"work_function": chi + p.thermal_voltage * math.log(n_c / p.donor_density)},
        "mesh": {"n_nodes": int(n_nodes), "min_spacing": p.length / (n_nodes - 1)},
        "protocol": [{"step": "rest", "duration": 1.0}],
    })


def ion_equilibrium_voltage(case, ion_density: float) -> float:
    """Electrode voltage at which the neutral bulk holds ``ion_density`` Na+ [V]: U(theta)."""
    setup = dd.build(case)
    theta = ion_density / setup.c_max
    return (case["sodium.ocv_u0"] - setup.vt * math.log(theta / (1.0 - theta))
            - case["sodium.ocv_interaction"] * (1.0 - 2.0 * theta))


class DevsimProblemFastnai:
    """``_peers_dd``'s protocol in fastnai: equilibrium, +0.5 V step, BDF1 steps of 20 ns."""

    def __init__(self, n_nodes: int, problem=DD_PROBLEM):
        self.problem = problem
        case = devsim_problem_case(n_nodes, problem)
        self.setup = dd.build(case)
        check_nodes(self.setup, n_nodes)
        self.v_eq = ion_equilibrium_voltage(case, problem.ion_density)
        state, _ = dd.equilibrium(self.setup, self.v_eq)
        c_mid = state[0, n_nodes // 2, 1]
        if abs(c_mid / problem.ion_density - 1.0) > 1e-6:
            raise RuntimeError(f"bulk ion density {c_mid:.6g} m-3, expected {problem.ion_density:g}")
        self.y_eq = np.concatenate((state.ravel(), [self.v_eq]))
        self.cell = dd.Cell(self.setup, dd.Recorder(2))
        self.cell.control = dd.Control("potentiostatic", v0=self.v_eq + problem.step_voltage)

    def run(self, n_steps: int, dt: float = DEVSIM_DT) -> dict:
        """``n_steps`` BDF1 steps after the voltage step: per-step wall times and iterations."""
        y = self.y_eq
        t_step, iterations = [], []
        for k in range(n_steps):
            guess = y.copy()
            start = time.perf_counter()
            y_new, ok, its = self.cell.solve_step(guess, 1.0, -y, (k + 1) * dt, dt)
            t_step.append(time.perf_counter() - start)
            if not ok:
                raise RuntimeError(f"fastnai step {k + 1} of the DEVSIM problem failed ({its})")
            iterations.append(its)
            y = y_new
        return {"y": y, "t_step": np.array(t_step), "newton_iterations": np.array(iterations)}


@functools.cache
def devsim_problem_fastnai(n_nodes: int) -> DevsimProblemFastnai:
    """:class:`DevsimProblemFastnai`, memoised per process."""
    return DevsimProblemFastnai(n_nodes)


def compare_devsim_step(n_nodes: int, rounds: int = 3) -> dict:
    """Per-step times of fastnai and DEVSIM on the voltage-step transient, interleaved.

    Each round runs DEVSIM_STEPS steps of both; per step index the minimum over rounds is
    kept, then the median over steps (the first step after the jump takes one more Newton
    iteration in both). Returns both medians, their ratio, the Newton iterations and the
    ratio per Newton iteration.
    """
    fastnai = devsim_problem_fastnai(n_nodes)
    fastnai.run(2)  # compiled
    best = {"fastnai": None, "devsim": None}
    its = {}
    for _ in range(rounds):
        runs = {"devsim": devsim_dd_step_solver(n_nodes, DEVSIM_DT, DEVSIM_STEPS),
                "fastnai": fastnai.run(DEVSIM_STEPS)}
        for name, res in runs.items():
            t = res["t_step"]
            best[name] = t if best[name] is None else np.minimum(best[name], t)
            its[name] = res["newton_iterations"]
    out = {"n_nodes": n_nodes}
    for name in best:
        out[f"{name}_step"] = float(np.median(best[name]))
        out[f"{name}_iterations"] = its[name]
        out[f"{name}_per_iteration"] = float(np.sum(best[name]) / np.sum(its[name]))
    out["speedup"] = out["devsim_step"] / out["fastnai_step"]
    out["speedup_per_iteration"] = out["devsim_per_iteration"] / out["fastnai_per_iteration"]
    return out


class TimeDevsimProblemStep:
    """fastnai's BDF1 step (20 ns) of the DEVSIM problem, the fifth after the 0.5 V step."""

    params = SIZES
    param_names = ["n_nodes"]
    timeout = 300

    def setup(self, n_nodes):
        fastnai = devsim_problem_fastnai(n_nodes)
        y = fastnai.run(4)["y"]
        self.problem = StepProblem(fastnai.setup, y, 4 * DEVSIM_DT, fastnai.cell.control,
                                   DEVSIM_DT)
        self.iterations = checked_step(self.problem, "DEVSIM problem step")

    def time_step(self, n_nodes):
        self.problem.step()

    def track_newton_iterations(self, n_nodes):
        return self.iterations

    track_newton_iterations.unit = "iterations"


class TrackDevsimStepSpeedup:
    """DEVSIM's step time / fastnai's on the same transient (issue target: >= 20 at 1e4 nodes).

    Both run ``_peers_dd``'s protocol: a neutral equilibrium, 0.5 V applied to the contact at
    x = 0, then ten implicit Euler steps of 20 ns, with Boltzmann electrons and one mobile +1
    ion species, three unknowns per node, on the same uniform 100 nm mesh; the medians of the
    per-step times are compared (:func:`compare_devsim_step`). Both codes time their whole
    step (DEVSIM: its ``solve`` call; fastnai: ``Cell.solve_step``, conversions included).

    What differs (the model cannot be made identical):

    * x = L: DEVSIM has a second contact, ohmic for electrons and blocking for ions;
      fastnai's model has the electrolyte there (Na+ exchange by Butler-Volmer, electrons
      blocked), so fastnai's voltage step also drives an interface current.
    * Ion flux: DEVSIM's Scharfetter-Gummel flux of dilute ions; fastnai's exact lattice
      hopping with site exclusion (theta = 3.4e-4 here) whose driving force also holds the
      regular-solution and electron chemical potentials.
    * Unknowns: DEVSIM solves for (psi, n, c); fastnai for (psi, logit theta, phi_n) and
      converts its conserved state (psi, c, n) to them every step (an inversion of n(phi_n)
      per node).
    * Charges: DEVSIM has a fixed negative background N_A = c0, so n = N_D in the bulk;
      fastnai's bulk is neutral with n = N_D + c0 (1.1e19 cm-3).
    * Newton tests: DEVSIM stops at a relative update of 1e-10 (sum over the three
      variables); fastnai at 1e-9 of V_t (potentials) or of the logit.
    """

    params = SIZES
    param_names = ["n_nodes"]
    timeout = 600

    def setup(self, n_nodes):
        require("devsim")
        devsim_problem_fastnai(n_nodes).run(2)

    def track_speedup(self, n_nodes):
        return compare_devsim_step(n_nodes)["speedup"]

    track_speedup.unit = "speedup"

    def track_speedup_per_newton_iteration(self, n_nodes):
        return compare_devsim_step(n_nodes)["speedup_per_iteration"]

    track_speedup_per_newton_iteration.unit = "speedup"
