"""Phase-field kernels of the deposition model: ``profile_step`` at three sizes, its effective
bandwidth and thread scaling at 4096^2, the ratio to FiPy at 256^2, and the growth kernels.

``setup`` calls each kernel once, so Numba compilation (or loading it from the cache) is not
timed. ``profile_step`` runs as in :mod:`benchmarks._peers_phase_field`: ``CHEN2015``, no noise,
no Gibbs-Thomson shift, mask and active wall all ones, a tanh front at a quarter height.

Bytes per cell (:data:`BYTES_PER_CELL`, what the effective bandwidth counts): the reads of
``xi`` (8 B; its neighbours come from the rows above and below, which stay in cache, so each
value crosses the memory bus once) and ``mask`` (1 B, uint8), and the writes of ``xi_star``,
``geom`` and ``geom2`` (8 B each; chen2015 writes zeros to ``geom2``, but it is written, so it
is traffic): **33 B per cell**. ``wall_active`` (``nx`` bytes) is negligible and ``eta_shift``
is not touched (``gt_coeff = 0``). Write-allocate is **not** counted, the same convention as
the STREAM triad's 24 B per element (:mod:`benchmarks._machine`), so the fraction of the triad
compares like with like; a cache that reads each written line first moves 57 B per cell
(:data:`BYTES_PER_CELL_WRITE_ALLOCATE`) against the triad's 32 B.

The one-process table with the issue's targets is ``python benchmarks/deposition_report.py``.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

from benchmarks import _machine
from benchmarks._peers_phase_field import (
    PROBLEM,
    FipyAllenCahn,
    ProfileStepArrays,
    check_fastnai,
    check_fipy,
    initial_state,
    require_fipy,
)
from fastnai._kernels import phase_field as kpf

SIZES = [256, 1024, 4096]
LARGE = 4096  # bandwidth and thread-scaling size
PEER_SIZE = 256  # FiPy comparison size

#: Bytes counted per cell of ``profile_step``: read xi + mask, write xi_star, geom, geom2.
BYTES_PER_CELL = 8 + 1 + 3 * 8
#: The same with the write-allocate read of the three written arrays.
BYTES_PER_CELL_WRITE_ALLOCATE = BYTES_PER_CELL + 3 * 8

#: Steps of the FiPy comparison (see :mod:`benchmarks._peers_phase_field`).
FIPY_VARIANTS = ["allen-cahn", "two-field"]


def with_threads(n_threads: int, func):
    """Call ``func()`` with Numba on ``n_threads`` threads, restoring the count after."""
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        return func()
    finally:
        numba.set_num_threads(previous)


def profile_step_time(arrays: ProfileStepArrays, repeat: int, n_threads: int | None = None) -> float:
    """Best time [s] of one ``profile_step`` (batches of calls below 1024^2)."""
    calls = max(1, (1024 * 1024) // (arrays.n * arrays.n))
    func = functools.partial(_machine.per_call_time, arrays.profile_step, calls, repeat)
    return func() if n_threads is None else with_threads(n_threads, func)


def fastnai_step(arrays: ProfileStepArrays, variant: str):
    """fastnai's side of a FiPy comparison variant."""
    return arrays.profile_step if variant == "allen-cahn" else arrays.two_field_step


def fipy_step(model: FipyAllenCahn, variant: str):
    """FiPy's side of a comparison variant."""
    return model.step_allen_cahn if variant == "allen-cahn" else model.step


class TimeProfileStep:
    """One ``profile_step`` (chen2015) of an n x n grid on the default thread count."""

    params = SIZES
    param_names = ["n"]
    timeout = 300

    def setup(self, n):
        self.arrays = ProfileStepArrays(n)
        self.arrays.profile_step()

    def time_profile_step(self, n):
        self.arrays.profile_step()


class TrackProfileStepLarge:
    """``profile_step`` at 4096^2: effective bandwidth and its fraction of the triad measured
    beside it (both on the default thread count)."""

    timeout = 600
    repeat = 1
    number = 1

    def setup(self):
        self.arrays = ProfileStepArrays(LARGE)
        self.arrays.profile_step()

    def track_bandwidth(self):
        """Effective bandwidth [GB/s] at BYTES_PER_CELL (33 B, no write-allocate)."""
        t = profile_step_time(self.arrays, 5)
        return BYTES_PER_CELL * LARGE * LARGE / t / 1e9

    track_bandwidth.unit = "GB/s"

    def track_triad_fraction(self):
        """Effective bandwidth over the STREAM triad (3 x 256 MiB) in the same process."""
        a, b, c = _machine.triad_arrays(_machine.TRIAD_LARGE)
        best_pf = best_triad = 0.0
        for _ in range(3):  # interleaved, best of each
            best_triad = max(best_triad, _machine.triad_bandwidth(a, b, c, 3))
            t = profile_step_time(self.arrays, 2)
            best_pf = max(best_pf, BYTES_PER_CELL * LARGE * LARGE / t / 1e9)
        return best_pf / best_triad

    track_triad_fraction.unit = "fraction of triad"


