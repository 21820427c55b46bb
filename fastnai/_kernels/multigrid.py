"""Geometric multigrid for cell-centred face operators on a box, periodic in x and z.

The operators are those of :mod:`fastnai._kernels.electrolyte` (the deposition model's salt
and potential), held not as a CSR matrix but as what they are made of, on a grid of
``(ny, nz, nx)`` cells (``nz = 1`` in 2D)::

    (A u)_c = d_c u_c + sum_faces K_f (u_c - u_nb)

``kx[j, k, i]`` is the conductance of the face between cells ``i`` and ``(i + 1) % nx``,
``kz[j, k, i]`` between ``k`` and ``(k + 1) % nz``, ``ky[j, k, i]`` between ``j`` and ``j + 1``
(zero on the top row: the substrate and top boundaries are in ``d``), and ``d`` holds the
cell's mass and boundary terms. With ``d >= 0``, not all zero, the matrix is SPD.

Hierarchy (Galerkin coarse operators for piecewise-constant prolongation). Every direction
longer than one cell is halved: coarse cell ``I`` aggregates fine cells ``2I, 2I + 1`` (the
last aggregate of an odd length takes three). With ``P`` the 0/1 aggregation matrix,
``P^T A P`` is again a face operator: the coarse ``d`` is the sum of the fine ``d`` of the
aggregate, and a coarse face's conductance is the sum of the fine faces that join the two
aggregates (faces inside an aggregate drop out). It is exact Galerkin, so the coarse operators
follow the coefficient jumps of the diffuse metal (``psi_min = 1e-4`` against 1) without any
averaging rule; building the hierarchy is one pass over the cells per level, cheap enough to
redo for every solve (the operators change with the deposit at every time step).

Cycle: a W-cycle (:data:`VISITS` = 2 coarse visits per level; red-black Gauss-Seidel, red then
black before the coarse correction, black then red after), the coarsest level (at most
:data:`COARSEST` cells) solved by a dense Cholesky factor. Piecewise-constant prolongation
under-shoots a smooth error by about a factor two, so each coarse correction is scaled by
:data:`SCALE` = 1.8 (the over-correction of Blaheta, Computing 37 (1986) 251, and Braess,
Computing 55 (1995) 379). Measured on one core, CG iterations to 1e-10 from zero on a wavy
deposit of 32 x 64, 64 x 128, 128 x 256 and 256 x 512 cells:

==================  ====================  ====================
cycle               psi contrast 1        psi contrast 1e6
==================  ====================  ====================
V, unscaled         21, 31, 44, 63        22, 34, 50, 71
V, scale 1.8        12, 14, 15, 16        13, 16, 20, 22
W, unscaled         17, 19, 21, 23        18, 22, 25, 28
W, scale 1.8        11, 11, 11, 11        12, 13, 13, 13
==================  ====================  ====================

Only the scaled W-cycle is mesh-independent; its solves took about as long as the scaled
V-cycle's at 256 x 512 (87 vs 91 ms at contrast 1, 154 vs 122 ms at 1e6, one core), and its
count does not grow with the mesh while the V-cycle's does. A per-level energy-minimising
scale (a one-step K-cycle) needed more iterations than the fixed one (17 ... 24 at
contrast 1). The cycle is a fixed symmetric operator; :func:`pcg` still
uses the flexible (Polak-Ribiere) form of CG, which costs one dot product per iteration and
tolerates a preconditioner that is not exactly symmetric in floating point.

Odd periodic lengths break the red-black independence across the seam: the cells of the last
x plane (odd ``nx``) and last z plane (odd ``nz``) are updated after their colour, one after
another in a fixed order (and in the reverse order in the post-smoothing, so the cycle stays
symmetric). All reductions are row sums added in row order: a solve gives the same bits on
any number of threads. Levels smaller than ``PARALLEL_MIN_SIZE`` cells run their loops
serially: waking the threads costs more than those loops.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._jit import JIT, JIT_INLINE, JIT_PARALLEL, PARALLEL_MIN_SIZE

COARSEST = 256  # cells of the coarsest level, solved by a dense Cholesky factor
VISITS = 2  # coarse-level visits per cycle: a W-cycle
SCALE = 1.8  # over-correction of the piecewise-constant coarse correction


def plan(ny: int, nz: int, nx: int, coarsest: int = COARSEST) -> tuple[np.ndarray, np.ndarray]:
    """Level shapes ``(L, 3)`` as ``(ny, nz, nx)`` and flat offsets ``(L + 1,)``.

    Examples
    --------
    >>> dims, offs = plan(8, 1, 16, coarsest=8)
    >>> dims.tolist()
    [[8, 1, 16], [4, 1, 8], [2, 1, 4]]
    >>> offs.tolist()
    [0, 128, 160, 168]
    """
    dims = [(ny, nz, nx)]
    while dims[-1][0] * dims[-1][1] * dims[-1][2] > coarsest:
        nxt = tuple(n // 2 if n > 1 else 1 for n in dims[-1])
        if nxt == dims[-1]:
            break
        dims.append(nxt)
    dims = np.array(dims, dtype=np.int64)
    offs = np.zeros(len(dims) + 1, dtype=np.int64)
    offs[1:] = np.cumsum(np.prod(dims, axis=1))
    return dims, offs


# ---------------------------------------------------------------------------------------------
# one level: each operation is a row body (inlined) run over the rows in parallel on large
# levels and serially on small ones


@njit(**JIT_INLINE)
def _row(o, ny, nz, nx, j, k):
    """Flat index of row (j, k)'s first cell, and of the rows k + 1 and k - 1 (periodic)."""
    base = o + (j * nz + k) * nx
    kp = k + 1 if k + 1 < nz else 0
    km = k - 1 if k > 0 else nz - 1
    return base, o + (j * nz + kp) * nx, o + (j * nz + km) * nx


