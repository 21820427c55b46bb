"""Machine-speed probes (benchmark code, not part of fastnai): STREAM triad, an L1 FMA loop and a
scalar recurrence.

They measure this machine's limits in the same process and run as the kernels, so that a
kernel's speed can be read as a fraction of what the machine did at that moment (BASELINES §1:
triad 31.6 GB/s on 2 threads at 3 x 200 MB, FMA 46 / 86 GFLOP/s on 1 / 2 threads).

- :func:`triad`: ``a = b + s c`` over float64 arrays with ``prange``, counted the STREAM way,
  24 B per element (two reads and one write; the write-allocate read of ``a`` that a cache
  without streaming stores also does is *not* counted, so the true DRAM traffic is 32 B).
- :func:`fma_probe`: eight chained ``v = v m + b`` per element and pass over
  :data:`FMA_ROWS` rows of :data:`FMA_ROW` doubles (2 KiB a row, L1-resident), rows spread
  over the threads; 16 flop per element and pass. It is compiled with
  ``fastmath={"contract"}`` (this probe only) so that LLVM fuses each multiply and add into an
  FMA; fastnai's kernels run with fastmath off, so their multiplies and adds stay separate
  and half this rate is their ceiling. With numba 0.68 / llvmlite 0.50 this loop compiles to
  512-bit ``vfmadd213pd zmm`` and ran at about 58 / 117 GFLOP/s on 1 / 2 threads here (one
  zmm FMA per cycle); BASELINES §1's 46 / 86 GFLOP/s came from a different (256-bit) loop, so
  the two sets of numbers are not comparable.
- :func:`scalar_probe`: a Thomas solve of a fixed tridiagonal system of :data:`SCALAR_N` rows
  (in L2) and ``exp(-x) log1p(x)`` summed over its solution, :data:`SCALAR_PASSES` times, on
  one thread. Latency-bound scalar code (a division in every step of a dependent recurrence,
  libm calls in an ordered sum that cannot vectorise): what fastnai's 1D kernels spend their
  time on. The FMA probe follows the width of the vector units instead, which differs between
  CPU generations far more than scalar speed does: on 2026-12-07 the project machine's FMA
  probe ran 2.2x faster than on 2026-11-22 (131 against 59 GFLOP/s) while the kernels ran only
  1.1-1.4x faster, so every FMA-normalised kernel looked 1.6-2x slower.
"""

from __future__ import annotations

import math
import time

import numba
import numpy as np
from numba import njit, prange

#: Bytes per triad element, STREAM convention (read b, read c, write a).
TRIAD_BYTES = 24
#: Elements of one array of the out-of-cache triad: 3 x 256 MiB, more than the 480 MiB L3 this
#: VM reports. (The shared machine's best still varies between runs, 31 to 45 GB/s on 2 threads.)
TRIAD_LARGE = 32 * 1024 * 1024
#: Elements of one array of the cache-resident triad: 3 x 256 KiB.
TRIAD_SMALL = 32 * 1024
#: Doubles of one FMA row (2 KiB: in L1 with room to spare).
FMA_ROW = 256
#: Rows of the FMA probe: divisible by 1, 2, 4, 8 and 16 threads, so the work is always even.
FMA_ROWS = 16
#: Flop per element and pass (eight FMAs).
FMA_FLOP = 16
#: Passes per call: 16 x 256 x 16 x 5000 = 328 Mflop, about 3 ms on 2 threads.
FMA_PASSES = 5_000

#: Rows of the scalar probe's tridiagonal system (6 arrays of 32 KiB: in L2).
SCALAR_N = 4096
#: Solves per call: 4096 x 50 = 204 800 rows, about 2-4 ms.
SCALAR_PASSES = 50

_FLAGS = {"cache": True, "error_model": "numpy", "boundscheck": False, "nogil": True}


@njit(parallel=True, **_FLAGS)
def triad(a, b, c, s):
    """STREAM triad ``a[k] = b[k] + s c[k]``."""
    for k in prange(a.shape[0]):
        a[k] = b[k] + s * c[k]


@njit(parallel=True, fastmath={"contract"}, **_FLAGS)
def fma_probe(x, n_passes, m, b):
    """``x[r, k] <- x[r, k] m + b`` eight times per pass (one load and store per 8 FMAs, so
    the loop is bound by the FMA units, not by L1), ``n_passes`` passes; rows in parallel."""
    n_rows, n = x.shape
    for r in prange(n_rows):
        for _ in range(n_passes):
            for k in range(n):
                v = x[r, k]
                v = v * m + b
                v = v * m + b
                v = v * m + b
                v = v * m + b
                v = v * m + b
                v = v * m + b
                v = v * m + b
                v = v * m + b
                x[r, k] = v


