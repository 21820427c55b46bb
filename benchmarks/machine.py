"""This machine's limits, measured in the same run as the kernels: STREAM triad, FMA and scalar
probes.

They are the machine-speed probes for normalising the kernels' results (a slower run of a
kernel on a day when the triad is slower too is the machine, not a regression). The Numba
functions and the byte/flop counts are in :mod:`benchmarks._machine` (BASELINES §1: triad
31.6 GB/s at 3 x 200 MB on 2 threads).

- ``Triad``: ``a = b + s c`` with ``prange`` on float64 arrays of 3 x 256 MiB (out of cache)
  and 3 x 256 KiB (cache-resident), on 1 and 2 threads; ``track_bandwidth`` counts 24 B per
  element (STREAM convention: write-allocate not counted).
- ``FmaProbe``: eight chained FMAs per element over 16 rows of 2 KiB (L1), on 1 and 2 threads.
- ``ScalarProbe``: a Thomas solve of 4096 rows and ``exp(-x) log1p(x)`` over its solution, one
  thread: the latency-bound scalar work of fastnai's 1D kernels (the normaliser of the
  compute-bound kernels in ``benchmarks/regression.py``).

Thread counts above ``NUMBA_NUM_THREADS`` are skipped.
"""

from __future__ import annotations

import numba

from benchmarks import _machine

THREADS = [1, 2]


def _set_threads(n_threads: int) -> int:
    """Set the Numba thread count (NotImplementedError, asv: skip, above the maximum); returns
    the previous count."""
    if n_threads > numba.config.NUMBA_NUM_THREADS:
        raise NotImplementedError(f"{n_threads} threads > NUMBA_NUM_THREADS")
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    return previous


class Triad:
    """STREAM triad ``a = b + s c`` (float64, prange)."""

    params = ([_machine.TRIAD_SMALL, _machine.TRIAD_LARGE], THREADS)
    param_names = ["n", "threads"]
    timeout = 300

    def setup(self, n, n_threads):
        self.previous = _set_threads(n_threads)
        self.a, self.b, self.c = _machine.triad_arrays(n)

    def teardown(self, n, n_threads):
        numba.set_num_threads(self.previous)

    def time_triad(self, n, n_threads):
        _machine.triad(self.a, self.b, self.c, 3.0)

    def track_bandwidth(self, n, n_threads):
        """Best of a batch of calls [GB/s], 24 B per element."""
        repeat = 20 if n >= _machine.TRIAD_LARGE else 2000
        return _machine.triad_bandwidth(self.a, self.b, self.c, repeat)

    track_bandwidth.unit = "GB/s"


class FmaProbe:
    """Fixed compute probe: FMA loop on L1-resident rows (:func:`benchmarks._machine.fma_probe`)."""

    params = THREADS
    param_names = ["threads"]
    timeout = 120

    def setup(self, n_threads):
        self.previous = _set_threads(n_threads)
        self.x = _machine.fma_array()

    def teardown(self, n_threads):
        numba.set_num_threads(self.previous)

    def time_fma(self, n_threads):
        _machine.fma_probe(self.x, _machine.FMA_PASSES, 0.999, 0.001)

    def track_gflops(self, n_threads):
        """Best of 20 calls [GFLOP/s]."""
        return _machine.fma_gflops(self.x, 20)

    track_gflops.unit = "GFLOP/s"


class ScalarProbe:
    """Fixed scalar probe: tridiagonal recurrence and libm calls
    (:func:`benchmarks._machine.scalar_probe`), one thread."""

    timeout = 120

    def setup(self):
        self.previous = _set_threads(1)
        self.arrays = _machine.scalar_arrays()
        _machine.scalar_probe(*self.arrays, 1)

    def teardown(self):
        numba.set_num_threads(self.previous)

    def time_scalar(self):
        _machine.scalar_probe(*self.arrays, _machine.SCALAR_PASSES)

    def track_rate(self):
        """Best of 20 calls [million rows per second]."""
        return _machine.scalar_rate(self.arrays, 20)

    track_rate.unit = "Mrow/s"