@njit(**JIT_INLINE)
def _stencil(kx, ky, kz, u, base, zp, zm, j, i, ny, nz, nx):
    """``(sum K u_nb, sum K)`` over the faces of cell ``base + i`` of layer ``j``.

    Faces of a period of one carry zero conductance (:func:`_galerkin`, the face assembly),
    so the wrap to the cell itself adds nothing.
    """
    c = base + i
    ip = c + 1 if i + 1 < nx else base
    im = c - 1 if i > 0 else base + nx - 1
    s = kx[c] * u[ip] + kx[im] * u[im]
    w = kx[c] + kx[im]
    if nz > 1:
        s += kz[c] * u[zp + i] + kz[zm + i] * u[zm + i]
        w += kz[c] + kz[zm + i]
    layer = nz * nx
    if j + 1 < ny:
        s += ky[c] * u[c + layer]
        w += ky[c]
    if j > 0:
        s += ky[c - layer] * u[c - layer]
        w += ky[c - layer]
    return s, w


@njit(**JIT_INLINE)
def _relax_row(kx, ky, kz, d, u, f, o, ny, nz, nx, j, colour):
    """Gauss-Seidel on layer ``j``'s cells of one colour, seam planes excepted."""
    i_end = nx - 1 if nx > 1 and nx % 2 == 1 else nx
    k_end = nz - 1 if nz > 1 and nz % 2 == 1 else nz
    for k in range(k_end):
        base, zp, zm = _row(o, ny, nz, nx, j, k)
        for i in range((colour + j + k) % 2, i_end, 2):
            s, w = _stencil(kx, ky, kz, u, base, zp, zm, j, i, ny, nz, nx)
            u[base + i] = (f[base + i] + s) / (d[base + i] + w)


@njit(**JIT_PARALLEL)
def _colour(kx, ky, kz, d, u, f, o, ny, nz, nx, colour):
    """One colour of red-black Gauss-Seidel, seam planes excepted (they follow, serially)."""
    if ny * nz * nx >= PARALLEL_MIN_SIZE:
        for j in prange(ny):
            _relax_row(kx, ky, kz, d, u, f, o, ny, nz, nx, j, colour)
    else:
        for j in range(ny):
            _relax_row(kx, ky, kz, d, u, f, o, ny, nz, nx, j, colour)


