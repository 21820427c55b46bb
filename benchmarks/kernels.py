"""Compiled kernels at two sizes: Fermi-Dirac integrals, (block-)tridiagonal solves, Poisson Newton.

``setup`` calls each kernel once, so Numba compilation (or loading it from the cache) is not
timed. Inputs come from a fixed seed.
"""

from __future__ import annotations

import numpy as np

from fastnai._kernels import poisson
from fastnai._kernels._jit import PARALLEL_MIN_SIZE
from fastnai._kernels.block_tridiagonal import (
    solve_block_tridiagonal,
    solve_bordered,
    solve_ensemble_bordered,
)
from fastnai._kernels.fermi_dirac import fermi_dirac, fermi_dirac_half_inverse
from fastnai._kernels.tridiagonal import solve_tridiagonal
from fastnai.case import load_case
from fastnai.mesh import graded_mesh
from fastnai.models import band_bending

SIZES = [1_000, 100_000]
SEED = 20240611


def _rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


class TimeFermiDirac:
    """``fermi_dirac`` and its inverse on arrays spanning all three evaluation branches."""

    params = SIZES
    param_names = ["n"]

    def setup(self, n):
        rng = _rng()
        self.eta = rng.uniform(-10.0, 60.0, n)  # series, Chebyshev and Sommerfeld branches
        self.y = fermi_dirac(0.5, self.eta)
        fermi_dirac(0.5, self.eta)
        fermi_dirac(-0.5, self.eta)
        fermi_dirac_half_inverse(self.y)

    def time_half(self, n):
        fermi_dirac(0.5, self.eta)

    def time_minus_half(self, n):
        fermi_dirac(-0.5, self.eta)

    def time_half_inverse(self, n):
        fermi_dirac_half_inverse(self.y)


class TimeTridiagonal:
    """Thomas algorithm on a diagonally dominant system (a Poisson Jacobian's structure)."""

    params = SIZES
    param_names = ["n"]

    def setup(self, n):
        rng = _rng()
        self.lower = rng.uniform(0.5, 1.0, n)
        self.upper = rng.uniform(0.5, 1.0, n)
        self.diag = -(self.lower + self.upper + rng.uniform(0.0, 1.0, n))
        self.rhs = rng.standard_normal(n)
        self.out = np.empty(n)
        self.work = np.empty(n)
        solve_tridiagonal(self.lower, self.diag, self.upper, self.rhs, self.out, self.work)

    def time_solve_tridiagonal(self, n):
        solve_tridiagonal(self.lower, self.diag, self.upper, self.rhs, self.out, self.work)


def _accumulation_arrays(n: int, statistics: int):
    """Arrays of the seed TiC/TiO2 case on a uniform 100 nm mesh, built by the model itself.

    Returns psi (an accumulation-layer guess, contact first), face conductances, dual-cell
    volumes and the space-charge parameter vector.
    """
    length = 100e-9
    case = load_case({
        "model": {"kind": "band_bending"},
        "semiconductor": {"material": "anatase-TiO2", "thickness": length,
                          "statistics": ("boltzmann" if statistics == poisson.STATISTICS_BOLTZMANN
                                         else "fermi-dirac")},
        "contact": {"material": "TiC"},
        "mesh": {"n_nodes": n, "min_spacing": length / (n - 1)},  # uniform
    })
    params = band_bending.charge_parameters(case)
    depth = graded_mesh(length, n, length / (n - 1))
    geometry = band_bending.make_geometry("planar", depth)
    eps = case["semiconductor.relative_permittivity"] * 8.8541878128e-12
    conductance = eps * geometry.face_area / np.diff(depth)
    psi_bulk = poisson.neutral_potential(params)
    psi = psi_bulk + 0.2 * np.exp(-depth / 4e-9)
    return psi, conductance, geometry.volume, params


class TimePoissonAssembly:
    """Residual and tridiagonal Jacobian of the box-method Poisson problem (Fermi-Dirac)."""

    params = SIZES
    param_names = ["n"]

    def setup(self, n):
        self.psi, self.conductance, self.volume, self.params = _accumulation_arrays(
            n, poisson.STATISTICS_FERMI_DIRAC)
        self.bands = tuple(np.zeros(n) for _ in range(4))
        self.psi += 1e-3 * _rng().standard_normal(n)
        self.time_assemble_serial(n)
        self.time_assemble_parallel(n)

    def time_assemble_serial(self, n):
        poisson.assemble_serial(self.psi, self.conductance, self.volume, self.params, *self.bands)

    def time_assemble_parallel(self, n):
        poisson.assemble_parallel(self.psi, self.conductance, self.volume, self.params, *self.bands)


