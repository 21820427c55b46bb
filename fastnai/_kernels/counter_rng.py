"""Counter-based random numbers: a keyed hash of (seed, stream, step, index), no state.

Every random number fastnai draws is a pure function of its key, so a result does not depend on
the number of threads, on the order the cells or sites are visited, or on where a run was
resumed: the checkpoint needs only the step counter. The mixing function is the SplitMix64
finaliser (Steele, Lea and Flood, OOPSLA 2014, doi:10.1145/2660193.2660195; the constants are
those of Java's SplittableRandom), applied to the key words folded in one by one with an odd
multiplier (the construction of counter-based generators in Salmon et al., SC 2011,
doi:10.1145/2063384.2063405, with a simpler bijection). The output passes the statistical
checks of ``tests/kernels/test_counter_rng.py`` (uniform moments, serial correlation, and a
Poisson-process test); it is not a cryptographic generator.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit import JIT_INLINE

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2^-53

#: Streams: independent sequences under one seed.
STREAM_ACTIVATION = 1
STREAM_SITE_POSITIONS = 2
STREAM_NOISE = 3


@njit(**JIT_INLINE)
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(**JIT_INLINE)
def _bits(seed, stream, step, index):
    """64 mixed bits keyed on four non-negative integers."""
    z = _mix(np.uint64(seed) * _GOLDEN + np.uint64(stream))
    z = _mix(z + np.uint64(step) * _GOLDEN)
    return _mix(z + np.uint64(index) * _GOLDEN)


@njit(**JIT_INLINE)
def uniform(seed, stream, step, index):
    """A uniform number in [0, 1) keyed on four non-negative integers (53 random bits)."""
    return float(_bits(seed, stream, step, index) >> np.uint64(11)) * _TO_UNIT


@njit(**JIT_INLINE)
def uniform_open(seed, stream, step, index):
    """A uniform number in (0, 1), safe under ``log``: the midpoints ``(k + 1/2) 2^-52`` of a
    52-bit grid, all exactly representable, so neither end can be reached by rounding."""
    return (float(_bits(seed, stream, step, index) >> np.uint64(12)) + 0.5) * (2.0 * _TO_UNIT)


@njit(cache=True)
def uniform_array(seed, stream, step, n):
    """``n`` uniforms of one (seed, stream, step), index 0..n-1 (for tests and set-up)."""
    out = np.empty(n)
    for k in range(n):
        out[k] = uniform(seed, stream, step, k)
    return out