@njit(**JIT)
def _colour_seam(kx, ky, kz, d, u, f, o, ny, nz, nx, colour, reverse):
    """The seam cells of one colour, one after another (``reverse``: in the opposite order).

    Per layer ``j``: the last z plane (odd ``nz``) by ``i``, then the last x plane (odd
    ``nx``) by ``k``; a cell on both is taken with the x plane.
    """
    zs = nz > 1 and nz % 2 == 1
    xs = nx > 1 and nx % 2 == 1
    nzs = nx - 1 if xs else nx
    m = (nzs if zs else 0) + (nz if xs else 0)
    if m == 0:
        return
    for jj in range(ny):
        j = ny - 1 - jj if reverse else jj
        for qq in range(m):
            q = m - 1 - qq if reverse else qq
            if zs and q < nzs:
                k, i = nz - 1, q
            else:
                k, i = q - (nzs if zs else 0), nx - 1
            if (i + j + k) % 2 == colour:
                base, zp, zm = _row(o, ny, nz, nx, j, k)
                s, w = _stencil(kx, ky, kz, u, base, zp, zm, j, i, ny, nz, nx)
                u[base + i] = (f[base + i] + s) / (d[base + i] + w)


@njit(**JIT)
def _smooth(kx, ky, kz, d, u, f, o, ny, nz, nx, post):
    """One symmetric half: red then black (``post``: black then red, seams reversed)."""
    for q in range(2):
        colour = 1 - q if post else q
        if post:
            _colour_seam(kx, ky, kz, d, u, f, o, ny, nz, nx, colour, True)
            _colour(kx, ky, kz, d, u, f, o, ny, nz, nx, colour)
        else:
            _colour(kx, ky, kz, d, u, f, o, ny, nz, nx, colour)
            _colour_seam(kx, ky, kz, d, u, f, o, ny, nz, nx, colour, False)


@njit(**JIT_INLINE)
def _residual_row(kx, ky, kz, d, u, f, r, o, ny, nz, nx, j, sign):
    """``r = f - A u`` on layer ``j`` (``sign = -1``: ``r = A u``; ``f`` unread)."""
    for k in range(nz):
        base, zp, zm = _row(o, ny, nz, nx, j, k)
        for i in range(nx):
            s, w = _stencil(kx, ky, kz, u, base, zp, zm, j, i, ny, nz, nx)
            c = base + i
            if sign > 0:
                r[c] = f[c] - (d[c] + w) * u[c] + s
            else:
                r[c] = (d[c] + w) * u[c] - s


@njit(**JIT_PARALLEL)
def _residual(kx, ky, kz, d, u, f, r, o, ny, nz, nx, sign):
    if ny * nz * nx >= PARALLEL_MIN_SIZE:
        for j in prange(ny):
            _residual_row(kx, ky, kz, d, u, f, r, o, ny, nz, nx, j, sign)
    else:
        for j in range(ny):
            _residual_row(kx, ky, kz, d, u, f, r, o, ny, nz, nx, j, sign)


@njit(**JIT_INLINE)
def _children(big, small, c):
    """Fine index range ``[lo, hi)`` of coarse index ``c`` (``big`` fine cells, ``small``
    coarse)."""
    if big == small:
        return c, c + 1
    lo = 2 * c
    hi = big if c == small - 1 else lo + 2
    return lo, hi


@njit(**JIT_INLINE)
def _block_sum(a, of, nz, nx, jl, jh, kl, kh, il, ih):
    """Sum of ``a`` over the fine cells ``[jl, jh) x [kl, kh) x [il, ih)`` of the level at ``of``."""
    s = 0.0
    for j in range(jl, jh):
        for k in range(kl, kh):
            for i in range(il, ih):
                s += a[of + (j * nz + k) * nx + i]
    return s


