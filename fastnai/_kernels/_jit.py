"""Numba compilation flags: the only place they are set."""

JIT = {"cache": True, "fastmath": False, "error_model": "numpy", "boundscheck": False, "nogil": True}
JIT_PARALLEL = {**JIT, "parallel": True}  # only where the outer loop is prange
# small per-node helpers called inside hot loops: inlined at Numba IR level into their callers
JIT_INLINE = {**JIT, "inline": "always"}

# Arrays shorter than this are processed by the serial twin of a parallel kernel: below it the
# thread start-up costs more than the loop.
PARALLEL_MIN_SIZE = 20_000
