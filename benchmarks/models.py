"""Models end to end: ``band_bending.solve`` at three mesh sizes and the full ``run``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastnai.case import load_case
from fastnai.models import band_bending

SEED_CASE = "band_bending_ticn_tio2.toml"


def seed_case_path(name: str = SEED_CASE) -> Path:
    """A case file of the repository's ``cases/``, or the copy shipped inside the wheel."""
    path = Path(__file__).resolve().parents[1] / "cases" / name
    if path.is_file():
        return path
    return Path(str(resources.files("fastnai") / "_cases" / name))


def band_bending_case(n_nodes: int, **overrides):
    """The TiC/TiO2 seed case (Fermi-Dirac, planar, 100 nm) on ``n_nodes`` graded nodes.

    The seed's 0.01 nm first cell is kept while it fits; on larger meshes it shrinks to half
    the uniform spacing, so that ``min_spacing * (n_nodes - 1) <= thickness`` holds and the
    mesh stays graded.
    """
    path = seed_case_path()
    thickness = load_case(path)["semiconductor.thickness"]
    min_spacing = min(1e-11, 0.5 * thickness / (n_nodes - 1))
    return load_case(path, {"mesh.n_nodes": n_nodes, "mesh.min_spacing": min_spacing,
                            **overrides})


class TimeBandBending:
    """Poisson-Fermi band bending of the seed case: arrays only (``solve``)."""

    params = [1_000, 10_000, 100_000]
    param_names = ["n_nodes"]

    def setup(self, n_nodes):
        self.case = band_bending_case(n_nodes)
        self.solution = band_bending.solve(self.case)  # compiles or loads the Numba cache

    def time_solve(self, n_nodes):
        band_bending.solve(self.case)

    def peakmem_solve(self, n_nodes):
        band_bending.solve(self.case)

    def track_newton_iterations(self, n_nodes):
        return self.solution.newton_iterations

    track_newton_iterations.unit = "iterations"


class TimeBandBendingRun:
    """The full ``run``: solve, derived quantities and the xarray Dataset with provenance."""

    n_nodes = 10_000

    def setup(self):
        self.case = band_bending_case(self.n_nodes)
        band_bending.run(self.case)

    def time_run(self):
        band_bending.run(self.case)

    def peakmem_run(self):
        band_bending.run(self.case)
