"""Block-tridiagonal solves (k x k blocks, several right-hand sides) and the bordered system.

The coupled drift-diffusion Jacobian has one k x k block per node (k = 3: psi, c, n), coupled to
its neighbours only:

    [B0 C0            ] [x0]   [r0]
    [A1 B1 C1         ] [x1] = [r1]        A_i = lower[i], B_i = diag[i], C_i = upper[i]
    [   A2 B2 C2      ] [x2]   [r2]
    [        ...      ] [..]   [..]

Each scalar row is first scaled by the inverse of its largest coefficient (the rows of Poisson,
ion and electron balances differ by tens of orders of magnitude), then the block Thomas
algorithm runs without pivoting between blocks; the k x k pivots are factorised with partial
pivoting. Galvanostatic control adds one unknown (the voltage) and one equation (the current),
a bordered system solved by block elimination with two right-hand sides. A galvanostatic
ensemble of particles shares that one voltage (the currents add up to the applied one): a
bordered block-diagonal system whose particles are solved in parallel.
"""

from __future__ import annotations

import numpy as np
from numba import literally, njit, prange

from ._jit import JIT, JIT_PARALLEL


@njit(**JIT)
def _lu_solve_inplace(mat, rhs, k, m):
    """Overwrite rhs (k x m) with mat^-1 rhs; mat (k x k) is destroyed. Partial pivoting."""
    literally(k)
    for col in range(k):
        piv = col
        best = abs(mat[col, col])
        for r in range(col + 1, k):
            if abs(mat[r, col]) > best:
                best = abs(mat[r, col])
                piv = r
        if piv != col:
            for c in range(k):
                tmp = mat[col, c]
                mat[col, c] = mat[piv, c]
                mat[piv, c] = tmp
            for c in range(m):
                tmp = rhs[col, c]
                rhs[col, c] = rhs[piv, c]
                rhs[piv, c] = tmp
        inv = 1.0 / mat[col, col]
        for r in range(col + 1, k):
            f = mat[r, col] * inv
            if f != 0.0:
                for c in range(col + 1, k):
                    mat[r, c] -= f * mat[col, c]
                for c in range(m):
                    rhs[r, c] -= f * rhs[col, c]
    for col in range(k - 1, -1, -1):
        inv = 1.0 / mat[col, col]
        for c in range(m):
            acc = rhs[col, c]
            for j in range(col + 1, k):
                acc -= mat[col, j] * rhs[j, c]
            rhs[col, c] = acc * inv


#: Block sizes with a compiled specialisation (the block size is a compile-time constant in
#: each, so the k x k loops unroll: 3x faster for k = 3 than a run-time k).
BLOCK_SIZES = (1, 2, 3, 4)


@njit(**JIT)
def solve_block_tridiagonal(lower, diag, upper, rhs, out, work_blocks, work_rhs):
    """Solve the block-tridiagonal system for m right-hand sides at once (k in BLOCK_SIZES).

    Parameters
    ----------
    lower, diag, upper
        Blocks, shape (n, k, k); ``lower[0]`` and ``upper[n-1]`` are ignored. Left unchanged.
    rhs
        Right-hand sides, shape (n, k, m). Left unchanged.
    out
        Solution, shape (n, k, m); may be the same array as ``rhs``.
    work_blocks
        Scratch, shape (n, k, k) (holds D_i^-1 C_i for the back substitution).
    work_rhs
        Scratch, shape (k, k + m).
    """
    k = diag.shape[1]
    if k == 3:
        _block_sweep(lower, diag, upper, rhs, out, work_blocks, work_rhs, 3)
    elif k == 2:
        _block_sweep(lower, diag, upper, rhs, out, work_blocks, work_rhs, 2)
    elif k == 1:
        _block_sweep(lower, diag, upper, rhs, out, work_blocks, work_rhs, 1)
    elif k == 4:
        _block_sweep(lower, diag, upper, rhs, out, work_blocks, work_rhs, 4)
    else:
        raise ValueError("block size must be 1 to 4")


@njit(**JIT)
def _block_sweep(lower, diag, upper, rhs, out, work_blocks, work_rhs, k):
    """Block Thomas sweep with the block size ``k`` a compile-time constant."""
    literally(k)
    n = diag.shape[0]
    m = rhs.shape[2]
    pivot = np.empty((k, k))
    sol = np.empty((k, k + m))
    for i in range(n):
        # row scales of block row i
        for r in range(k):
            big = 0.0
            for c in range(k):
                big = max(big, abs(diag[i, r, c]))
                if i > 0:
                    big = max(big, abs(lower[i, r, c]))
                if i < n - 1:
                    big = max(big, abs(upper[i, r, c]))
            scale = 1.0 / big if big > 0.0 else 1.0
            # pivot block D_i = s (B_i - A_i Z_(i-1)), right side s (r_i - A_i z_(i-1))
            for c in range(k):
                acc = diag[i, r, c]
                if i > 0:
                    for j in range(k):
                        acc -= lower[i, r, j] * work_blocks[i - 1, j, c]
                pivot[r, c] = acc * scale
            for c in range(k):
                sol[r, c] = upper[i, r, c] * scale if i < n - 1 else 0.0
            for c in range(m):
                acc = rhs[i, r, c]
                if i > 0:
                    for j in range(k):
                        acc -= lower[i, r, j] * out[i - 1, j, c]
                sol[r, k + c] = acc * scale
        _lu_solve_inplace(pivot, sol, k, k + m)
        for r in range(k):
            for c in range(k):
                work_blocks[i, r, c] = sol[r, c]  # Z_i = D_i^-1 C_i
            for c in range(m):
                out[i, r, c] = sol[r, k + c]  # z_i = D_i^-1 (r_i - A_i z_(i-1))
    for i in range(n - 2, -1, -1):
        for r in range(k):
            for c in range(m):
                acc = out[i, r, c]
                for j in range(k):
                    acc -= work_blocks[i, r, j] * out[i + 1, j, c]
                work_rhs[r, c] = acc
        for r in range(k):
            for c in range(m):
                out[i, r, c] = work_rhs[r, c]