@njit(**JIT_INLINE)
def _transfer_row(src, dst, aux, of, oc, fine, coarse, jc, scale, restrict):
    """Coarse layer ``jc``: restrict (``dst_C = sum src``, ``aux_C = 0``) or prolong and add
    (``dst_c += scale src_C``)."""
    ny, nz, nx = fine[0], fine[1], fine[2]
    my, mz, mx = coarse[0], coarse[1], coarse[2]
    jl, jh = _children(ny, my, jc)
    for kc in range(mz):
        kl, kh = _children(nz, mz, kc)
        for ic in range(mx):
            il, ih = _children(nx, mx, ic)
            cc = oc + (jc * mz + kc) * mx + ic
            if restrict:
                dst[cc] = _block_sum(src, of, nz, nx, jl, jh, kl, kh, il, ih)
                aux[cc] = 0.0
            else:
                v = scale * src[cc]
                for j in range(jl, jh):
                    for k in range(kl, kh):
                        for i in range(il, ih):
                            dst[of + (j * nz + k) * nx + i] += v


@njit(**JIT_PARALLEL)
def _transfer(src, dst, aux, of, oc, fine, coarse, scale, restrict):
    my = coarse[0]
    if fine[0] * fine[1] * fine[2] >= PARALLEL_MIN_SIZE:
        for jc in prange(my):
            _transfer_row(src, dst, aux, of, oc, fine, coarse, jc, scale, restrict)
    else:
        for jc in range(my):
            _transfer_row(src, dst, aux, of, oc, fine, coarse, jc, scale, restrict)


# ---------------------------------------------------------------------------------------------
# hierarchy


@njit(**JIT_INLINE)
def _galerkin_row(kx, ky, kz, d, of, oc, fine, coarse, jc):
    """Coarse layer ``jc`` of ``P^T A P``: its ``d`` and the faces to the next aggregates."""
    ny, nz, nx = fine[0], fine[1], fine[2]
    my, mz, mx = coarse[0], coarse[1], coarse[2]
    jl, jh = _children(ny, my, jc)
    for kc in range(mz):
        kl, kh = _children(nz, mz, kc)
        for ic in range(mx):
            il, ih = _children(nx, mx, ic)
            cc = oc + (jc * mz + kc) * mx + ic
            sd = _block_sum(d, of, nz, nx, jl, jh, kl, kh, il, ih)
            sx = 0.0  # fine faces from the last x of this aggregate to the next one
            if mx > 1:
                for j in range(jl, jh):
                    for k in range(kl, kh):
                        sx += kx[of + (j * nz + k) * nx + ih - 1]
            sz = 0.0
            if mz > 1:
                for j in range(jl, jh):
                    for i in range(il, ih):
                        sz += kz[of + (j * nz + kh - 1) * nx + i]
            sy = 0.0
            if jc + 1 < my:
                for k in range(kl, kh):
                    for i in range(il, ih):
                        sy += ky[of + ((jh - 1) * nz + k) * nx + i]
            d[cc] = sd
            kx[cc] = sx
            kz[cc] = sz
            ky[cc] = sy


@njit(**JIT_PARALLEL)
def _galerkin(kx, ky, kz, d, of, oc, fine, coarse):
    """Coarse faces and ``d`` of ``P^T A P`` (see the module docstring)."""
    if fine[0] * fine[1] * fine[2] >= PARALLEL_MIN_SIZE:
        for jc in prange(coarse[0]):
            _galerkin_row(kx, ky, kz, d, of, oc, fine, coarse, jc)
    else:
        for jc in range(coarse[0]):
            _galerkin_row(kx, ky, kz, d, of, oc, fine, coarse, jc)


@njit(**JIT)
def _dense(kx, ky, kz, d, o, ny, nz, nx, a):
    n = ny * nz * nx
    for p in range(n):
        for q in range(n):
            a[p, q] = 0.0
    for j in range(ny):
        for k in range(nz):
            for i in range(nx):
                c = (j * nz + k) * nx + i
                a[c, c] += d[o + c]
                if nx > 1:
                    e = (j * nz + k) * nx + (i + 1) % nx
                    _couple(a, c, e, kx[o + c])
                if nz > 1:
                    e = (j * nz + (k + 1) % nz) * nx + i
                    _couple(a, c, e, kz[o + c])
                if j + 1 < ny:
                    _couple(a, c, c + nz * nx, ky[o + c])


