"""Finite-volume operators of the binary electrolyte around a diffuse metal (2D and 3D, CSR).

The electrolyte of the deposition model (SPEC 3.4) lives in the cells of the phase-field grid,
weighted by its volume fraction ``psi = 1 - xi`` (the smoothed-boundary / diffuse-domain
method: Yu, Chen and Thornton, Modelling Simul. Mater. Sci. Eng. 20, 075008 (2012),
doi:10.1088/0965-0393/20/7/075008), and, for the salt, in a 1D column above the top row that
stands for the rest of the separator (it is laterally uniform, so one node per layer carries
the whole top area).

Layout: fields are ``(ny, nl)``: ``ny`` layers up from the substrate, each of ``nl`` lateral
cells (``nl = nx`` in 2D; ``nl = nz nx``, cell ``l = k nx + i``, in 3D: a C-contiguous
``(ny, nz, nx)`` array reshaped). The periodic lateral neighbours come from a table
``lat[l, :]`` (:func:`lateral_neighbours`); a neighbour listed twice (a period of two cells) is
two faces to the same cell, and the cell itself (a period of one) is no face. Unknowns are
numbered ``k = j nl + l``, then the column nodes ``N + m`` (``m = 0`` next to the grid, the
counter electrode beyond the last).

Every operator has the form, per ``dx^(d-2)`` (per unit depth in 2D, per ``dx`` of depth in
3D: the 3D system divided by ``dx``, which leaves the 2D coefficients unchanged),

    (A u)_k = M_k u_k + sum_faces K_f (u_k - u_nb)

with face conductances ``K = coef psi_face`` (``psi_face`` the mean of the two cells' ``psi``,
floored at ``psi_min``), the cell "mass" ``M_k = mass psi_k dx^2`` and, across the top face,
either the series conductance to column node 0, ``dx / (dx/(2 coef psi_k) + h/(2 coef_col))``,
or (no column) a Dirichlet value at the face, ``K = 2 coef psi_k``. The column carries the top
area ``nl dx`` (per ``dx^(d-2)``): faces ``K = coef_col nl dx / h``, node masses ``mass_col h nl
dx``. The matrix is symmetric positive definite (positive definite with a mass term or a
Dirichlet face), so CG with an algebraic-multigrid preconditioner solves it.

The CSR pattern is computed once (:func:`csr_pattern`); :func:`fill` writes values in place,
so a time step assembles without allocation.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._jit import JIT, JIT_INLINE, JIT_PARALLEL


def lateral_neighbours(nx: int, nz: int = 1) -> np.ndarray:
    """``(nz nx, 2 or 4)`` int64 table of the periodic lateral neighbours (x, then z).

    Examples
    --------
    >>> lateral_neighbours(3).tolist()
    [[1, 2], [2, 0], [0, 1]]
    >>> lateral_neighbours(2, 2)[0].tolist()
    [1, 1, 2, 2]
    """
    k, i = np.divmod(np.arange(nz * nx), nx)
    cols = [k * nx + (i + 1) % nx, k * nx + (i - 1) % nx]
    if nz > 1:
        cols += [((k + 1) % nz) * nx + i, ((k - 1) % nz) * nx + i]
    return np.stack(cols, axis=1).astype(np.int64)


@njit(**JIT)
def _row_neighbours(j, l, ny, nl, lat, ncol, out):
    """Distinct neighbour unknowns of cell (j, l), unsorted; returns their count."""
    n = 0
    k = j * nl + l
    for q in range(lat.shape[1]):
        kk = j * nl + lat[l, q]
        dup = kk == k
        for p in range(n):
            if out[p] == kk:
                dup = True
        if not dup:
            out[n] = kk
            n += 1
    if j > 0:
        out[n] = k - nl
        n += 1
    if j < ny - 1:
        out[n] = k + nl
        n += 1
    elif ncol > 0:
        out[n] = ny * nl
        n += 1
    return n


@njit(**JIT)
def csr_pattern(ny, lat, ncol):
    """``(indptr, indices)``: cells with their lateral and vertical faces, top row - column."""
    nl = lat.shape[0]
    n_cells = ny * nl
    n = n_cells + ncol
    indptr = np.zeros(n + 1, dtype=np.int64)
    buf = np.empty(lat.shape[1] + 3, dtype=np.int64)
    for j in range(ny):
        for l in range(nl):
            indptr[j * nl + l + 1] = _row_neighbours(j, l, ny, nl, lat, ncol, buf) + 1
    for m in range(ncol):
        cnt = 1 + (1 if m + 1 < ncol else 0)
        cnt += nl if m == 0 else 1
        indptr[n_cells + m + 1] = cnt
    for r in range(n):
        indptr[r + 1] += indptr[r]
    indices = np.empty(indptr[n], dtype=np.int64)
    for j in range(ny):
        for l in range(nl):
            k = j * nl + l
            cnt = _row_neighbours(j, l, ny, nl, lat, ncol, buf)
            buf[cnt] = k
            row = np.sort(buf[:cnt + 1])
            indices[indptr[k]:indptr[k + 1]] = row
    for m in range(ncol):
        r = n_cells + m
        p = indptr[r]
        if m == 0:
            for l in range(nl):
                indices[p] = (ny - 1) * nl + l
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
def _face(psi, j0, l0, j1, l1, psi_min):
    v = 0.5 * (psi[j0, l0] + psi[j1, l1])
    return v if v > psi_min else psi_min


@njit(**JIT_INLINE)
def _top_conductance(pk, coef, dx, coef_col, h_col):
    """Series conductance from a top cell's centre (``psi = pk``) to the column's first node."""
    return dx / (0.5 * dx / (coef * pk) + 0.5 * h_col / coef_col)


@njit(**JIT_PARALLEL)
def fill(data, indptr, indices, psi, lat, psi_min, coef, mass, dx, ncol, coef_col, h_col,
         mass_col, top_dirichlet):
    """Write the operator's values into ``data`` (see the module docstring).

    ``psi`` is ``(ny, nl)`` and ``lat`` its lateral neighbour table. ``top_dirichlet``:
    without a column, whether the top face holds a Dirichlet value (else it is closed); its
    right-hand side is ``2 coef psi_top value`` per cell.
    """
    ny, nl = psi.shape
    n_cells = ny * nl
    for j in prange(ny):
        for l in range(nl):
            k = j * nl + l
            for p in range(indptr[k], indptr[k + 1]):
                data[p] = 0.0
            pk = psi[j, l] if psi[j, l] > psi_min else psi_min
            diag = mass * pk * dx * dx
            for q in range(lat.shape[1]):
                ll = lat[l, q]
                if ll == l:
                    continue
                kf = coef * _face(psi, j, l, j, ll, psi_min)
                diag += kf
                _add(data, indptr, indices, k, j * nl + ll, -kf)
            if j > 0:
                kf = coef * _face(psi, j, l, j - 1, l, psi_min)
                diag += kf
                _add(data, indptr, indices, k, k - nl, -kf)
            if j < ny - 1:
                kf = coef * _face(psi, j, l, j + 1, l, psi_min)
                diag += kf
                _add(data, indptr, indices, k, k + nl, -kf)
            elif ncol > 0:
                kf = _top_conductance(pk, coef, dx, coef_col, h_col)
                diag += kf
                _add(data, indptr, indices, k, n_cells, -kf)
            elif top_dirichlet:
                diag += 2.0 * coef * pk
            _add(data, indptr, indices, k, k, diag)
    if ncol > 0:
        area = nl * dx
        k_col = coef_col * area / h_col
        for m in range(ncol):
            r = n_cells + m
            for p in range(indptr[r], indptr[r + 1]):
                data[p] = 0.0
            diag = mass_col * h_col * area
            if m == 0:
                for l in range(nl):
                    pk = psi[ny - 1, l] if psi[ny - 1, l] > psi_min else psi_min
                    kf = _top_conductance(pk, coef, dx, coef_col, h_col)
                    diag += kf
                    _add(data, indptr, indices, r, (ny - 1) * nl + l, -kf)
            else:
                diag += k_col
                _add(data, indptr, indices, r, r - 1, -k_col)
            if m + 1 < ncol:
                diag += k_col
                _add(data, indptr, indices, r, r + 1, -k_col)
            _add(data, indptr, indices, r, r, diag)


@njit(**JIT_PARALLEL)
def face_divergence(psi, lat, psi_min, coef, u, out):
    """``out_k = sum_faces K_f (u_nb - u_k)`` over the grid's interior faces (closed top)."""
    ny, nl = psi.shape
    for j in prange(ny):
        for l in range(nl):
            s = 0.0
            uk = u[j, l]
            for q in range(lat.shape[1]):
                ll = lat[l, q]
                if ll != l:
                    s += coef * _face(psi, j, l, j, ll, psi_min) * (u[j, ll] - uk)
            if j > 0:
                s += coef * _face(psi, j, l, j - 1, l, psi_min) * (u[j - 1, l] - uk)
            if j < ny - 1:
                s += coef * _face(psi, j, l, j + 1, l, psi_min) * (u[j + 1, l] - uk)
            out[j, l] = s


