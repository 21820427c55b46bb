"""The deposition model: one whole time step at 256^2, 1024^2 and 128^3, and the CI-sized case
to solution (the phase-field kernel alone at 4096^2: :mod:`benchmarks.phase_field`).

A "step" is everything :func:`fastnai.models.deposition.simulate` does per step: profile terms,
the galvanostatic Newton, growth, the salt and potential solves (AMG-CG), site activation and
dead-Na relabelling. ``setup`` grows a deposit for a few steps first (so the electrolyte has an
interface to go round and the AMG hierarchy exists); those steps are not timed.
"""

from __future__ import annotations

from fastnai.case import load_case
from fastnai.models import deposition as dep

SIZES = [256, 1024]


def _case(n: int, nz: int = 1):
    return load_case({"model": {"kind": "deposition"}, "substrate": {"material": "Na"},
                      "mesh": {"nx": n, "ny": n, "nz": nz, "dx": "0.2 um"},
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


class TimeBareNaToOneMilliampHour:
    """The CI-sized bare-Na case (256 x 128 cells of 0.2 um, 0.5 mA cm-2) to 1 mA h cm-2."""

    timeout = 1200
    number = 1
    repeat = 1

    def setup(self):
        from fastnai.validation import cases_dir

        self.case = load_case(cases_dir() / "deposition_bare_na.toml")
        dep.run(self.case.with_overrides({"protocol.0.capacity": "0.001 mA h cm^-2"}),
                progress=False)  # compile / load the kernels

    def time_to_solution(self):
        dep.run(self.case, progress=False)

    def track_steps(self):
        return int(dep.run(self.case, progress=False).attrs["solver_n_steps"])