@njit(**JIT)
def _couple(a, p, q, kf):
    a[p, p] += kf
    a[q, q] += kf
    a[p, q] -= kf
    a[q, p] -= kf


@njit(**JIT)
def build(kx, ky, kz, d, dims, offs, chol):
    """Coarse levels of the hierarchy from level 0, and the coarsest level's Cholesky factor
    (lower triangle into ``chol``, ``(n_c, n_c)``). Raises if the operator is not SPD."""
    nlev = dims.shape[0]
    for lev in range(nlev - 1):
        _galerkin(kx, ky, kz, d, offs[lev], offs[lev + 1], dims[lev], dims[lev + 1])
    last = nlev - 1
    _dense(kx, ky, kz, d, offs[last], dims[last, 0], dims[last, 1], dims[last, 2], chol)
    chol[:, :] = np.linalg.cholesky(chol)


@njit(**JIT)
def _coarsest(chol, u, f, o):
    n = chol.shape[0]
    for p in range(n):
        s = f[o + p]
        for q in range(p):
            s -= chol[p, q] * u[o + q]
        u[o + p] = s / chol[p, p]
    for p in range(n - 1, -1, -1):
        s = u[o + p]
        for q in range(p + 1, n):
            s -= chol[q, p] * u[o + q]
        u[o + p] = s / chol[p, p]


@njit(**JIT)
def cycle(kx, ky, kz, d, dims, offs, chol, u, f, r, visits, scale, count):
    """One cycle from ``u[level 0] = 0`` for the right-hand side ``f[level 0]``.

    ``u, f, r`` are flat over all levels (``offs``); the result is ``u[:offs[1]]``.
    ``visits`` cycles of each coarse level (the coarsest: one exact solve) correct its parent;
    ``count`` (int64, one per level) is scratch. Written as a loop, not a recursion (a cached
    recursive Numba function crashed when loaded from the cache).
    """
    nlev = dims.shape[0]
    for c in range(offs[1]):
        u[c] = 0.0
    lev = 0
    down = True
    while True:
        o = offs[lev]
        ny, nz, nx = dims[lev, 0], dims[lev, 1], dims[lev, 2]
        if down and lev < nlev - 1:  # pre-smooth, restrict the residual, start the child at 0
            _smooth(kx, ky, kz, d, u, f, o, ny, nz, nx, False)
            _residual(kx, ky, kz, d, u, f, r, o, ny, nz, nx, 1)
            _transfer(r, f, u, o, offs[lev + 1], dims[lev], dims[lev + 1], 1.0, True)
            lev += 1
            count[lev] = 0
            continue
        if down:
            _coarsest(chol, u, f, o)
        # a cycle on level lev is complete
        if lev == 0:
            return
        count[lev] += 1
        if count[lev] < (visits if lev < nlev - 1 else 1):
            down = True  # another cycle on lev, from its current u
            continue
        parent = lev - 1
        o, e = offs[parent], offs[lev]
        ny, nz, nx = dims[parent, 0], dims[parent, 1], dims[parent, 2]
        _transfer(u, u, u, o, e, dims[parent], dims[lev], scale, False)
        _smooth(kx, ky, kz, d, u, f, o, ny, nz, nx, True)
        lev = parent
        down = False


# ---------------------------------------------------------------------------------------------
# the Krylov solve


@njit(**JIT)
def apply(kx, ky, kz, d, dims, x, w, gamma, out, rows):
    """``out = (A - gamma w w^T) x`` on level 0 (``w`` nonzero on the top row only, or
    ``gamma = 0``). ``rows`` (``ny``) is scratch for the ``w^T x`` row sums."""
    ny, nz, nx = dims[0, 0], dims[0, 1], dims[0, 2]
    _residual(kx, ky, kz, d, x, x, out, 0, ny, nz, nx, -1)
    if gamma != 0.0:
        wx = dot(w, x, rows)
        n = out.size
        for c in range(n - nz * nx, n):
            out[c] -= gamma * w[c] * wx