@njit(**JIT)
def solve_bordered(lower, diag, upper, rhs, border_column, border_row, corner, rhs_corner, out,
                   work_blocks, work_rhs, work_two):
    """Solve the block-tridiagonal system bordered by one extra unknown and equation.

        [ T    b ] [x     ]   [r    ]
        [ c^T  d ] [lambda] = [r_end]

    By block elimination with two right-hand sides: T [x_r, x_b] = [r, b], then
    lambda = (r_end - c.x_r) / (d - c.x_b) and x = x_r - lambda x_b.

    Parameters
    ----------
    lower, diag, upper
        Blocks of T, shape (n, k, k).
    rhs, border_column, border_row
        r, b and c, shape (n, k).
    corner, rhs_corner
        d and r_end (scalars).
    out
        x, shape (n, k).
    work_blocks, work_rhs, work_two
        Scratch of shapes (n, k, k), (k, k + 2) and (n, k, 2).

    Returns
    -------
    float
        lambda.
    """
    n, k, _ = diag.shape
    for i in range(n):
        for r in range(k):
            work_two[i, r, 0] = rhs[i, r]
            work_two[i, r, 1] = border_column[i, r]
    solve_block_tridiagonal(lower, diag, upper, work_two, work_two, work_blocks, work_rhs)
    dot_r = 0.0
    dot_b = 0.0
    for i in range(n):
        for r in range(k):
            dot_r += border_row[i, r] * work_two[i, r, 0]
            dot_b += border_row[i, r] * work_two[i, r, 1]
    lam = (rhs_corner - dot_r) / (corner - dot_b)
    for i in range(n):
        for r in range(k):
            out[i, r] = work_two[i, r, 0] - lam * work_two[i, r, 1]
    return lam


@njit(**JIT_PARALLEL)
def solve_ensemble_bordered(lower, diag, upper, rhs, border_column, border_row, corner,
                            rhs_corner, out, work_blocks, work_rhs, work_two, dots):
    """Solve P block-tridiagonal systems coupled through one shared unknown, parallel over P.

        [ T_1            b_1 ] [x_1   ]   [r_1  ]
        [      ...       ... ] [...   ] = [...  ]
        [           T_P  b_P ] [x_P   ]   [r_P  ]
        [ c_1^T ... c_P^T d  ] [lambda]   [r_end]

    Each particle solves T_p [x_r, x_b] = [r_p, b_p] (two right-hand sides) independently;
    lambda = (r_end - sum_p c_p.x_r,p) / (d - sum_p c_p.x_b,p), the sums taken in particle
    order after the parallel loop, so the result does not depend on the thread count.

    Parameters
    ----------
    lower, diag, upper
        Blocks, shape (P, n, k, k).
    rhs, border_column, border_row
        r, b, c, shape (P, n, k).
    corner, rhs_corner
        d and r_end.
    out
        x, shape (P, n, k).
    work_blocks, work_rhs, work_two, dots
        Scratch: (P, n, k, k), (P, k, k + 2), (P, n, k, 2) and (P, 2).

    Returns
    -------
    float
        lambda (the shared unknown, e.g. the voltage correction).
    """
    n_particles, n, k, _ = diag.shape
    for p in prange(n_particles):
        for i in range(n):
            for r in range(k):
                work_two[p, i, r, 0] = rhs[p, i, r]
                work_two[p, i, r, 1] = border_column[p, i, r]
        solve_block_tridiagonal(lower[p], diag[p], upper[p], work_two[p], work_two[p],
                                work_blocks[p], work_rhs[p])
        dot_r = 0.0
        dot_b = 0.0
        for i in range(n):
            for r in range(k):
                dot_r += border_row[p, i, r] * work_two[p, i, r, 0]
                dot_b += border_row[p, i, r] * work_two[p, i, r, 1]
        dots[p, 0] = dot_r
        dots[p, 1] = dot_b
    sum_r = 0.0
    sum_b = 0.0
    for p in range(n_particles):  # fixed order: deterministic whatever the threads
        sum_r += dots[p, 0]
        sum_b += dots[p, 1]
    lam = (rhs_corner - sum_r) / (corner - sum_b)
    for p in prange(n_particles):
        for i in range(n):
            for r in range(k):
                out[p, i, r] = work_two[p, i, r, 0] - lam * work_two[p, i, r, 1]
    return lam
