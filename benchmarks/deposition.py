"""The deposition model: one whole time step at 256^2, 1024^2 and 128^3, the electrolyte solves
of a step with each solver (multigrid, pyamg) side by side, and the CI-sized case to solution
(the phase-field kernel alone at 4096^2: :mod:`benchmarks.phase_field`).

A "step" is everything :func:`fastnai.models.deposition.simulate` does per step: profile terms,
the galvanostatic Newton, growth, the salt and potential solves (AMG-CG), site activation and
dead-Na relabelling. ``setup`` grows a deposit for a few steps first (so the electrolyte has an
interface to go round and the AMG hierarchy exists); those steps are not timed.
"""

from __future__ import annotations

from fastnai.case import load_case
from fastnai.models import deposition as dep

SIZES = [256, 1024]


def _case(n: int, nz: int = 1, ny: int | None = None, solver: str = "multigrid"):
    return load_case({"model": {"kind": "deposition"}, "substrate": {"material": "Na"},
                      "mesh": {"nx": n, "ny": ny or n, "nz": nz, "dx": "0.2 um"},
                      "electrolyte": {"solver": solver},
                      "nucleation": {"mode": "none"},
                      "initial": {"deposit_thickness": "3 um"},
                      "protocol": [{"step": "plate", "current_density": "0.5 mA cm^-2",
                                    "capacity": "1 mA h cm^-2"}]})


class TimeDepositionStep:
    """One galvanostatic step (0.5 mA cm-2, 2 s) of an n x n box with a flat deposit."""

    params = SIZES
    param_names = ["n"]
    timeout = 600

    def setup(self, n):
        self._grow(_case(n))

    def _grow(self, case):
        self.cell = dep.Cell(case, dep.build(case))
        for _ in range(3):
            self._step()

    def _step(self):
        cell = self.cell
        v, _, _ = cell.advance(2.0, "current", -5.0)
        cell.commit(2.0, v)
        cell.t += 2.0
        cell.step_index += 1
        cell.update_mask()

    def time_step(self, n):
        self._step()


class TimeDepositionStep3D(TimeDepositionStep):
    """The same step in an n^3 box (mesh.nz = n): the 3D profile kernel, 7-point electrolyte."""

    params = [64, 128]

    def setup(self, n):
        self._grow(_case(n, n))


class TimeElectrolyteSolves:
    """The salt and potential solves of one step (2 s) around a grown deposit, per solver.

    ``256x128`` is the CI case's box (``cases/deposition_bare_na.toml``); the operators are
    assembled and solved from the previous step's fields, as :meth:`Cell._electrolyte` does
    in a run (the pyamg hierarchy is reused across steps, as in a run; the multigrid one is
    rebuilt at every solve, which the time includes). ``track_iterations``: CG iterations of
    the two solves.
    """

    params = (["multigrid", "amg"], ["256x128", "1024x1024", "128^3"])
    param_names = ["solver", "box"]
    timeout = 900

    def setup(self, solver, box):
        nx, ny, nz = {"256x128": (256, 128, 1), "1024x1024": (1024, 1024, 1),
                      "128^3": (128, 128, 128)}[box]
        self.cell = dep.Cell(_case(nx, nz, ny, solver), dep.build(_case(nx, nz, ny, solver)))
        for _ in range(3):
            TimeDepositionStep._step(self)

    def time_solves(self, solver, box):
        self.cell._electrolyte(2.0)

    def track_iterations(self, solver, box):
        before = self.cell.salt.n_iterations + self.cell.potential.n_iterations
        self.cell._electrolyte(2.0)
        return self.cell.salt.n_iterations + self.cell.potential.n_iterations - before


class TimeBareNaToOneMilliampHour:
    """The CI-sized bare-Na case (256 x 128 cells of 0.2 um, 0.5 mA cm-2) to 1 mA h cm-2."""

    timeout = 1200
    number = 1
    repeat = 1

    params = ["multigrid", "amg"]
    param_names = ["solver"]

    def setup(self, solver):
        from fastnai.validation import cases_dir

        self.case = load_case(cases_dir() / "deposition_bare_na.toml").with_overrides(
            {"electrolyte.solver": solver})
        dep.run(self.case.with_overrides({"protocol.0.capacity": "0.001 mA h cm^-2"}),
                progress=False)  # compile / load the kernels

    def time_to_solution(self, solver):
        dep.run(self.case, progress=False)

    def track_steps(self, solver):
        return int(dep.run(self.case, progress=False).attrs["solver_n_steps"])