@njit(**JIT_PARALLEL)
def dot(a, b, rows):
    """``a . b`` as row sums (``rows.size`` rows) added in row order."""
    ny = rows.size
    m = a.size // ny
    if a.size >= PARALLEL_MIN_SIZE:
        for j in prange(ny):
            s = 0.0
            for c in range(j * m, (j + 1) * m):
                s += a[c] * b[c]
            rows[j] = s
    else:
        for j in range(ny):
            s = 0.0
            for c in range(j * m, (j + 1) * m):
                s += a[c] * b[c]
            rows[j] = s
    t = 0.0
    for j in range(ny):
        t += rows[j]
    return t


@njit(**JIT_PARALLEL)
def _axpy(alpha, x, y):
    """``y += alpha x``."""
    if y.size >= PARALLEL_MIN_SIZE:
        for c in prange(y.size):
            y[c] += alpha * x[c]
    else:
        for c in range(y.size):
            y[c] += alpha * x[c]


@njit(**JIT_PARALLEL)
def _xpby(x, beta, y):
    """``y = x + beta y``."""
    if y.size >= PARALLEL_MIN_SIZE:
        for c in prange(y.size):
            y[c] = x[c] + beta * y[c]
    else:
        for c in range(y.size):
            y[c] = x[c] + beta * y[c]


@njit(**JIT)
def pcg(kx, ky, kz, d, dims, offs, chol, w, gamma, b, x, rtol, maxiter, u, f, r, res, res_old,
        p, q, rows, history, visits, scale, count):
    """Solve ``(A - gamma w w^T) x = b`` by flexible CG preconditioned with :func:`cycle`.

    ``beta`` in the Polak-Ribiere form (flexible CG, Notay, SIAM J. Sci. Comput. 22 (2000)
    1444, doi:10.1137/S1064827599362314). ``visits`` and ``scale``: the cycle's (``VISITS``,
    ``SCALE``).
    ``x`` holds the initial guess and receives the solution; ``res, res_old, p, q`` (level 0)
    and the level vectors are scratch. ``history[k]`` receives ``|b - S x_k|``. Returns the
    iterations, or ``-1`` when ``|b - S x| <= rtol |b|`` was not reached in ``maxiter``.
    """
    n0 = b.size
    bnorm = np.sqrt(dot(b, b, rows))
    if bnorm == 0.0:
        for c in range(n0):
            x[c] = 0.0
        history[0] = 0.0
        return 0
    apply(kx, ky, kz, d, dims, x, w, gamma, q, rows)
    for c in range(n0):
        res[c] = b[c] - q[c]
    rnorm = np.sqrt(dot(res, res, rows))
    history[0] = rnorm
    if rnorm <= rtol * bnorm:
        return 0
    for c in range(n0):
        f[c] = res[c]
    cycle(kx, ky, kz, d, dims, offs, chol, u, f, r, visits, scale, count)
    for c in range(n0):
        p[c] = u[c]
    rz = dot(res, u[:n0], rows)
    for it in range(1, maxiter + 1):
        apply(kx, ky, kz, d, dims, p, w, gamma, q, rows)
        alpha = rz / dot(p, q, rows)
        _axpy(alpha, p, x)
        for c in range(n0):
            res_old[c] = res[c]
        _axpy(-alpha, q, res)
        rnorm = np.sqrt(dot(res, res, rows))
        if it < history.size:
            history[it] = rnorm
        if rnorm <= rtol * bnorm:
            return it
        for c in range(n0):
            f[c] = res[c]
        cycle(kx, ky, kz, d, dims, offs, chol, u, f, r, visits, scale, count)
        rz_new = dot(res, u[:n0], rows)
        beta = (rz_new - dot(res_old, u[:n0], rows)) / rz
        _xpby(u[:n0], beta, p)
        rz = rz_new
    return -1