@njit(**JIT_PARALLEL)
def faces(psi, nz, psi_min, coef, mass, dx, top, coef_col, h_col, kx, ky, kz, d, w):
    """The grid part of :func:`fill` as a face operator of :mod:`fastnai._kernels.multigrid`.

    ``psi`` is ``(ny, nz nx)``; ``kx, ky, kz, d, w`` are flat ``ny nz nx`` outputs. ``top``:
    0 a closed top face, 1 a Dirichlet value there (``d += 2 coef psi_top``), 2 the series
    conductance to the separator column's first node, which goes into ``d`` and into ``w``
    (the coupling column of the matrix, ``A[k, N] = -w[k]``); ``w`` is zero elsewhere.
    """
    ny, nl = psi.shape
    nx = nl // nz
    for j in prange(ny):
        for l in range(nl):
            k, i = l // nx, l % nx
            c = j * nl + l
            pk = psi[j, l] if psi[j, l] > psi_min else psi_min
            dd = mass * pk * dx * dx
            kx[c] = coef * _face(psi, j, l, j, k * nx + (i + 1) % nx, psi_min) if nx > 1 else 0.0
            kz[c] = coef * _face(psi, j, l, j, ((k + 1) % nz) * nx + i, psi_min) if nz > 1 else 0.0
            ky[c] = coef * _face(psi, j, l, j + 1, l, psi_min) if j + 1 < ny else 0.0
            wc = 0.0
            if j == ny - 1:
                if top == 2:
                    wc = _top_conductance(pk, coef, dx, coef_col, h_col)
                    dd += wc
                elif top == 1:
                    dd += 2.0 * coef * pk
            d[c] = dd
            w[c] = wc
