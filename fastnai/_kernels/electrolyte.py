"""Finite-volume operators of the binary electrolyte around a diffuse metal (2D, CSR).

The electrolyte of the deposition model (SPEC 3.4) lives in the cells of the ``(ny, nx)`` grid
of :mod:`fastnai._kernels.phase_field` (periodic in x), weighted by its volume fraction
``psi = 1 - xi`` (the smoothed-boundary / diffuse-domain method: Yu, Chen and Thornton,
Modelling Simul. Mater. Sci. Eng. 20, 075008 (2012), doi:10.1088/0965-0393/20/7/075008), and,
for the salt, in a 1D column above the top row that stands for the rest of the separator (it is
laterally uniform, so one node per layer carries the whole width ``Lx``). Unknowns are
numbered cell by cell, ``k = j nx + i``, then the column nodes ``N + m`` (``m = 0`` next to the
grid, the counter electrode beyond the last).

Every operator here has the form, per unit depth,

    (A u)_k = M_k u_k + sum_faces K_f (u_k - u_nb)

with face conductances ``K = coef psi_face`` (``psi_face`` the mean of the two cells' ``psi``,
floored at ``psi_min``; face length and distance are both ``dx``), the cell "mass" ``M_k =
mass psi_k dx^2`` and, across the top face, either the series conductance to column node 0,
``dx / (dx/(2 coef psi_k) + h/(2 coef_col))``, or (no column) a Dirichlet value at the face,
``K = 2 coef psi_k``. Column faces have ``K = coef_col Lx / h`` and node masses
``mass_col h Lx``. The matrix is symmetric positive definite (positive definite with a mass
term or a Dirichlet face), so CG with an algebraic-multigrid preconditioner solves it.

The CSR pattern is computed once (:func:`csr_pattern`); :func:`fill` writes values in place,
so a time step assembles without allocation.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._jit import JIT, JIT_INLINE, JIT_PARALLEL


@njit(**JIT)
def _row_neighbours(j, i, ny, nx, ncol, out):
    """Distinct neighbour unknowns of cell (j, i), unsorted; returns their count."""
    n = 0
    k = j * nx + i
    if nx > 1:
        for ii in ((i + 1) % nx, (i - 1 + nx) % nx):
            kk = j * nx + ii
            dup = False
            for q in range(n):
                if out[q] == kk:
                    dup = True
            if not dup and kk != k:
                out[n] = kk
                n += 1
    if j > 0:
        out[n] = k - nx
        n += 1
    if j < ny - 1:
        out[n] = k + nx
        n += 1
    elif ncol > 0:
        out[n] = ny * nx
        n += 1
    return n


@njit(**JIT)
def csr_pattern(ny, nx, ncol):
    """``(indptr, indices)`` of the operator: 5-point cells (periodic x), top row - column."""
    n_cells = ny * nx
    n = n_cells + ncol
    indptr = np.zeros(n + 1, dtype=np.int64)
    buf = np.empty(8, dtype=np.int64)
    for j in range(ny):
        for i in range(nx):
            indptr[j * nx + i + 1] = _row_neighbours(j, i, ny, nx, ncol, buf) + 1
    for m in range(ncol):
        cnt = 1 + (1 if m + 1 < ncol else 0)
        cnt += nx if m == 0 else 1
        indptr[n_cells + m + 1] = cnt
    for r in range(n):
        indptr[r + 1] += indptr[r]
    indices = np.empty(indptr[n], dtype=np.int64)
    for j in range(ny):
        for i in range(nx):
            k = j * nx + i
            cnt = _row_neighbours(j, i, ny, nx, ncol, buf)
            buf[cnt] = k
            row = np.sort(buf[:cnt + 1])
            indices[indptr[k]:indptr[k + 1]] = row
    for m in range(ncol):
        r = n_cells + m
        p = indptr[r]
        if m == 0:
            for i in range(nx):
                indices[p] = (ny - 1) * nx + i
                p += 1
        else:
            indices[p] = r - 1
            p += 1
        indices[p] = r
        p += 1
        if m + 1 < ncol:
            indices[p] = r + 1
    return indptr, indices


@njit(**JIT_INLINE)
def _add(data, indptr, indices, row, col, value):
    for p in range(indptr[row], indptr[row + 1]):
        if indices[p] == col:
            data[p] += value
            return


@njit(**JIT_INLINE)
def _face(psi, j0, i0, j1, i1, psi_min):
    v = 0.5 * (psi[j0, i0] + psi[j1, i1])
    return v if v > psi_min else psi_min


@njit(**JIT_PARALLEL)
def fill(data, indptr, indices, psi, psi_min, coef, mass, dx, ncol, coef_col, h_col, mass_col,
         top_dirichlet):
    """Write the operator's values into ``data`` (see the module docstring).

    ``top_dirichlet``: without a column, whether the top face holds a Dirichlet value (else it
    is closed). Returns nothing; the right-hand side of a Dirichlet face is
    ``top_face_conductance * value`` (:func:`top_face_conductance`).
    """
    ny, nx = psi.shape
    n_cells = ny * nx
    for j in prange(ny):
        for i in range(nx):
            k = j * nx + i
            for p in range(indptr[k], indptr[k + 1]):
                data[p] = 0.0
            pk = psi[j, i] if psi[j, i] > psi_min else psi_min
            diag = mass * pk * dx * dx
            if nx > 1:
                for side in range(2):
                    if nx == 2 and side == 1:
                        break  # both x faces lead to the one other cell: counted once, doubled
                    ii = (i + 1) % nx if side == 0 else (i - 1 + nx) % nx
                    kf = coef * _face(psi, j, i, j, ii, psi_min)
                    if nx == 2:
                        kf *= 2.0
                    diag += kf
                    _add(data, indptr, indices, k, j * nx + ii, -kf)
            if j > 0:
                kf = coef * _face(psi, j, i, j - 1, i, psi_min)
                diag += kf
                _add(data, indptr, indices, k, k - nx, -kf)
            if j < ny - 1:
                kf = coef * _face(psi, j, i, j + 1, i, psi_min)
                diag += kf
                _add(data, indptr, indices, k, k + nx, -kf)
            elif ncol > 0:
                kf = dx / (0.5 * dx / (coef * pk) + 0.5 * h_col / coef_col)
                diag += kf
                _add(data, indptr, indices, k, n_cells, -kf)
            elif top_dirichlet:
                diag += 2.0 * coef * pk
            _add(data, indptr, indices, k, k, diag)
    if ncol > 0:
        width = nx * dx
        k_col = coef_col * width / h_col
        for m in range(ncol):
            r = n_cells + m
            for p in range(indptr[r], indptr[r + 1]):
                data[p] = 0.0
            diag = mass_col * h_col * width
            if m == 0:
                for i in range(nx):
                    pk = psi[ny - 1, i] if psi[ny - 1, i] > psi_min else psi_min
                    kf = dx / (0.5 * dx / (coef * pk) + 0.5 * h_col / coef_col)
                    diag += kf
                    _add(data, indptr, indices, r, (ny - 1) * nx + i, -kf)
            else:
                diag += k_col
                _add(data, indptr, indices, r, r - 1, -k_col)
            if m + 1 < ncol:
                diag += k_col
                _add(data, indptr, indices, r, r + 1, -k_col)
            _add(data, indptr, indices, r, r, diag)


@njit(**JIT_PARALLEL)
def face_divergence(psi, psi_min, coef, u, out):
    """``out_k = sum_faces K_f (u_nb - u_k)`` over the grid's interior faces (closed top)."""
    ny, nx = psi.shape
    for j in prange(ny):
        for i in range(nx):
            s = 0.0
            uk = u[j, i]
            if nx > 1:
                for side in range(2):
                    if nx == 2 and side == 1:
                        break
                    ii = (i + 1) % nx if side == 0 else (i - 1 + nx) % nx
                    kf = coef * _face(psi, j, i, j, ii, psi_min)
                    if nx == 2:
                        kf *= 2.0
                    s += kf * (u[j, ii] - uk)
            if j > 0:
                s += coef * _face(psi, j, i, j - 1, i, psi_min) * (u[j - 1, i] - uk)
            if j < ny - 1:
                s += coef * _face(psi, j, i, j + 1, i, psi_min) * (u[j + 1, i] - uk)
            out[j, i] = s