class TrackThreadSpeedup:
    """Speed-up of ``profile_step`` at 4096^2 from 1 to 2 Numba threads (interleaved rounds)."""

    timeout = 600
    repeat = 1
    number = 1

    def setup(self):
        if numba.config.NUMBA_NUM_THREADS < 2:
            raise NotImplementedError("fewer than 2 Numba threads")
        self.arrays = ProfileStepArrays(LARGE)
        self.arrays.profile_step()

    def track_thread_speedup(self):
        best = {1: math.inf, 2: math.inf}
        for _ in range(3):
            for n_threads in best:
                best[n_threads] = min(best[n_threads], profile_step_time(self.arrays, 2, n_threads))
        return best[1] / best[2]

    track_thread_speedup.unit = "t(1 thread) / t(2 threads)"


class FipyComparison:
    """fastnai vs FiPy at 256^2 on the explicit step (:mod:`benchmarks._peers_phase_field`):
    ``allen-cahn`` (profile_step vs FiPy's Allen-Cahn equation: the issue's target, >= 1000)
    and ``two-field`` (plus the diffusion of c on both sides). Skipped without FiPy."""

    params = FIPY_VARIANTS
    param_names = ["step"]
    timeout = 300

    def setup(self, variant):
        require_fipy()
        check_fastnai(PEER_SIZE)
        self.model = FipyAllenCahn(PEER_SIZE)
        check_fipy(self.model)
        self.arrays = ProfileStepArrays(PEER_SIZE)
        self.arrays.two_field_step()
        self.fastnai = fastnai_step(self.arrays, variant)
        self.fipy = fipy_step(self.model, variant)

    def time_fastnai(self, variant):
        self.fastnai()

    def time_fipy(self, variant):
        self.fipy()

    def track_cell_update_ratio(self, variant):
        """fastnai's cell-update rate over FiPy's (= FiPy's step time / fastnai's)."""
        t_fastnai = t_fipy = math.inf
        for _ in range(3):
            t_fastnai = min(t_fastnai, _machine.per_call_time(self.fastnai, 20, 5))
            t_fipy = min(t_fipy, _machine.best_time(self.fipy, 2))
        return t_fipy / t_fastnai

    track_cell_update_ratio.unit = "x FiPy"


class TimeGrowth:
    """``growth_sum`` (one Newton evaluation of the galvanostatic balance) and ``apply_growth``
    at 1024^2 with a flat front (profile-preserving geometry, the model's default) a quarter of
    the way up; the mask covers the metal and 11.5 interface widths above the front, as the
    model's reacting region does, so about 10 % of the cells react."""

    n = 1024
    timeout = 300

    def setup(self):
        n, p = self.n, PROBLEM
        xi, _ = initial_state(n, p)
        centres = (np.arange(n) + 0.5) * p.dx
        xi[:] = 0.5 * (1.0 - np.tanh((centres[:, None] - 0.25 * n * p.dx) / (2.0 * p.lam)))
        self.xi = xi
        front = 0.25 * n * p.dx + 11.5 * p.lam
        mask = np.broadcast_to((centres < front)[:, None], (n, n)).astype(np.uint8)
        self.xi_star, self.geom, self.geom2 = (np.zeros((n, n)) for _ in range(3))
        self.eta_shift = np.zeros((n, n))
        kpf.profile_step(xi, np.ones(n, np.uint8), p.cos_theta, p.dx, p.lam, p.mobility, p.dt,
                         kpf.PROFILE_PRESERVING, mask, 0.0, 0.0, 0.0, 1, 0, self.xi_star,
                         self.geom, self.geom2, self.eta_shift)
        self.phi = np.full((n, n), 1e-3)
        self.conc = np.full((n, n), 1000.0)
        self.partial = np.zeros((kpf.N_CHUNKS, 2))
        self.xi_new = np.zeros((n, n))
        self.source = np.zeros((n, n))
        vm, faraday, f_rt = 23.78e-6, 96485.33212, 38.92
        # voltage, ..., use_shift, j0, 1/c_ref, alpha_a, alpha_c, F/RT, V_m/F, dt, c_floor
        self.args = (-0.02, self.xi_star, self.geom, self.geom2, self.phi, self.conc,
                     self.eta_shift, False, 5.0, 1e-3, 0.5, 0.5, f_rt, vm / faraday, 1.0, 1e-9)
        self.c_s = 1.0 / vm
        self.time_growth_sum()
        self.time_apply_growth()

    def time_growth_sum(self):
        kpf.growth_sum(*self.args, self.partial)

    def time_apply_growth(self):
        voltage, *rest = self.args
        kpf.apply_growth(voltage, self.xi, *rest, self.c_s, self.xi_new, self.source)