class TimeNewtonSolve:
    """One log-damped Newton solve (to max|dpsi|/Vt <= 1e-10) of a Dirichlet contact problem."""

    params = ([1_000, 100_000], ["boltzmann", "fermi-dirac"])
    param_names = ["n", "statistics"]
    max_iter = 100

    def setup(self, n, statistics):
        code = (poisson.STATISTICS_BOLTZMANN if statistics == "boltzmann"
                else poisson.STATISTICS_FERMI_DIRAC)
        self.psi0, self.conductance, self.volume, self.params = _accumulation_arrays(n, code)
        self.contact = np.zeros(poisson.N_CONTACT)
        self.contact[poisson.C_PSI] = self.psi0[0]
        self.history = np.zeros((self.max_iter, 2))
        self.parallel = n >= PARALLEL_MIN_SIZE
        self.psi = self.psi0.copy()
        iters = self._solve()
        if iters <= 0:
            raise RuntimeError(f"Newton did not converge in setup ({iters})")

    def _solve(self):
        return poisson.newton_solve(self.psi, self.conductance, self.volume, 1.0, self.params,
                                    poisson.BC_DIRICHLET, self.contact, 1e-10, self.max_iter,
                                    self.parallel, self.history)

    def time_newton_solve(self, n, statistics):
        self.psi[:] = self.psi0
        self._solve()

    def track_newton_iterations(self, n, statistics):
        self.psi[:] = self.psi0
        return self._solve()

    track_newton_iterations.unit = "iterations"


class TimeBlockTridiagonal:
    """3 x 3 block-tridiagonal solve (the drift-diffusion Jacobian) and its bordered variant."""

    params = [1_000, 10_000]
    param_names = ["n"]

    def setup(self, n):
        rng = _rng()
        k = 3
        self.lower = rng.normal(size=(n, k, k))
        self.upper = rng.normal(size=(n, k, k))
        self.diag = rng.normal(size=(n, k, k)) + 10.0 * np.eye(k)
        self.rhs = rng.normal(size=(n, k, 1))
        self.out = np.empty_like(self.rhs)
        self.blocks = np.empty((n, k, k))
        self.small = np.empty((k, k + 2))
        self.vec = rng.normal(size=(n, k))
        self.two = np.empty((n, k, 2))
        self.x = np.empty((n, k))
        self.time_solve(n)
        self.time_bordered(n)

    def time_solve(self, n):
        solve_block_tridiagonal(self.lower, self.diag, self.upper, self.rhs, self.out,
                                self.blocks, self.small)

    def time_bordered(self, n):
        solve_bordered(self.lower, self.diag, self.upper, self.vec, self.vec, self.vec, 1.0, 0.0,
                       self.x, self.blocks, self.small, self.two)


class TimeEnsembleBordered:
    """64 particles x 200 nodes x 3 unknowns sharing one voltage, on 1 and 2 threads.

    The issue's target for the galvanostatic ensemble: wall time at least 1.7x better from 1
    to 2 threads (compare the two parameters of one run).
    """

    params = [1, 2]
    param_names = ["threads"]

    def setup(self, threads):
        import numba

        if threads > numba.config.NUMBA_NUM_THREADS:
            raise NotImplementedError("not enough threads on this machine")
        numba.set_num_threads(threads)
        rng = _rng()
        p, n, k = 64, 200, 3
        self.lower = rng.normal(size=(p, n, k, k))
        self.upper = rng.normal(size=(p, n, k, k))
        self.diag = rng.normal(size=(p, n, k, k)) + 10.0 * np.eye(k)
        self.vectors = rng.normal(size=(3, p, n, k))
        self.out = np.empty((p, n, k))
        self.work = (np.empty((p, n, k, k)), np.empty((p, k, k + 2)), np.empty((p, n, k, 2)),
                     np.empty((p, 2)))
        self.time_solve(threads)

    def teardown(self, threads):
        import numba

        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)

    def time_solve(self, threads):
        r, b, c = self.vectors
        solve_ensemble_bordered(self.lower, self.diag, self.upper, r, b, c, 100.0, 1.0, self.out,
                                *self.work)