@njit(**_FLAGS)
def scalar_probe(lower, diag, upper, rhs, cp, x, n_passes):
    """Thomas forward elimination and back substitution of ``lower, diag, upper`` with ``rhs``
    into ``x``, then ``sum exp(-x) log1p(x)``, ``n_passes`` times; returns the sum (so that
    nothing is optimised away)."""
    n = diag.shape[0]
    total = 0.0
    for _ in range(n_passes):
        cp[0] = upper[0] / diag[0]
        x[0] = rhs[0] / diag[0]
        for k in range(1, n):
            den = diag[k] - lower[k] * cp[k - 1]
            cp[k] = upper[k] / den
            x[k] = (rhs[k] - lower[k] * x[k - 1]) / den
        for k in range(n - 2, -1, -1):
            x[k] -= cp[k] * x[k + 1]
        for k in range(n):
            total += math.exp(-x[k]) * math.log1p(x[k])
    return total


def scalar_arrays() -> tuple[np.ndarray, ...]:
    """The probe's system: a diagonally dominant tridiagonal matrix (a discrete -u'' + u),
    right-hand side between 0.5 and 1.5, and work arrays."""
    n = SCALAR_N
    lower = np.full(n, -1.0)
    upper = np.full(n, -1.0)
    diag = np.full(n, 3.0)
    rhs = 1.0 + 0.5 * np.sin(np.arange(n) * 0.01)
    return lower, diag, upper, rhs, np.zeros(n), np.zeros(n)


def scalar_rate(arrays, repeat: int = 5) -> float:
    """Best scalar-probe rate [million rows per second] over ``repeat`` calls."""
    t = best_time(lambda: scalar_probe(*arrays, SCALAR_PASSES), repeat)
    return SCALAR_N * SCALAR_PASSES / t / 1e6


def triad_arrays(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``a, b, c`` of ``n`` doubles, every page touched (first touch by the parallel kernel)."""
    a = np.empty(n)
    b = np.empty(n)
    c = np.empty(n)
    triad(b, np.zeros(n), np.zeros(n), 0.0)  # cheap way to fault pages in from the threads
    b[:] = 1.0
    c[:] = 2.0
    triad(a, b, c, 3.0)
    return a, b, c


def fma_array() -> np.ndarray:
    """The probe's ``(FMA_ROWS, FMA_ROW)`` state (converges to 1 under ``x m + (1 - m)``)."""
    x = np.full((FMA_ROWS, FMA_ROW), 0.5)
    fma_probe(x, 1, 0.999, 0.001)
    return x


def fma_flops(n_passes: int = FMA_PASSES) -> int:
    """Floating-point operations of one :func:`fma_probe` call."""
    return FMA_FLOP * FMA_ROWS * FMA_ROW * n_passes


def best_time(func, repeat: int) -> float:
    """Minimum wall time [s] of ``repeat`` calls of ``func()``."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def per_call_time(func, calls: int, repeat: int) -> float:
    """Minimum over ``repeat`` batches of the mean time [s] of ``calls`` back-to-back calls
    (for calls too short to time one by one)."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            func()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def triad_bandwidth(a, b, c, repeat: int = 5, n_threads: int | None = None) -> float:
    """Best triad bandwidth [GB/s, 1e9 B/s] over ``repeat`` calls on ``n_threads`` threads."""
    previous = numba.get_num_threads()
    if n_threads is not None:
        numba.set_num_threads(n_threads)
    try:
        t = best_time(lambda: triad(a, b, c, 3.0), repeat)
    finally:
        numba.set_num_threads(previous)
    return TRIAD_BYTES * a.shape[0] / t / 1e9


def fma_gflops(x, repeat: int = 5, n_threads: int | None = None) -> float:
    """Best FMA-probe rate [GFLOP/s] over ``repeat`` calls on ``n_threads`` threads."""
    previous = numba.get_num_threads()
    if n_threads is not None:
        numba.set_num_threads(n_threads)
    try:
        t = best_time(lambda: fma_probe(x, FMA_PASSES, 0.999, 0.001), repeat)
    finally:
        numba.set_num_threads(previous)
    return fma_flops() / t / 1e9
