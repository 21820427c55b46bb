"""Tridiagonal linear solves (Thomas algorithm) that allocate nothing."""

from __future__ import annotations

from numba import njit

from ._jit import JIT


@njit(**JIT)
def solve_tridiagonal(lower, diag, upper, rhs, out, work):
    """Solve the tridiagonal system A out = rhs without pivoting.

    Row ``i`` reads ``lower[i] out[i-1] + diag[i] out[i] + upper[i] out[i+1] = rhs[i]``;
    ``lower[0]`` and ``upper[-1]`` are ignored. Stable for the diagonally dominant matrices of
    box-method diffusion operators (an M-matrix plus a non-negative diagonal).

    Parameters
    ----------
    lower, diag, upper, rhs
        Bands and right-hand side, length n; left unchanged.
    out
        Solution, length n (may alias ``rhs``).
    work
        Scratch, length n.

    ::

        [d0 u0          ] [x0]   [b0]
        [l1 d1 u1       ] [x1] = [b1]
        [   l2 d2 u2    ] [x2]   [b2]
        [      ...      ] [..]   [..]
    """
    n = diag.size
    inv = 1.0 / diag[0]
    work[0] = upper[0] * inv
    out[0] = rhs[0] * inv
    for i in range(1, n):
        denom = diag[i] - lower[i] * work[i - 1]
        inv = 1.0 / denom
        work[i] = upper[i] * inv
        out[i] = (rhs[i] - lower[i] * out[i - 1]) * inv
    for i in range(n - 2, -1, -1):
        out[i] -= work[i] * out[i + 1]
